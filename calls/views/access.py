"""`login_required` that checks an async view's user in the event loop.

Django's decorator tests `user.is_authenticated` through a lambda, which for an async view it sends to a thread:
a hop on every request for a boolean. Sync views get Django's decorator unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction
from django.contrib.auth import decorators
from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpResponseBase


async def _is_authenticated(user: User | AnonymousUser) -> bool:
    return user.is_authenticated


def login_required[View: Callable[..., HttpResponseBase | Awaitable[HttpResponseBase]]](view: View) -> View:
    is_async = iscoroutinefunction(view)  # not in the `if`: the type guard would narrow View away
    if is_async:
        # Django awaits an async test for an async view (5.1 on); django-stubs types the test as sync only.
        return decorators.user_passes_test(_is_authenticated)(view)  # type: ignore[arg-type]
    return decorators.login_required(view)
