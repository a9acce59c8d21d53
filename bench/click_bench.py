"""Fire click-to-call clicks at vccweb served as in production, against vccsim, and print throughput and latency.

The same number of calls is then sent straight to vccsim, so the app's own overhead per click is visible.
Everything runs on 127.0.0.1 and under a temporary directory; every process started here is stopped at the end.
A benchmark, not a test: it prints figures and asserts nothing about time. See bench/README.md.

    .venv/bin/python bench/click_bench.py [--clicks N] [--concurrency C] [--workers W] [--users U]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import secrets
import ssl
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import _harness as h  # bench/_harness.py: the scripts import each other from bench/
import django
import httpx
import uvicorn

CALL_STATE = re.compile(r'data-call-state="([A-Za-z_-]+)"')


@dataclass
class Outcome:
    latency_ms: float
    ok: bool
    status: int | None = None
    detail: str = ""  # why it failed, in plain text


@dataclass
class Phase:
    label: str
    outcomes: list[Outcome]
    seconds: float
    cpu: dict[str, float]  # CPU ms used during the phase, by process name
    listen_drops: int  # connections the kernel dropped from full listen queues meanwhile (whole machine)

    @property
    def ok(self) -> int:
        return sum(o.ok for o in self.outcomes)

    @property
    def failed(self) -> int:
        return len(self.outcomes) - self.ok

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the latencies, in ms."""
        values = sorted(o.latency_ms for o in self.outcomes)
        if not values:
            return float("nan")
        rank = max(1, -(-len(values) * p // 100))  # ceil without floats drifting
        return values[int(rank) - 1]


@dataclass
class Side:
    """One side's phases: warm-up, the run at --concurrency, and the run one request at a time."""

    warmup: Phase
    loaded: Phase | None = None  # None: the app does not serve the click endpoint
    serial: Phase | None = None
    observed: list[Phase] = field(default_factory=list)  # another user's page loads during the loaded phase

    @property
    def phases(self) -> list[Phase]:
        return [p for p in (self.warmup, self.loaded, self.serial) if p is not None]


Job = Callable[[], Awaitable[Outcome]]
Observer = Callable[[asyncio.Event], Awaitable[list[Phase]]]  # runs beside the loaded phase until the event is set


# --- Arguments -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add = parser.add_argument
    add("--clicks", metavar="N", type=h.positive, default=400, help="measured clicks (and as many direct calls)")
    add("--concurrency", metavar="C", type=h.positive, default=16, help="requests in flight")
    add("--workers", metavar="W", type=h.positive, default=2, help="uvicorn worker processes")
    add(
        "--users",
        metavar="U",
        type=h.positive,
        help="agents clicking, at least C; one click each at a time (default: one agent per measured click)",
    )
    add("--page", choices=("contact", "list"), default="contact", help="the page whose Call button is clicked")
    add("--serial", metavar="N", type=int, default=40, help="then requests one at a time: latency without queueing")
    add("--warmup", metavar="N", type=int, default=8, help="unmeasured clicks (and direct calls) first")
    add(
        "--speed",
        type=float,
        default=10_000,
        help="vccsim clock speed: a call must end before its agent clicks again, and be remembered until then",
    )
    add(
        "--db-conn-max-age",
        metavar="S",
        type=int,
        default=0,
        help="the app's DB_CONN_MAX_AGE; above 0 it runs PostgreSQL out of connections (see README)",
    )
    add(
        "--sim-faults",
        metavar="JSON",
        type=json.loads,
        help='vccsim start-up faults, e.g. \'{"place_call": {"latencyMs": 500}}\' for a slow VCC (both sides see them)',
    )
    add("--max-seconds", metavar="S", type=float, default=300, help="give up on a phase after this long")
    add(
        "--observe",
        metavar="PATHS",
        type=lambda text: [p.strip() for p in text.split(",") if p.strip()],
        default=[],
        help="during the measured clicks, another logged-in user GETs these paths in turn (e.g. /healthz,/contacts/)"
        " and their latencies are reported",
    )
    add("--db-pool-max-size", metavar="N", type=int, help="the app's DB_POOL_MAX_SIZE (default: the app's)")
    add("--db-pool-timeout", metavar="S", type=float, help="the app's DB_POOL_TIMEOUT (default: the app's)")
    add("--db-name", default=h.DB_NAME, help="the bench's PostgreSQL database, dropped and created afresh")
    add("--redis-db", metavar="N", type=int, default=h.REDIS_DB, help="the bench's Redis database, emptied")
    add("--keep", action="store_true", help="keep the bench database and Redis db afterwards")
    add(
        "--throttle-reads",
        metavar="N",
        type=int,
        default=5000,
        help="then time the per-person click throttle's cache read N times with the app's settings, and as many "
        "times without it (0: not)",
    )
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", args.db_name):
        parser.error("--db-name: lower-case letters, digits and underscores")
    # By default every measured click is its agent's only one: at vccsim's --speed a call is over at once, but
    # nothing follows it here, so the app's log still has it live, and the agent's next click would first ask VCC
    # about it (the click then pays for a follow too). Fewer users measure that path as well.
    args.users = args.users or max(args.concurrency, args.clicks + args.serial)
    if args.users < args.concurrency:
        parser.error("--users must be at least --concurrency: each user has at most one click in flight")
    if args.warmup < 0 or args.serial < 0:
        parser.error("--warmup and --serial cannot be negative")
    return args


def warmup_users(args: argparse.Namespace) -> int:
    return min(args.warmup, args.concurrency)


# --- The app -----------------------------------------------------------------------------------------------


async def app_click(client: httpx.AsyncClient, target: dict[str, Any], page: str) -> Outcome:
    """Post what the Call button's htmx form posts: from the contact page (swaps #dialer) or the list (#list-call)."""
    contact = target["contact"]
    form = {
        "call": f"me:{target['phone']}",  # the button the form submits: via me, this number
        "phone": str(target["phone"]),  # phone and via: the same choice as first drafted in issue 4; ignored now
        "via": "me",
        "request_id": str(uuid.uuid4()),
        "clid": "",
    }
    page_url = f"{client.base_url}contacts/{contact}/" if page == "contact" else f"{client.base_url}contacts/"
    headers = {
        "HX-Request": "true",
        "HX-Target": "dialer" if page == "contact" else "list-call",
        "HX-Current-URL": page_url,
        "X-CSRFToken": client.cookies.get("csrftoken") or "",
        "Referer": page_url,
    }
    started = time.perf_counter()
    try:
        response = await client.post(f"/contacts/{contact}/call/", data=form, headers=headers)
    except httpx.HTTPError as e:
        return Outcome(h.elapsed_ms(started), False, None, h.error_text(e))
    latency = h.elapsed_ms(started)
    if response.status_code != 200:
        return Outcome(
            latency, False, response.status_code, f"HTTP {response.status_code}: {h.page_text(response.text)}"
        )
    match = CALL_STATE.search(response.text)
    if match is None:
        return Outcome(latency, False, 200, f"no data-call-state: {h.page_text(response.text)}")
    if match.group(1) == "live":
        return Outcome(latency, True, 200)
    # The call panel starts at the marker: its text says what went wrong.
    return Outcome(latency, False, 200, f"{match.group(1)}: {h.page_text(response.text[match.start() :])}")


# --- vccsim direct -------------------------------------------------------------------------------------------


async def sim_token(client: httpx.AsyncClient) -> str:
    response = await client.post(
        "/v0/oauth2/token", data={"grant_type": "client_credentials"}, auth=(h.ACCOUNT_KEY, h.API_TOKEN)
    )
    response.raise_for_status()
    return response.json()["access_token"]


async def direct_call(client: httpx.AsyncClient, token: str, agent: str, number: str) -> Outcome:
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": "application/json;version=6",
    }
    body = json.dumps({"from": {"agentId": agent}, "to": {"telephoneNumber": number}})
    started = time.perf_counter()
    try:
        response = await client.post(f"/v0/{h.ACCOUNT_KEY}/calls/", content=body, headers=headers)
    except httpx.HTTPError as e:
        return Outcome(h.elapsed_ms(started), False, None, h.error_text(e))
    latency = h.elapsed_ms(started)
    if response.status_code == 201:
        return Outcome(latency, True, 201)
    return Outcome(latency, False, response.status_code, f"HTTP {response.status_code}: {response.text[:200]}")


def sim_calls_placed(sim_url: str) -> int:
    with httpx.Client(base_url=sim_url, timeout=10.0, trust_env=False) as client:
        response = client.get("/_sim/state")
        response.raise_for_status()
        return int(response.json()["callsPlaced"])


# --- Running a phase -------------------------------------------------------------------------------------------


def lanes_round_robin[T](items: list[T], lanes: int) -> list[list[T]]:
    """Item i goes to lane i % lanes, in order: one lane per user, so a user has one click in flight at a time."""
    return [items[lane::lanes] for lane in range(lanes)]


async def run_lanes(
    label: str, lanes: list[list[Job]], concurrency: int, args: argparse.Namespace, watch: h.Watch
) -> Phase:
    """Run each lane's jobs one after another, all lanes together, at most `concurrency` jobs at once."""
    semaphore = asyncio.Semaphore(concurrency)
    outcomes: list[Outcome] = []

    async def lane(jobs: list[Job]) -> None:
        for job in jobs:
            async with semaphore:
                outcomes.append(await job())

    cpu_before = h.cpu_snapshot(watch)
    drops_before = h.listen_drops()
    started = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(*(lane(jobs) for jobs in lanes if jobs)), args.max_seconds)
    except TimeoutError:
        raise RuntimeError(f"{label}: gave up after {args.max_seconds:.0f} s, {len(outcomes)} answered") from None
    seconds = time.perf_counter() - started
    cpu = {name: used - cpu_before[name] for name, used in h.cpu_snapshot(watch).items()}
    return Phase(label, outcomes, seconds, cpu, h.listen_drops() - drops_before)


