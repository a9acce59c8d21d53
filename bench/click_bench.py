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
import html
import json
import os
import platform
import re
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import _migrated  # bench/_migrated.py: the scripts import each other from bench/
import django
import httpx
import phonenumbers
import psycopg
import redis
import uvicorn
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
PG_ADMIN_URL = f"postgres://postgres@{HOST}:5432/postgres"
# The bench's own database and Redis db; --db-name and --redis-db change them (configure() below).
DB_NAME = "vccweb_bench"
REDIS_DB = 14
DATABASE_URL = f"postgres://postgres@{HOST}:5432/{DB_NAME}"
REDIS_URL = f"redis://{HOST}:6379/{REDIS_DB}"
ACCOUNT_KEY = "sandbox01"
API_TOKEN = "sandbox-api-token"
FIRST_AGENT_ID = 2001
BENCH_GROUP = {"display_id": "900", "name": "Bench"}
ACCOUNT_CLID = {"number": "+442079460100", "label": "London main"}  # in the sample account, open to every agent
USER_ID_NAMESPACE = uuid.UUID("6f1d7c52-8a43-4d0e-9a57-0b6f3f4d2c10")  # stable sim user GUIDs for bench agents
# UK numbers that phonenumbers takes as valid; vccsim turns endings 91-94 into failed calls, so those are skipped.
NUMBER_PREFIXES = ("+44207946", "+44161496")
FAILING_ENDINGS = {"91", "92", "93", "94"}
REQUEST_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
STARTUP_SECONDS = 60.0
STOP_SECONDS = 15.0
MACHINE = "whole machine"
CALL_STATE = re.compile(r'data-call-state="([A-Za-z_-]+)"')
# A log record starts with Django's "2026-01-31 12:00:00,000 LEVEL" or uvicorn's "LEVEL:"; tracebacks follow it.
LOG_RECORD = re.compile(r"^(\d{4}-\d\d-\d\d [\d:,]+ [A-Z]+ |[A-Z]+: )")
ERROR_RECORD = re.compile(r"^(\S+ \S+ (ERROR|CRITICAL) |(ERROR|CRITICAL): )")


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
class Managed:
    """A process this script started, with where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]
    worker_pids: tuple[int, ...] = ()


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
Watch = dict[str, tuple[int, ...]]  # processes whose CPU time is measured, by name


# --- Arguments and data --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add = parser.add_argument
    add("--clicks", metavar="N", type=positive, default=400, help="measured clicks (and as many direct calls)")
    add("--concurrency", metavar="C", type=positive, default=16, help="requests in flight")
    add("--workers", metavar="W", type=positive, default=2, help="uvicorn worker processes")
    add(
        "--users",
        metavar="U",
        type=positive,
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
    add("--db-name", default=DB_NAME, help="the bench's PostgreSQL database, dropped and created afresh")
    add("--redis-db", metavar="N", type=int, default=REDIS_DB, help="the bench's Redis database, emptied")
    add("--keep", action="store_true", help="keep the bench database and Redis db afterwards")
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


def configure(args: argparse.Namespace) -> None:
    """Point the bench at its database and Redis db (module globals, read by the helpers below)."""
    global DB_NAME, REDIS_DB, DATABASE_URL, REDIS_URL
    DB_NAME, REDIS_DB = args.db_name, args.redis_db
    DATABASE_URL = f"postgres://postgres@{HOST}:5432/{DB_NAME}"
    REDIS_URL = f"redis://{HOST}:6379/{REDIS_DB}"


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def unique_numbers(count: int) -> list[str]:
    """Distinct valid UK landlines, none with an ending vccsim turns into a failure."""
    numbers = []
    for prefix in NUMBER_PREFIXES:
        for i in range(10_000):
            number = f"{prefix}{i:04d}"
            if number[-2:] in FAILING_ENDINGS or not phonenumbers.is_valid_number(phonenumbers.parse(number)):
                continue
            numbers.append(number)
            if len(numbers) == count:
                return numbers
    raise SystemExit(f"only {len(numbers)} distinct numbers available; ask for fewer clicks")


def warmup_users(args: argparse.Namespace) -> int:
    return min(args.warmup, args.concurrency)


def agent_ids(users: int) -> list[str]:
    return [str(FIRST_AGENT_ID + i) for i in range(users)]


def write_account(path: Path, agents: list[str], speed: float) -> None:
    """The sample account plus ready bench agents in one group; tokens last an hour of real time at this speed."""
    sample = json.loads((ROOT / "vccsim" / "sample_account.json").read_text(encoding="utf-8"))
    bench_agents = [
        {
            "agentId": agent,
            "name": f"Bench agent {agent}",
            "availability": "ready",
            "userId": str(uuid.uuid5(USER_ID_NAMESPACE, agent)),
            "username": f"bench{agent}",
            "email": f"bench{agent}@example.com",
        }
        for agent in agents
    ]
    group = {
        "groupDisplayId": BENCH_GROUP["display_id"],
        "groupId": str(uuid.uuid5(USER_ID_NAMESPACE, "group")),
        "name": BENCH_GROUP["name"],
        "members": agents,
    }
    account = {
        **sample,
        "agents": [*sample["agents"], *bench_agents],
        "groups": [*sample["groups"], group],
        "tokenExpiresIn": int(3600 * speed),
        "faults": {},
        "fairUseLimit": None,
    }
    path.write_text(json.dumps(account, indent=1), encoding="utf-8")


# --- Processes -------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start(name: str, command: list[str], env: dict[str, str] | None, tmp: Path, managed: list[Managed]) -> Managed:
    log_path = tmp / f"{name}.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file)
    proc = Managed(name, process, log_path, log_file)
    managed.append(proc)
    return proc


def wait_for(proc: Managed, url: str, ready: Callable[[httpx.Response], bool]) -> None:
    """Poll url until ready(response), failing fast if the process dies."""
    deadline = time.monotonic() + STARTUP_SECONDS
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if proc.process.poll() is not None:
                raise RuntimeError(f"{proc.name} exited with {proc.process.returncode}:\n{log_tail(proc)}")
            try:
                if ready(client.get(url)):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"{proc.name} did not answer {url} within {STARTUP_SECONDS:.0f} s:\n{log_tail(proc)}")


def log_tail(proc: Managed, lines: int = 20) -> str:
    proc.log_file.flush()
    return "\n".join(proc.log_path.read_text(errors="replace").splitlines()[-lines:])


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def uvicorn_workers(master: int) -> list[int]:
    """The worker processes of a uvicorn master (spawned by multiprocessing), not its resource tracker."""
    return sorted(pid for pid in children(master) if "resource_tracker" not in cmdline(pid))


def peak_rss_mib(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None


def stop(proc: Managed) -> None:
    """Ask the process to stop, then kill it (and any worker it left behind) if it does not."""
    process = proc.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_SECONDS)
    for pid in proc.worker_pids:
        if "multiprocessing" in cmdline(pid):  # still our orphaned worker, not a reused pid
            os.kill(pid, signal.SIGKILL)
    proc.log_file.close()


def raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


# --- Databases ---------------------------------------------------------------------------------------------


def reset_database() -> str:
    """Drop the bench database and make it again, migrated, as a copy of the checkout's template (bench/_migrated.py:
    the bench's own `migrate` then has nothing to apply); return the server's version."""
    template = _migrated.template(PG_ADMIN_URL, ROOT)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB_NAME)))
        create = sql.SQL("CREATE DATABASE {} TEMPLATE {}")
        conn.execute(create.format(sql.Identifier(DB_NAME), sql.Identifier(template)))
        return str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]


def drop_database() -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB_NAME)))


def flush_redis() -> str:
    """Empty the bench's Redis database; return the server's version."""
    with redis.Redis.from_url(REDIS_URL, socket_timeout=5) as client:
        client.flushdb()
        return str(client.info("server")["redis_version"])


def call_rows() -> Counter[str]:
    """The app's call rows by state (every click should leave exactly one)."""
    with psycopg.connect(DATABASE_URL, connect_timeout=5) as conn:
        return Counter(dict(conn.execute("SELECT state, count(*) FROM calls_call GROUP BY state").fetchall()))


