"""Sending the outbox's events (calls/webhooks/outbox.py) to the endpoints, for the jobs in calls/tasks.py.

- `dispatch`: new events become one WebhookDelivery per endpoint whose patterns match, in one INSERT … SELECT.
- `deliver(endpoint_id)`: ONE pass over the endpoint's due deliveries (at most BATCH), then it ends: the jobs queue
  the next pass (a full pass queues its own follow-up, a fan-out or the retry tick the others), so an endpoint that
  is down never holds a worker. A pass sends each subject's due deliveries (a call's, a contact's) one after the
  other in id order, stopping at the first that fails; subjects go side by side, CONCURRENCY requests in flight on
  one client; once CONCURRENCY attempts have failed and none succeeded, it starts no more (a receiver that does not
  answer costs a pass about two timeouts). Every attempt of the pass, and what follows from it, is written at its
  end in a few statements.
- Each pass resolves the host again and connects to an address `safety.safe_addresses` allows (a DNS rebind after
  the URL was checked cannot reach the inside; calls/webhooks/addresses.py), follows no redirect, waits TIMEOUT and
  reads at most MAX_BODY.
- 2xx is delivered; 410 disables the endpoint at once; anything else is a failure, tried again:
  - a failed delivery waits its own step of RETRY_AFTER (by its attempts), and keeps its subject's later ones
    behind it; 24 hours after its first failure, one more while others go gives it up and disables the endpoint,
    saying why;
  - a pass where every attempt failed says the endpoint itself is failing: until one succeeds, only a probe is
    tried (the delivery with the fewest attempts, the oldest first, a due one if any, else one still in its own
    back-off: the probes keep their schedule however quiet the night), one per step of PROBE_AFTER, and the rest
    wait; the probe's success makes the whole backlog due at once. An endpoint failing for DISABLE_AFTER is
    disabled, and none of its deliveries is given up in a pass where every attempt failed: Resume sends them all;
    but one that was all the endpoint had to send (no other call's or contact's pending) is given up at 24 hours
    as one refused on its own would be, naming it (else it would disable the endpoint daily, and hold its subject
    back, for ever); Send again brings it back.
    A single delivery the receiver always refuses (a "poison" payload) thus costs the others a probe's wait at most,
    at each of its own few tries: a probe is another delivery when one is due, and its own back-off is not undone by
    the release (only deliveries that failed no more often than the endpoint's run are released).
- The delivery log page's buttons (`send_again`, `replay_since`, `send_test_event`) are in calls/webhooks/manual.py.

The clock is `clock` (tests replace it: nothing here waits on the wall clock)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import ssl
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import certifi
import httpx
from asgiref.sync import ThreadSensitiveContext
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from calls.calling.common import _db, log
from calls.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from calls.models.common import column_of, concrete_field, update_rows
from calls.webhooks import TEST_EVENT_TYPE, safety, signing
from calls.webhooks.addresses import Addresses

# A delivery's own waits after each of its failures (issue 21's schedule); the last one repeats.
RETRY_AFTER = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_AFTER) + 1  # alone, a delivery's 8th try is past 24 h of failures (27 h 35 min): given up
# An endpoint failing as a whole: the waits between probes (one request each); the last one repeats. Shorter than a
# delivery's own schedule: a receiver that comes back gets its backlog within 5 minutes, for one request in 5 min.
PROBE_AFTER = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=1),
    timedelta(minutes=2),
    timedelta(minutes=5),
)
DISABLE_AFTER = timedelta(hours=24)
TIMEOUT = 10.0  # seconds, for connecting and for each read
MAX_BODY = 64 * 1024  # bytes of an answer read, at most
SNIPPET = 2048  # characters of an answer kept in the log
CONCURRENCY = 16  # requests of one endpoint in flight at once (each of another subject)
BATCH = 200  # deliveries in one pass, at most
DISPATCH_BATCH = 1000
GONE_REASON = "410 Gone from the receiver"

Pending = WebhookDelivery.Status.PENDING

clock: Callable[[], datetime] = timezone.now


def _step(waits: tuple[timedelta, ...], count: int) -> timedelta:
    return waits[min(max(count, 1), len(waits)) - 1]


# --- Fan-out ------------------------------------------------------------------------------------------------------

# Patterns hold only [a-z_.*] (check_event_patterns): LIKE's "_" is escaped, "*" becomes "%".
_DISPATCH_SQL = """
WITH new AS (
    UPDATE {event} SET dispatched_at = %(now)s
    WHERE id IN (
        SELECT id FROM {event} WHERE dispatched_at IS NULL ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED
    )
    RETURNING id, type, subject
), made AS (
    INSERT INTO {delivery} (event_id, endpoint_id, subject, status, attempts, next_attempt_at, created_at)
    SELECT new.id, p.id, new.subject, %(pending)s, 0, %(now)s, %(now)s
    FROM new JOIN {endpoint} p ON EXISTS (
        SELECT 1 FROM jsonb_array_elements_text(p.event_types) AS pattern
        WHERE new.type LIKE replace(replace(pattern, '_', '\\_'), '*', '%%')
    )
    ORDER BY new.id, p.id
    RETURNING endpoint_id
)
SELECT (SELECT count(*) FROM new), ARRAY(SELECT DISTINCT endpoint_id FROM made)
"""


def with_tables(sql: str) -> str:
    """SQL naming the webhook tables as {event}, {delivery} and {endpoint}, with their names filled in."""
    return sql.format(
        event=WebhookEvent._meta.db_table,
        delivery=WebhookDelivery._meta.db_table,
        endpoint=WebhookEndpoint._meta.db_table,
    )


def dispatch(*, limit: int = DISPATCH_BATCH) -> tuple[int, set[int]]:
    """Fan up to `limit` new events out into deliveries, in one statement on PostgreSQL; returns how many events,
    and the endpoints given some. Paused and disabled endpoints too: their deliveries wait (see _pass) and go on
    resume, so no change is missing once a receiver is back (events are kept WEBHOOK_KEEP_DAYS)."""
    now = clock()
    if connection.vendor != "postgresql":
        return _dispatch_orm(now, limit)
    sql = with_tables(_DISPATCH_SQL)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, {"now": now, "limit": limit, "pending": Pending.value})
        count, endpoints = cursor.fetchone()
    return count, set(endpoints)


def _dispatch_orm(now: datetime, limit: int) -> tuple[int, set[int]]:
    """dispatch, off PostgreSQL (SQLite: a quick look, no worker)."""
    with transaction.atomic():
        events = list(WebhookEvent.objects.filter(dispatched_at__isnull=True).order_by("id")[:limit])
        endpoints = list(WebhookEndpoint.objects.only("id", "event_types"))
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
    """Endpoints with a pending delivery due now that a pass would try (the retry job queues their delivery): not
    those waiting for their next probe, and only test events for a paused one."""
    now = now or clock()
    pending = WebhookDelivery.objects.filter(endpoint_id=OuterRef("pk"), status=Pending)
    due = pending.filter(next_attempt_at__lte=now)
    # A failing endpoint's probe goes on its own schedule whenever anything waits, due or not (see _sendable).
    ready = Q(enabled=True) & ((Q(retry_at__isnull=True) & Exists(due)) | (Q(retry_at__lte=now) & Exists(pending)))
    tests = Exists(due.filter(event__type=TEST_EVENT_TYPE))
    return list(WebhookEndpoint.objects.filter(ready | tests).order_by("id").values_list("id", flat=True)[:1000])


# --- A pass -------------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    status_code: int | None = None
    duration_ms: int = 0
    snippet: str = ""
    error: str = ""
    received: int = 0  # bytes of the answer read
    at: datetime | None = None  # when the attempt began

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def reason(self) -> str:
        return self.error or f"HTTP {self.status_code}"


def _probing(endpoint: WebhookEndpoint, now: datetime) -> bool | None:
    """Whether a pass sends only a probe (the endpoint failing), or None when nothing may be sent before retry_at."""
    if endpoint.retry_at is None:
        return False
    return True if endpoint.retry_at <= now else None


def _due(endpoint_id: int, now: datetime, limit: int) -> tuple[WebhookEndpoint | None, list[WebhookDelivery]]:
    """The endpoint and its deliveries to send in this pass. Each is due, and so is every earlier pending one of its
    subject (all in the list, as ids come in order)."""
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        return None, []
    pending = WebhookDelivery.objects.filter(endpoint_id=endpoint_id, status=Pending).order_by()
    due = pending.filter(next_attempt_at__lte=now).select_related("event")
    probing = _probing(endpoint, now)
    if not endpoint.enabled or probing is None:  # paused, or waiting for its next probe: an admin's test goes
        return endpoint, list(due.filter(event__type=TEST_EVENT_TYPE).order_by("id")[:limit])
    # Which deliveries may go is read in one pass over the endpoint's backlog, with no join: a correlated NOT EXISTS
    # ("an earlier one of its subject is pending") read the whole backlog for each delivery whenever PostgreSQL's
    # statistics were stale, and a probe after 8 minutes down ran for minutes (bench/README.md, "Outgoing webhooks").
    ids = _sendable(endpoint_id, now, limit, probing=probing)
    return endpoint, list(pending.filter(id__in=ids).select_related("event").order_by("id"))


def _sendable(endpoint_id: int, now: datetime, limit: int, *, probing: bool) -> list[int]:
    """The ids a pass sends: probing, of the deliveries that are the first pending one of their subject, a due one
    tried least (the oldest first), else, when none is due, the one tried least even though its own back-off is not
    over (the probe keeps the endpoint's schedule: a receiver back after a quiet night of failures, whose few
    deliveries each wait up to 10 hours, gets its backlog within PROBE_AFTER's last step, not hours later);
    otherwise the first `limit` due deliveries no earlier one of whose subject waits its back-off. Window functions
    over webhook_delivery_pending_idx (by subject, then id): one pass, whatever the plan."""
    meta, quote = WebhookDelivery._meta, connection.ops.quote_name
    c = {name: quote(column_of(concrete_field(WebhookDelivery, name))) for name in _SENDABLE_COLUMNS}
    earlier = f"PARTITION BY {c['subject']} ORDER BY {c['id']}"
    pending = (
        f"SELECT {c['id']} AS id, {c['attempts']} AS attempts, {c['next_attempt_at']} AS next_attempt_at, "
        f"row_number() OVER ({earlier}) AS n, count(*) FILTER (WHERE {c['next_attempt_at']} > %s) "
        f"OVER ({earlier} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS waiting_before "
        f"FROM {quote(meta.db_table)} WHERE {c['endpoint']} = %s AND {c['status']} = %s"
    )
    params: list[Any] = [now]
    if probing:
        which = "n = 1 ORDER BY next_attempt_at > %s, attempts, id LIMIT 1"
    else:
        which, params = "next_attempt_at <= %s AND waiting_before = 0 ORDER BY id LIMIT %s", [now, limit]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM ({pending}) AS p WHERE {which}", [now, endpoint_id, Pending, *params])
        return [row[0] for row in cursor.fetchall()]


_SENDABLE_COLUMNS = ("id", "attempts", "next_attempt_at", "subject", "endpoint", "status")


def body_of(event: WebhookEvent) -> bytes:
    return json.dumps(event.payload, separators=(",", ":"), ensure_ascii=False).encode()


@functools.cache
def _tls() -> ssl.SSLContext:
    """The TLS settings of every pass, made once a process: making them (loading the CA bundle) costs about 25 ms
    of CPU, which a client per pass would spend again and again."""
    return ssl.create_default_context(cafile=certifi.where())


async def send(
    client: httpx.AsyncClient,
    endpoint: WebhookEndpoint,
    event: WebhookEvent,
    *,
    at: datetime,
    addresses: Addresses | None = None,
) -> Outcome:
    """One attempt: resolve (once a pass), check the addresses, POST to one (addresses.py), read at most MAX_BODY."""
    began = time.monotonic()
    outcome = Outcome(at=at)
    try:
        async with asyncio.timeout(TIMEOUT):  # the whole attempt, however slowly an answer trickles in
            url = httpx.URL(endpoint.url)
            # The name as saved and allowed: an international one in its ASCII form (url.host gives it back in
            # Unicode, which WEBHOOK_ALLOWED_HOSTS does not list), for the check, the lookup and TLS alike.
            host = url.raw_host.decode("ascii")
            safety.check_scheme(url.scheme, host)  # saved with DEBUG on, or a host since taken off the allowed list
            body = body_of(event)
            headers = signing.headers(endpoint, event.msg_id, at, body) | {
                "host": url.netloc.decode("ascii"),
                "accept-encoding": "identity",  # the 64 KB read and the 2 KB kept are of the answer as written
            }
            response = await (addresses or Addresses()).post(client, url, host, content=body, headers=headers)
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
    except (httpx.TimeoutException, TimeoutError):
        outcome.error = f"no answer within {TIMEOUT:g} s"
    except httpx.HTTPError as exc:
        outcome.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except Exception as exc:  # whatever it is, it ends in the log, and the delivery is tried again
        log.exception("webhook %s to endpoint %s", event.msg_id, endpoint.pk)
        outcome.error = f"{type(exc).__name__}: {exc}"
    outcome.duration_ms = round((time.monotonic() - began) * 1000)
    # The receiver's bytes go into text columns, where PostgreSQL refuses a NUL: a binary answer (an image, a
    # protocol buffer) failed the whole pass, recorded nothing and was sent again at every pass, for ever.
    outcome.snippet, outcome.error = outcome.snippet.replace("\x00", "\ufffd"), outcome.error.replace("\x00", "\ufffd")
    return outcome


@dataclass
class Pass:
    """What one pass did: attempts made, and whether the endpoint has more to send now (its job queues another)."""

    attempts: int = 0
    more: bool = False


def _subjects(due: list[WebhookDelivery]) -> list[list[WebhookDelivery]]:
    """The deliveries by subject, each subject's in id order, subjects in the order of their first delivery."""
    by_subject: dict[str, list[WebhookDelivery]] = {}
    for one in due:
        by_subject.setdefault(one.subject, []).append(one)
    return list(by_subject.values())


async def deliver(endpoint_id: int, *, transport: httpx.AsyncBaseTransport | None = None) -> int:
    """One pass over the endpoint's due deliveries; returns how many attempts were made."""
    return (await deliver_pass(endpoint_id, transport=transport)).attempts


async def deliver_pass(
    endpoint_id: int, *, transport: httpx.AsyncBaseTransport | None = None, keep: bool = False
) -> Pass:
    """One pass: send what is due (at most BATCH, or one probe), record it all, say whether more is due at once.
    `keep` (the worker's job): the endpoint's client, and its open connections, are kept for its next pass.

    Its database work runs in a thread of its own (ThreadSensitiveContext), not in the one thread all async jobs of
    the worker share otherwise (follow_calls keeps that one busy): passes of several endpoints do not queue behind
    each other or behind calls' jobs. Under async_to_sync (tests) it runs in the caller's thread, as before."""
    async with ThreadSensitiveContext():
        return await _pass(endpoint_id, transport, keep)


def _client(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    return httpx.AsyncClient(
        timeout=TIMEOUT, follow_redirects=False, limits=limits, transport=transport, trust_env=False, verify=_tls()
    )


# The worker's clients, one an endpoint (and event loop: the worker has one), kept between passes with the host
# they were made for: a pass reuses the connections the last one left open (and their TLS sessions) rather than
# opening one a delivery. Each connection is to an address a pass checked when it was made (the URL names the
# address, so one the host now resolves to is a new connection, checked); a client is made again when the
# endpoint's host changes, so a connection carries only the host its certificate was checked for.
_KEPT: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, tuple[bytes, httpx.AsyncClient]]] = (
    weakref.WeakKeyDictionary()
)


