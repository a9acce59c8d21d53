"""POST /vcc/events/ under ASGI (calls/vcc/receiver.py): the same checks and sentences as the Django view, each
delivery answered 200 only after its events are committed, deliveries arriving together sharing a commit, a 503
for VCC to send again when the database cannot take them, and Django still answering what the receiver leaves to
it. Through calls.asgi.Handler, as uvicorn serves it; the receiver's own connection commits, so these tests use
transactions of their own."""

from __future__ import annotations

import asyncio
import json

import httpx
import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from calls.asgi import Handler
from calls.calling.events import refused_last_hour
from calls.models import VccEvent
from calls.vcc import events, receiver
from tests._vcc_events import CE, KEY, OLD_KEY, URL, event, sign

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the receiver serves PostgreSQL only; on SQLite Django's view answers (test_vcc_events_receiving.py)",
    ),
]


@pytest.fixture(autouse=True)
def secrets(settings):
    settings.VCC_WEBHOOK_KEYS = [KEY, OLD_KEY]


@pytest.fixture
def queued() -> list[int]:
    """Each time the receiver asked for the processing job to be queued."""
    return []


NOW = 1_800_000_000.25  # the receiver's wall clock in these tests: what received_at says


@pytest.fixture
def ticks() -> list[float]:
    """The receiver's monotonic clock: tests move it on by hand."""
    return [1000.0]


@pytest.fixture
async def app(queued, ticks):
    handler = Handler()
    handler.events.enqueue = lambda: queued.append(1)
    handler.events.clock = lambda: NOW
    handler.events.monotonic = lambda: ticks[0]
    try:
        yield handler
    finally:
        await handler.events.settled()
        await handler.events.inbox.close()


def held(inbox: receiver.Inbox) -> asyncio.Event:
    """Hold the inbox's first INSERT until the returned event is set; the ones after it go straight through."""
    release, real = asyncio.Event(), inbox._insert
    calls = []

    async def insert(batch):
        calls.append(len(batch))
        if len(calls) == 1:
            await release.wait()
        await real(batch)

    inbox._insert = insert
    release.calls = calls
    return release


def client(app, host: str = "localhost", scheme: str = "http") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"{scheme}://{host}")


async def post(http: httpx.AsyncClient, payload, *, key: bytes = KEY, content_type: str = CE, **headers):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": content_type, "Vonage-Signature": sign(body, key), **headers}
    return await http.post(URL, content=body, headers=headers)


def db(query):
    """`query` run on a thread, as the ORM must be from async code, its connection closed afterwards (the
    database is dropped at the end of the session, which an idle connection would hold up)."""

    def run(*args):
        from django.db import connection

        try:
            return query(*args)
        finally:
            connection.close()

    return sync_to_async(run)


stored = db(lambda: sorted(VccEvent.objects.values_list("event_id", flat=True)))


async def test_a_delivery_is_committed_before_its_200_and_a_redelivery_changes_nothing(app, queued):
    one = event(interactionId="abc")
    async with client(app) as http:
        first = await post(http, one, **{"X-Request-ID": "vcc-delivery-0001"})
        again = await post(http, one)
        rotated = await post(http, event(interactionId="def"), key=OLD_KEY)

    assert first.status_code == 200 and first.json() == {"received": 1}
    assert first.headers["X-Request-ID"] == "vcc-delivery-0001"  # VCC's trace id, as for any page
    assert (
        first.headers["Cache-Control"] == "private, no-store" and first.headers["X-Content-Type-Options"] == "nosniff"
    )
    assert again.status_code == 200 and rotated.status_code == 200
    row = await db(lambda: VccEvent.objects.get(event_id=one["id"]))()
    assert (row.type, row.data, row.processed_at, row.attempts) == (
        "channel.connected.v1",
        {"interactionId": "abc"},
        None,
        0,
    )
    assert row.time is not None and row.received_at is not None
    assert len(await stored()) == 2
    await app.events.settled()
    assert queued == [1]  # three deliveries within a second: the processing job is asked for once


async def test_a_batch_keeps_each_event_once(app):
    first, second = event(interactionId="a"), event(interactionId="b")
    async with client(app) as http:
        response = await post(http, [first, second, first], content_type=events.BATCH)

    assert response.status_code == 200 and response.json() == {"received": 3}
    assert await stored() == sorted([first["id"], second["id"]])