# --- The app -----------------------------------------------------------------------------------------------


def app_env(sim_url: str, args: argparse.Namespace) -> dict[str, str]:
    """The production environment, with only what TLS-less loopback needs switched off; nothing leaks from the shell."""
    return (
        _migrated.shell_env()
        | {
            "DJANGO_SETTINGS_MODULE": "vccweb.settings",
            "PYTHONPATH": str(ROOT),
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "false",
            "SESSION_COOKIE_SECURE": "false",
            "CSRF_COOKIE_SECURE": "false",
            "SECURE_HSTS_SECONDS": "0",
            "SECURE_PROXY_SSL_HEADER": "false",
            "DATABASE_URL": DATABASE_URL,
            "DB_CONN_MAX_AGE": str(args.db_conn_max_age),
            # The connection pool (the production default) and persistent connections exclude each other.
            "DB_POOL": "false" if args.db_conn_max_age else "true",
            "REDIS_URL": REDIS_URL,
            "VCC_ACCOUNT_KEY": ACCOUNT_KEY,
            "VCC_API_TOKEN": API_TOKEN,
            "VCC_BASE_URL": sim_url,
            "VCC_AUTH_URL": sim_url,
            "VCC_GATEWAY_URL": sim_url,
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "text",  # what the log summary below reads
        }
        | pool_env(args)
    )


