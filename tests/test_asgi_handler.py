"""The production ASGI handler (calls/asgi.py): request threads lent from a pool, driven as uvicorn drives it.

Django's test clients bring their own handler, so these tests call the application with ASGI messages themselves.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import sync_to_async
from django.core import signals
from django.db import close_old_connections, reset_queries

from calls.asgi import ExecutorPool, LentThread, PooledThreadsASGIHandler, get_asgi_application, start_receivers_idle


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


@pytest.fixture
def finished_on() -> list[int]:
    """The thread that ran each request's request_finished receivers (Django sends them from the request thread)."""
    threads: list[int] = []

    def record(**kwargs: object) -> None:
        threads.append(threading.get_ident())

    signals.request_finished.connect(record, weak=False)
    yield threads
    signals.request_finished.disconnect(record)


async def test_a_request_borrows_a_thread_and_the_next_request_gets_the_same_one(finished_on):
    app = PooledThreadsASGIHandler()

    first = await serve(app, "/healthz")
    second = await serve(app, "/healthz")

    assert first[0]["status"] == second[0]["status"] == 200
    assert len(finished_on) == 2 and finished_on[0] == finished_on[1] != threading.get_ident()
    assert app.executors.made == 1 and len(app.executors.idle) == 1


async def test_requests_in_flight_never_share_a_thread_and_a_request_keeps_its_own():
    pool = ExecutorPool()
    both_inside = asyncio.Barrier(2)

    async def request() -> tuple[int, int]:
        executor = pool.take()
        async with LentThread(executor):
            first = await sync_to_async(threading.get_ident)()
            await both_inside.wait()  # the other request is in flight now
            second = await sync_to_async(threading.get_ident)()
        pool.give_back(executor)
        return first, second

    (a1, a2), (b1, b2) = await asyncio.gather(request(), request())

    assert a1 == a2 and b1 == b2  # each request's sync code stays on one thread
    assert a1 != b1
    assert pool.made == 2 and len(pool.idle) == 2


async def test_a_task_that_outlives_its_request_still_runs_sync_code_on_a_thread_of_its_own():
    pool = ExecutorPool()
    executor = pool.take()
    go_on = asyncio.Event()

    async def outliving() -> int:
        await go_on.wait()
        return await sync_to_async(threading.get_ident)()

    async with LentThread(executor):
        lent = await sync_to_async(threading.get_ident)()
        task = asyncio.ensure_future(outliving())  # as a click whose browser went away (calls/calling/placing.py)
    pool.give_back(executor)
    go_on.set()

    assert await task not in (lent, threading.get_ident())


def test_the_pool_keeps_only_so_many_idle_executors():
    pool = ExecutorPool(keep=1)
    first, second = pool.take(), pool.take()
    pool.give_back(first)
    pool.give_back(second)

    assert pool.idle == [first]
    with pytest.raises(RuntimeError):  # the one beyond `keep` was shut down
        second.submit(int)
    assert pool.take() is first


async def test_a_request_that_fails_does_not_give_its_thread_back():
    app = PooledThreadsASGIHandler()

    async def broken_send(message: dict) -> None:
        raise OSError("the client went away mid-answer")

    with pytest.raises(OSError):
        await serve(app, "/healthz", send=broken_send)
    assert app.executors.made == 1 and app.executors.idle == []


def test_the_start_receivers_are_idle_only_without_persistent_connections_or_debug(settings, monkeypatch):
    settings.DEBUG = False
    monkeypatch.setitem(settings.DATABASES["default"], "CONN_MAX_AGE", 0)
    assert start_receivers_idle()

    settings.DEBUG = True  # DEBUG's query log is cleared at the start of each request
    assert not start_receivers_idle()

    settings.DEBUG = False
    monkeypatch.setitem(settings.DATABASES["default"], "CONN_MAX_AGE", 60)
    assert not start_receivers_idle()  # a persistent connection is checked before each request


def test_the_production_application_drops_the_start_receivers_only_when_they_are_idle(settings, monkeypatch):
    def connected() -> bool:
        receivers = signals.request_started._live_receivers(None)[0]
        return close_old_connections in receivers and reset_queries in receivers

    try:
        settings.DEBUG = True
        assert isinstance(get_asgi_application(), PooledThreadsASGIHandler)
        assert connected()

        settings.DEBUG = False
        monkeypatch.setitem(settings.DATABASES["default"], "CONN_MAX_AGE", 0)
        get_asgi_application()
        assert not connected()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_started.connect(reset_queries)
