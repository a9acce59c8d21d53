"""The request types the views are given, for the type checker (django-htmx's typed request class).

`HttpRequest` says nothing of the `htmx` attribute django-htmx's middleware sets, and types `user` as anyone,
signed in or not. Views behind `login_required` take an `AuthedRequest`: its user is a `User`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class HtmxRequest(HttpRequest):
    htmx: HtmxDetails


class AuthedRequest(HtmxRequest):
    user: User
    auser: Callable[[], Awaitable[User]]


def is_id(text: str) -> bool:
    """Whether a query or form value is a row id: ASCII digits only ("²".isdigit() is true; int("²") raises)."""
    return text.isascii() and text.isdecimal() and len(text) <= 18
