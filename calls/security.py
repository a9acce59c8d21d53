"""Response headers Django does not set itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.utils.decorators import sync_and_async_middleware


def permissions_policy(policy: dict[str, list[str]]) -> str:
    """Render {"camera": [], "fullscreen": ["self"]} as `camera=(), fullscreen=(self)`."""
    return ", ".join(f"{feature}=({' '.join(allow)})" for feature, allow in policy.items())


@sync_and_async_middleware
def permissions_policy_middleware(
    get_response: Callable[[HttpRequest], Any],
) -> Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]]:
    """Send `Permissions-Policy` from settings.PERMISSIONS_POLICY on every response."""
    from asgiref.sync import iscoroutinefunction

    header = permissions_policy(settings.PERMISSIONS_POLICY)

    def add_header(response: HttpResponseBase) -> HttpResponseBase:
        if header:
            response.headers.setdefault("Permissions-Policy", header)
        return response

    if iscoroutinefunction(get_response):

        async def amiddleware(request: HttpRequest) -> HttpResponseBase:
            return add_header(await get_response(request))

        return amiddleware

    def middleware(request: HttpRequest) -> HttpResponseBase:
        return add_header(get_response(request))

    return middleware
