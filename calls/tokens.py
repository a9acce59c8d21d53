"""API tokens, made and revoked: the one place the tokens page, the admin and `create_api_token` go through, so
that each is logged the same way (who, which token by its prefix, its scopes; never the token itself)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from calls.models import ApiToken

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)


def create_token(
    *, user: User, name: str, scopes: list[str], expires_in_days: int | None = None, by: str
) -> tuple[ApiToken, str]:
    """Make user a token; return its row and the token itself, to show once. `by` says who made it, for the log."""
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    row, token = ApiToken.issue(user, name=name, scopes=scopes, expires_at=expires_at)
    log.info(
        "API token %s (%s) of %s created by %s; scopes %s; %s",
        row.prefix,
        row.name,
        user.get_username(),
        by,
        ", ".join(row.scopes),
        f"expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else "no expiry",
    )
    return row, token


def revoke(tokens: QuerySet[ApiToken], *, by: User) -> int:
    """Revoke those of these tokens not revoked yet; return how many were. A token in use is refused from now on."""
    now = timezone.now()
    with transaction.atomic():
        revoked = list(
            tokens.filter(revoked_at__isnull=True)
            .select_for_update(of=("self",))
            .select_related("user")
            .only("prefix", "name", "scopes", "user__username")
        )
        ApiToken.objects.filter(pk__in=[token.pk for token in revoked]).update(revoked_at=now, revoked_by=by)
    for token in revoked:
        log.info(
            "API token %s (%s) of %s revoked by %s; scopes %s",
            token.prefix,
            token.name,
            token.user.get_username(),
            by.get_username(),
            ", ".join(token.scopes),
        )
    return len(revoked)