async def test_deliveries_arriving_during_a_write_share_the_next_commit_and_none_is_answered_before_its_own(app):
    release = held(app.events.inbox)
    first, later = event(interactionId="first"), [event(interactionId=str(i)) for i in range(20)]
    async with client(app) as http:
        writing = asyncio.create_task(post(http, first))
        while not release.calls:  # the first INSERT has started, and waits
            await asyncio.sleep(0)
        waiting = [asyncio.create_task(post(http, one)) for one in later]
        for _ in range(50):
            await asyncio.sleep(0)
        assert not writing.done() and not any(w.done() for w in waiting)  # nothing answered before its commit
        release.set()
        answers = [await writing, *[await w for w in waiting]]

    assert [a.status_code for a in answers] == [200] * 21
    assert release.calls == [1, 20] and app.events.inbox.batches == 2  # the twenty went in one INSERT
    assert await stored() == sorted(e["id"] for e in [first, *later])


async def test_a_delivery_the_database_refuses_fails_alone_and_the_rest_of_its_batch_is_stored(app, caplog):
    bad, good = event(interactionId="bad"), [event(interactionId=str(i)) for i in range(3)]
    real = app.events.inbox._insert

    async def insert(batch):
        if any(e.id == bad["id"] for envelopes, _, _ in batch for e in envelopes):
            raise psycopg.errors.InvalidTextRepresentation("invalid input syntax for type json: secret-data-here")
        await real(batch)

    app.events.inbox._insert = insert
    async with client(app) as http:
        answers = await asyncio.gather(*(post(http, one) for one in [bad, *good]))

    assert [a.status_code for a in answers] == [503, 200, 200, 200]
    assert await stored() == sorted(e["id"] for e in good)
    assert "could not store 1 deliveries" in caplog.text and "secret-data-here" not in caplog.text


async def test_a_write_that_hangs_is_given_up_and_its_deliveries_told_to_send_again(app):
    class Hung:
        closed = broken = False

        async def execute(self, *args):
            await asyncio.Event().wait()

        async def close(self):
            self.closed = True

    async def connect():
        return Hung()

    app.events.inbox._connect, app.events.inbox.timeout = connect, 0.05
    async with client(app) as http:
        answer = await post(http, event())
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert app.events.inbox._connection is None  # dropped: the next write opens a new one


async def test_past_the_waiting_limit_a_delivery_is_told_to_send_again_at_once(app, monkeypatch):
    monkeypatch.setattr(receiver, "MAX_WAITING", 1)
    release = held(app.events.inbox)
    async with client(app) as http:
        writing = asyncio.create_task(post(http, event()))
        while not release.calls:
            await asyncio.sleep(0)
        queued_behind = asyncio.create_task(post(http, event()))
        for _ in range(50):
            await asyncio.sleep(0)
        refused = await post(http, event())  # two are in the inbox: one writing, one waiting
        release.set()
        assert (await writing).status_code == 200 and (await queued_behind).status_code == 200
    assert refused.status_code == 503


@pytest.mark.parametrize(
    ("method", "content", "headers", "status", "says"),
    [
        ("GET", b"", {}, 405, "Deliver VCC's events with POST."),
        ("POST", b"{}", {"Content-Type": "application/json"}, 415, "Send events as application/cloudevents+json"),
        ("POST", b"x" * (events.MAX_BODY + 1), {}, 413, "at most 256 KB"),
        ("POST", b"{}", {"Content-Length": "ten"}, 400, "Content-Length must be a number of bytes."),
        ("POST", b"{not json", {}, 400, "The body is not JSON"),
        ("POST", b'{"id": "a", "type": "t", "source": "s", "data": {"v": NaN}}', {}, 400, "NaN is not a JSON number"),
        ("POST", b'{"id": "a", "type": "t", "source": "s", "data": {"v": "\\u0000"}}', {}, 400, "NUL character"),
        ("POST", b'{"id": "a", "type": "t", "source": "s", "data": {"v": "\\ud800"}}', {}, 400, "surrogate"),
        ("POST", b"[" * 100_000 + b"]" * 100_000, {}, 400, "nested too deeply"),
    ],
    ids=["get", "content-type", "too-large", "bad-length", "not-json", "nan", "nul", "surrogate", "deep"],
)
async def test_what_is_not_a_signed_event_is_refused_with_the_views_sentence_and_counted(
    app, method, content, headers, status, says, caplog
):
    async with client(app) as http:
        signed = {"Content-Type": CE, "Vonage-Signature": sign(content), **headers}
        response = await http.request(method, URL, content=content, headers=signed)

    assert response.status_code == status and says in response.text
    assert status != 405 or response.headers["Allow"] == "POST"
    assert await stored() == []
    await app.events.settled()  # refusals are added to the count a second later, together
    assert await db(refused_last_hour)() == 1
    assert "vcc events: refused" in caplog.text and "x" * 100 not in caplog.text  # never the body


