"""Delivering webhooks (calls/webhooks/delivery.py and its jobs) to a receiver over a real socket: signatures,
the retry schedule on an injected clock, order per subject, disabling, and the safety rules at delivery time."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.exceptions import ValidationError
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from calls import tasks
from calls.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from calls.webhooks import delivery, endpoints, manual, outbox, safety, signing
from tests._jobs import queued, run_jobs
from tests._receiver import Receiver, serve

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    yield from serve(settings)


class Clock:
    """The delivery's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = timezone.now().replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(delivery, "clock", clock)
    return clock


def endpoint(url: str, patterns: tuple[str, ...] = ("*",), **fields) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(url=url, event_types=list(patterns), secret=signing.new_secret(), **fields)


def emit(type: str = "contact.updated", subject: str = "contact:1", **data) -> WebhookEvent:
    outbox.emit(type, subject, data or {"id": 1})
    return WebhookEvent.objects.latest("id")


def deliver(hook: WebhookEndpoint) -> int:
    """Fan out what was emitted, then run the endpoint's delivery (as the jobs do)."""
    delivery.dispatch_all()
    return async_to_sync(delivery.deliver)(hook.pk)


def statuses(hook: WebhookEndpoint) -> list[tuple[str, int]]:
    return list(hook.deliveries.order_by("id").values_list("status", "attempts"))


def test_a_delivery_is_signed_so_the_standard_webhooks_library_verifies_it(receiver, clock):
    hook = endpoint(receiver.url)
    event = emit("contact.created", "contact:7", id=7, name="Ada")

    assert deliver(hook) == 1

    (got,) = receiver.received
    payload = Webhook(hook.secret).verify(got.body, got.headers)
    assert payload == {
        "type": "contact.created",
        "id": event.msg_id,
        "timestamp": payload["timestamp"],
        "data": {
            "id": 7,
            "name": "Ada",
        },
    }
    assert got.headers["webhook-id"] == event.msg_id
    assert got.headers["user-agent"] == "vccweb-webhooks/1"
    assert got.headers["host"] == f"127.0.0.1:{receiver.port}"
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(got.body, got.headers)
    assert statuses(hook) == [("delivered", 1)]
    (attempt,) = WebhookAttempt.objects.all()
    assert (attempt.status_code, attempt.response_snippet, attempt.error) == (204, "", "")


def test_the_workers_passes_keep_their_connections_for_the_next_and_a_new_host_gets_a_new_client(receiver, clock):
    """The worker's passes (keep=True, one event loop) reuse the connection the last pass left open; an endpoint
    moved to another host gets a client of its own, and the old one is closed; a deleted one's is closed too."""
    from asgiref.sync import sync_to_async

    hook = endpoint(receiver.url)

    async def passes() -> list[int]:
        attempts = []
        for n in range(3):
            await sync_to_async(emit)("contact.updated", f"contact:{n}", id=n)
            await sync_to_async(delivery.dispatch_all)()
            attempts.append((await delivery.deliver_pass(hook.pk, keep=True)).attempts)
        kept = delivery._KEPT[asyncio.get_running_loop()][hook.pk][1]
        await sync_to_async(WebhookEndpoint.objects.filter(pk=hook.pk).update)(
            url=receiver.url.replace("127.0.0.1", "localhost")
        )
        assert await delivery._kept_client(await sync_to_async(WebhookEndpoint.objects.get)(pk=hook.pk)) is not kept
        assert kept.is_closed  # the old host's client, and its connection, are let go
        moved = delivery._KEPT[asyncio.get_running_loop()][hook.pk][1]
        await sync_to_async(WebhookEndpoint.objects.filter(pk=hook.pk).delete)()
        assert (await delivery.deliver_pass(hook.pk, keep=True)).attempts == 0
        assert moved.is_closed and hook.pk not in delivery._KEPT[asyncio.get_running_loop()]  # deleted: let go
        return attempts

    assert async_to_sync(passes)() == [1, 1, 1]
    assert len({got.peer for got in receiver.received}) == 1  # one connection for the three passes