async def run_side(
    label: str,
    lanes: Callable[..., list[list[Job]]],  # (items, warm=False, serial=False): one lane of jobs per user
    items: list[Any],
    args: argparse.Namespace,
    watch: h.Watch,
    observer: Observer | None = None,
) -> Side:
    """Warm up, then time --clicks requests at --concurrency, then --serial requests one at a time."""
    warm_items = items[: args.warmup]
    loaded_items = items[args.warmup : args.warmup + args.clicks]
    serial_items = items[args.warmup + args.clicks :]
    side = Side(await run_lanes(f"{label} warm-up", lanes(warm_items, warm=True), args.concurrency, args, watch))
    if side.warmup.outcomes and all(o.status == 404 for o in side.warmup.outcomes):
        return side
    stop = asyncio.Event()
    watching = asyncio.ensure_future(observer(stop)) if observer else None
    try:
        side.loaded = await run_lanes(label, lanes(loaded_items), args.concurrency, args, watch)
    finally:
        stop.set()
        if watching is not None:
            side.observed = await watching
    if serial_items:
        side.serial = await run_lanes(f"{label}, one at a time", lanes(serial_items, serial=True), 1, args, watch)
    return side


async def app_side(app_url: str, data: dict[str, Any], args: argparse.Namespace, watch: h.Watch) -> Side:
    """Give every user their session, open a contact page, then click: each user with its own client and one click
    in flight (by default each measured click by an agent of its own)."""
    # Idle connections are dropped before uvicorn's 5 s keep-alive ends: reusing one just as the server closes it
    # fails the request (a ReadError) with nothing sent, which is the bench's race, not the app's.
    limits = httpx.Limits(max_connections=1, keepalive_expiry=2)
    # --users clickers, then the warm-up's own users, then (with --observe) one who only looks at pages.
    users = data["users"]
    tls = ssl.create_default_context()  # never used (plain HTTP), but httpx makes one per client unless given it
    clients = [
        httpx.AsyncClient(base_url=app_url, timeout=h.REQUEST_TIMEOUT, trust_env=False, limits=limits, verify=tls)
        for _ in users
    ]
    try:
        gate = asyncio.Semaphore(2 * args.workers)
        # Each user has a session made by _setup_data.py (as /login/ makes one), and opens a contact page first,
        # as an agent does before clicking Call: not measured. That page reads what the app caches per user (the
        # user, their permissions, their agent and callback numbers), so the measured clicks are an agent's
        # ordinary clicks rather than their first one after logging in. It also sets the CSRF cookie.
        first = data["clicks"][0]["contact"]
        for client, user in zip(clients, users, strict=True):
            client.cookies.set("sessionid", user["session"])
        await asyncio.gather(*(h.gated_get(gate, client, f"/contacts/{first}/") for client in clients))
        observer = None
        if args.observe:
            watcher = clients[-1]

            async def observer(stop: asyncio.Event) -> list[Phase]:
                return await observe(watcher, args.observe, stop)

        clickers = clients[: args.users]
        # The warm-up clicks as users of its own: at vccsim's --speed a warm-up call is over and forgotten at once,
        # but the app's log still has it live, so the same agent's measured click would be refused ("on a call").
        warmers = clients[args.users : args.users + warmup_users(args)] or clickers

        def lanes(targets: list[dict[str, Any]], *, warm: bool = False, serial: bool = False) -> list[list[Job]]:
            group = warmers if warm else clickers
            if serial and len(clickers) >= args.clicks + len(targets):
                group = clickers[args.clicks :]  # agents who have not clicked yet
            return [
                [lambda c=client, t=target: app_click(c, t, args.page) for target in lane]
                for client, lane in zip(group, lanes_round_robin(targets, len(group)), strict=True)
            ]

        label = f"app click (uvicorn ×{args.workers}, PostgreSQL, Redis)"
        return await run_side(label, lanes, data["clicks"], args, watch, observer)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


