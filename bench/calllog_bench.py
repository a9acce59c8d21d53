"""Time the call log, call page, reports, contact timeline and CSV export served as in production, on a large data set.

The app runs under uvicorn with DEBUG off against PostgreSQL holding `manage.py seed_volume` data (by default the
database `hlbench`: 1 million contacts and 5 million calls). Each page is fetched --requests times after a few
unmeasured ones; beside it, the SQL the page runs (captured once through Django's test client in this process) is
run straight on PostgreSQL the same number of times: the floor no page can go under. The export is fetched once,
with its rows per second and the server's peak memory. A benchmark, not a test: it prints figures, asserts nothing.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hlbench .venv/bin/python manage.py seed_volume \\
        --contacts 1000000 --calls 5000000      # once, about 10 minutes
    .venv/bin/python bench/calllog_bench.py [--database URL] [--requests N] [--export-rows N]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import _harness as h  # bench/_harness.py: the scripts import each other from bench/
import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
DEFAULT_DATABASE = f"postgres://postgres@{HOST}:5432/hlbench"
SUPERVISOR, PASSWORD = "seedsup1", "seed"  # made by seed_volume
STARTUP_SECONDS = 60.0
WARMUP = 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=DEFAULT_DATABASE, help="PostgreSQL with seed_volume data")
    parser.add_argument("--requests", type=int, default=30, help="measured requests per page")
    parser.add_argument("--export-rows", type=int, default=1_000_000, help="about how many rows to export")
    return parser.parse_args(argv)


def server_env(database: str) -> dict[str, str]:
    """Production settings; only TLS is off (plain HTTP on loopback). Nothing leaks in from the shell."""
    return h.production_env(database) | {
        "DB_CONN_MAX_AGE": "0",  # connections come from the pool (DB_POOL, on by default), as in production
        "LOG_LEVEL": "WARNING",
    }


def status_kib(pid: int, key: str) -> int:
    match = re.search(rf"^{key}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    return int(match[1]) if match else 0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


@dataclass
class Target:
    label: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    sql: list[tuple[str, object]] = field(default_factory=list)  # what the page runs, captured in this process
    page_ms: list[float] = field(default_factory=list)
    sql_ms: list[float] = field(default_factory=list)
    bytes: int = 0


# --- Finding what to fetch -------------------------------------------------------------------------------


def targets(conn: psycopg.Connection, export_rows: int) -> tuple[list[Target], str, int]:
    """The pages to time (with ids from the data), the export's path, and how many rows it will have."""
    from django.utils import timezone

    from calls.calllog import _micros

    def one(sql: str, *params):
        return conn.execute(sql, params).fetchone()

    today = timezone.localdate()
    deep_at, deep_id = one(
        "SELECT requested_at, id FROM calls_call WHERE requested_at < now() - interval '300 days' "
        "ORDER BY requested_at DESC, id DESC LIMIT 1"
    )
    deep = f"{_micros(deep_at)}_{deep_id}"
    (agent,) = one("SELECT a.id FROM calls_agent a WHERE a.display_id = '3001'")
    agent_at, agent_call = one(
        "SELECT requested_at, id FROM calls_call WHERE from_agent_id = %s"
        " AND requested_at < now() - interval '300 days' ORDER BY requested_at DESC, id DESC LIMIT 1",
        agent,
    )
    busy_at, busy_call = one(
        "SELECT requested_at, id FROM calls_call WHERE outcome = 'busy' AND requested_at < now() - interval '300 days'"
        " ORDER BY requested_at DESC, id DESC LIMIT 1"
    )
    week_start, week_end = today - timedelta(days=20), today - timedelta(days=14)
    week_last = one(
        "SELECT requested_at, id FROM calls_call WHERE requested_at >= %s AND requested_at < %s "
        "ORDER BY requested_at, id LIMIT 1",
        week_start,
        week_start + timedelta(days=1),
    )
    (call,) = one("SELECT call_id FROM calls_callevent ORDER BY id DESC LIMIT 1")
    contact, contact_calls = one(
        "SELECT contact_id, count(*) FROM calls_call WHERE contact_id = "
        "(SELECT min(id) FROM calls_contact WHERE email LIKE '%%@example.com') GROUP BY contact_id"
    )
    (export_from,) = one("SELECT requested_at FROM calls_call ORDER BY requested_at DESC, id DESC OFFSET %s LIMIT 1",
                         export_rows)  # fmt: skip
    export_day = timezone.localtime(export_from).date() + timedelta(days=1)
    (rows,) = one(
        "SELECT count(*) FROM calls_call WHERE requested_at >= %s",
        timezone.make_aware(datetime.combine(export_day, datetime.min.time())),
    )
    week = f"start={week_start}&end={week_end}"
    pages = [
        Target("log: first page", "/calls/"),
        Target("log: deep page (~300 days back)", f"/calls/?after={deep}"),
        Target("log: by agent, first page", f"/calls/?agent={agent}"),
        Target("log: by agent, deep page", f"/calls/?agent={agent}&after={_micros(agent_at)}_{agent_call}"),
        Target("log: by outcome (busy), first", "/calls/?outcome=busy"),
        Target("log: by outcome (busy), deep", f"/calls/?outcome=busy&after={_micros(busy_at)}_{busy_call}"),
        Target("log: one week, first page", f"/calls/?{week}"),
        Target("log: one week, last day", f"/calls/?{week}&sort=time&after={_micros(week_last[0])}_{week_last[1]}"),
        Target("log: longest talk first", "/calls/?sort=-duration"),
        Target("log: htmx fragment, by outcome", "/calls/?outcome=no_answer", {"HX-Request": "true"}),
        Target("call page", f"/calls/{call}/"),
        Target("report: 30 days", "/reports/"),
        Target("report: 365 days", f"/reports/?start={today - timedelta(days=364)}&end={today}"),
        Target(
            f"contact timeline ({contact_calls} calls)",
            f"/contacts/{contact}/",
            {"HX-Request": "true", "HX-Target": "timeline"},
        ),
        Target(f"contact page ({contact_calls} calls)", f"/contacts/{contact}/"),
    ]
    return pages, f"/calls/export.csv?start={export_day}", rows


