"""The outbox of outgoing webhooks: each change writes its event (WebhookEvent) in the transaction that makes it, so a
change that rolls back sends nothing and one that commits is always sent. Writing is all a change does: the
`dispatch_webhooks` job, watching for new events, fans them out to the endpoints (calls/tasks.py).

Without any endpoint nothing is written: whether one exists is asked at most every ENDPOINTS_TTL seconds per process
(an endpoint saved in this process is known at once), so a click costs nothing more until webhooks are set up.
An endpoint added in another process is seen by this one within ENDPOINTS_TTL."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from ninja.responses import NinjaJSONEncoder

from calls.models import WebhookEndpoint, WebhookEvent

ENDPOINTS_TTL = 5.0  # seconds a process trusts what it last learnt about whether any endpoint exists

_known: tuple[float, bool] | None = None  # (when, whether an endpoint exists), this process's


def wanted() -> bool:
    """Whether events are worth writing: some endpoint exists (enabled or not: a paused one may replay them)."""
    global _known
    now = time.monotonic()
    if _known is None or now - _known[0] >= ENDPOINTS_TTL:
        _known = (now, WebhookEndpoint.objects.exists())
    return _known[1]


def forget() -> None:
    """Ask the database again at the next change (tests; an endpoint deleted)."""
    global _known
    _known = None


@receiver(post_save, sender=WebhookEndpoint, dispatch_uid="calls.webhooks.endpoint_saved")
def _endpoint_saved(**kwargs: object) -> None:
    global _known
    _known = (time.monotonic(), True)


@receiver(post_delete, sender=WebhookEndpoint, dispatch_uid="calls.webhooks.endpoint_deleted")
def _endpoint_deleted(**kwargs: object) -> None:
    forget()


def atomic() -> Any:
    """A transaction for a change and its events when events are written; nothing more otherwise (a click without
    webhooks keeps its autocommit statements). Joins the transaction already open, without a savepoint."""
    return transaction.atomic(savepoint=False) if wanted() else nullcontext()


def new_msg_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def payload(type: str, msg_id: str, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": type, "id": msg_id, "timestamp": at.isoformat().replace("+00:00", "Z"), "data": data}


@dataclass(slots=True)
class Event:
    """An event not yet written (emit_many writes several in one INSERT). Its payload may hold what the API's JSON
    writes for it (times): it is made JSON once, when written."""

    msg_id: str
    type: str
    subject: str
    payload: dict[str, Any]
    created_at: datetime

    def text(self) -> str:
        return json.dumps(self.payload, cls=NinjaJSONEncoder)

    def row(self) -> WebhookEvent:
        return WebhookEvent(
            msg_id=self.msg_id,
            type=self.type,
            subject=self.subject,
            payload=json.loads(self.text()),
            created_at=self.created_at,
        )


def event(type: str, subject: str, data: dict[str, Any], *, at: datetime | None = None) -> Event:
    at = at or timezone.now()
    msg_id = new_msg_id()
    return Event(msg_id, type, subject, payload(type, msg_id, at, data), at)


def emit(type: str, subject: str, data: dict[str, Any]) -> None:
    """Write one event in the current transaction (call it in the transaction that makes the change, after the
    change). Nothing is written when no endpoint exists."""
    if wanted():
        emit_many([event(type, subject, data)])


def emit_many(events: Iterable[Event]) -> int:
    """Write events in one INSERT (imports write theirs in bulk); returns how many."""
    rows = list(events)
    if not rows or not wanted():
        return 0
    if connection.vendor == "postgresql":
        for start in range(0, len(rows), INSERT_BATCH):
            _insert(rows[start : start + INSERT_BATCH])
    else:
        WebhookEvent.objects.bulk_create([row.row() for row in rows], batch_size=INSERT_BATCH)
    return len(rows)


INSERT_BATCH = 1000


def _insert(rows: list[Event]) -> None:
    """rows in one INSERT, written out: each click writes two events, and the ORM's save cost about 0.25 ms of CPU
    an event where this costs a tenth of it (bench/click_cost.py --endpoints 3 --alternate). The events are plain
    records, not models, and a call's payload is made JSON once, here: a model and the API's JSON made, read back and
    made again cost the click another 0.3 ms (a contact's is still made by `as_json` first: changes.contact_data)."""
    values = ", ".join(["(%s, %s, %s, %s::jsonb, %s)"] * len(rows))
    params: list[Any] = []
    for row in rows:
        params += [row.msg_id, row.type, row.subject, row.text(), row.created_at]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {connection.ops.quote_name(WebhookEvent._meta.db_table)} "
            f"(msg_id, type, subject, payload, created_at) VALUES {values}",
            params,
        )
