"""Outgoing webhooks (issue 21): 1,000 calls a minute fanned out to 3 endpoints, one receiver down and back, and
what endpoints add to placing a call. Prints figures against the issue's goals; asserts nothing about time.

The app is served as in production (uvicorn, `DEBUG=false`, a PostgreSQL database of its own, Redis), with
`manage.py worker` process(es) and vccsim as its own process, subscribed with `manage.py vcc_webhooks subscribe` so
that the calls move through their states (requested, placed, connected, ended) as vccsim plays them (its clock sped
up by --speed). Three receivers run in this process: asyncio HTTP servers on 127.0.0.1 (allowed over plain http by
WEBHOOK_ALLOWED_HOSTS) that verify every delivery's signature with the `standardwebhooks` library and record its
webhook-id and arrival time. The endpoints are added with `manage.py webhook_endpoint add URL --events '*'`.

1. Placing, one at a time (as api_bench.py part 1): --overhead-calls through `POST /api/v1/calls` before any
   endpoint exists, then as many more (other agents) once the 3 endpoints exist: the difference of the medians.
2. Load: --rate calls a minute through `POST /api/v1/calls` (a token and an Idempotency-Key each) for --minutes,
   round-robin over enough agents that none is still on a call when its turn comes again. Every event written is
   checked at every receiver: latency (the event's created_at to its arrival), missing, duplicated, order per call.
3. Outage: receiver 3 stops listening for --outage-minutes while the load goes on, then listens again and the load
   stops; the bench waits (at most --drain-minutes) until every receiver has every event, and says how long it took.

    .venv/bin/python bench/webhooks_bench.py [--rate 1000] [--minutes 3] [--outage-minutes 10] [--speed 10]
    .venv/bin/python bench/webhooks_bench.py --quick     # 300 calls a minute, 0.5 + 0.5 min, 10 calls measured
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import math
import os
import secrets
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _harness as h
import api_bench
import events_bench as eb
import httpx
from _webhook_receiver import Arrival, Receiver

CALL_LIFE = 3 + 5 + 60  # vccsim's answered call in clock seconds: the agent's phone rings, the number rings, talk
AGENT_MARGIN = 15.0  # real seconds an agent is left after its call ends in vccsim before it places another
IN_FLIGHT = 64  # API requests open at once, at most
ENDPOINTS_TTL = 6.0  # seconds: the app's processes learn an endpoint exists within 5 s (calls/webhooks/outbox.py)
WARMUP = api_bench.WARMUP
UNFINISHED = ("requested", "live")

ADD_ENDPOINT = """
import json
from calls.models import WebhookEndpoint
WebhookEndpoint.objects.create(url={url!r}, description="bench", event_types=["*"], secret={secret!r})
print(json.dumps(True))
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--quick", action="store_true", help="small numbers, for a try")
    add("--rate", type=h.positive, help="calls placed a minute (default 1000; quick 300)")
    add("--minutes", type=float, help="minutes of load with every receiver up (default 3; quick 0.5)")
    add("--outage-minutes", type=float, help="minutes receiver 3 is down, the load going on (default 10; quick 0.5)")
    add("--drain-minutes", type=float, help="wait at most this long for every event after it is back (default 40)")
    add("--overhead-calls", type=int, help="calls placed one at a time without endpoints, and with (default 50)")
    add("--speed", type=float, help="vccsim's clock speed (default 10: an answered call lasts 6.8 s)")
    add("--workers", type=h.positive, default=1, help="uvicorn worker processes")
    add("--job-workers", type=h.positive, default=1, help="`manage.py worker` processes")
    add("--db-name", default="vccweb_webhooks_bench", help="the bench's PostgreSQL database, dropped and created")
    add("--redis-db", metavar="N", type=int, default=5, help="the bench's Redis database, emptied")
    add("--keep", action="store_true", help="keep the bench database and Redis db afterwards")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "rate": 300 if quick else 1000,
        "minutes": 0.5 if quick else 3.0,
        "outage_minutes": 0.5 if quick else 10.0,
        "drain_minutes": 3.0 if quick else 40.0,
        "overhead_calls": 10 if quick else 50,
        "speed": 20.0 if quick else 10.0,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.db_conn_max_age, args.sim_faults = 0, None  # what _harness's helpers read
    return args


def verdict(met: bool) -> str:
    return "PASS" if met else "MISS"