def test_after_a_rotation_both_secrets_sign_for_a_day(receiver, clock):
    old = signing.new_secret()
    until = (clock.now + timedelta(hours=24)).isoformat()
    hook = endpoint(receiver.url, previous_secrets=[{"secret": old, "until": until}])
    emit()

    deliver(hook)

    (got,) = receiver.received
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    Webhook(hook.secret).verify(got.body, got.headers)
    Webhook(old).verify(got.body, got.headers)


def signed_with(got, *secrets: str) -> list[str]:
    """Which of the secrets signed what the receiver got, in the header's order (checked here, not with verify(),
    whose 5 minutes' tolerance is the wall clock's, which the test's clock leaves behind)."""
    at = datetime.fromtimestamp(int(got.headers["webhook-timestamp"]), tz=UTC)
    signatures = got.headers["webhook-signature"].split(" ")
    by = {Webhook(secret).sign(got.headers["webhook-id"], at, got.body): secret for secret in secrets}
    return [by[signature] for signature in signatures if signature in by]


def test_secrets_replaced_within_a_day_each_sign_until_their_own_end(receiver, clock):
    """Rotated twice within 24 hours, the three secrets sign; past the first rotation's 24 hours, the newer two."""
    hook = endpoint(receiver.url)
    original = hook.secret
    endpoints.rotate(hook, by="test", now=clock.now)
    first = hook.secret
    clock.advance(timedelta(hours=2))
    endpoints.rotate(hook, by="test", now=clock.now)
    secrets = (hook.secret, first, original)

    clock.advance(timedelta(hours=1))
    emit()
    deliver(hook)
    assert signed_with(receiver.received[-1], *secrets) == [hook.secret, first, original]

    clock.advance(timedelta(hours=21))  # 24 hours after the first rotation: the original's end
    emit()
    deliver(hook)
    assert signed_with(receiver.received[-1], *secrets) == [hook.secret, first]
    assert len(receiver.received[-1].headers["webhook-signature"].split(" ")) == 2

    clock.advance(timedelta(hours=2))  # and the first's
    emit()
    deliver(hook)
    assert signed_with(receiver.received[-1], *secrets) == [hook.secret]
    assert receiver.received[-1].headers["webhook-signature"].count("v1,") == 1
    assert statuses(hook) == [("delivered", 1)] * 3


def test_a_delivery_refused_while_others_go_is_retried_on_its_schedule_then_given_up(receiver, clock):
    def refuse_contact_1(handler) -> None:  # the receiver takes every event but contact 1's
        with receiver.lock:
            refused = json.loads(receiver.received[-1].body)["data"]["id"] == 1
        handler.send_response(500 if refused else 204)
        handler.send_header("content-length", "0")
        handler.end_headers()

    receiver.otherwise = refuse_contact_1
    hook = endpoint(receiver.url)
    emit(id=1)
    emit(subject="contact:0", id=0)
    deliver(hook)
    waits = []
    for n in range(delivery.MAX_ATTEMPTS - 1):
        pending = WebhookDelivery.objects.get(status="pending")
        wait = pending.next_attempt_at - pending.last_attempt_at
        waits.append(wait)
        clock.advance(wait - timedelta(seconds=1))
        assert async_to_sync(delivery.deliver)(hook.pk) == 0  # not due yet
        assert delivery.endpoints_due(now=clock.now) == []
        clock.advance(timedelta(seconds=1))
        assert delivery.endpoints_due(now=clock.now) == [hook.pk]
        emit(subject=f"contact:{100 + n}", id=100 + n)  # others go meanwhile: it fails on its own
        assert deliver(hook) == 2

    assert waits == list(delivery.RETRY_AFTER)  # 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h
    refused = hook.deliveries.get(subject="contact:1")
    assert (refused.status, refused.attempts) == ("failed", 8)
    assert len({r.headers["webhook-id"] for r in receiver.received if json.loads(r.body)["data"]["id"] == 1}) == 1
    hook.refresh_from_db()
    assert not hook.enabled  # given up, naming it
    assert hook.disabled_reason.startswith("contact.updated of contact:1 (msg_")
    assert hook.disabled_reason.endswith("failed for 24 hours: HTTP 500")


