"""Django's middleware, without a thread hop per method under ASGI.

Under ASGI, Django's `MiddlewareMixin` sends every `process_request` and `process_response` to the sync thread,
whatever they do: sixteen hops for one click through the middleware in settings.MIDDLEWARE, each some 0.2 ms of
CPU and a thread switch. Most of those methods only read and set headers and cookies. These subclasses call them
in the event loop, and go to the thread only for what may touch the database or the cache: saving a session and
storing messages. The CSRF token check (`process_view`) stays Django's, in the thread: checking it in the event
loop leaned on the private `CsrfViewMiddleware._reject` and saved under 1 ms of CPU per click when measured alone
(bench/README.md, "Private names").

Under WSGI (and Django's sync test client) they are Django's classes, unchanged.

Django's deploy checks look for its own class paths in MIDDLEWARE: W001 to W003 say they are missing (settings
silence those three), and the checks of HSTS, nosniff, the HTTPS redirect, X-Frame-Options, the referrer and
opener policies and the CSRF and session cookies pass without looking. `middleware_check` below runs those checks
again as if Django's paths stood where these subclasses do, and says (calls.W001) when a subclass is missing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from importlib import import_module
from typing import TYPE_CHECKING, cast

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.core import checks
from django.http import HttpRequest, HttpResponseBase
from django.middleware import clickjacking, common, csp, csrf, security
from django.utils.decorators import sync_and_async_middleware
from django.utils.deprecation import MiddlewareMixin
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from django.apps import AppConfig

type GetResponse = Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]]


class _InLoop(MiddlewareMixin):
    """`MiddlewareMixin.__acall__`, with the methods called in the event loop. Mixed in before Django's class (which
    derives from MiddlewareMixin too, so the order of classes is the same as for a plain mixin)."""

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        if "inloop_middleware" in settings.BENCH_DISABLE:
            # Django's hops: what bench/private_bench.py compares with. MiddlewareMixin.__call__ looks __acall__ up
            # on the instance. setattr: the type checker (method-assign) forbids replacing a method by assignment.
            setattr(self, "__acall__", super().__acall__)  # noqa: B010

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.process_request(request) if hasattr(self, "process_request") else None
        # Only in async mode is __acall__ called, and then Django gives an async get_response.
        response = response or await cast("Awaitable[HttpResponseBase]", self.get_response(request))
        if hasattr(self, "process_response"):
            if self.needs_thread(request, response):
                return await sync_to_async(self.process_response, thread_sensitive=True)(request, response)
            return self.process_response(request, response)
        return response

    def needs_thread(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        """Whether process_response may do I/O for this response (it runs in the sync thread then)."""
        return False


class SecurityMiddleware(_InLoop, security.SecurityMiddleware):
    pass


class CommonMiddleware(_InLoop, common.CommonMiddleware):
    pass


class AuthenticationMiddleware(_InLoop, auth.AuthenticationMiddleware):
    pass  # sets request.user (lazy) and request.auser; loading the user is the view's business


class XFrameOptionsMiddleware(_InLoop, clickjacking.XFrameOptionsMiddleware):
    pass


class ContentSecurityPolicyMiddleware(_InLoop, csp.ContentSecurityPolicyMiddleware):
    pass


class SessionMiddleware(_InLoop, sessions.SessionMiddleware):
    def needs_thread(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        session = getattr(request, "session", None)
        # Django's condition for saving it (for a 5xx it does not save, but still reads the session's expiry)
        return (
            session is not None and (session.modified or settings.SESSION_SAVE_EVERY_REQUEST) and not session.is_empty()
        )


class MessageMiddleware(_InLoop, messages.MessageMiddleware):
    def needs_thread(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        storage = getattr(request, "_messages", None)
        return storage is not None and (storage.used or storage.added_new)  # else update() stores nothing


class CsrfViewMiddleware(_InLoop, csrf.CsrfViewMiddleware):
    pass  # the token check itself (process_view) is Django's, in the thread: see the module's text


PRIVATE = "private, no-store"


@sync_and_async_middleware
def private_pages(get_response: GetResponse) -> GetResponse:
    """`Cache-Control: private, no-store` on every response a view made and left without one: pages and exports
    show contacts, numbers and calls, which no shared cache (a proxy) and no browser cache (the back button after
    logging out) should keep. Listed after WhiteNoise, which answers static files (cached for ever) before this.

    Every response, not only those of a logged-in person: knowing who is logged in would load the session in the
    event loop, and the few public pages (login, errors, health) lose nothing by not being stored."""
    if iscoroutinefunction(get_response):
        aget_response = cast("Callable[[HttpRequest], Awaitable[HttpResponseBase]]", get_response)

        async def amiddleware(request: HttpRequest) -> HttpResponseBase:
            return _private(await aget_response(request))

        return amiddleware

    sget_response = cast("Callable[[HttpRequest], HttpResponseBase]", get_response)

    def middleware(request: HttpRequest) -> HttpResponseBase:
        return _private(sget_response(request))

    return middleware


def _private(response: HttpResponseBase) -> HttpResponseBase:
    response.headers.setdefault("Cache-Control", PRIVATE)  # a view that chose (never_cache, the admin) keeps its own
    return response


# Django's deploy checks that look for its own middleware paths in MIDDLEWARE, by module.
MIDDLEWARE_CHECKS = {
    "django.core.checks.security.base": (
        "check_sts",
        "check_sts_include_subdomains",
        "check_sts_preload",
        "check_content_type_nosniff",
        "check_ssl_redirect",
        "check_xframe_deny",
        "check_referrer_policy",
        "check_cross_origin_opener_policy",
        "check_csp_nonce_context_processor",
    ),
    "django.core.checks.security.csrf": ("check_csrf_cookie_secure",),
    "django.core.checks.security.sessions": ("check_session_cookie_secure", "check_session_cookie_httponly"),
}

# Each subclass's path, and what its absence would leave unprotected.
REQUIRED = {
    security.SecurityMiddleware: "security.W001: HSTS, nosniff, the referrer policy and the HTTPS redirect",
    clickjacking.XFrameOptionsMiddleware: "security.W002: X-Frame-Options (pages could be framed)",
    csrf.CsrfViewMiddleware: "security.W003: CSRF protection",
}


@checks.register(checks.Tags.security, deploy=True)
def middleware_check(app_configs: Sequence[AppConfig] | None = None, **kwargs: object) -> list[checks.CheckMessage]:
    installed = [import_string(path) for path in settings.MIDDLEWARE]
    missing = [
        checks.Warning(
            f"No {required.__name__} (or a subclass) in MIDDLEWARE: {what} would be missing.",
            id="calls.W001",
        )
        for required, what in REQUIRED.items()
        if not any(isinstance(cls, type) and issubclass(cls, required) for cls in installed)
    ]
    return missing + _as_django_would(installed, app_configs, **kwargs)


def _as_django_would(
    installed: list[object], app_configs: Sequence[AppConfig] | None, **kwargs: object
) -> list[checks.CheckMessage]:
    """Django's middleware-dependent deploy checks, run with each subclass of ours named by its Django path."""
    from django.test.utils import override_settings

    def django_path(path: str, cls: object) -> str:
        if isinstance(cls, type) and issubclass(cls, _InLoop):
            base = next(b for b in cls.__mro__ if b.__module__.startswith("django."))
            return f"{base.__module__}.{base.__qualname__}"
        return path

    as_django = [django_path(path, cls) for path, cls in zip(settings.MIDDLEWARE, installed, strict=True)]
    found: list[checks.CheckMessage] = []
    with override_settings(MIDDLEWARE=as_django):
        for module, names in MIDDLEWARE_CHECKS.items():
            for name in names:
                check = getattr(import_module(module), name, None)
                if check is not None:  # a later Django may rename one: the others still run
                    found += check(app_configs, **kwargs)
    return found
