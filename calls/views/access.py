"""`login_required` that checks an async view's user in the event loop.

Django's decorator tests `user.is_authenticated` through a lambda, which for an async view it sends to a thread:
a hop on every request for a boolean. Sync views get Django's decorator unchanged.
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction
from django.contrib.auth import decorators


async def _is_authenticated(user) -> bool:
    return user.is_authenticated


def login_required(view):
    if iscoroutinefunction(view):
        return decorators.user_passes_test(_is_authenticated)(view)
    return decorators.login_required(view)