def pool_size(args: argparse.Namespace) -> int:
    """Agents taking turns: enough that each one's call has ended (with a margin) before its next turn."""
    return max(4, math.ceil(args.rate / 60 * (CALL_LIFE / args.speed + AGENT_MARGIN)))


# --- The app's side ----------------------------------------------------------------------------------------------


def add_endpoints(env: dict[str, str], receivers: list[Receiver]) -> str:
    """Each receiver's endpoint, subscribed to '*', through the management command. The secret is made here and
    given with --secret, so that a receiver knows it before the first delivery can arrive."""
    how = "manage.py webhook_endpoint add URL --events '*' --secret …"
    for receiver in receivers:
        receiver.secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        command = ["manage.py", "webhook_endpoint", "add", receiver.url, "--events", "*", "--secret", receiver.secret]
        try:
            h.run_python([*command, "--description", f"bench {receiver.name}"], env=env)
        except RuntimeError as e:
            if "Unknown command" not in str(e):
                raise
            how = "WebhookEndpoint.objects.create (no webhook_endpoint command in this tree)"
            eb.shell(env, ADD_ENDPOINT.format(url=receiver.url, secret=receiver.secret))
    return how


def unfinished_calls() -> int:
    return eb.query("SELECT count(*) FROM calls_call WHERE state = ANY(%s)", (list(UNFINISHED),))[0][0]


def last_event_id() -> int:
    return eb.query("SELECT coalesce(max(id), 0) FROM calls_webhookevent")[0][0]


@dataclass
class Placed:
    latency_ms: float
    status: int | None
    text: str = ""
    at: float = 0.0  # time.time() when it was sent


async def place_load(
    client: httpx.AsyncClient, pool: list[tuple[str, dict[str, Any]]], rate: int, seconds: float, first: int
) -> list[Placed]:
    """rate calls a minute for seconds, open loop (each sent when due), the agents taking turns from index first."""
    total = int(rate * seconds / 60)
    gate = asyncio.Semaphore(IN_FLIGHT)
    placed: list[Placed] = []

    async def one(i: int) -> None:
        key, click = pool[i % len(pool)]
        headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": str(uuid.uuid4())}
        async with gate:
            sent, started = time.time(), time.perf_counter()
            try:
                response = await client.post(
                    "/api/v1/calls", json={"to": click["number"], "contact": click["contact"]}, headers=headers
                )
                status, text = response.status_code, "" if response.status_code == 201 else response.text[:200]
            except httpx.HTTPError as e:
                status, text = None, h.error_text(e)
        placed.append(Placed(h.elapsed_ms(started), status, text, sent))

    origin = time.perf_counter()
    tasks = []
    for i in range(total):
        delay = origin + i * 60 / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(first + i)))
    await asyncio.gather(*tasks)
    return placed


def print_placed(label: str, placed: list[Placed], seconds: float) -> None:
    statuses = Counter(p.status for p in placed)
    refused = Counter(p.text for p in placed if p.status != 201)
    lat = [p.latency_ms for p in placed if p.status == 201]
    print(
        f"   {label}: {len(placed):,} calls in {seconds:.0f} s ({len(placed) / seconds * 60:,.0f} a minute); "
        f"201: {statuses[201]:,}, 409 busy: {statuses[409]:,}, other: {len(placed) - statuses[201] - statuses[409]:,}"
        f"; POST p50 {api_bench.percentile(lat, 50):.0f} ms, p95 {api_bench.percentile(lat, 95):.0f} ms"
    )
    for text, count in refused.most_common(3):
        print(f"     {count:,} × {text}")