OBSERVE_PAUSE = 0.05  # seconds between one user's page loads: a person reading, not another load generator


async def observe(client: httpx.AsyncClient, paths: list[str], stop: asyncio.Event) -> list[Phase]:
    """GET each path in turn, as one logged-in user would, until stop; a phase of latencies per path."""
    outcomes: dict[str, list[Outcome]] = {path: [] for path in paths}
    started = time.perf_counter()
    while not stop.is_set():
        for path in paths:
            began = time.perf_counter()
            try:
                response = await client.get(path)
            except httpx.HTTPError as e:
                outcomes[path].append(Outcome(h.elapsed_ms(began), False, None, h.error_text(e)))
                continue
            ok = response.status_code == 200
            detail = "" if ok else f"HTTP {response.status_code}: {h.page_text(response.text)}"
            outcomes[path].append(Outcome(h.elapsed_ms(began), ok, response.status_code, detail))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), OBSERVE_PAUSE)
    seconds = time.perf_counter() - started
    label = "another user: GET {}, during the clicks"
    return [Phase(label.format(path), outs, seconds, {}, 0) for path, outs in outcomes.items()]


async def direct_side(
    sim_url: str, agents: list[str], numbers: list[str], args: argparse.Namespace, watch: h.Watch
) -> Side:
    """The same calls straight to vccsim: one V0 token, round-robin over the agents, a new connection per call.

    A new connection, as the app makes per click. A reused one would wait ~40 ms per response on vccsim's socket
    server, which sends headers and body in two writes with Nagle on: the second waits for a delayed ACK.
    """
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=sim_url, timeout=h.REQUEST_TIMEOUT, trust_env=False, limits=limits) as client:
        token = await sim_token(client)

        def lanes(batch: list[str], *, warm: bool = False, serial: bool = False) -> list[list[Job]]:
            return [
                [lambda a=agent, n=number: direct_call(client, token, a, n) for number in lane]
                for agent, lane in zip(agents, lanes_round_robin(batch, len(agents)), strict=True)
            ]

        return await run_side("vccsim direct", lanes, numbers, args, watch)


