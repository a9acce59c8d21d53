"""The benches' shared harness (a library, not a script): the processes a bench starts and stops, its scratch
PostgreSQL database and Redis db, the app served as in production against vccsim (its account, agents, data and
log), the CPU and request timings the scripts measure, and run_bench, which runs a bench and cleans up after it.

The scripts import it as `import _harness as h` (bench/ is on the path when they run). configure() points the
module's DB_NAME, REDIS_DB, DATABASE_URL and REDIS_URL at a bench's own database and Redis db: read them as
`h.DATABASE_URL` after it, not copied with `from _harness import` (a copy keeps the defaults).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import _migrated  # bench/_migrated.py: the scripts import each other from bench/
import httpx
import phonenumbers
import psycopg
import redis
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
# A log record starts with Django's "2026-01-31 12:00:00,000 LEVEL" or uvicorn's "LEVEL:"; tracebacks follow it.
LOG_RECORD = re.compile(r"^(\d{4}-\d\d-\d\d [\d:,]+ [A-Z]+ |[A-Z]+: )")
ERROR_RECORD = re.compile(r"^(\S+ \S+ (ERROR|CRITICAL) |(ERROR|CRITICAL): )")


@dataclass
class Managed:
    """A process this script started, with where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]
    worker_pids: tuple[int, ...] = ()


Watch = dict[str, tuple[int, ...]]  # processes whose CPU time is measured, by name


# --- Arguments and data --------------------------------------------------------------------------------


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


def production_env(database_url: str) -> dict[str, str]:
    """The production settings on database_url, with only what TLS-less loopback needs switched off; nothing leaks
    in from the shell."""
    return _migrated.shell_env() | {
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
        "DATABASE_URL": database_url,
    }


def app_env(sim_url: str, args: argparse.Namespace) -> dict[str, str]:
    """production_env on the bench's database, its Redis db and vccsim."""
    return (
        production_env(DATABASE_URL)
        | {
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


# --- Measuring -------------------------------------------------------------------------------------------


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


# --- Running a bench -----------------------------------------------------------------------------------------


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