def capture_sql(pages: list[Target], export_path: str) -> str:
    """Fetch each page once through Django in this process and keep the SQL it ran; return the export's statement
    (on PostgreSQL the export is one `COPY (...) TO STDOUT`: the database writes the CSV, calls.views.calllog)."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.http import QueryDict
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from calls import calllog
    from calls.forms import CallLogFilter

    supervisor = get_user_model().objects.get(username=SUPERVISOR)
    client = Client(HTTP_HOST=HOST)
    client.force_login(supervisor)
    for page in pages:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(page.path, headers=page.headers)
            assert response.status_code == 200, (page.path, response.status_code)
        page.sql = [(q["sql"], None) for q in captured.captured_queries]
    form = CallLogFilter(QueryDict(export_path.split("?")[1]))
    assert form.is_valid(), form.errors
    calls = calllog.calls_for(supervisor, form.cleaned_data)  # what call_export does
    sql, params = calllog.export_copy_sql(calls, sort=form.cleaned_data["sort"])
    with connection.cursor() as cursor:
        return cursor.mogrify(sql, params)


# --- Measuring ---------------------------------------------------------------------------------------------


def time_sql(conn: psycopg.Connection, page: Target, runs: int) -> None:
    for n in range(WARMUP + runs):
        started = time.perf_counter()
        for sql, _ in page.sql:
            if not sql.startswith(("SELECT", "WITH")):
                continue  # savepoints, or the DECLARE of a server-side cursor whose rows a SELECT fetched
            conn.execute(sql).fetchall()
        if n >= WARMUP:
            page.sql_ms.append((time.perf_counter() - started) * 1000)


def time_page(client: httpx.Client, page: Target, runs: int) -> None:
    for n in range(WARMUP + runs):
        started = time.perf_counter()
        response = client.get(page.path, headers=page.headers)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{page.path}: HTTP {response.status_code}")
        page.bytes = len(response.content)
        if n >= WARMUP:
            page.page_ms.append(elapsed)


def login(client: httpx.Client, username: str = SUPERVISOR, password: str = PASSWORD) -> None:
    """Log the client in through the login form, as a person would (the other benches use it too)."""
    client.get("/login/").raise_for_status()
    response = client.post(
        "/login/",
        data={"csrfmiddlewaretoken": client.cookies["csrftoken"], "username": username, "password": password},
        headers={"Referer": f"{client.base_url}login/"},
    )
    if response.status_code != 302:
        raise RuntimeError(f"logging in as {username} failed: HTTP {response.status_code}")


def time_export_sql(conn: psycopg.Connection, sql: str) -> tuple[float, int]:
    """The export's COPY alone, as the app runs it (local time zone, no JIT); each block COPY sends is a row."""
    from django.utils import timezone

    started, rows = time.perf_counter(), 0
    with conn.transaction(), conn.cursor() as cursor:
        cursor.execute("SELECT set_config('TimeZone', %s, true), set_config('jit', 'off', true)",
                       [timezone.get_current_timezone_name()])  # fmt: skip
        with cursor.copy(sql) as copy:
            for _ in copy:
                rows += 1
    return time.perf_counter() - started, rows


