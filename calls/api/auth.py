"""Who is calling the API: `Authorization: Bearer <token>` (calls/models/api.py ApiToken), and what it may do.

The token acts as its owner: `request.user` becomes the token's user, so every rule the pages apply (roles,
permissions, which calls an agent may see) applies to it unchanged; `request.auth` is the token, whose scopes
`require` checks. Nothing here logs the header (django-ninja's own HttpBearer logs an unexpected one in DEBUG)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.http import HttpRequest
from django.utils import timezone
from ninja.security.http import HttpBearer

from calls.auth import CachedPermissionBackend
from calls.models.api import LAST_USE_EVERY, ApiToken, digest


class Forbidden(Exception):
    """403: the token lacks a scope, or its owner the role, for what was asked."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


MAX_BODY = 1024 * 1024  # an API request's body: 1 MB (413 above, before the body is read)


class TooLarge(Exception):
    """413: the body is over MAX_BODY."""


class BadLength(Exception):
    """400: the Content-Length is not a number."""


class TokenAuth(HttpBearer):
    """A usable (not revoked, not expired) token of an active person; None (401) otherwise. Runs before anything
    reads the body, so a body over MAX_BODY is refused here by its Content-Length."""

    def __call__(self, request: HttpRequest) -> Any:
        length = request.headers.get("Content-Length") or "0"
        if not (length.isascii() and length.isdigit()):
            raise BadLength
        if int(length) > MAX_BODY:
            raise TooLarge
        scheme, _, token = (request.headers.get(self.header) or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.authenticate(request, token.strip())

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        if len(token) > 200 or "\x00" in token:
            return None
        now = timezone.now()
        found = _usable(digest(token), now)
        if found is None:
            return None
        # The owner as the pages load them: from the cache, with their permissions (calls/auth.py); None if they
        # left (inactive) or are gone.
        user = _BACKEND.get_user(found.user_id)
        if user is None:
            return None
        if found.last_used_at is None or now - found.last_used_at > timedelta(seconds=LAST_USE_EVERY):
            ApiToken.objects.filter(pk=found.pk).update(last_used_at=now)
            found.last_used_at = now
        found.user = user
        request.user = user
        return found


_BACKEND = CachedPermissionBackend()


def _usable(token_digest: str, now: datetime) -> ApiToken | None:
    """The usable token with this digest (ApiToken.objects.usable(), written out: every API request runs it, and
    building it with the ORM cost more than PostgreSQL spends on it); only the fields a request reads."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, user_id, scopes, last_used_at FROM {ApiToken._meta.db_table} "
            "WHERE digest = %s AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > %s)",
            [token_digest, now],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    pk, user_id, scopes, last_used_at = row
    scopes = json.loads(scopes) if isinstance(scopes, str) else scopes  # Django reads JSON columns as text
    if last_used_at is not None and timezone.is_naive(last_used_at):  # SQLite's raw rows: UTC, without a zone
        last_used_at = timezone.make_aware(last_used_at, UTC)
    return ApiToken(pk=pk, user_id=user_id, scopes=scopes, last_used_at=last_used_at)


def require(request: HttpRequest, scope: str, permission: str | None = None) -> None:
    """Raise Forbidden unless the token has `scope` (and its owner `permission`, when one is named)."""
    token: ApiToken = request.auth  # type: ignore[attr-defined]
    if scope not in token.scopes:
        raise Forbidden(f"This token lacks the scope {scope}; make one that has it on your profile's API tokens page.")
    if permission and not request.user.has_perm(permission):
        raise Forbidden("Your role does not allow this (the token acts as you, with your role).")