async def _kept_client(endpoint: WebhookEndpoint) -> httpx.AsyncClient:
    kept = _KEPT.setdefault(asyncio.get_running_loop(), {})
    netloc = httpx.URL(endpoint.url).netloc
    found = kept.get(endpoint.pk)
    if found is not None and found[0] == netloc and not found[1].is_closed:
        return found[1]
    if found is not None:
        await found[1].aclose()
    client = _client()
    kept[endpoint.pk] = (netloc, client)
    return client


async def _pass(endpoint_id: int, transport: httpx.AsyncBaseTransport | None, keep: bool) -> Pass:
    endpoint, due = await _db(_due)(endpoint_id, clock(), BATCH)
    if endpoint is None and keep:  # deleted: its kept client and connections go with it
        kept = _KEPT.get(asyncio.get_running_loop(), {}).pop(endpoint_id, None)
        if kept is not None:
            await kept[1].aclose()
    if endpoint is None or not due:
        return Pass()
    results: list[tuple[WebhookDelivery, Outcome]] = []
    async with contextlib.AsyncExitStack() as stack:
        if keep and transport is None:
            client = await _kept_client(endpoint)
            client.cookies.clear()  # a receiver's cookies last one pass, as with a client per pass
        else:
            client = await stack.enter_async_context(_client(transport))
        gate, addresses = asyncio.Semaphore(CONCURRENCY), Addresses()

        def down() -> bool:  # CONCURRENCY failures and no success: the endpoint fails as a whole, start no more
            return len(results) >= CONCURRENCY and not any(outcome.delivered for _, outcome in results)

        async def subject(deliveries: list[WebhookDelivery], endpoint: WebhookEndpoint = endpoint) -> None:
            for one in deliveries:  # in order; the first failure keeps the rest of its subject for later
                async with gate:
                    if down():
                        return
                    outcome = await send(client, endpoint, one.event, at=clock(), addresses=addresses)
                results.append((one, outcome))
                if not outcome.delivered:
                    return

        await asyncio.gather(*(subject(chain) for chain in _subjects(due)))
    released = await _db(record)(endpoint, results, now=clock())
    return Pass(attempts=len(results), more=len(due) >= BATCH or released)