# --- Report ----------------------------------------------------------------------------------------------------


def print_table(phases: list[Phase]) -> None:
    width = max(len(p.label) for p in phases)
    head = ("requests", "ok", "failed", "req/s", "p50", "p90", "p99", "max")
    print(
        f"{'':<{width}}  {head[0]:>8} {head[1]:>6} {head[2]:>6} {head[3]:>8} "
        + " ".join(f"{title:>7}" for title in head[4:])
    )
    for p in phases:
        figures = [p.percentile(50), p.percentile(90), p.percentile(99), p.percentile(100)]
        rate = len(p.outcomes) / p.seconds if p.seconds else float("nan")
        print(
            f"{p.label:<{width}}  {len(p.outcomes):>8} {p.ok:>6} {p.failed:>6} {rate:>8.1f} "
            + " ".join(f"{v:>7.1f}" for v in figures)
        )
    print(f"{'':<{width}}  latencies in ms, time to the full response, measured by this script")


SLOW_CLICK_MS = 4000  # issue 10's goals: no click slower than this under load,
SLOW_PAGE_MS = 300  # and other users' pages faster than this meanwhile


def print_slow(side: Side) -> None:
    """How many answers were slower than the goals: clicks over 4 s, other users' pages over 300 ms."""
    if side.loaded is not None:
        slow = sum(o.latency_ms > SLOW_CLICK_MS for o in side.loaded.outcomes)
        answered = sum(o.status == 200 for o in side.loaded.outcomes)
        print(
            f"clicks answered 200: {answered} of {len(side.loaded.outcomes)}; "
            f"slower than {SLOW_CLICK_MS / 1000:g} s: {slow}"
        )
    for phase in side.observed:
        slow = sum(o.latency_ms > SLOW_PAGE_MS for o in phase.outcomes)
        print(f"{phase.label}: {len(phase.outcomes)} loads, {phase.failed} failed, over {SLOW_PAGE_MS} ms: {slow}")