def test_an_endpoint_failing_for_24_hours_is_disabled_and_a_success_ends_a_run_of_failures(receiver, clock):
    hook = endpoint(receiver.url)
    receiver.answers = [503]
    emit(subject="contact:1")
    deliver(hook)
    hook.refresh_from_db()
    assert hook.failing_since == clock.now and hook.enabled

    clock.advance(timedelta(seconds=5))
    deliver(hook)  # 204
    hook.refresh_from_db()
    assert hook.failing_since is None

    receiver.otherwise = 502
    emit(subject="contact:2")
    deliver(hook)
    started = clock.now
    clock.advance(timedelta(hours=23, minutes=59))
    emit(subject="contact:3")
    deliver(hook)
    hook.refresh_from_db()
    assert hook.enabled and hook.failing_since == started
    clock.advance(timedelta(minutes=1))
    emit(subject="contact:4")
    deliver(hook)

    hook.refresh_from_db()
    assert not hook.enabled
    assert hook.disabled_at == clock.now
    assert hook.disabled_reason == "failed for 24 hours: HTTP 502"
    emit(subject="contact:5")
    delivery.dispatch_all()
    received = len(receiver.received)
    deliver(hook)
    waiting = WebhookDelivery.objects.get(event__subject="contact:5")
    assert waiting.status == "pending" and waiting.attempts == 0  # disabled: it waits, unsent
    assert len(receiver.received) == received

    receiver.otherwise = 204
    endpoints.resume(hook, by="ada", now=clock.now)
    deliver(hook)
    # Resumed: everything that waited goes at once, each subject in order (no back-off step to wait out).
    assert set(WebhookDelivery.objects.filter(endpoint=hook).values_list("status", flat=True)) == {"delivered"}


def test_410_disables_the_endpoint_at_once(receiver, clock):
    receiver.otherwise = 410
    hook = endpoint(receiver.url)
    emit(subject="contact:1")
    emit(subject="contact:2")
    emit(subject="contact:3")
    delivery.CONCURRENCY, was = 1, delivery.CONCURRENCY

    try:
        deliver(hook)
    finally:
        delivery.CONCURRENCY = was

    hook.refresh_from_db()
    assert not hook.enabled
    assert hook.disabled_reason == "410 Gone from the receiver"
    assert hook.disabled_at == clock.now
    clock.advance(timedelta(days=1))
    assert async_to_sync(delivery.deliver)(hook.pk) == 0  # nothing more is sent to it
    assert delivery.endpoints_due(now=clock.now) == []


def test_order_per_subject_holds_when_an_earlier_delivery_fails(receiver, clock):
    """call:1's first event fails: its second waits behind it; call:2's goes meanwhile."""
    hook = endpoint(receiver.url)
    first = emit("call.requested", "call:1")
    second = emit("call.placed", "call:1")
    other = emit("call.requested", "call:2")
    refused: list[str] = []

    def answer(handler) -> None:
        """500 to call:1's first event, once (not to whichever request comes first: call:2's may), 204 to the rest."""
        status = 204
        if handler.headers["webhook-id"] == first.msg_id and not refused:
            refused.append(first.msg_id)
            status = 500
        handler.send_response(status)
        handler.send_header("content-length", "0")
        handler.end_headers()

    receiver.otherwise = answer

    deliver(hook)

    # call:1 and call:2 go side by side: the engine keeps an order within a subject only, not across subjects.
    assert sorted(r.headers["webhook-id"] for r in receiver.received) == sorted([first.msg_id, other.msg_id])
    clock.advance(timedelta(seconds=5))
    deliver(hook)
    assert [r.headers["webhook-id"] for r in receiver.received][2:] == [first.msg_id, second.msg_id]
    assert statuses(hook) == [("delivered", 2), ("delivered", 1), ("delivered", 1)]