# --- Recording a pass ---------------------------------------------------------------------------------------------


def _after(one: WebhookDelivery, outcome: Outcome, now: datetime, *, may_give_up: bool) -> bool:
    """Apply an attempt's outcome to the delivery; True when it was given up (24 hours of its failures, and
    `may_give_up`: the receiver took others in the same pass, so it fails on its own)."""
    one.attempts += 1
    one.last_attempt_at = outcome.at or now
    if outcome.delivered:
        one.status, one.delivered_at, one.failing_since = WebhookDelivery.Status.DELIVERED, now, None
        return False
    one.failing_since = one.failing_since or one.last_attempt_at
    if may_give_up and now - one.failing_since >= DISABLE_AFTER:
        one.status = WebhookDelivery.Status.FAILED
        return True
    one.next_attempt_at = one.last_attempt_at + _step(RETRY_AFTER, one.attempts)
    return False


def record(endpoint: WebhookEndpoint, results: list[tuple[WebhookDelivery, Outcome]], *, now: datetime) -> bool:
    """Write a pass's attempts and what follows from them: deliveries delivered, waiting their next try, given up;
    the endpoint's run of failures, its end, or the endpoint disabled. In a handful of statements, whatever the
    number of attempts. Returns whether a backlog was released (a probe succeeded)."""
    if not results:
        return False
    with transaction.atomic():
        ids = [one.pk for one, _ in results]
        # FOR NO KEY UPDATE: the fan-out's inserts (their foreign keys' KEY SHARE locks) do not wait on a pass.
        mine = WebhookDelivery.objects.select_for_update(no_key=True).filter(pk__in=ids)
        kept = set(mine.values_list("pk", flat=True))
        results = [(one, outcome) for one, outcome in results if one.pk in kept]  # others deleted meanwhile
        locked = WebhookEndpoint.objects.select_for_update(no_key=True).filter(pk=endpoint.pk).first()
        if locked is None or not results:
            return False
        # A pass where every attempt failed is the endpoint failing (down for a day, say): its deliveries are not
        # given up but wait, and the endpoint is disabled after 24 hours of it, so that Resume sends them all, each
        # subject in order, and no change goes missing; only a delivery refused while others go is given up.
        # But a delivery that was all the receiver could be offered (nothing of another call or contact waits) tells
        # the two apart no better in a day than in a pass: kept, it would disable the endpoint every day and, resumed,
        # be tried again alone for ever, holding its subject back. It is given up, naming it, and Send again brings
        # it back once the receiver takes it.
        whole = not any(outcome.delivered for _, outcome in results) and not _alone(endpoint, results, now)
        given_up = [(one, outcome) for one, outcome in results if _after(one, outcome, now, may_give_up=not whole)]
        WebhookAttempt.objects.bulk_create(
            WebhookAttempt(
                delivery=one,
                at=outcome.at or now,
                status_code=outcome.status_code,
                duration_ms=outcome.duration_ms,
                response_snippet=outcome.snippet,
                error=outcome.error[:2000],
            )
            for one, outcome in results
        )
        update_rows(WebhookDelivery, [one for one, _ in results], _WRITTEN)
        return _endpoint_after(locked, endpoint, results, given_up, now=now)


