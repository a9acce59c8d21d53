"""POST /vcc/events/ under ASGI, in the event loop: VCC's deliveries are checked, stored and answered without
Django's request machinery.

Why not the Django view (calls/views/vcc_events.py), which does the same checks: measured on this machine
(bench/events_bench.py, bench/README.md "VCC's events"), the view took about 160 deliveries a second on one uvicorn
worker, p95 40 ms at 200 a second; the goal is 1,000 a second, p95 20 ms. Each delivery paid for thirteen
middleware, a thread of its own for the ORM and a commit of its own. Here a delivery costs the signature check and
a share of one INSERT: deliveries that arrive while a write is under way wait for the next one, which stores them
all in one statement and one commit (a group commit), and each is answered 200 only after its commit. Nothing is
acknowledged that a crash could lose, and VCC is told 503 (and sends again) when the database cannot take it.

What stays the same as the view: the checks and sentences (calls/vcc/events.py `verify`, `parse`), the body limit,
a refusal logged without the body and counted for the health page, a redelivery acknowledged and changing nothing
(`ON CONFLICT (event_id) DO NOTHING`), the request id in the log and the answer, and queueing the processing job
(at most once a second from a process: the job's tick every second takes what arrives meanwhile).

Django still answers what this does not take: a database that is not PostgreSQL (the view runs), a host not in
ALLOWED_HOSTS (400) and plain HTTP when SECURE_SSL_REDIRECT is on (the redirect), so the rules are the site's.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from django.conf import settings
from django.db import connections
from django.http.request import split_domain_port, validate_host

from calls.observability import REQUEST_ID_HEADER, _request_id, new_request_id
from calls.vcc import events

log = logging.getLogger("calls.views.vcc_events")  # the view's logger: the same lines whichever path answered
access = logging.getLogger("vccweb.request")

PATH = "/vcc/events/"
ENQUEUE_EVERY = 1.0  # seconds between this process's requests to queue the processing job
COUNT_EVERY = 1.0  # seconds refusals are gathered before they are added to the health page's count

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class StoreFailed(Exception):
    """The database did not take the events: nothing was acknowledged."""


STORE_TIMEOUT = 5.0  # seconds one INSERT may take (a lock, a dead connection) before its deliveries hear 503
MAX_BATCH = 500  # deliveries written by one INSERT
MAX_WAITING = 5_000  # deliveries waiting for a write; past it a delivery is answered 503 at once

Waiting = tuple[list[events.Envelope], float, "asyncio.Future[None]"]


class Inbox:
    """Stores deliveries' events in PostgreSQL, many deliveries to a commit (see the module's text).

    One connection of its own (autocommit: each INSERT is its own transaction), opened on first use and opened
    again after a failure. A write that fails for another reason than the connection is tried again delivery by
    delivery, so that one the database refuses fails alone. `batches` counts the INSERTs (tests, the bench)."""

    def __init__(
        self, connect: Callable[[], Awaitable[psycopg.AsyncConnection[Any]]], *, timeout: float = STORE_TIMEOUT
    ) -> None:
        self._connect = connect
        self.timeout = timeout
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._waiting: list[Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        self.batches = 0

    async def store(self, envelopes: list[events.Envelope], received_at: float) -> None:
        """Return once the events are committed (a redelivery is kept once); raise StoreFailed if they were not."""
        if len(self._waiting) >= MAX_WAITING:
            raise StoreFailed(f"{MAX_WAITING} deliveries are already waiting for the database")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((envelopes, received_at, done))
        if self._writer is None or self._writer.done():
            # A context of its own: the writer serves every request, not the one that happened to start it.
            self._writer = asyncio.create_task(self._write_while_waiting(), context=contextvars.Context())
        await done

    async def _write_while_waiting(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                await self._write(batch)
        except BaseException:  # cancelled (the server stopping): nobody is left waiting for ever
            for _, _, done in [*self._waiting]:
                _fail(done, StoreFailed("the server is stopping"))
            self._waiting = []
            raise

    async def _write(self, batch: list[Waiting]) -> None:
        try:
            await self._insert_with_reconnect(batch)
        except psycopg.DataError as exc:
            if len(batch) == 1:
                self._failed(batch, exc)
                return
            for one in batch:  # one delivery the database refuses must not fail the others
                await self._write([one])
            return
        except Exception as exc:
            await self._drop_connection()
            self._failed(batch, exc)
            return
        for _, _, done in batch:
            if not done.done():
                done.set_result(None)

    def _failed(self, batch: list[Waiting], exc: BaseException) -> None:
        """Every delivery of the batch hears of it (503), and VCC sends them again; logged once, without data."""
        why = type(exc).__name__ + (f" ({exc.sqlstate})" if isinstance(exc, psycopg.Error) and exc.sqlstate else "")
        log.error("vcc events: could not store %s deliveries, answered 503 for VCC to send again: %s", len(batch), why)
        for _, _, done in batch:
            _fail(done, StoreFailed(why))

    async def _insert_with_reconnect(self, batch: list[Waiting]) -> None:
        try:
            await self._insert(batch)
        except psycopg.OperationalError:
            if self._connection is None or not self._connection.broken:
                raise
            # A connection lost since the last write (PostgreSQL restarted): once more on a new one. Safe even if
            # the lost one had committed: the events are there, and ON CONFLICT keeps them once.
            await self._drop_connection()
            await self._insert(batch)

    async def _insert(self, batch: list[Waiting]) -> None:
        from calls.models import VccEvent

        columns: tuple[list[Any], ...] = ([], [], [], [], [], [], [])
        seen: set[str] = set()
        for envelopes, received_at, _ in batch:
            for e in envelopes:
                if e.id in seen:  # one statement cannot insert an id twice, even with ON CONFLICT
                    continue
                seen.add(e.id)
                for column, value in zip(
                    columns, (e.id, e.type, e.source, e.subject, e.time, json.dumps(e.data), received_at), strict=True
                ):
                    column.append(value)
        async with asyncio.timeout(self.timeout):
            if self._connection is None or self._connection.closed:
                self._connection = await self._connect()
            await self._connection.execute(
                f"INSERT INTO {VccEvent._meta.db_table} "
                "(event_id, type, source, subject, time, data, received_at, attempts, result) "
                "SELECT id, type, source, subject, time, data, to_timestamp(received), 0, '' "
                "FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::jsonb[], "
                "%s::float8[]) AS e(id, type, source, subject, time, data, received) "
                "ON CONFLICT (event_id) DO NOTHING",
                columns,
            )
        self.batches += 1

    async def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.close()
            except Exception:  # already gone
                log.debug("vcc events: closing the inbox's connection failed", exc_info=True)

    async def close(self) -> None:
        await self._drop_connection()


def _fail(done: asyncio.Future[None], exc: Exception) -> None:
    if not done.done():
        done.set_exception(exc)


async def _connect_default() -> psycopg.AsyncConnection[Any]:
    from procrastinate.contrib.django.utils import connector_params

    return await psycopg.AsyncConnection.connect(**connector_params("default"), autocommit=True)


def _count_refusals(count: int) -> None:
    """Add refused deliveries to the health page's count (calls/calling/events.py), on the receiver's thread."""
    from calls.calling.events import count_refusal

    try:
        count_refusal(count)
    except Exception:  # the cache is down: the refusals were answered and logged all the same
        log.debug("vcc events: could not count %s refusals", count, exc_info=True)


def _enqueue_processing() -> None:
    """Queue the job that applies the events (calls/tasks.py), on a thread of the default executor: its database
    connection is closed afterwards, so one lost in a restart is never used again."""
    from calls import tasks

    try:
        tasks.enqueue_event_processing()
    except Exception:  # the job's tick every second takes the events anyway
        log.warning("vcc events: could not queue their processing; its tick will", exc_info=True)
    finally:
        connections.close_all()


class Receiver:
    """The ASGI app for POST /vcc/events/ (see the module's text). `handles(scope)` says whether it takes a request
    or leaves it to Django."""

    def __init__(
        self,
        inbox: Inbox | None = None,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        enqueue: Callable[[], None] = _enqueue_processing,
        count_refusals: Callable[[int], None] | None = None,
    ) -> None:
        self.inbox = inbox or Inbox(_connect_default)
        self.clock, self.monotonic = clock, monotonic
        self.enqueue = enqueue
        self.count_refusals = count_refusals or _count_refusals
        self._postgresql: bool | None = None
        self._next_enqueue = 0.0
        self._refused = 0  # refusals not yet added to the health page's count
        self._background: set[asyncio.Future[Any]] = set()
        # Queueing the job and counting refusals wait on the database and Redis: one thread of their own, so a
        # flood of refused deliveries cannot take the threads anything else needs (a reconnect's DNS lookup).
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vcc-events")

    def handles(self, scope: dict[str, Any]) -> bool:
        if scope.get("type") != "http" or scope.get("path") != PATH:
            return False
        if self._postgresql is None:
            self._postgresql = connections["default"].vendor == "postgresql"
        if not self._postgresql:
            return False
        headers = _headers(scope)
        host = headers.get(b"host", b"").decode("latin-1")
        domain, _port = split_domain_port(host)
        allowed = settings.ALLOWED_HOSTS
        if settings.DEBUG and not allowed:
            allowed = [".localhost", "127.0.0.1", "[::1]"]
        if not domain or not validate_host(domain, allowed):
            return False  # Django answers 400 and logs it as it does for any page
        return not settings.SECURE_SSL_REDIRECT or _secure(scope, headers)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = _headers(scope)
        request_id = new_request_id(headers.get(REQUEST_ID_HEADER.lower().encode(), b"").decode("latin-1") or None)
        token = _request_id.set(request_id)
        try:
            status = await self._answer(scope, headers, receive, send, request_id)
        finally:
            _request_id.reset(token)
        if status is not None:
            access.info(
                "%s %s %s",
                scope.get("method"),
                PATH,
                status,
                extra={
                    "request_id": request_id,
                    "method": scope.get("method"),
                    "path": PATH,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    "user_id": None,
                },
            )

    async def _answer(
        self, scope: dict[str, Any], headers: dict[bytes, bytes], receive: Receive, send: Send, request_id: str
    ) -> int | None:
        address = (scope.get("client") or ("?",))[0]
        length = headers.get(b"content-length", b"").decode("latin-1")
        try:
            if scope.get("method") != "POST":
                raise events.Refused(405, "Deliver VCC's events with POST.", "method")
            if length and not (length.isascii() and length.isdigit()):
                raise events.Refused(400, "Content-Length must be a number of bytes.", "bad length")
            if length and int(length) > events.MAX_BODY:
                raise events.Refused(413, _too_large(), "too large")
            body = await _read_body(receive)
            if body is None:
                return None  # the sender went away: nobody to answer
            events.verify(_header(headers, b"vonage-signature"), body, settings.VCC_WEBHOOK_KEYS)
            envelopes = events.parse(_header(headers, b"content-type") or "", body)
        except events.Refused as refusal:
            await self._refuse(refusal, length or "?", address, send, request_id)
            return refusal.status
        try:
            await self.inbox.store(envelopes, self.clock())
        except StoreFailed:  # logged once for its batch by the inbox
            text = "vccweb could not store the events just now; send them again.\n"
            await _respond(send, 503, text.encode(), b"text/plain; charset=utf-8", request_id, retry_after=True)
            return 503
        self._maybe_enqueue()
        await _respond(send, 200, b'{"received": %d}' % len(envelopes), b"application/json", request_id)
        return 200

    async def _refuse(self, refusal: events.Refused, length: str, address: str, send: Send, request_id: str) -> None:
        log.warning(
            "vcc events: refused %s (%s): %s; %s bytes from %s",
            refusal.status,
            refusal.reason,
            refusal.message,
            length,
            address,
        )
        self._refused += 1
        if self._refused == 1:  # the first since the last count: added to it in a second, with any that follow
            asyncio.get_running_loop().call_later(COUNT_EVERY, self._count_refused)
        await _respond(
            send,
            refusal.status,
            (refusal.message + "\n").encode(),
            b"text/plain; charset=utf-8",
            request_id,
            allow=refusal.status == 405,
        )

    def _count_refused(self) -> None:
        count, self._refused = self._refused, 0
        self._in_thread(lambda: self.count_refusals(count))

    def _maybe_enqueue(self) -> None:
        now = self.monotonic()
        if now < self._next_enqueue:
            return
        self._next_enqueue = now + ENQUEUE_EVERY
        self._in_thread(self.enqueue)

    def _in_thread(self, work: Callable[[], None]) -> None:
        future = asyncio.get_running_loop().run_in_executor(self._thread, work)
        self._background.add(future)
        future.add_done_callback(self._background.discard)

    async def settled(self) -> None:
        """Count the refusals not yet counted, and wait for the work under way on the thread (tests)."""
        if self._refused:
            self._count_refused()
        while self._background:
            await asyncio.gather(*list(self._background))


def _headers(scope: dict[str, Any]) -> dict[bytes, bytes]:
    """The request's headers by lower-case name, a repeated one joined with commas as Django joins it (so a
    second Host or X-Forwarded-Proto is read here as Django reads it)."""
    headers: dict[bytes, bytes] = {}
    for name, value in scope.get("headers") or []:
        headers[name] = headers[name] + b"," + value if name in headers else value
    return headers


def _too_large() -> str:
    return f"An event delivery may be at most {events.MAX_BODY // 1024} KB."


def _header(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1") if value is not None else None


def _secure(scope: dict[str, Any], headers: dict[bytes, bytes]) -> bool:
    """As Django's request.is_secure(): the scheme, or the proxy's header named in SECURE_PROXY_SSL_HEADER."""
    proxy = settings.SECURE_PROXY_SSL_HEADER
    if proxy:
        name, expected = proxy
        header = name.removeprefix("HTTP_").replace("_", "-").lower().encode()
        value = headers.get(header)
        if value is not None:
            return value.decode("latin-1").split(",")[0].strip() == expected
    return scope.get("scheme") == "https"


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body, or Refused (413) as soon as it passes the limit; None if the sender disconnected."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > events.MAX_BODY:
            raise events.Refused(413, _too_large(), "too large")
        parts.append(chunk)
        if not message.get("more_body"):
            return b"".join(parts)


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    request_id: str,
    *,
    allow: bool = False,
    retry_after: bool = False,
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        # As every page says (calls.middleware.PRIVATE, which this module cannot import: the ASGI app loads it
        # before Django is set up, and the middleware's imports need the apps loaded).
        (b"cache-control", b"private, no-store"),
        (b"x-content-type-options", b"nosniff"),
        (REQUEST_ID_HEADER.lower().encode(), request_id.encode()),
    ]
    if allow:
        headers.append((b"allow", b"POST"))
    if retry_after:
        headers.append((b"retry-after", b"5"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
