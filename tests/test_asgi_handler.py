"""The production ASGI application (calls/asgi.py): Django's handler, driven as uvicorn drives it.

Django's test clients bring their own handler, so these tests call the application with ASGI messages themselves.
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from django.core import signals
from django.core.handlers.asgi import ASGIHandler
from django.db import close_old_connections, reset_queries

from calls.asgi import get_asgi_application, start_receivers_idle


async def serve(app, path: str, send=None) -> list[dict]:
    """One GET through the ASGI application; the messages it sent back (to `send`, if given)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[dict] = []
    received = asyncio.Event()

    async def receive() -> dict:
        if not received.is_set():
            received.set()
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError("unreachable")

    async def keep(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send or keep)
    return sent


def test_the_start_receivers_are_idle_only_without_persistent_connections_or_debug(settings, monkeypatch):
    settings.DEBUG = False
    monkeypatch.setitem(settings.DATABASES["default"], "CONN_MAX_AGE", 0)
    assert start_receivers_idle()

    settings.DEBUG = True  # DEBUG's query log is cleared at the start of each request
    assert not start_receivers_idle()

    settings.DEBUG = False
    monkeypatch.setitem(settings.DATABASES["default"], "CONN_MAX_AGE", 60)
    assert not start_receivers_idle()  # a persistent connection is checked before each request


def test_the_production_application_drops_the_start_receivers_only_when_they_are_idle(settings, monkeypatch, db):
    def connected() -> bool:
        receivers = signals.request_started._live_receivers(None)[0]
        return close_old_connections in receivers and reset_queries in receivers

    try:
        settings.DEBUG = True
        assert isinstance(get_asgi_application(), ASGIHandler)
        assert connected()

        settings.DEBUG = False
        monkeypatch.setitem(settings.DATABASES["default"], "CONN_MAX_AGE", 0)
        app = get_asgi_application()
        assert not connected()
        sent = async_to_sync(serve)(app, "/healthz")
        assert sent[0]["status"] == 200  # and a request is answered without them
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_started.connect(reset_queries)


async def post(app, path: str, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[list[dict], int]:
    """One POST whose body comes in `chunks`; the messages sent back, and how many chunks the app read."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"testserver"), *headers], "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
    }  # fmt: skip
    sent: list[dict] = []
    pending = list(chunks)

    async def receive() -> dict:
        if pending:
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent, len(chunks) - len(pending)


@pytest.fixture
def receivers_back():
    """get_asgi_application may disconnect Django's request_started receivers: put them back afterwards."""
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_started.connect(reset_queries)


def test_an_oversized_event_delivery_is_refused_before_django_reads_it(db, receivers_back):
    app = get_asgi_application()
    kb = b"x" * 1024
    sent, _read = async_to_sync(post)(app, "/vcc/events/", [kb], [(b"content-length", b"300000")])
    assert sent[0]["status"] == 413 and b"at most 256 KB" in sent[1]["body"]
    # Chunked, no length: refused once the body read passes the limit, without reading the rest.
    sent, read = async_to_sync(post)(app, "/vcc/events/", [kb] * 1000, [])
    assert sent[-2]["status"] == 413 and read == 257
    sent, _read = async_to_sync(post)(app, "/vcc/events/", [kb], [(b"content-length", b"lots")])
    assert sent[0]["status"] == 400


def test_a_body_of_any_size_to_any_other_page_is_refused_before_django_reads_it_whole(db, receivers_back):
    """Django reads the whole body before any view or login check: an anonymous POST of gigabytes to the login page
    filled the disk before its 403. Every path now has a limit: DATA_UPLOAD_MAX_MEMORY_SIZE and a form's framing."""
    app = get_asgi_application()
    mb = b"x" * 2**20
    form = [(b"content-type", b"application/x-www-form-urlencoded")]
    sent, read = async_to_sync(post)(app, "/login/", [mb] * 30, form)  # chunked: no length to check
    assert sent[0]["status"] == 413 and b"larger than the 2.6 MB" in sent[1]["body"]
    assert read == 3
    sent, read = async_to_sync(post)(app, "/contacts/", [mb], [*form, (b"content-length", str(2**40).encode())])
    assert sent[0]["status"] == 413 and read == 0
    # The import's upload takes its file (20 MB) and more, so that the form can say by how much it is over.
    sent, read = async_to_sync(post)(app, "/contacts/import/", [mb] * 25, [(b"content-type", b"multipart/form-data")])
    assert sent[0]["status"] != 413 and read == 25
    sent, read = async_to_sync(post)(app, "/contacts/import/", [mb] * 50, [(b"content-type", b"multipart/form-data")])
    assert sent[0]["status"] == 413 and b"larger than 20 MB: split it" in sent[1]["body"] and read == 41
    # A body within the limit is Django's, as before (no CSRF cookie: its 403).
    sent, _read = async_to_sync(post)(app, "/login/", [b"username=a&password=b"], form)
    assert sent[0]["status"] == 403