def pool_env(args: argparse.Namespace) -> dict[str, str]:
    env = {}
    if getattr(args, "db_pool_max_size", None) is not None:
        env["DB_POOL_MAX_SIZE"] = str(args.db_pool_max_size)
    if getattr(args, "db_pool_timeout", None) is not None:
        env["DB_POOL_TIMEOUT"] = str(args.db_pool_timeout)
    return env


def run_python(args: list[str], *, env: dict[str, str], stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def create_data(env: dict[str, str], agents: list[str], numbers: list[str], password: str) -> dict[str, Any]:
    plan = {
        "password": password,
        "group": BENCH_GROUP,
        "clid": ACCOUNT_CLID,
        "users": [{"username": f"bench{agent}", "display_id": agent} for agent in agents],
        "numbers": numbers,
    }
    return json.loads(run_python(["bench/_setup_data.py"], env=env, stdin=json.dumps(plan)))


def error_text(error: Exception) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else f"{type(error).__name__} (no message)"


def page_text(markup: str, limit: int = 240) -> str:
    """The words of some HTML, tags stripped and spaces collapsed, cut to limit characters."""
    text = html.unescape(re.sub(r"<[^>]+>|^[^<]*>", " ", markup))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def gated_get(gate: asyncio.Semaphore, client: httpx.AsyncClient, path: str) -> None:
    async with gate:
        response = await client.get(path)
    if response.status_code != 200:
        raise SystemExit(f"GET {path} answered {response.status_code}: {page_text(response.text)}")


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
        return Outcome(elapsed_ms(started), False, None, error_text(e))
    latency = elapsed_ms(started)
    if response.status_code != 200:
        return Outcome(latency, False, response.status_code, f"HTTP {response.status_code}: {page_text(response.text)}")
    match = CALL_STATE.search(response.text)
    if match is None:
        return Outcome(latency, False, 200, f"no data-call-state: {page_text(response.text)}")
    if match.group(1) == "live":
        return Outcome(latency, True, 200)
    # The call panel starts at the marker: its text says what went wrong.
    return Outcome(latency, False, 200, f"{match.group(1)}: {page_text(response.text[match.start() :])}")


# --- vccsim direct -------------------------------------------------------------------------------------------


async def sim_token(client: httpx.AsyncClient) -> str:
    response = await client.post(
        "/v0/oauth2/token", data={"grant_type": "client_credentials"}, auth=(ACCOUNT_KEY, API_TOKEN)
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
        response = await client.post(f"/v0/{ACCOUNT_KEY}/calls/", content=body, headers=headers)
    except httpx.HTTPError as e:
        return Outcome(elapsed_ms(started), False, None, error_text(e))
    latency = elapsed_ms(started)
    if response.status_code == 201:
        return Outcome(latency, True, 201)
    return Outcome(latency, False, response.status_code, f"HTTP {response.status_code}: {response.text[:200]}")


def sim_calls_placed(sim_url: str) -> int:
    with httpx.Client(base_url=sim_url, timeout=10.0, trust_env=False) as client:
        response = client.get("/_sim/state")
        response.raise_for_status()
        return int(response.json()["callsPlaced"])


# --- Running a phase -------------------------------------------------------------------------------------------


def elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def cpu_ms(pids: tuple[int, ...]) -> float:
    """User plus system CPU time used so far by these processes (all their threads), in ms."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of proc(5)
    return total * 1000 / os.sysconf("SC_CLK_TCK")


def machine_busy_ms() -> float:
    """CPU time all cores have spent busy since boot, in ms (from /proc/stat), whoever used it."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields) - idle) * 1000 / os.sysconf("SC_CLK_TCK")


def listen_drops() -> int:
    """The kernel's count of connection attempts dropped because a listen queue was full (each costs a 1 s retry)."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split(), values.split(), strict=True)).get("ListenDrops", 0))
    return 0


def cpu_snapshot(watch: Watch) -> dict[str, float]:
    return {name: cpu_ms(pids) for name, pids in watch.items()} | {MACHINE: machine_busy_ms()}


def lanes_round_robin[T](items: list[T], lanes: int) -> list[list[T]]:
    """Item i goes to lane i % lanes, in order: one lane per user, so a user has one click in flight at a time."""
    return [items[lane::lanes] for lane in range(lanes)]


async def run_lanes(
    label: str, lanes: list[list[Job]], concurrency: int, args: argparse.Namespace, watch: Watch
) -> Phase:
    """Run each lane's jobs one after another, all lanes together, at most `concurrency` jobs at once."""
    semaphore = asyncio.Semaphore(concurrency)
    outcomes: list[Outcome] = []

    async def lane(jobs: list[Job]) -> None:
        for job in jobs:
            async with semaphore:
                outcomes.append(await job())

    cpu_before = cpu_snapshot(watch)
    drops_before = listen_drops()
    started = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(*(lane(jobs) for jobs in lanes if jobs)), args.max_seconds)
    except TimeoutError:
        raise RuntimeError(f"{label}: gave up after {args.max_seconds:.0f} s, {len(outcomes)} answered") from None
    seconds = time.perf_counter() - started
    cpu = {name: used - cpu_before[name] for name, used in cpu_snapshot(watch).items()}
    return Phase(label, outcomes, seconds, cpu, listen_drops() - drops_before)


async def run_side(
    label: str,
    lanes: Callable[..., list[list[Job]]],  # (items, warm=False, serial=False): one lane of jobs per user
    items: list[Any],
    args: argparse.Namespace,
    watch: Watch,
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


async def app_side(app_url: str, data: dict[str, Any], args: argparse.Namespace, watch: Watch) -> Side:
    """Give every user their session, open a contact page, then click: each user with its own client and one click
    in flight (by default each measured click by an agent of its own)."""
    # Idle connections are dropped before uvicorn's 5 s keep-alive ends: reusing one just as the server closes it
    # fails the request (a ReadError) with nothing sent, which is the bench's race, not the app's.
    limits = httpx.Limits(max_connections=1, keepalive_expiry=2)
    # --users clickers, then the warm-up's own users, then (with --observe) one who only looks at pages.
    users = data["users"]
    tls = ssl.create_default_context()  # never used (plain HTTP), but httpx makes one per client unless given it
    clients = [
        httpx.AsyncClient(base_url=app_url, timeout=REQUEST_TIMEOUT, trust_env=False, limits=limits, verify=tls)
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
        await asyncio.gather(*(gated_get(gate, client, f"/contacts/{first}/") for client in clients))
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
                outcomes[path].append(Outcome(elapsed_ms(began), False, None, error_text(e)))
                continue
            ok = response.status_code == 200
            detail = "" if ok else f"HTTP {response.status_code}: {page_text(response.text)}"
            outcomes[path].append(Outcome(elapsed_ms(began), ok, response.status_code, detail))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), OBSERVE_PAUSE)
    seconds = time.perf_counter() - started
    label = "another user: GET {}, during the clicks"
    return [Phase(label.format(path), outs, seconds, {}, 0) for path, outs in outcomes.items()]


async def direct_side(
    sim_url: str, agents: list[str], numbers: list[str], args: argparse.Namespace, watch: Watch
) -> Side:
    """The same calls straight to vccsim: one V0 token, round-robin over the agents, a new connection per call.

    A new connection, as the app makes per click. A reused one would wait ~40 ms per response on vccsim's socket
    server, which sends headers and body in two writes with Nagle on: the second waits for a delayed ACK.
    """
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=sim_url, timeout=REQUEST_TIMEOUT, trust_env=False, limits=limits) as client:
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
        f"{'':<{width}}  {head[0]:>8} {head[1]:>6} {head[2]:>6} {head[3]:>8} " + " ".join(f"{h:>7}" for h in head[4:])
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
        per_request = {name: ms / max(1, len(p.outcomes)) for name, ms in p.cpu.items() if name != MACHINE}
        used = ", ".join(f"{name} {ms:.1f}" for name, ms in per_request.items() if ms >= 0.05)
        busy = p.cpu[MACHINE] / (p.seconds * 1000 * (os.cpu_count() or 1))
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
        rows = call_rows()
        sent = sum(len(p.outcomes) for p in app_phases)
        by_state = ", ".join(f"{state} {n}" for state, n in sorted(rows.items()))
        placed_rows = rows.get("live", 0) + rows.get("ended", 0)
        verdict = "OK" if sum(rows.values()) == sent and placed_rows == placed_clicks else "MISMATCH"
        print(f"call rows: {sum(rows.values())} ({by_state}) for {sent} clicks sent: {verdict}")


