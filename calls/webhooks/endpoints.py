"""Webhook endpoints added, changed, paused, resumed, re-keyed and deleted: the one place the pages and
`manage.py webhook_endpoint` go through, so each is checked the same way (safety.check_url, check_event_patterns)
and logged the same way (who, which endpoint, what changed; never a secret), as API tokens are (calls/tokens.py).

A paused endpoint has enabled off and no disabled_reason; one the engine disabled (410, a day of failures) has its
reason. Resuming clears both, and the run of failures."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone

from calls.models.webhooks import MAX_PREVIOUS_SECRETS, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from calls.webhooks import check_event_patterns, safety, signing

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)

PREVIOUS_SECRET_HOURS = 24  # after a rotation the secret it replaced signs beside the new one this long


@dataclass(frozen=True)
class EndpointSettings:
    """What an admin chooses for an endpoint, checked: the URL normalised, the patterns cleaned."""

    url: str
    event_types: list[str]
    description: str = ""

    @classmethod
    def checked(cls, url: str, event_types: list[str], description: str = "") -> EndpointSettings:
        """Raises ValidationError saying what to fix (the URL first)."""
        return cls(safety.check_url(url), check_event_patterns(event_types), description.strip())


def name(endpoint: WebhookEndpoint) -> str:
    """How the log names an endpoint: its id and host (a receiver's URL may hold its token, in the path or query)."""
    return f"#{endpoint.pk} {urlsplit(endpoint.url).hostname or '?'}"


def create(chosen: EndpointSettings, *, by_user: User | None, by: str, secret: str = "") -> tuple[WebhookEndpoint, str]:
    """Add an endpoint; return it and its secret (given, or made here), to show once."""
    secret = signing.check_secret(secret) if secret else signing.new_secret()
    endpoint = WebhookEndpoint.objects.create(
        url=chosen.url,
        event_types=chosen.event_types,
        description=chosen.description,
        secret=secret,
        created_by=by_user,
    )
    log.info("webhook endpoint %s added by %s; events %s", name(endpoint), by, ", ".join(endpoint.event_types))
    return endpoint, secret


def change(endpoint: WebhookEndpoint, chosen: EndpointSettings, *, by: str) -> list[str]:
    """Save the endpoint's new settings; return the names of the fields that changed (logged)."""
    changed = [
        field for field in ("url", "event_types", "description") if getattr(endpoint, field) != getattr(chosen, field)
    ]
    if changed:
        before = name(endpoint)
        for field in changed:
            setattr(endpoint, field, getattr(chosen, field))
        endpoint.save(update_fields=[*changed, "updated_at"])
        log.info(
            "webhook endpoint %s changed by %s: %s%s; events %s",
            before,
            by,
            ", ".join(changed),
            f" (now {name(endpoint)})" if "url" in changed else "",
            ", ".join(endpoint.event_types),
        )
    return changed


def pause(endpoint: WebhookEndpoint, *, by: str, now: datetime | None = None) -> bool:
    """Stop sending to the endpoint: events meanwhile wait, and are sent (in order) when it is resumed."""
    now = now or timezone.now()
    updated = WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
        enabled=False, disabled_reason="", disabled_at=now, updated_at=now
    )
    endpoint.refresh_from_db()
    if updated:
        log.info("webhook endpoint %s paused by %s", name(endpoint), by)
    return bool(updated)


def resume(endpoint: WebhookEndpoint, *, by: str, now: datetime | None = None) -> bool:
    """Send to the endpoint again, paused or disabled by the engine; its run of failures starts afresh."""
    now = now or timezone.now()
    was = endpoint.disabled_reason
    with transaction.atomic():
        updated = WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=False).update(
            enabled=True,
            disabled_reason="",
            disabled_at=None,
            failing_since=None,
            retry_at=None,
            failures=0,
            updated_at=now,
        )
        if updated:  # what waited is due now, with every try before it (a receiver fixed at last gets them at once)
            WebhookDelivery.objects.filter(endpoint_id=endpoint.pk, status=WebhookDelivery.Status.PENDING).update(
                next_attempt_at=now, attempts=0, failing_since=None
            )
    endpoint.refresh_from_db()
    if updated:
        log.info("webhook endpoint %s resumed by %s%s", name(endpoint), by, f" (it was disabled: {was})" if was else "")
        from calls import tasks  # the jobs module imports this one's neighbours

        pk = endpoint.pk
        transaction.on_commit(lambda: tasks.enqueue_delivery(pk))
    return bool(updated)


def rotate(endpoint: WebhookEndpoint, *, by: str, now: datetime | None = None) -> str:
    """Give the endpoint a new secret and return it (to show once); the current one keeps signing for 24 hours.

    Each secret a rotation replaces signs for its own 24 hours, however many rotations follow within them: each was
    shown once and may be on the receivers already. The ones whose 24 hours are over are dropped, and so is the
    oldest beyond MAX_PREVIOUS_SECRETS (the page warns before)."""
    now = now or timezone.now()
    secret = signing.new_secret()
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        stopped = locked.rotated(secret, now=now, until=now + timedelta(hours=PREVIOUS_SECRET_HOURS))
        locked.save(update_fields=["secret", "previous_secrets", "updated_at"])
    endpoint.refresh_from_db()
    ends = [_utc(until) for until in endpoint.signing_until(now)]
    log.info(
        "webhook endpoint %s secret rotated by %s; the one it replaced signs too until %s UTC%s%s",
        name(endpoint),
        by,
        ends[0],
        f", older ones until {', '.join(ends[1:])} UTC" if ends[1:] else "",
        f"; the oldest, due to sign until {', '.join(map(_utc, stopped))} UTC, stopped now (at most "
        f"{MAX_PREVIOUS_SECRETS} previous secrets sign)"
        if stopped
        else "",
    )
    return secret


def _utc(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M}"


def delete(endpoint: WebhookEndpoint, *, by: str) -> None:
    """Delete the endpoint with its deliveries and their attempts: one DELETE each, where Django's cascade would
    first read every delivery (a week of a busy endpoint's log is millions of rows)."""
    described = name(endpoint)
    with transaction.atomic():
        WebhookAttempt.objects.filter(delivery__endpoint_id=endpoint.pk).delete()  # nothing refers to attempts
        deliveries = WebhookDelivery.objects.filter(endpoint_id=endpoint.pk)
        deliveries._raw_delete(deliveries.db)  # their attempts are gone: nothing else refers to them
        endpoint.delete()
    log.info("webhook endpoint %s deleted by %s", described, by)
