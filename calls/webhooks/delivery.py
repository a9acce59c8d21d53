"""Sending the outbox's events (calls/webhooks/outbox.py) to the endpoints, for the jobs in calls/tasks.py.

- `dispatch`: new events become one WebhookDelivery per enabled endpoint whose patterns match (in bulk).
- `deliver(endpoint_id)`: sends an endpoint's due deliveries in id order, at most one in flight per subject (an
  earlier pending delivery of the same call or contact holds the later ones back), several subjects at once. Each
  attempt resolves the host again and connects to an address `safety.safe_addresses` allows (a DNS rebind after
  the URL was checked cannot reach the inside), follows no redirect, waits TIMEOUT and reads at most MAX_BODY.
  2xx is delivered; 410 disables the endpoint at once; anything else is tried again after RETRY_AFTER, then given
  up. An endpoint that has failed for DISABLE_AFTER is disabled, saying why; a success ends its run of failures.
- `send_again`, `replay_since`, `send_test_event`: the delivery log page's buttons.

The clock is `clock` (tests replace it: nothing here waits on the wall clock)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from calls.calling.common import _db, log
from calls.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from calls.webhooks import TEST_EVENT_TYPE, outbox, safety, signing

RETRY_AFTER = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_AFTER) + 1  # the first try, then one after each wait: 27 h 35 min in all
DISABLE_AFTER = timedelta(hours=24)
TIMEOUT = 10.0  # seconds, for connecting and for each read
MAX_BODY = 64 * 1024  # bytes of an answer read, at most
SNIPPET = 2048  # characters of an answer kept in the log
CONCURRENCY = 10  # deliveries of one endpoint in flight at once (each of another subject)
BATCH = 100
DISPATCH_BATCH = 1000
GONE_REASON = "410 Gone from the receiver"

Pending = WebhookDelivery.Status.PENDING

clock: Callable[[], datetime] = timezone.now


# --- Fan-out ------------------------------------------------------------------------------------------------------


def dispatch(*, limit: int = DISPATCH_BATCH) -> tuple[int, set[int]]:
    """Fan up to `limit` new events out into deliveries; returns how many events, and the endpoints given some.
    Several runs at once each take their own events (SKIP LOCKED)."""
    now = clock()
    with transaction.atomic():
        events = list(
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .filter(dispatched_at__isnull=True)
            .order_by("id")
            .only("id", "type", "subject")[:limit]
        )
        if not events:
            return 0, set()
        endpoints = list(WebhookEndpoint.objects.filter(enabled=True).only("id", "event_types"))
        rows = [
            WebhookDelivery(event=e, endpoint=p, subject=e.subject, next_attempt_at=now, created_at=now)
            for e in events
            for p in endpoints
            if p.matches(e.type)
        ]
        WebhookDelivery.objects.bulk_create(rows, batch_size=1000)
        WebhookEvent.objects.filter(id__in=[e.id for e in events]).update(dispatched_at=now)
    return len(events), {row.endpoint_id for row in rows}


def dispatch_all() -> set[int]:
    """Dispatch until no new event waits; returns the endpoints given deliveries."""
    endpoints: set[int] = set()
    while True:
        count, found = dispatch()
        endpoints |= found
        if count < DISPATCH_BATCH:
            return endpoints


def endpoints_due(*, now: datetime | None = None) -> list[int]:
    """Endpoints with a pending delivery due now (the retry job queues their delivery)."""
    now = now or clock()
    return sorted(
        set(
            WebhookDelivery.objects.filter(status=Pending, next_attempt_at__lte=now)
            .filter(Q(endpoint__enabled=True) | Q(event__type=TEST_EVENT_TYPE))
            .values_list("endpoint_id", flat=True)
            .distinct()[:1000]
        )
    )


# --- Sending ------------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    status_code: int | None = None
    duration_ms: int = 0
    snippet: str = ""
    error: str = ""
    received: int = 0  # bytes of the answer read

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _due(endpoint_id: int, now: datetime, limit: int) -> tuple[WebhookEndpoint | None, list[WebhookDelivery]]:
    """The endpoint and its deliveries to send now: due, and each the first pending one of its subject."""
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        return None, []
    earlier = WebhookDelivery.objects.filter(
        endpoint_id=endpoint_id, subject=OuterRef("subject"), status=Pending, id__lt=OuterRef("id")
    )
    due = WebhookDelivery.objects.filter(endpoint_id=endpoint_id, status=Pending, next_attempt_at__lte=now).filter(
        ~Exists(earlier)
    )
    if not endpoint.enabled:
        due = due.filter(event__type=TEST_EVENT_TYPE)  # a paused endpoint may still be sent a test
    return endpoint, list(due.select_related("event").order_by("id")[:limit])


def body_of(event: WebhookEvent) -> bytes:
    return json.dumps(event.payload, separators=(",", ":"), ensure_ascii=False).encode()


async def send(client: httpx.AsyncClient, endpoint: WebhookEndpoint, event: WebhookEvent, *, at: datetime) -> Outcome:
    """One attempt: resolve, check the addresses, POST to the first allowed one, read at most MAX_BODY."""
    began = time.monotonic()
    outcome = Outcome()
    try:
        url = httpx.URL(endpoint.url)
        host = url.host
        port = url.port or (443 if url.scheme == "https" else 80)
        addresses = await asyncio.to_thread(safety.safe_addresses, host, port)
        body = body_of(event)
        headers = signing.headers(endpoint, event.msg_id, at, body) | {"host": url.netloc.decode("ascii")}
        request = client.build_request(
            "POST", url.copy_with(host=addresses[0]), content=body, headers=headers, extensions={"sni_hostname": host}
        )
        response = await client.send(request, stream=True, follow_redirects=False)
        try:
            outcome.status_code = response.status_code
            chunks = []
            async for chunk in response.aiter_raw():
                chunks.append(chunk)
                outcome.received += len(chunk)
                if outcome.received >= MAX_BODY:
                    break
            text = b"".join(chunks)[:MAX_BODY].decode("utf-8", errors="replace")
            outcome.snippet = text[:SNIPPET]
        finally:
            await response.aclose()
    except ValidationError as exc:  # safety.Unsafe (an address refused), or a host that does not resolve
        outcome.error = f"{'refused: ' if isinstance(exc, safety.Unsafe) else ''}{'; '.join(exc.messages)}"
    except httpx.TimeoutException:
        outcome.error = f"no answer within {TIMEOUT:g} s"
    except httpx.HTTPError as exc:
        outcome.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except Exception as exc:  # whatever it is, it ends in the log, and the delivery is tried again
        log.exception("webhook %s to endpoint %s", event.msg_id, endpoint.pk)
        outcome.error = f"{type(exc).__name__}: {exc}"
    outcome.duration_ms = round((time.monotonic() - began) * 1000)
    return outcome


def record(endpoint: WebhookEndpoint, delivery: WebhookDelivery, outcome: Outcome, *, now: datetime) -> None:
    """Write an attempt and what follows from it: delivered, tried again later, given up; the endpoint's run of
    failures, or its end (410, or DISABLE_AFTER of failures)."""
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            at=now,
            status_code=outcome.status_code,
            duration_ms=outcome.duration_ms,
            response_snippet=outcome.snippet,
            error=outcome.error[:2000],
        )
        delivery.attempts += 1
        delivery.last_attempt_at = now
        fields = ["attempts", "last_attempt_at", "status", "next_attempt_at", "delivered_at"]
        if outcome.delivered:
            delivery.status, delivery.delivered_at = WebhookDelivery.Status.DELIVERED, now
        elif delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = WebhookDelivery.Status.FAILED
        else:
            delivery.next_attempt_at = now + RETRY_AFTER[delivery.attempts - 1]
        delivery.save(update_fields=fields)
        _endpoint_after(endpoint, outcome, now=now)


def _endpoint_after(endpoint: WebhookEndpoint, outcome: Outcome, *, now: datetime) -> None:
    locked = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint.pk).first()
    if locked is None:
        return
    if outcome.delivered:
        if locked.failing_since is not None:
            WebhookEndpoint.objects.filter(pk=locked.pk).update(failing_since=None)
        endpoint.failing_since = None
        return
    failing_since = locked.failing_since or now
    changes: dict[str, object] = {"failing_since": failing_since}
    if locked.enabled and outcome.status_code == 410:
        changes |= {"enabled": False, "disabled_at": now, "disabled_reason": GONE_REASON}
    elif locked.enabled and now - failing_since >= DISABLE_AFTER:
        last = outcome.error or f"HTTP {outcome.status_code}"
        changes |= {"enabled": False, "disabled_at": now, "disabled_reason": f"failed for 24 hours: {last}"}
    if changes.get("enabled") is False:
        log.warning("webhook endpoint %s disabled: %s", locked.pk, changes["disabled_reason"])
    WebhookEndpoint.objects.filter(pk=locked.pk).update(**changes)
    for name, value in changes.items():
        setattr(endpoint, name, value)


async def deliver(endpoint_id: int, *, transport: httpx.AsyncBaseTransport | None = None) -> int:
    """Send the endpoint's due deliveries until none is due; returns how many attempts were made."""
    attempts = 0
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(
        timeout=TIMEOUT, follow_redirects=False, limits=limits, transport=transport, trust_env=False
    ) as client:
        gate = asyncio.Semaphore(CONCURRENCY)
        while True:
            endpoint, due = await _db(_due)(endpoint_id, clock(), BATCH)
            if endpoint is None or not due:
                return attempts

            async def one(delivery: WebhookDelivery, endpoint: WebhookEndpoint = endpoint) -> None:
                async with gate:
                    at = clock()
                    outcome = await send(client, endpoint, delivery.event, at=at)
                    await _db(record)(endpoint, delivery, outcome, now=clock())

            await asyncio.gather(*(one(d) for d in due))
            attempts += len(due)