def print_app_log(proc: Managed, limit: int = 5) -> None:
    """Count the app's error and warning records and show the first error whole (the rest are usually alike)."""
    proc.log_file.flush()
    lines = proc.log_path.read_text(errors="replace").splitlines()
    starts = [i for i, line in enumerate(lines) if LOG_RECORD.match(line)] + [len(lines)]
    records = ["\n".join(lines[a:b]) for a, b in zip(starts, starts[1:], strict=False)]
    errors = [r for r in records if ERROR_RECORD.match(r)]
    warnings = [r for r in records if " WARNING " in r.split("\n", 1)[0]]
    print(f"app log (LOG_LEVEL=WARNING): {len(errors)} errors, {len(warnings)} warnings")
    if errors:
        print("  first error:")
        for line in errors[0].splitlines()[:40]:
            print(f"  | {line[:300]}")
    for record in warnings[:limit]:
        print(f"  {record.splitlines()[0][:300]}")


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


def start_sim(args: argparse.Namespace, agents: list[str], tmp: Path, managed: list[Managed]) -> tuple[Managed, str]:
    account = tmp / "account.json"
    write_account(account, agents, args.speed)
    port = free_port()
    url = f"http://{HOST}:{port}"
    command = ["-m", "vccsim", "--host", HOST, "--port", str(port), "--account", str(account)]
    command += ["--speed", str(args.speed), "--quiet"]
    if args.sim_faults:
        command += ["--faults", json.dumps(args.sim_faults)]
    sim = start("vccsim", [sys.executable, *command], None, tmp, managed)
    wait_for(sim, f"{url}/_sim/state", lambda r: r.status_code == 200)
    return sim, url


