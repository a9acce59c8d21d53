"""vccweb's own 404 and 500 pages in development too (`DEBUG` on, as in `make run`), where Django shows its
technical pages: the demo is the first thing people see. `DEBUG_TECHNICAL_ERRORS=true` brings Django's back.

Added to settings.MIDDLEWARE only when DEBUG is on and that flag is off; with DEBUG off Django already uses the
handlers in vccweb/urls.py and this is not installed. It acts only while both still hold (tests turn DEBUG off
after the settings are read, and on again to see the demo). Innermost, so the pages have the person, their session and
the CSP nonce, and CommonMiddleware can still add a missing slash to an address that 404s.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponseBase
from django.urls import Resolver404, get_resolver, get_urlconf, resolve

log = logging.getLogger("django.request")

type GetResponse = Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]]


def _handler(status: int) -> Callable[..., HttpResponseBase]:
    """The project's handler for this status (vccweb/urls.py's handler500; Django's page_not_found for 404)."""
    return get_resolver(get_urlconf()).resolve_error_handler(status)


def _active() -> bool:
    return settings.DEBUG and not settings.DEBUG_TECHNICAL_ERRORS


class FriendlyErrorPages:
    """Answer an unknown address, an Http404 and an uncaught exception with the pages production shows."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self.__acall__(request)
        return (_active() and self._unknown_address(request)) or self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        if _active() and self._matches_no_url(request):
            # The 404 page reads the session and the user: rendered in the thread, as a view would be.
            return await sync_to_async(self._not_found, thread_sensitive=True)(request, Http404())
        response = self.get_response(request)
        assert not isinstance(response, HttpResponseBase)  # async mode: Django gives an async get_response
        return await response

    @staticmethod
    def _matches_no_url(request: HttpRequest) -> bool:
        try:
            resolve(request.path_info, urlconf=getattr(request, "urlconf", None))
        except Resolver404:
            return True
        return False

    def _unknown_address(self, request: HttpRequest) -> HttpResponseBase | None:
        """The 404 page for an address no URL pattern matches (Django's resolver would show its URL list)."""
        return self._not_found(request, Http404()) if self._matches_no_url(request) else None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponseBase | None:
        """A view's Http404 gets the 404 page; any other fault the 500 page, logged with its traceback as Django
        logs it. Refusals Django already answers with its own handlers (403, 400) are left to it."""
        if not _active():
            return None
        if isinstance(exception, Http404):
            return self._not_found(request, exception)
        if isinstance(exception, PermissionDenied | BadRequest | SuspiciousOperation):
            return None
        # As Django's handler does: the test client re-raises from this signal, and the traceback is logged.
        signals.got_request_exception.send(sender=None, request=request)
        log.error("Internal Server Error: %s", request.path, exc_info=exception, extra={"status_code": 500})
        return _handler(500)(request)

    @staticmethod
    def _not_found(request: HttpRequest, exception: Http404) -> HttpResponseBase:
        # django-stubs types every error handler as taking the request alone; handler404 takes the exception too.
        handler = cast("Callable[[HttpRequest, Exception], HttpResponseBase]", _handler(404))
        return handler(request, exception)