def print_cpu(phases: list[Phase]) -> None:
    """CPU per request of each process, which latencies on a shared box cannot separate, and how busy the box was."""
    print("CPU per request (ms):")
    for p in phases:
        per_request = {name: ms / max(1, len(p.outcomes)) for name, ms in p.cpu.items() if name != h.MACHINE}
        used = ", ".join(f"{name} {ms:.1f}" for name, ms in per_request.items() if ms >= 0.05)
        busy = p.cpu[h.MACHINE] / (p.seconds * 1000 * (os.cpu_count() or 1))
        # /proc/stat counts in 10 ms ticks: over less than a second the share means little.
        machine = (
            f"; all cores {busy:.0%} busy (PostgreSQL, Redis and anything else included)" if p.seconds >= 1 else ""
        )
        print(f"  {p.label}: {used}{machine}")
    drops = {p.label: p.listen_drops for p in phases if p.listen_drops}
    if drops:
        shown = ", ".join(f"{label} {n}" for label, n in drops.items())
        print(f"connections dropped by a full listen queue (each waits 1 s for a SYN retry): {shown}")


def print_failures(phase: Phase, limit: int = 5) -> None:
    """The commonest failures, alike once numbers are masked (each names its own phone and agent), with an example."""
    kinds: Counter[str] = Counter()
    example: dict[str, str] = {}
    for outcome in phase.outcomes:
        if not outcome.ok:
            kind = re.sub(r"\d+", "#", outcome.detail)
            kinds[kind] += 1
            example.setdefault(kind, outcome.detail)
    if not kinds:
        return
    print(f"{phase.label}: {kinds.total()} failed; the most common, with one example each:")
    for kind, count in kinds.most_common(limit):
        print(f"  {count:>5} × {example[kind]}")


def print_checks(sim_url: str, app_phases: list[Phase], direct_phases: list[Phase], *, faults: bool) -> None:
    """The simulator's count against ours (no click placed twice), and one call row per click."""
    placed_clicks = sum(p.ok for p in app_phases)
    placed_direct = sum(p.ok for p in direct_phases)
    counted = sim_calls_placed(sim_url)
    verdict = "OK" if counted == placed_clicks + placed_direct else "MISMATCH"
    if verdict == "MISMATCH" and faults:
        verdict += " (faults were injected: a call dropped after VCC placed it counts there, not as placed here)"
    print(f"vccsim calls placed: {counted} = placed clicks {placed_clicks} + direct calls {placed_direct}: {verdict}")
    if any(p.outcomes for p in app_phases):
        rows = h.call_rows()
        sent = sum(len(p.outcomes) for p in app_phases)
        by_state = ", ".join(f"{state} {n}" for state, n in sorted(rows.items()))
        placed_rows = rows.get("live", 0) + rows.get("ended", 0)
        verdict = "OK" if sum(rows.values()) == sent and placed_rows == placed_clicks else "MISMATCH"
        print(f"call rows: {sum(rows.values())} ({by_state}) for {sent} clicks sent: {verdict}")


def header(args: argparse.Namespace, pg_version: str, redis_version: str) -> None:
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(
        f"vccweb click bench, {datetime.now().astimezone():%Y-%m-%d %H:%M %Z} on {os.cpu_count()} cores "
        f"({platform.machine()}, load average {load}), Python {platform.python_version()}, "
        f"Django {django.__version__}, uvicorn {uvicorn.__version__}, PostgreSQL {pg_version}, Redis {redis_version}"
    )
    print(
        f"{args.clicks} clicks by {args.users} users, {args.concurrency} in flight, then {args.serial} one at a time "
        f"(after {args.warmup} warm-up), "
        f"from the {args.page} page, uvicorn ×{args.workers}, DB_CONN_MAX_AGE={args.db_conn_max_age}, "
        f"vccsim clock ×{args.speed:g}" + (f", vccsim faults {json.dumps(args.sim_faults)}" if args.sim_faults else "")
    )