def _alone(endpoint: WebhookEndpoint, results: list[tuple[WebhookDelivery, Outcome]], now: datetime) -> bool:
    """Whether a pass's deliveries failing for DISABLE_AFTER were all the endpoint had to send: no pending delivery of
    another subject waits (read only when one of them is that old)."""
    old = any(one.failing_since is not None and now - one.failing_since >= DISABLE_AFTER for one, _ in results)
    if not old:
        return False
    subjects = {one.subject for one, _ in results}
    others = WebhookDelivery.objects.filter(endpoint_id=endpoint.pk, status=Pending).exclude(subject__in=subjects)
    return not others.exists()


# What a pass changes in its deliveries, and their types in PostgreSQL (update_rows).
_WRITTEN = {
    "attempts": "integer",
    "last_attempt_at": "timestamptz",
    "status": "text",
    "next_attempt_at": "timestamptz",
    "delivered_at": "timestamptz",
    "failing_since": "timestamptz",
}


def _endpoint_after(
    locked: WebhookEndpoint,
    endpoint: WebhookEndpoint,
    results: list[tuple[WebhookDelivery, Outcome]],
    given_up: list[tuple[WebhookDelivery, Outcome]],
    *,
    now: datetime,
) -> bool:
    """The endpoint after a pass: a success ends its run of failures (releasing the backlog if it was failing as a
    whole); a pass of failures alone starts or goes on with one; 410, 24 hours failing or a delivery given up
    disable it. Returns whether a backlog was released."""
    changes: dict[str, object] = {}
    released = False
    if any(outcome.delivered for _, outcome in results):
        if locked.retry_at is not None:  # failing as a whole until now: what waited behind the probe is due
            _release(locked, now)
            released = True
        if locked.failing_since or locked.retry_at or locked.failures:
            changes = {"failing_since": None, "retry_at": None, "failures": 0}
    else:  # every attempt of the pass failed: the endpoint itself is failing
        failures = locked.failures + 1
        changes = {
            "failing_since": locked.failing_since or now,
            "failures": failures,
            "retry_at": now + _step(PROBE_AFTER, failures),
        }
    last = results[-1][1]
    failing_since = changes.get("failing_since", locked.failing_since)
    if locked.enabled and any(outcome.status_code == 410 for _, outcome in results):
        changes |= {"enabled": False, "disabled_at": now, "disabled_reason": GONE_REASON}
    elif locked.enabled and given_up:  # named, even when the endpoint failed as a whole too (it alone was tried)
        one, outcome = given_up[0]
        reason = f"{one.event.type} of {one.subject} ({one.event.msg_id}) failed for 24 hours: {outcome.reason}"
        changes |= {"enabled": False, "disabled_at": now, "disabled_reason": reason}
    elif locked.enabled and isinstance(failing_since, datetime) and now - failing_since >= DISABLE_AFTER:
        changes |= {"enabled": False, "disabled_at": now, "disabled_reason": f"failed for 24 hours: {last.reason}"}
    if changes.get("enabled") is False:
        log.warning("webhook endpoint %s disabled: %s", locked.pk, changes["disabled_reason"])
    if changes:
        WebhookEndpoint.objects.filter(pk=locked.pk).update(**changes)
        for name, value in changes.items():
            setattr(endpoint, name, value)
    return released


def _release(endpoint: WebhookEndpoint, now: datetime) -> int:
    """A probe succeeded: every pending delivery of the endpoint is due now, but those that failed more often than
    the endpoint's run did (a delivery failing on its own: it keeps its back-off). Returns how many moved."""
    return (
        WebhookDelivery.objects.filter(
            endpoint_id=endpoint.pk, status=Pending, next_attempt_at__gt=now, attempts__lte=endpoint.failures
        )
        .filter(Q(last_attempt_at__gte=endpoint.failing_since) if endpoint.failing_since else Q())
        .update(next_attempt_at=now)
    )


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