def print_by_minute(placed: list[Placed], receiver: Receiver, written: dict[str, Written], ids: range) -> None:
    """POST p95 and the receiver's delivery p95 in each minute of a phase (by when the call was sent, and when the
    event was written): whether a slowdown builds up or comes at once."""
    if not placed:
        return
    origin = min(p.at for p in placed)
    posts: defaultdict[int, list[float]] = defaultdict(list)
    for p in placed:
        if p.status == 201:
            posts[int((p.at - origin) // 60)].append(p.latency_ms)
    deliveries: defaultdict[int, list[float]] = defaultdict(list)
    for m, a in first_arrivals(receiver).items():
        if m in written and written[m].id in ids:
            # An event of the phase written before its first POST (a call of the phase before ending) is the first
            # minute's: not a minute before it, which has no POST ("0: 0 ms").
            minute = max(0, int((written[m].created - origin) // 60))
            deliveries[minute].append(a.at - written[m].created)
    minutes = sorted(set(posts) | set(deliveries))
    if len(minutes) < 2:
        return
    shown = "; ".join(
        f"{m + 1}: {api_bench.percentile(posts[m], 95) if posts[m] else 0:,.0f} ms, "
        f"{api_bench.percentile(deliveries[m], 95) if deliveries[m] else 0:.2f} s"
        for m in minutes
    )
    print(f"   by minute (POST p95, {receiver.name}'s delivery p95): {shown}")


# --- Checks ----------------------------------------------------------------------------------------------------------


@dataclass
class Written:
    id: int
    subject: str
    type: str
    created: float  # epoch seconds


def events_since(ready: float) -> dict[str, Written]:
    rows = eb.query(
        "SELECT msg_id, id, subject, type, extract(epoch FROM created_at) FROM calls_webhookevent "
        "WHERE created_at >= to_timestamp(%s) AND type <> 'webhook.test' ORDER BY id",
        (ready,),
    )
    return {m: Written(i, s, t, float(c)) for m, i, s, t, c in rows}


def first_arrivals(receiver: Receiver) -> dict[str, Arrival]:
    first: dict[str, Arrival] = {}
    for arrival in receiver.arrivals:
        first.setdefault(arrival.msg_id, arrival)
    return first


def latencies(receiver: Receiver, written: dict[str, Written], ids: range) -> list[float]:
    return [
        a.at - written[m].created for m, a in first_arrivals(receiver).items() if m in written and written[m].id in ids
    ]


def fanout_lags(receivers: list[Receiver], ids: range) -> list[float]:
    """Seconds from each event written to its delivery row (dispatch_webhooks' fan-out), every receiver's."""
    rows = eb.query(
        "SELECT extract(epoch FROM d.created_at - v.created_at) FROM calls_webhookdelivery d "
        "JOIN calls_webhookendpoint e ON e.id = d.endpoint_id JOIN calls_webhookevent v ON v.id = d.event_id "
        "WHERE e.url = ANY(%s) AND v.id BETWEEN %s AND %s",
        ([r.url for r in receivers], ids.start, ids.stop - 1),
    )
    return [float(lag) for (lag,) in rows]


def out_of_order(receiver: Receiver, written: dict[str, Written]) -> tuple[int, int, str]:
    """Subjects (calls, contacts) whose events first arrived in another order than written: (subjects, bad, example)."""
    seen: dict[str, list[int]] = defaultdict(list)
    for msg_id in first_arrivals(receiver):  # dicts keep the order of first arrival
        if msg_id in written:
            seen[written[msg_id].subject].append(written[msg_id].id)
    bad = [subject for subject, ids in seen.items() if ids != sorted(ids)]
    example = ""
    if bad:
        by_id = {w.id: w.type for w in written.values()}
        example = f"{bad[0]}: " + ", ".join(by_id[i] for i in seen[bad[0]])
    return len(seen), len(bad), example


def seconds_text(values: list[float]) -> str:
    if not values:
        return "none"
    return (
        f"p50 {api_bench.percentile(values, 50):.2f} s, p95 {api_bench.percentile(values, 95):.2f} s, "
        f"max {max(values):.2f} s ({len(values):,})"
    )


def pending_of(receiver: Receiver) -> str:
    """What the engine holds for this receiver's endpoint: pending deliveries and when their next tries are due."""
    rows = eb.query(
        "SELECT d.attempts, extract(epoch FROM d.next_attempt_at - now()) FROM calls_webhookdelivery d "
        "JOIN calls_webhookendpoint e ON e.id = d.endpoint_id WHERE e.url = %s AND d.status = 'pending'",
        (receiver.url,),
    )
    if not rows:
        return "no delivery pending"
    waits = [float(w or 0) for _, w in rows]
    tried = Counter(a for a, _ in rows)
    ((failures, probe),) = eb.query(
        "SELECT failures, extract(epoch FROM retry_at - now()) FROM calls_webhookendpoint WHERE url = %s",
        (receiver.url,),
    )
    gate = "" if probe is None else f"; the endpoint's next probe in {float(probe):.0f} s ({failures} failed passes)"
    return (
        f"{len(rows):,} deliveries pending (by attempts made: "
        + ", ".join(f"{a}: {n:,}" for a, n in sorted(tried.items()))
        + f"); their own next tries due in {min(waits):.0f} s to {max(waits):.0f} s{gate}"
    )


def still_pending(receiver: Receiver) -> set[str]:
    """webhook-ids the engine still means to send this receiver (pending deliveries)."""
    rows = eb.query(
        "SELECT v.msg_id FROM calls_webhookdelivery d JOIN calls_webhookendpoint e ON e.id = d.endpoint_id "
        "JOIN calls_webhookevent v ON v.id = d.event_id WHERE e.url = %s AND d.status = 'pending'",
        (receiver.url,),
    )
    return {row[0] for row in rows}


def delivery_states(receiver: Receiver) -> str:
    rows = eb.query(
        "SELECT d.status, count(*), sum(d.attempts) FROM calls_webhookdelivery d JOIN calls_webhookendpoint e "
        "ON e.id = d.endpoint_id WHERE e.url = %s GROUP BY d.status ORDER BY d.status",
        (receiver.url,),
    )
    return ", ".join(f"{status} {n:,}" for status, n, _ in rows) + f"; attempts {sum(a for *_, a in rows):,}"


async def wait_delivered(receivers: list[Receiver], ready: float, cap: float) -> tuple[bool, float]:
    """Until no call is unfinished and every receiver has every event written, or cap seconds."""
    started = time.monotonic()
    while time.monotonic() - started < cap:
        unfinished = await asyncio.to_thread(unfinished_calls)
        count = (await asyncio.to_thread(eb.query, "SELECT count(*) FROM calls_webhookevent "
                 "WHERE created_at >= to_timestamp(%s) AND type <> 'webhook.test'", (ready,)))[0][0]  # fmt: skip
        if not unfinished and all(len(r.received()) >= count for r in receivers):
            written = await asyncio.to_thread(events_since, ready)
            if all(set(written) <= r.received() for r in receivers):
                return True, time.monotonic() - started
        await asyncio.sleep(1.0)
    return False, time.monotonic() - started


# --- The run ---------------------------------------------------------------------------------------------------------


async def overhead_part(
    app_url: str,
    env: dict[str, str],
    data: dict[str, Any],
    keys: dict[str, str],
    receivers: list[Receiver],
    n: int,
    uvicorn: tuple[int, ...],
) -> tuple[str, float]:
    """Placing one at a time without endpoints, then with 3: api_bench.py's part 1 twice. Adds the endpoints."""
    side = n + WARMUP
    without = {"users": data["users"][:side], "clicks": data["clicks"][:side]}
    with_ = {"users": data["users"][side : 2 * side], "clicks": data["clicks"][side : 2 * side]}
    await api_bench.warm(app_url, without)
    await api_bench.warm(app_url, with_)
    cpu = h.cpu_ms(uvicorn)
    before = (await api_bench.place_through_api(app_url, without, keys))[WARMUP:]
    cpu_before = (h.cpu_ms(uvicorn) - cpu) / (n + WARMUP)
    how = await asyncio.to_thread(add_endpoints, env, receivers)
    ready = time.time()
    await asyncio.sleep(ENDPOINTS_TTL)  # uvicorn and the worker learn that endpoints exist
    cpu = h.cpu_ms(uvicorn)
    after = (await api_bench.place_through_api(app_url, with_, keys))[WARMUP:]
    cpu_after = (h.cpu_ms(uvicorn) - cpu) / (n + WARMUP)
    b50, a50 = api_bench.percentile(before, 50), api_bench.percentile(after, 50)
    print(f"\n1. Placing a call through the API, one at a time: {n} with no endpoint, then {n} with 3 endpoints ('*')")
    print(f"   endpoints added with {how}")
    print(
        f"   no endpoint: p50 {b50:.1f} ms, p95 {api_bench.percentile(before, 95):.1f} ms; 3 endpoints: "
        f"p50 {a50:.1f} ms, p95 {api_bench.percentile(after, 95):.1f} ms; "
        f"more with endpoints, p50: {a50 - b50:+.1f} ms (goal ≤ 1 ms: {verdict(a50 - b50 <= 1)})"
    )
    print(
        f"   uvicorn's CPU a call (warm-ups included; less swayed by the machine's other load than the times): "
        f"{cpu_before:.1f} ms with no endpoint, {cpu_after:.1f} ms with 3 ({cpu_after - cpu_before:+.1f} ms)"
    )
    return how, ready


async def scenario(
    args: argparse.Namespace,
    app_url: str,
    env: dict[str, str],
    data: dict[str, Any],
    keys: dict[str, str],
    watch: h.Watch,
) -> None:
    receivers = [Receiver(f"r{i}") for i in (1, 2, 3)]
    for receiver in receivers:
        await receiver.start()
    side = args.overhead_calls + WARMUP
    _, ready = await overhead_part(app_url, env, data, keys, receivers, args.overhead_calls, watch["uvicorn"])
    users, clicks = data["users"][2 * side :], data["clicks"][2 * side :]
    pool = [(keys[u["username"]], c) for u, c in zip(users, clicks, strict=True)]
    while await asyncio.to_thread(unfinished_calls):  # part 1's calls end before the load starts
        await asyncio.sleep(0.5)

    limits = httpx.Limits(max_connections=IN_FLIGHT, keepalive_expiry=2)
    async with httpx.AsyncClient(base_url=app_url, timeout=30, trust_env=False, limits=limits) as client:
        print(
            f"\n2. Load: {args.rate:,} calls a minute through POST /api/v1/calls for {args.minutes:g} min, "
            f"{len(pool)} agents taking turns (vccsim ×{args.speed:g}: an answered call lasts "
            f"{CALL_LIFE / args.speed:.1f} s), 3 receivers up"
        )
        a_start, started, cpu_before = last_event_id(), time.monotonic(), h.cpu_snapshot(watch)
        load_a = await place_load(client, pool, args.rate, args.minutes * 60, 0)
        a_seconds = time.monotonic() - started
        cpu = {name: used - cpu_before[name] for name, used in h.cpu_snapshot(watch).items()}
        print_placed("placed", load_a, a_seconds)
        busy = cpu.pop(h.MACHINE) / (a_seconds * 1000 * (os.cpu_count() or 1))
        shown = ", ".join(f"{name} {used / max(1, len(load_a)):.0f}" for name, used in cpu.items())
        print(f"   CPU ms a call: {shown}; all cores {busy:.0%} busy (whoever used them)")
        b_start = last_event_id()
        down = receivers[2]
        await down.stop()
        down.down_at = time.time()
        started = time.monotonic()
        load_b = await place_load(client, pool, args.rate, args.outage_minutes * 60, len(load_a))
        b_seconds = time.monotonic() - started
        await down.start()
        down.up_at = time.time()
        b_end = last_event_id()
    backlog = await asyncio.to_thread(pending_of, down)
    complete, drained = await wait_delivered(receivers, ready, args.drain_minutes * 60)
    backlog_drained = max((a.at for a in down.arrivals), default=down.up_at) - down.up_at

    written = await asyncio.to_thread(events_since, ready)
    in_a, in_b = range(a_start + 1, b_start + 1), range(b_start + 1, b_end + 1)
    kinds = Counter(w.type for w in written.values() if w.id in in_a)
    shown = ", ".join(f"{kind} {n:,}" for kind, n in kinds.most_common())
    print(f"   events written: {kinds.total():,} during the load ({shown})")
    for receiver in receivers:
        lat = latencies(receiver, written, in_a)
        print(f"   {receiver.name}: latency, event written → arrival: {seconds_text(lat)}")
    every = [x for r in receivers for x in latencies(r, written, in_a)]
    p95 = api_bench.percentile(every, 95)
    print(f"   all 3 receivers: {seconds_text(every)} (goal p95 ≤ 2 s: {verdict(p95 <= 2)})")
    fanout = await asyncio.to_thread(fanout_lags, receivers, in_a)
    print(f"   of which the fan-out (event written → its delivery rows, dispatch_webhooks): {seconds_text(fanout)}")
    print_by_minute(load_a, receivers[0], written, in_a)

    print(f"\n3. Outage: {down.name} down for {args.outage_minutes:g} min (connections refused), the load going on")
    print_placed("placed meanwhile", load_b, b_seconds)
    print(f"   events written meanwhile: {sum(w.id in in_b for w in written.values()):,}")
    for receiver in receivers[:2]:
        print(f"   {receiver.name} (up) meanwhile: {seconds_text(latencies(receiver, written, in_b))}")
    print_by_minute(load_b, receivers[0], written, in_b)
    print(f"   when {down.name} came back: {backlog}")
    if complete:
        print(
            f"   every receiver had every event {drained:.0f} s after {down.name} came back; its backlog's last "
            f"delivery arrived {backlog_drained:.0f} s after it was up"
        )
    else:
        print(f"   NOT every event delivered {drained:.0f} s after {down.name} came back (cap --drain-minutes); "
              f"{await asyncio.to_thread(pending_of, down)}")  # fmt: skip

    print(f"\n4. Every event, every receiver ({len(written):,} events written since the endpoints existed)")
    for receiver in receivers:
        missing = set(written) - receiver.received()
        waiting = await asyncio.to_thread(still_pending, receiver)
        lost = missing - waiting
        counts = Counter(a.msg_id for a in receiver.arrivals)
        twice = sum(1 for n in counts.values() if n > 1)
        subjects, bad, example = out_of_order(receiver, written)
        refused = f"; signatures refused: {dict(receiver.refused)}" if receiver.refused else ""
        print(
            f"   {receiver.name}: {len(receiver.arrivals):,} deliveries, {len(counts):,} webhook-ids; not received "
            f"{len(missing):,} ({len(missing & waiting):,} still pending in the engine, lost {len(lost):,}: goal 0 "
            f"{verdict(not lost)}), received twice {twice:,}; out of order: {bad} of {subjects:,} calls and contacts "
            f"(goal 0: {verdict(bad == 0)}){refused}"
        )
        print(f"     the engine's deliveries: {await asyncio.to_thread(delivery_states, receiver)}")
        if example:
            print(f"     e.g. {example}")
    for receiver in receivers:
        await receiver.stop()


def run(args: argparse.Namespace, tmp: Path, managed: list[h.Managed]) -> int:
    side = args.overhead_calls + WARMUP
    agents = h.agent_ids(2 * side + pool_size(args))
    numbers = h.unique_numbers(len(agents))
    pg_version, redis_version = h.reset_database(), h.flush_redis()
    uptime = Path("/proc/uptime").read_text().split()[0]
    print(
        f"webhooks bench{' (quick)' if args.quick else ''}: PostgreSQL {pg_version}, Redis {redis_version}, "
        f"{os.cpu_count()} cores, up {float(uptime) / 60:.0f} min, load average "
        + ", ".join(f"{v:.2f}" for v in os.getloadavg())
        + " before"
    )
    sim, sim_url = h.start_sim(args, agents, tmp, managed)
    env = h.app_env(sim_url, args) | {
        "STATIC_ROOT": str(tmp / "static"),
        "VCC_WEBHOOK_SECRETS": base64.b64encode(secrets.token_bytes(32)).decode(),
        "VCC_CLIENT_ID": "sandbox-client",
        "VCC_CLIENT_SECRET": "sandbox-secret",
        "WEB_CONCURRENCY": str(args.workers),
        "WEBHOOK_ALLOWED_HOSTS": h.HOST,
        # The bench's own limits are not what is measured: VCC's budget, and the API's per token.
        "VCC_REQUESTS_PER_MINUTE": "1000000",
        "API_RATE_PER_MINUTE": "1000000",
        "API_CALL_RATE_PER_MINUTE": "1000000",
    }
    h.run_python(["manage.py", "migrate", "--no-input"], env=env)
    h.run_python(["manage.py", "collectstatic", "--no-input", "--verbosity", "0"], env=env)
    data = h.create_data(env, agents, numbers, "x" + uuid.uuid4().hex)
    keys = api_bench.tokens(env, [u["username"] for u in data["users"]], ["calls:write"])
    app, app_url = h.start_app(args, env, tmp, managed)
    workers = [h.start(f"worker-{i + 1}", [sys.executable, "manage.py", "worker"], env, tmp, managed)
               for i in range(args.job_workers)]  # fmt: skip
    deadline = time.monotonic() + h.STARTUP_SECONDS
    while not eb.query("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'")[0][0]:
        if time.monotonic() > deadline or any(w.process.poll() is not None for w in workers):
            raise RuntimeError(f"the worker ran no job:\n{h.log_tail(workers[0])}")
        time.sleep(0.2)
    out = h.run_python(["manage.py", "vcc_webhooks", "subscribe", "--url", f"{app_url}/vcc/events/"], env=env)
    print(f"{out.strip()}; uvicorn ×{args.workers}, {args.job_workers} worker process(es)")
    watch = {"uvicorn": app.worker_pids, "worker": tuple(w.process.pid for w in workers), "bench": (os.getpid(),)}
    asyncio.run(scenario(args, app_url, env, data, keys, watch))
    print(f"\ncalls by state: {dict(h.call_rows())}")
    print(f"load average {', '.join(f'{v:.2f}' for v in os.getloadavg())} after")
    h.print_app_log(app)
    for worker in workers:
        eb.print_errors(worker)
    return 0


def main(argv: list[str] | None = None) -> int:
    return h.run_bench(run, parse_args(argv), prefix="vccweb-webhooks-bench-")


if __name__ == "__main__":
    sys.exit(main())
