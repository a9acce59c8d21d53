"""The REST API's own rows (calls/api/): the tokens other systems authenticate with, and the answers kept for an
`Idempotency-Key` so that a repeated request never places a second call."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils import timezone

if TYPE_CHECKING:
    from django.contrib.auth.models import User

SCOPES = {
    "contacts:read": "Read contacts and their numbers",
    "contacts:write": "Create, change and delete contacts and their numbers",
    "calls:read": "Read the call log, agents, groups, callback numbers and dispositions",
    "calls:write": "Place calls and wrap them up",
}
TOKEN_PREFIX = "vcc_"  # every token starts with it, so a leaked one is easy to find in code and logs
PREFIX_LENGTH = 8  # the part after vcc_ shown on the tokens page, to tell tokens apart
LAST_USE_EVERY = 60  # seconds: a token's last use is written at most this often


def digest(token: str) -> str:
    """The token as stored: its SHA-256. A fast hash is enough for 32 random bytes (no dictionary to try)."""
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def usable(self, *, now: datetime | None = None) -> ApiTokenQuerySet:
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    """A person's token for the API: it acts as its owner, within its scopes. Only its hash is kept; the token
    itself is shown once, when it is made."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What it is for: the helpdesk, the lead form, …")
    prefix = models.CharField(max_length=20, unique=True, help_text="Its first characters, shown to tell it apart.")
    digest = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(
        cls, user: User, *, name: str, scopes: list[str], expires_at: datetime | None = None
    ) -> tuple[ApiToken, str]:
        """Make a token; return the row and the token itself (shown once, never stored)."""
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise ValueError(f"Unknown scope(s): {', '.join(unknown)}" if unknown else "Give the token a scope.")
        visible = secrets.token_hex(PREFIX_LENGTH // 2)
        token = f"{TOKEN_PREFIX}{visible}_{secrets.token_urlsafe(32)}"
        row = cls.objects.create(
            user=user,
            name=name,
            prefix=f"{TOKEN_PREFIX}{visible}",
            digest=digest(token),
            scopes=sorted(set(scopes)),
            expires_at=expires_at,
        )
        return row, token

    @property
    def state(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= timezone.now():
            return "expired"
        return "active"


class ApiIdempotentRequest(models.Model):
    """The first answer to a request sent with an `Idempotency-Key`: a repeat of the key by the same person gets it
    again instead of placing another call. Kept a day."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_digest = models.CharField(max_length=64, help_text="SHA-256 of the method, path and body.")
    status = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Empty while the first is under way.")
    response = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="api_idempotency_once")]
        indexes = [models.Index(fields=["created_at"], name="api_idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status or 'under way'})"
