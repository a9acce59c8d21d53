"""Webhooks through a real worker (`manage.py worker`, tests/_workers.py) on PostgreSQL: committed changes reach a
receiver over a real socket, signed, in order per subject, with nothing lost while the receiver refuses some."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.db import connection, transaction
from standardwebhooks.webhooks import Webhook

from calls.models import WebhookDelivery, WebhookEndpoint
from calls.webhooks import outbox, signing
from tests import test_worker_faults as faults
from tests._receiver import Receiver, serve
from tests._workers import wait_for

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the task engine and its workers need PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]

real_queue = faults.real_queue  # fixtures: the queue in PostgreSQL, and workers on the test database
start_worker = faults.start_worker


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    yield from serve(settings)


def test_a_worker_delivers_every_committed_event_in_order_per_subject(start_worker, receiver):
    hook = WebhookEndpoint.objects.create(url=receiver.url, event_types=["contact.*"], secret=signing.new_secret())
    receiver.answers = [503, 503]  # the first two attempts fail: those deliveries are tried again 5 s later
    worker = start_worker("webhooks", env={"WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"})
    for round in range(5):
        for contact in (1, 2, 3):
            outbox.emit("contact.updated", f"contact:{contact}", {"id": contact, "round": round})
    outbox.emit("call.placed", "call:1", {"id": 1})  # not for this endpoint
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox.emit("contact.deleted", "contact:9", {"id": 9})
        raise RuntimeError("rolled back: its event is never sent")

    delivered = WebhookDelivery.objects.filter(endpoint=hook, status="delivered")
    wait_for(lambda: delivered.count() == 15, "15 deliveries", timeout=60, logs=worker.log)

    rounds: dict[int, list[int]] = {}
    for got in receiver.received:
        data = Webhook(hook.secret).verify(got.body, got.headers)["data"]
        rounds.setdefault(data["id"], []).append(data["round"])
    for subject, received in rounds.items():
        assert received == sorted(received), f"contact:{subject} out of order: {received}"
        assert sorted(set(received)) == [0, 1, 2, 3, 4]  # every one, at least once (a refused one came again)
    assert len(receiver.received) == 17  # the 15, and the two refused attempts sent again
    assert {json.loads(r.body)["type"] for r in receiver.received} == {"contact.updated"}