async def test_a_body_that_grows_past_the_limit_without_a_length_is_refused_413(app):
    async def chunks():
        for _ in range(5):
            yield b"x" * 64 * 1024

    async with client(app) as http:
        response = await http.post(URL, content=chunks(), headers={"Content-Type": CE})
    assert response.status_code == 413 and "at most 256 KB" in response.text


@pytest.mark.parametrize(
    ("signature", "says"),
    [
        (None, "The Vonage-Signature header is missing."),
        ("Basic abc", "must be 'Bearer <JWT>'"),
        ("wrong-key", "a key vccweb does not know"),
        ("wrong-hash", "payload_hash does not match the body"),
    ],
)
async def test_a_bad_signature_is_refused_401(app, signature, says):
    body = json.dumps(event()).encode()
    header = {
        None: None,
        "Basic abc": "Basic abc",
        "wrong-key": sign(body, b"z" * 32),
        "wrong-hash": sign(b"another body"),
    }[signature]
    headers = {"Content-Type": CE} | ({"Vonage-Signature": header} if header else {})
    async with client(app) as http:
        response = await http.post(URL, content=body, headers=headers)
    assert response.status_code == 401 and says in response.text
    assert await stored() == []


async def test_when_the_database_cannot_take_them_vcc_is_told_to_send_again_and_nothing_is_acknowledged(app, caplog):
    async def unreachable():
        raise psycopg.OperationalError("connection refused")

    real = app.events.inbox._connect
    app.events.inbox._connect = unreachable
    lost = event()
    async with client(app) as http:
        refused = await post(http, lost)
        app.events.inbox._connect = real  # the database is back: the next delivery connects again
        again = await post(http, lost)

    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
    assert "send them again" in refused.text
    assert "could not store 1 deliveries, answered 503 for VCC to send again: OperationalError" in caplog.text
    assert again.status_code == 200 and await stored() == [lost["id"]]


async def test_a_connection_postgresql_dropped_is_replaced_without_refusing_a_delivery(app):
    async with client(app) as http:
        assert (await post(http, event())).status_code == 200
        pid = app.events.inbox._connection.info.backend_pid
        await db(terminate)(pid)  # as a PostgreSQL restart would
        assert (await post(http, event())).status_code == 200  # written again on a new connection
    assert app.events.inbox._connection.info.backend_pid != pid
    assert len(await stored()) == 2


def terminate(pid: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])  # and wait for it to be gone


async def test_django_answers_what_the_receiver_leaves_to_it(settings, queued):
    """A host not in ALLOWED_HOSTS is Django's 400; plain HTTP under SECURE_SSL_REDIRECT is Django's redirect, and
    HTTPS (or the proxy's header saying so) reaches the receiver."""
    settings.ALLOWED_HOSTS = ["crm.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    app = Handler()  # Django's middleware reads these settings when it is built
    app.events.enqueue = lambda: queued.append(1)
    try:
        await _redirected_or_taken(app)
    finally:
        await app.events.inbox.close()


async def _redirected_or_taken(app) -> None:
    async with client(app, host="evil.example.net", scheme="https") as http:
        assert (await post(http, event())).status_code == 400
    async with client(app, host="crm.example.com") as http:
        redirected = await post(http, event())
        proxied = await post(http, event(), **{"X-Forwarded-Proto": "https"})
    async with client(app, host="crm.example.com", scheme="https") as http:
        direct = await post(http, event())

    assert redirected.status_code == 301 and redirected.headers["Location"].startswith("https://crm.example.com/")
    assert proxied.status_code == 200 and direct.status_code == 200
    assert len(await stored()) == 2


def test_the_receiver_leaves_to_django_what_django_would_refuse_or_redirect(settings):
    take = receiver.Receiver().handles
    scope = {"type": "http", "path": URL, "scheme": "http", "headers": [(b"host", b"localhost")]}
    assert take(scope)
    assert not take(scope | {"path": "/contacts/"})
    assert not take(scope | {"type": "websocket"})
    assert not take(scope | {"headers": []})  # no Host
    assert not take(scope | {"headers": [(b"host", b"evil.example.net")]})
    assert not take(scope | {"headers": [(b"host", b"evil.example.net"), (b"host", b"localhost")]})  # as Django: both
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert not take(scope)
    assert take(scope | {"scheme": "https"})
    assert take(scope | {"headers": [(b"host", b"localhost"), (b"x-forwarded-proto", b"https")]})
    proto_twice = [(b"host", b"localhost"), (b"x-forwarded-proto", b"http"), (b"x-forwarded-proto", b"https")]
    assert not take(scope | {"headers": proto_twice})  # Django reads the first of them