def start_app(args: argparse.Namespace, env: dict[str, str], tmp: Path, managed: list[Managed]) -> tuple[Managed, str]:
    """Serve the app as in production: uvicorn with --workers processes, no access log."""
    port = free_port()
    url = f"http://{HOST}:{port}"
    command = ["-m", "uvicorn", "vccweb.asgi:application", "--host", HOST, "--port", str(port)]
    app = start(
        "uvicorn", [sys.executable, *command, "--workers", str(args.workers), "--no-access-log"], env, tmp, managed
    )

    def workers() -> list[int]:
        # With one worker uvicorn serves from its own process; with more, from spawned children.
        return [app.process.pid] if args.workers == 1 else uvicorn_workers(app.process.pid)

    wait_for(app, f"{url}/login/", lambda r: r.status_code == 200 and len(workers()) >= args.workers)
    app.worker_pids = tuple(workers())
    return app, url


def run(args: argparse.Namespace, tmp: Path, managed: list[Managed]) -> int:
    # The clickers, the warm-up's own agents, and the observer (who never clicks).
    agents = agent_ids(args.users + warmup_users(args) + (1 if args.observe else 0))
    per_side = args.warmup + args.clicks + args.serial
    numbers = unique_numbers(2 * per_side)
    password = secrets.token_urlsafe(16)

    pg_version = reset_database()
    redis_version = flush_redis()
    header(args, pg_version, redis_version)

    sim, sim_url = start_sim(args, agents, tmp, managed)
    env = app_env(sim_url, args) | {"STATIC_ROOT": str(tmp / "static")}
    run_python(["manage.py", "migrate", "--no-input"], env=env)
    run_python(["manage.py", "collectstatic", "--no-input", "--verbosity", "0"], env=env)  # hashed names
    data = create_data(env, agents, numbers[:per_side], password)
    app, app_url = start_app(args, env, tmp, managed)

    watch = {"uvicorn workers": app.worker_pids, "vccsim": (sim.process.pid,), "this script": (os.getpid(),)}
    app_run = asyncio.run(app_side(app_url, data, args, watch))
    if app_run.loaded is None:
        print("\nThe app does not serve POST /contacts/<pk>/call/ yet (404): app clicks skipped.")
    direct_run = asyncio.run(direct_side(sim_url, agents[: args.users], numbers[per_side:], args, watch))
    report(args, app, sim_url, app_run, direct_run)
    return 0