def time_export(client: httpx.Client, path: str, server_pid: int) -> tuple[float, int, int, int]:
    """Seconds, CSV rows, and the server's resident memory before and at its peak during the export (KiB)."""
    rss_before = status_kib(server_pid, "VmRSS")
    peak, rows = rss_before, -1
    started = time.perf_counter()
    with client.stream("GET", path, timeout=600) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes(1 << 16):
            rows += chunk.count(b"\n")
            peak = max(peak, status_kib(server_pid, "VmRSS"))
    return time.perf_counter() - started, rows, rss_before, peak


def start_django(database: str) -> dict[str, str]:
    """The server's environment for `database`, taken by this process too; static files collected; Django set up."""
    env = server_env(database)
    os.environ.update({k: v for k, v in env.items() if k not in ("PATH", "HOME")})
    sys.path.insert(0, str(ROOT))
    # DEBUG is off: pages name static files by their hashes, which collectstatic writes (before Django starts).
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "--verbosity", "0"], cwd=ROOT, env=env, check=True
    )
    import django

    django.setup()
    return env


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = start_django(args.database)
    import django
    import uvicorn

    conn = psycopg.connect(args.database, autocommit=True)
    pg_version = conn.execute("SHOW server_version").fetchone()[0]
    (calls,) = conn.execute("SELECT count(*) FROM calls_call").fetchone()
    (contacts,) = conn.execute("SELECT count(*) FROM calls_contact").fetchone()
    print(f"vccweb call log bench · {platform.python_implementation()} {platform.python_version()}, "
          f"Django {django.__version__}, uvicorn {uvicorn.__version__}, PostgreSQL {pg_version}, "
          f"{os.cpu_count()} CPUs (shared)")  # fmt: skip
    print(f"data: {calls:,} calls, {contacts:,} contacts · {args.requests} requests per page after {WARMUP} warm-ups")
    print("load average at the start: {:.1f} {:.1f} {:.1f} (1, 5, 15 min)".format(*os.getloadavg()))
    pages, export_path, export_rows = targets(conn, args.export_rows)
    export_sql = capture_sql(pages, export_path)
    from django.db import connections

    connections.close_all()

    port = h.free_port()
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"calllog-bench-{port}.log", "wb")  # noqa: SIM115
    command = [sys.executable, "-m", "uvicorn", "vccweb.asgi:application", "--host", HOST, "--port", str(port)]
    server = subprocess.Popen([*command, "--no-access-log"], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        base = f"http://{HOST}:{port}"
        deadline = time.monotonic() + STARTUP_SECONDS
        with httpx.Client(base_url=base, timeout=60, trust_env=False) as client:
            while True:
                try:
                    client.get("/login/")
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("uvicorn did not start") from None
                    time.sleep(0.2)
            login(client)
            print(f"\n{'page':42} {'p50 ms':>8} {'p95 ms':>8} {'SQL p50':>8} {'SQL p95':>8} {'x SQL':>6} "
                  f"{'queries':>7} {'KiB':>6}")  # fmt: skip
            for page in pages:
                time_page(client, page, args.requests)
                time_sql(conn, page, args.requests)
                p50, p95 = percentile(page.page_ms, 50), percentile(page.page_ms, 95)
                s50, s95 = percentile(page.sql_ms, 50), percentile(page.sql_ms, 95)
                print(f"{page.label:42} {p50:8.1f} {p95:8.1f} {s50:8.1f} {s95:8.1f} {p50 / s50:6.1f} "
                      f"{len(page.sql):7d} {page.bytes // 1024:6d}")  # fmt: skip
            healthz = Target("floor: /healthz (no session, SQL, template)", "/healthz")
            time_page(client, healthz, args.requests)
            print(f"{healthz.label:42} {percentile(healthz.page_ms, 50):8.1f} {percentile(healthz.page_ms, 95):8.1f}")
            floor_s, floor_rows = time_export_sql(conn, export_sql)
            seconds, rows, rss_before, rss_peak = time_export(client, export_path, server.pid)
        print(f"\nexport {export_path} ({export_rows:,} calls)")
        print(f"  app:   {rows:,} rows in {seconds:.1f} s = {rows / seconds:,.0f} rows/s; server RSS "
              f"{rss_before / 1024:.0f} MiB before, {rss_peak / 1024:.0f} MiB at most during the export")  # fmt: skip
        print(f"  SQL:   {floor_rows:,} rows in {floor_s:.1f} s = {floor_rows / floor_s:,.0f} rows/s "
              "(the export's COPY alone, straight on PostgreSQL)")  # fmt: skip
        print(f"  server peak RSS since start (VmHWM): {status_kib(server.pid, 'VmHWM') / 1024:.0f} MiB")
        print("load average at the end: {:.1f} {:.1f} {:.1f} (1, 5, 15 min)".format(*os.getloadavg()))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