# --- Main ------------------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, tmp: Path, managed: list[h.Managed]) -> int:
    # The clickers, the warm-up's own agents, and the observer (who never clicks).
    agents = h.agent_ids(args.users + warmup_users(args) + (1 if args.observe else 0))
    per_side = args.warmup + args.clicks + args.serial
    numbers = h.unique_numbers(2 * per_side)
    password = secrets.token_urlsafe(16)

    pg_version = h.reset_database()
    redis_version = h.flush_redis()
    header(args, pg_version, redis_version)

    sim, sim_url = h.start_sim(args, agents, tmp, managed)
    env = h.app_env(sim_url, args) | {"STATIC_ROOT": str(tmp / "static")}
    h.run_python(["manage.py", "migrate", "--no-input"], env=env)
    h.run_python(["manage.py", "collectstatic", "--no-input", "--verbosity", "0"], env=env)  # hashed names
    data = h.create_data(env, agents, numbers[:per_side], password)
    app, app_url = h.start_app(args, env, tmp, managed)

    watch = {"uvicorn workers": app.worker_pids, "vccsim": (sim.process.pid,), "this script": (os.getpid(),)}
    app_run = asyncio.run(app_side(app_url, data, args, watch))
    if app_run.loaded is None:
        print("\nThe app does not serve POST /contacts/<pk>/call/ yet (404): app clicks skipped.")
    direct_run = asyncio.run(direct_side(sim_url, agents[: args.users], numbers[per_side:], args, watch))
    report(args, app, sim_url, app_run, direct_run)
    if args.throttle_reads > 0:
        print_throttle_cost(args, env, app_run)
    return 0


THROTTLE_BLOCK = 100  # throttle reads timed together, then as many loops without them


def print_throttle_cost(args: argparse.Namespace, env: dict[str, str], app_run: Side) -> None:
    """What the per-person click throttle (one cache read a click) adds, timed by bench/_throttle_cost.py with the
    app's environment (its cache: Redis, as in production) in blocks alternating with and without it."""
    plan = {"reads": args.throttle_reads, "block": THROTTLE_BLOCK}
    cost = json.loads(h.run_python(["bench/_throttle_cost.py"], env=env, stdin=json.dumps(plan)))
    cpu = cost["with_cpu_us"] - cost["without_cpu_us"]
    wall = cost["with_wall_us"] - cost["without_wall_us"]
    client = cost["client_cpu_us"] - cost["without_cpu_us"]
    print(
        f"click throttle ({cost['reads']} reads, {cost['cache']} at {cost['location']}, in blocks of "
        f"{THROTTLE_BLOCK} alternating with as many skipped): with {cost['with_cpu_us']:.1f} µs CPU, "
        f"{cost['with_wall_us']:.1f} µs wall a click; without {cost['without_cpu_us']:.1f}, "
        f"{cost['without_wall_us']:.1f} µs: the throttle adds {cpu:.1f} µs CPU, {wall:.1f} µs wall; of which "
        f"Django's RedisCacheClient building a redis.Redis for the read: {client:.1f} µs CPU"
    )
    phase = app_run.serial or app_run.loaded
    if phase is not None and phase.outcomes:
        click_ms = phase.cpu["uvicorn workers"] / len(phase.outcomes)
        share = cpu / 10 / click_ms  # µs of ms, in per cent
        print(f"  that is {share:.2f} % of the uvicorn workers' {click_ms:.1f} ms of CPU a click ({phase.label})")


def report(args: argparse.Namespace, app: h.Managed, sim_url: str, app_run: Side, direct_run: Side) -> None:
    pairs = [(app_run.loaded, direct_run.loaded), (app_run.serial, direct_run.serial)]
    measured = [p for pair in pairs for p in pair if p is not None]
    print()
    print_table(measured + app_run.observed)
    for mine, theirs in pairs:
        if mine is not None and theirs is not None:
            overhead = mine.percentile(50) - theirs.percentile(50)
            print(f"app overhead per click (p50), {mine.label}: {overhead:+.1f} ms (app p50 − vccsim direct p50)")
    print_slow(app_run)
    print_cpu(measured)
    print()
    for phase in app_run.phases + app_run.observed + direct_run.phases:
        print_failures(phase)
    print_checks(sim_url, app_run.phases, direct_run.phases, faults=bool(args.sim_faults))
    peaks = {pid: h.peak_rss_mib(pid) for pid in app.worker_pids}
    shown = ", ".join(f"pid {pid} {mib:.1f} MiB" for pid, mib in peaks.items() if mib is not None)
    print(f"uvicorn workers' peak RSS (VmHWM): {shown}")
    h.print_app_log(app)


def main(argv: list[str] | None = None) -> int:
    return h.run_bench(run, parse_args(argv), prefix="vccweb-bench-")


if __name__ == "__main__":
    sys.exit(main())
