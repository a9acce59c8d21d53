from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest

from calls import permissions as perms

if TYPE_CHECKING:
    from calls.calling.bar import Bar


def vccweb(request: HttpRequest) -> dict[str, object]:
    """Expose what every page shows: the sandbox marker, the user's roles and their call bar."""
    user = getattr(request, "user", None)
    return {
        **call_bar(request),
        "sandbox": settings.VCC_SANDBOX,
        "default_region": settings.DEFAULT_PHONE_REGION,
        "call_poll": f"{settings.CALL_POLL_MS}ms",  # htmx's `every` for the call panel and the call bar
        "can_admin": bool(user and user.is_authenticated and user.is_staff),
        # Checked only when a template asks (the navigation), usually from the permissions the view already loaded.
        "can_see_health": partial(_has_perm, user, perms.VIEW_INTEGRATION_HEALTH),
    }


def _has_perm(user: User | AnonymousUser | None, perm: str) -> bool:
    return bool(user and user.is_authenticated and user.has_perm(perm))


def call_bar(request: HttpRequest) -> dict[str, object]:
    """The call bar of every page (templates/calls/call_bar.html) and "You are on a call with …" for Call buttons.

    Read once, when a template first asks (one query, two when a wrap-up is due). A view rendering in the event
    loop, where the database cannot be read, gets an empty bar: it passes `on_call` itself, and the page's bar,
    refreshed on `calls-changed`, puts the buttons right.
    """
    bar = _Once(partial(_bar, getattr(request, "user", None)))
    return {"call_bar": bar, "on_call": lambda: bar().on_call_words}


def _bar(user: User | AnonymousUser | None) -> Bar:
    from calls.calling.bar import Bar
    from calls.views.calling import call_bar_for

    if user is None or not user.is_authenticated or _in_event_loop():
        return Bar()
    assert isinstance(user, User)
    return call_bar_for(user)


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _Once[T]:
    """A value computed on the first call, then kept (the template engine calls a callable it resolves)."""

    def __init__(self, compute: Callable[[], T]) -> None:
        self._compute = compute
        self._done = False
        self._value: T | None = None

    def __call__(self) -> T:
        if not self._done:
            self._value, self._done = self._compute(), True
        return self._value  # type: ignore[return-value]
