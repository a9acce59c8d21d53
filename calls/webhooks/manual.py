"""The delivery log page's buttons: send one delivery again, replay an endpoint's events since a moment, send a test
event. Each queues the endpoint's next pass (calls/webhooks/delivery.py) once its transaction commits; the clock is
the engine's (`delivery.clock`, which tests replace)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection, transaction

from calls.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from calls.webhooks import TEST_EVENT_TYPE, outbox
from calls.webhooks import delivery as engine


def _queue(endpoint_id: int) -> None:
    from calls import tasks

    transaction.on_commit(lambda: tasks.enqueue_delivery(endpoint_id))


def send_again(delivery: WebhookDelivery) -> None:
    """Send one delivery again now, with a fresh schedule of retries (delivered or given up, it is pending again)."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=engine.Pending, attempts=0, next_attempt_at=engine.clock(), failing_since=None
    )
    delivery.refresh_from_db()
    _queue(delivery.endpoint_id)


REPLAY_BATCH = 10_000  # events read a statement (and a transaction) by a replay

# The events since a moment, from the last one done on, that the endpoint's patterns match (as delivery._DISPATCH_SQL):
# each becomes a delivery again; returns the last event read and how many deliveries were made.
_REPLAY_SQL = """
WITH chunk AS (
    SELECT id, type, subject FROM {event}
    WHERE created_at >= %(since)s AND id > %(after)s AND type <> %(test)s
    ORDER BY id LIMIT %(limit)s
), made AS (
    INSERT INTO {delivery} (event_id, endpoint_id, subject, status, attempts, next_attempt_at, created_at)
    SELECT chunk.id, p.id, chunk.subject, %(pending)s, 0, %(now)s, %(now)s
    FROM chunk JOIN {endpoint} p ON p.id = %(endpoint)s AND EXISTS (
        SELECT 1 FROM jsonb_array_elements_text(p.event_types) AS pattern
        WHERE chunk.type LIKE replace(replace(pattern, '_', '\\_'), '*', '%%')
    )
    ORDER BY chunk.id
    RETURNING 1
)
SELECT (SELECT max(id) FROM chunk), (SELECT count(*) FROM made)
"""


def replay_since(endpoint: WebhookEndpoint, since: datetime) -> int:
    """Send the endpoint every event since `since` that its patterns match, again, in their order; returns how many.
    On PostgreSQL in statements of REPLAY_BATCH events, each its own transaction (a day of a busy centre's events
    is millions): run by the `replay_webhooks` job, not in a request."""
    if connection.vendor != "postgresql":
        return _replay_orm(endpoint, since)
    sql = engine.with_tables(_REPLAY_SQL)
    made, after = 0, 0
    while True:
        params: dict[str, Any] = {
            "since": since,
            "after": after,
            "test": TEST_EVENT_TYPE,
            "limit": REPLAY_BATCH,
            "pending": engine.Pending.value,
            "now": engine.clock(),
            "endpoint": endpoint.pk,
        }
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
            last, count = cursor.fetchone()
            made += count
            if count:
                _queue(endpoint.pk)  # its first deliveries go while the rest are written
        if last is None:
            return made
        after = last


def _replay_orm(endpoint: WebhookEndpoint, since: datetime) -> int:
    """replay_since, off PostgreSQL (SQLite: a quick look, no worker)."""
    now, made = engine.clock(), 0
    events = WebhookEvent.objects.filter(created_at__gte=since).exclude(type=TEST_EVENT_TYPE).order_by("id")
    batch: list[WebhookDelivery] = []
    for event in events.only("id", "type", "subject").iterator(chunk_size=2000):
        if endpoint.matches(event.type):
            batch.append(
                WebhookDelivery(
                    event=event, endpoint=endpoint, subject=event.subject, next_attempt_at=now, created_at=now
                )
            )
    made += len(WebhookDelivery.objects.bulk_create(batch, batch_size=1000))
    if made:
        _queue(endpoint.pk)
    return made


def send_test_event(endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A "webhook.test" event for this endpoint alone (sent even while it is paused)."""
    now = engine.clock()
    event = outbox.event(
        TEST_EVENT_TYPE,
        f"test:{endpoint.pk}",
        {"endpoint": endpoint.pk, "message": "A test event from vccweb: your endpoint receives webhooks."},
        at=now,
    ).row()
    event.dispatched_at = now
    event.save(force_insert=True)
    delivery = WebhookDelivery.objects.create(
        event=event, endpoint=endpoint, subject=event.subject, next_attempt_at=now, created_at=now
    )
    _queue(endpoint.pk)
    return delivery
