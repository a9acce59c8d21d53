"""Outgoing webhooks (issue 21): the endpoints other systems gave us, the outbox of events written in the same
transaction as the change they describe, one delivery per (event, endpoint), and each attempt at sending it.

calls/webhooks/outbox.py writes the events, calls/webhooks/delivery.py and the jobs in calls/tasks.py send them."""

from __future__ import annotations

from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import TypedDict
from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.utils import timezone

# Previous secrets that sign at once beside the current one: a rotation beyond stops the oldest (the page says so
# first), so a delivery's webhook-signature header holds at most six signatures, however often admins rotate.
MAX_PREVIOUS_SECRETS = 5


class PreviousSecret(TypedDict):
    """A secret a rotation replaced, and when it stops signing (ISO 8601, UTC)."""

    secret: str
    until: str


class WebhookEndpoint(models.Model):
    """A URL told of the events its patterns match ("call.*", "contact.created", "*"), signed with its secret."""

    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=255, blank=True)
    event_types = models.JSONField(default=list, help_text='Patterns of event types: "call.*", "contact.created", "*".')
    enabled = models.BooleanField(default=True)
    secret = models.CharField(max_length=100)
    # The secrets rotations replaced, each signing beside the current one until its own end, newest first
    # (calls/webhooks/endpoints.py rotate). A list on the row rather than a table: every delivery reads the row
    # anyway, a rotation rewrites it under the row's lock, and the audit trigger masks the column whole.
    previous_secrets = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    failing_since = models.DateTimeField(
        null=True, blank=True, help_text="The first failure of the current run of failures."
    )
    # While it fails as a whole (a pass where every attempt failed), only one delivery, a probe, is tried, at
    # retry_at; `failures` counts the failed passes of the run, which pick the wait (calls/webhooks/delivery.py).
    retry_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0)
    disabled_reason = models.TextField(blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "webhook endpoint"

    def __str__(self) -> str:
        # Messages (kept in a cookie until shown), page titles and the browser's history name it this way too.
        return self.shown_name

    @property
    def shown_name(self) -> str:
        """How pages and messages name it: its description, else its host only (a receiver's URL often holds its
        credential, in the path as Slack's do, or in the query). The admins' own pages show the URL where it is
        asked for."""
        return self.description or f"{urlsplit(self.url).hostname or '?'} (#{self.pk})"

    def matches(self, event_type: str) -> bool:
        return any(fnmatchcase(event_type, pattern) for pattern in self.event_types or [])

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets that sign now: the current one, then each previous one until its end, newest first."""
        return [self.secret, *(secret for secret, _ in self.previous_signing(now))]

    def previous_signing(self, now: datetime) -> list[tuple[str, datetime]]:
        """The previous secrets that sign now, with their ends, newest (the latest end) first; at most
        MAX_PREVIOUS_SECRETS, whatever the row holds."""
        found = []
        for previous in self.previous_secrets or []:
            until = datetime.fromisoformat(previous["until"])
            if now < until:
                found.append((previous["secret"], until))
        return sorted(found, key=lambda found: found[1], reverse=True)[:MAX_PREVIOUS_SECRETS]

    def signing_until(self, now: datetime) -> list[datetime]:
        """When each previous secret that signs now stops, newest first: what pages and the log show of them."""
        return [until for _, until in self.previous_signing(now)]

    def stopped_by_rotation(self, now: datetime) -> list[datetime]:
        """The ends of the previous secrets a rotation now would stop at once, to keep MAX_PREVIOUS_SECRETS: the
        oldest, when that many sign already."""
        return self.signing_until(now)[MAX_PREVIOUS_SECRETS - 1 :]

    def rotated(self, secret: str, *, now: datetime, until: datetime) -> list[datetime]:
        """Make secret the current one; the one it replaces signs until `until`, those that signed still do, until
        their own ends, but for the oldest beyond MAX_PREVIOUS_SECRETS; the ones that ended are dropped. Return the
        ends of those stopped early. Saving is the caller's (under the row's lock)."""
        signing = [(self.secret, until), *self.previous_signing(now)]
        kept, stopped = signing[:MAX_PREVIOUS_SECRETS], signing[MAX_PREVIOUS_SECRETS:]
        previous: list[PreviousSecret] = [{"secret": s, "until": end.astimezone(UTC).isoformat()} for s, end in kept]
        self.previous_secrets = previous
        self.secret = secret
        return [end for _, end in stopped]


class WebhookEvent(models.Model):
    """The outbox: one row per change, written in the transaction that makes it; `msg_id` is the webhook-id."""

    id = models.BigAutoField(primary_key=True)
    msg_id = models.CharField(max_length=64, unique=True)
    type = models.CharField(max_length=64)
    subject = models.CharField(max_length=64, help_text='"call:123", "contact:45": its deliveries keep their order.')
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # When the dispatch job fanned it out into deliveries; empty until then (calls/webhooks/delivery.py).
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["id"], condition=models.Q(dispatched_at__isnull=True), name="webhook_event_new_idx")
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.subject} ({self.msg_id})"


class WebhookDelivery(models.Model):
    """One event to send to one endpoint, until it is delivered or given up."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"  # given up after the last retry
        CANCELLED = "cancelled"

    id = models.BigAutoField(primary_key=True)
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    subject = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # The first failure of its current run of failures: 24 hours after it, one more failure gives it up.
    failing_since = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["endpoint", "subject"], name="webhook_delivery_subject_idx"),
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due_idx"),
            models.Index(fields=["endpoint", "status", "id"], name="webhook_delivery_queue_idx"),
            # An endpoint's backlog in the order a pass reads it (calls/webhooks/delivery.py _sendable: by subject,
            # then id), the deliveries already sent left out.
            models.Index(
                fields=["endpoint", "subject", "id"],
                name="webhook_delivery_pending_idx",
                condition=models.Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} to {self.endpoint_id}: {self.status}"


class WebhookAttempt(models.Model):
    """One try at sending a delivery: what the receiver answered, or why nothing came back."""

    id = models.BigAutoField(primary_key=True)
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_rows")
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_snippet = models.TextField(blank=True, help_text="The first 2 KB of the answer.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["delivery", "at"], name="webhook_attempt_delivery_idx")]

    def __str__(self) -> str:
        return f"{self.delivery_id} at {self.at:%Y-%m-%d %H:%M:%S}: {self.status_code or self.error[:40]}"