# --- The delivery log's buttons -----------------------------------------------------------------------------------


def _queue(endpoint_id: int) -> None:
    from calls import tasks

    transaction.on_commit(lambda: tasks.enqueue_delivery(endpoint_id))


def send_again(delivery: WebhookDelivery) -> None:
    """Send one delivery again now, with a fresh schedule of retries (delivered or given up, it is pending again)."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=Pending, attempts=0, next_attempt_at=clock())
    delivery.refresh_from_db()
    _queue(delivery.endpoint_id)


def replay_since(endpoint: WebhookEndpoint, since: datetime) -> int:
    """Send the endpoint every event since `since` that its patterns match, again, in their order; returns how many."""
    now, made = clock(), 0
    events = WebhookEvent.objects.filter(created_at__gte=since).exclude(type=TEST_EVENT_TYPE).order_by("id")
    batch: list[WebhookDelivery] = []
    for event in events.only("id", "type", "subject").iterator(chunk_size=2000):
        if endpoint.matches(event.type):
            batch.append(
                WebhookDelivery(
                    event=event, endpoint=endpoint, subject=event.subject, next_attempt_at=now, created_at=now
                )
            )
        if len(batch) >= 1000:
            made += len(WebhookDelivery.objects.bulk_create(batch))
            batch = []
    made += len(WebhookDelivery.objects.bulk_create(batch))
    if made:
        _queue(endpoint.pk)
    return made


def send_test_event(endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A "webhook.test" event for this endpoint alone (sent even while it is paused)."""
    now = clock()
    event = outbox.event(
        TEST_EVENT_TYPE,
        f"test:{endpoint.pk}",
        {"endpoint": endpoint.pk, "message": "A test event from vccweb: your endpoint receives webhooks."},
        at=now,
    )
    event.dispatched_at = now
    event.save(force_insert=True)
    delivery = WebhookDelivery.objects.create(
        event=event, endpoint=endpoint, subject=event.subject, next_attempt_at=now, created_at=now
    )
    _queue(endpoint.pk)
    return delivery


# --- Upkeep -------------------------------------------------------------------------------------------------------


def prune(*, now: datetime | None = None, batch: int = 10_000) -> int:
    """Delete events (with their deliveries) and attempts older than WEBHOOK_KEEP_DAYS, a batch at a time."""
    cutoff = (now or clock()) - timedelta(days=settings.WEBHOOK_KEEP_DAYS)
    deleted = 0
    for model, field in ((WebhookAttempt, "at"), (WebhookEvent, "created_at")):
        while True:
            pks = list(model.objects.filter(**{f"{field}__lt": cutoff}).values_list("pk", flat=True)[:batch])
            if not pks:
                break
            deleted += model.objects.filter(pk__in=pks).delete()[1].get(model._meta.label, 0)
    return deleted
