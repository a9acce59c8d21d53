"""System checks of vccweb's own settings (Django runs them at `check`, `migrate`, `runserver` and the worker's start,
and `make serve` shows their warnings before it starts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.conf import settings
from django.core import checks

from calls.vcc.webhooks import MIN_SECRET_BYTES  # what VCC asks of a new subscription's secret (vcc-api.md §10.3)

if TYPE_CHECKING:
    from django.apps import AppConfig


@checks.register(checks.Tags.security)
def webhook_secrets_check(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: object
) -> list[checks.CheckMessage]:
    """Warn of a secret of VCC_WEBHOOK_SECRETS shorter than 32 bytes: accepted (Vonage's own sample's is 16)."""
    return [
        checks.Warning(
            f"Secret {position} of VCC_WEBHOOK_SECRETS decodes to {len(key)} bytes, fewer than "
            f"{MIN_SECRET_BYTES}: events signed with it are accepted, but a short secret is easier to guess.",
            hint="VCC asks 32 bytes or more for a new subscription (manage.py vcc_webhooks subscribe makes none with "
            "less): put a longer secret first in VCC_WEBHOOK_SECRETS and subscribe with it, keeping this one until "
            "VCC signs with the new.",
            id="calls.W002",
        )
        for position, key in enumerate(settings.VCC_WEBHOOK_KEYS, start=1)
        if len(key) < MIN_SECRET_BYTES
    ]


@checks.register(checks.Tags.caches, deploy=True)
def shared_cache_check(app_configs: Sequence[AppConfig] | None = None, **kwargs: object) -> list[checks.CheckMessage]:
    """Warn of production without REDIS_URL: there is always more than one process (the worker beside the web
    server), and each then spends the whole VCC request budget alone."""
    if settings.DEBUG or settings.REDIS_URL:
        return []
    return [
        checks.Warning(
            "REDIS_URL is not set: each app process (every web process and every worker, on every host) counts VCC's "
            f"request budget alone, with all of it ({settings.VCC_REQUESTS_PER_MINUTE} a minute), so together they "
            "ask VCC for more than it allows and it answers 429 (to clicks too); each also fetches its own VCC token.",
            hint="Set REDIS_URL (redis://host:6379/0), one Redis for every host.",
            id="calls.W003",
        )
    ]