def report(args: argparse.Namespace, app: Managed, sim_url: str, app_run: Side, direct_run: Side) -> None:
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
    peaks = {pid: peak_rss_mib(pid) for pid in app.worker_pids}
    shown = ", ".join(f"pid {pid} {mib:.1f} MiB" for pid, mib in peaks.items() if mib is not None)
    print(f"uvicorn workers' peak RSS (VmHWM): {shown}")
    print_app_log(app)


def cleanup(managed: list[Managed], *, keep: bool) -> None:
    """Stop every process started here, then drop the bench's data unless asked to keep it; each step on its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave processes behind
    steps: list[tuple[str, Callable[[], object]]] = [(f"stopping {p.name}", lambda p=p: stop(p)) for p in managed[::-1]]
    if not keep:
        steps += [("dropping the bench database", drop_database), (f"emptying Redis db {REDIS_DB}", flush_redis)]
    for what, step in steps:
        try:
            step()
        except Exception as e:  # keep cleaning up whatever failed
            print(f"cleanup: {what} failed: {e}", file=sys.stderr)


def run_bench(
    run: Callable[[argparse.Namespace, Path, list[Managed]], int], args: argparse.Namespace, *, prefix: str
) -> int:
    """Run a bench in a temporary folder with its database and Redis db, stopping what it started however it ends."""
    configure(args)
    signal.signal(signal.SIGTERM, raise_interrupt)
    managed: list[Managed] = []
    status = 1
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        try:
            status = run(args, Path(tmp), managed)
        except KeyboardInterrupt:
            print("\ninterrupted: cleaning up", file=sys.stderr)
            status = 130
        except (RuntimeError, TimeoutError) as e:
            print(f"\nbench failed: {e!r}", file=sys.stderr)
        finally:
            cleanup(managed, keep=args.keep)
    return status


def main(argv: list[str] | None = None) -> int:
    return run_bench(run, parse_args(argv), prefix="vccweb-bench-")


if __name__ == "__main__":
    sys.exit(main())