def test_a_host_resolving_to_loopback_is_refused_at_delivery(receiver, clock, monkeypatch):
    """The name was public when the endpoint was saved; now it resolves to 127.0.0.1 (a DNS rebind)."""
    hook = endpoint(f"https://hooks.example.com:{receiver.port}/hooks")
    monkeypatch.setattr(safety, "resolve", lambda host, port: ["127.0.0.1"])
    emit()

    deliver(hook)

    assert receiver.received == []
    (attempt,) = WebhookAttempt.objects.all()
    assert attempt.status_code is None
    assert "resolves to 127.0.0.1, a loopback address" in attempt.error
    assert statuses(hook) == [("pending", 1)]


def test_metadata_addresses_are_refused_even_for_an_allowed_host(clock, monkeypatch, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["hooks.example.com"]
    hook = endpoint("http://hooks.example.com/hooks")
    monkeypatch.setattr(safety, "resolve", lambda host, port: ["169.254.169.254"])
    emit()

    deliver(hook)

    assert "a cloud metadata address" in WebhookAttempt.objects.get().error


def test_the_delivery_connects_to_the_checked_address_with_the_name_as_host(receiver, clock, monkeypatch, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["hooks.internal"]
    monkeypatch.setattr(safety, "resolve", lambda host, port: ["127.0.0.1"])
    hook = endpoint(f"http://hooks.internal:{receiver.port}/in")
    emit()

    deliver(hook)

    (got,) = receiver.received
    assert got.headers["host"] == f"hooks.internal:{receiver.port}"
    assert got.path == "/in"


def test_an_allowed_host_with_an_international_name_is_delivered_to(clock, monkeypatch, settings):
    """Saved (and allowed) as its ASCII name, the host is checked, resolved and named by that name at delivery too."""
    settings.WEBHOOK_ALLOWED_HOSTS = ["xn--bcher-kva.example"]
    looked_up = []

    def inside(host: str, port: int) -> list[str]:
        looked_up.append(host)
        return ["10.0.0.5"]

    monkeypatch.setattr(safety, "resolve", inside)
    url = safety.check_url("https://bücher.example/h")
    assert url == "https://xn--bcher-kva.example/h"
    hook = endpoint(url)
    emit()
    sent: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204, stream=httpx.ByteStream(b""))  # a stream, as send() reads the answer from one

    delivery.dispatch_all()
    async_to_sync(delivery.deliver)(hook.pk, transport=httpx.MockTransport(receive))

    assert WebhookAttempt.objects.get().error == ""
    assert statuses(hook) == [("delivered", 1)]
    (request,) = sent
    assert str(request.url) == "https://10.0.0.5/h"
    assert request.headers["host"] == "xn--bcher-kva.example"
    assert request.extensions["sni_hostname"] == "xn--bcher-kva.example"
    assert looked_up == ["xn--bcher-kva.example", "xn--bcher-kva.example"]


def test_no_redirect_is_followed(receiver, clock):
    def moved(handler) -> None:
        handler.send_response(307)
        handler.send_header("location", f"http://127.0.0.1:{receiver.port}/elsewhere")
        handler.send_header("content-length", "0")
        handler.end_headers()

    receiver.answers = [moved]
    hook = endpoint(receiver.url)
    emit()

    deliver(hook)

    assert [r.path for r in receiver.received] == ["/hooks"]
    assert WebhookAttempt.objects.get().status_code == 307
    assert statuses(hook) == [("pending", 1)]  # tried again later, at the URL given


def test_an_endless_answer_is_read_up_to_64_kb(receiver, clock, monkeypatch):
    sent = []

    def endless(handler) -> None:
        handler.send_response(200)
        handler.send_header("content-type", "text/plain")
        handler.end_headers()  # no length: the body goes on until the connection closes
        try:
            for _ in range(100_000):  # 1.6 GB if it were all read
                handler.wfile.write(b"x" * 16384)
                sent.append(1)
        except OSError:
            pass  # the engine hung up

    results = []
    real_send = delivery.send

    async def watched(*args, **kwargs):
        outcome = await real_send(*args, **kwargs)
        results.append(outcome)
        return outcome

    monkeypatch.setattr(delivery, "send", watched)
    receiver.answers = [endless]
    hook = endpoint(receiver.url)
    emit()

    deliver(hook)

    (outcome,) = results
    assert delivery.MAX_BODY <= outcome.received < delivery.MAX_BODY + 70_000
    assert statuses(hook) == [("delivered", 1)]
    assert WebhookAttempt.objects.get().response_snippet == "x" * delivery.SNIPPET


def test_an_answer_that_trickles_is_cut_off_at_the_timeout_for_the_whole_attempt(receiver, clock, monkeypatch):
    """A byte at a time, each well within a read's timeout: the attempt as a whole still ends at TIMEOUT."""
    stop = threading.Event()

    def trickle(handler) -> None:
        handler.send_response(500)
        handler.end_headers()
        try:
            while not stop.wait(0.02):  # the test's own pace, until it ends
                handler.wfile.write(b"x")
                handler.wfile.flush()
        except OSError:
            pass  # the engine hung up

    monkeypatch.setattr(delivery, "TIMEOUT", 0.3)  # seconds: each read gets a byte long before this
    receiver.answers = [trickle]
    hook = endpoint(receiver.url)
    emit()
    try:
        deliver(hook)
    finally:
        stop.set()

    attempt = WebhookAttempt.objects.get()
    assert attempt.error == "no answer within 0.3 s"
    assert statuses(hook) == [("pending", 1)]  # tried again on the schedule


def test_a_receiver_that_is_down_is_an_error_and_a_retry(clock, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    hook = endpoint(f"http://127.0.0.1:{port}/hooks")
    emit()

    deliver(hook)

    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None and attempt.error.startswith("ConnectError")
    assert statuses(hook) == [("pending", 1)]


def test_the_jobs_fan_out_then_deliver_per_endpoint(receiver, clock, jobs):
    calls_only = endpoint(receiver.url, ("call.*",))
    everything = endpoint(receiver.url, ("*",))
    paused = endpoint(receiver.url, ("*",), enabled=False)
    emit("contact.created", "contact:1")
    emit("call.ended", "call:1")

    tasks.dispatch_webhooks.defer()
    run_jobs(jobs)

    assert sorted(WebhookDelivery.objects.exclude(endpoint=paused).values_list("endpoint_id", "event__type")) == sorted(
        [(calls_only.pk, "call.ended"), (everything.pk, "contact.created"), (everything.pk, "call.ended")]
    )
    # A paused endpoint's deliveries are made, and wait until it is resumed.
    assert sorted(paused.deliveries.values_list("event__type", "status", "attempts")) == [
        ("call.ended", "pending", 0),
        ("contact.created", "pending", 0),
    ]
    assert len(receiver.received) == 3
    assert WebhookEvent.objects.filter(dispatched_at__isnull=True).count() == 0


def test_a_delivery_job_waits_once_per_endpoint(jobs):
    tasks.enqueue_delivery(1)
    tasks.enqueue_delivery(1)
    tasks.enqueue_delivery(2)
    assert [j["args"] for j in queued(jobs, "deliver_webhooks")] == [{"endpoint_id": 1}, {"endpoint_id": 2}]


def test_the_retry_job_queues_the_endpoints_with_deliveries_due(receiver, clock, jobs, monkeypatch):
    receiver.otherwise = 500
    hook = endpoint(receiver.url)
    emit()
    deliver(hook)
    clock.advance(timedelta(seconds=5))

    tasks.retry_webhooks.func(timestamp=0)

    assert [j["args"] for j in queued(jobs, "deliver_webhooks")] == [{"endpoint_id": hook.pk}]


def test_send_again_replay_and_test_event(receiver, clock, jobs, monkeypatch):
    hook = endpoint(receiver.url, ("contact.*",))
    first = emit("contact.created", "contact:1")
    emit("call.placed", "call:1")  # not for this endpoint
    emit("contact.updated", "contact:1")
    deliver(hook)
    assert len(receiver.received) == 2

    manual.send_again(hook.deliveries.get(event=first))
    assert hook.deliveries.get(event=first).status == "pending"
    async_to_sync(delivery.deliver)(hook.pk)
    assert receiver.received[-1].headers["webhook-id"] == first.msg_id

    monkeypatch.setattr(manual, "REPLAY_BATCH", 1)  # one event a statement: the same deliveries, in order
    assert manual.replay_since(hook, clock.now - timedelta(minutes=1)) == 2
    assert manual.replay_since(hook, clock.now + timedelta(minutes=1)) == 0  # none since then
    async_to_sync(delivery.deliver)(hook.pk)
    assert [json.loads(r.body)["type"] for r in receiver.received[-2:]] == ["contact.created", "contact.updated"]

    WebhookEndpoint.objects.filter(pk=hook.pk).update(enabled=False)
    test = manual.send_test_event(hook)
    async_to_sync(delivery.deliver)(hook.pk)  # sent even to a paused endpoint
    test.refresh_from_db()
    assert test.status == "delivered"
    got = receiver.received[-1]
    assert Webhook(hook.secret).verify(got.body, got.headers)["type"] == "webhook.test"


def test_old_events_and_attempts_are_pruned(receiver, clock, settings):
    hook = endpoint(receiver.url)
    emit()
    deliver(hook)
    assert delivery.prune(now=clock.now + timedelta(days=6)) == 0

    assert delivery.prune(now=clock.now + timedelta(days=settings.WEBHOOK_KEEP_DAYS, seconds=1)) == 2
    assert not WebhookEvent.objects.exists() and not WebhookDelivery.objects.exists()


def test_a_host_that_no_longer_resolves_is_an_error_and_a_retry(clock, monkeypatch):
    def nowhere(host, port):
        raise ValidationError(f"The host {host} could not be resolved: check its spelling.")

    monkeypatch.setattr(safety, "resolve", nowhere)
    hook = endpoint("https://gone.example.com/hooks")
    emit()

    deliver(hook)

    assert WebhookAttempt.objects.get().error == "The host gone.example.com could not be resolved: check its spelling."
    assert statuses(hook) == [("pending", 1)]


def test_an_endpoint_deleted_while_its_delivery_was_in_flight_is_let_go(receiver, clock, monkeypatch):
    hook = endpoint(receiver.url)
    emit()
    real_send = delivery.send

    async def deleted_meanwhile(*args, **kwargs):
        outcome = await real_send(*args, **kwargs)
        await sync_to_async(WebhookEndpoint.objects.filter(pk=hook.pk).delete)()
        return outcome

    monkeypatch.setattr(delivery, "send", deleted_meanwhile)

    assert deliver(hook) == 1

    assert len(receiver.received) == 1
    assert not WebhookDelivery.objects.exists() and not WebhookAttempt.objects.exists()


def test_an_http_endpoint_saved_with_debug_on_is_not_sent_in_clear_once_it_is_off(receiver, clock):
    """A delivery (DEBUG off, as in the tests) checks the scheme again, first, and says what to do."""
    hook = endpoint(receiver.url.replace("127.0.0.1", "localhost"))  # saved with DEBUG on; not an allowed host
    emit()
    deliver(hook)
    (attempt,) = WebhookAttempt.objects.all()
    assert attempt.error.startswith("Use an https:// URL") and receiver.received == []
    assert statuses(hook) == [("pending", 1)]
