"""Time Django's admin change lists of calls, contacts and numbers served as in production, on a large data set.

The goal (issue 16): each opens within 1 s at 5 million calls and 1 million contacts, whatever the filter, search or
page. The app runs under uvicorn with DEBUG off against PostgreSQL holding `manage.py seed_volume` data (by default
the database `vccweb_bench_5m`), signed in as a superuser this script makes there (`benchadmin`). Each list is
fetched --requests times after a few unmeasured ones; beside it, the SQL the list runs (captured once through
Django's test client in this process) run straight on PostgreSQL: the floor. Last, what Django's admin did before,
per list: `SELECT COUNT(*)` of the table (twice: paginator.count, and show_full_result_count beside a search), and
the DISTINCT dates of `date_hierarchy`. A benchmark, not a test: it prints figures, asserts nothing.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/vccweb_bench_5m DEBUG=true .venv/bin/python manage.py \\
        seed_volume --contacts 1000000 --calls 5000000      # once, 6 to 15 minutes
    .venv/bin/python bench/admin_bench.py [--database URL] [--requests N]
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
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from _harness import free_port  # run as bench/admin_bench.py, bench/ is on the path
from calllog_bench import (  # run as bench/admin_bench.py, bench/ is on the path
    HOST,
    ROOT,
    STARTUP_SECONDS,
    Target,
    login,
    percentile,
    start_django,
    time_page,
    time_sql,
)

DEFAULT_DATABASE = f"postgres://postgres@{HOST}:5432/vccweb_bench_5m"
ADMIN, ADMIN_PASSWORD = "benchadmin", "bench-admin-password-1"
GOAL_MS = 1000.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=DEFAULT_DATABASE, help="PostgreSQL with seed_volume data")
    parser.add_argument("--requests", type=int, default=20, help="measured requests per list")
    parser.add_argument("--only", nargs="*", default=[], help="lists whose label starts so (calls, contacts, numbers)")
    return parser.parse_args(argv)


def _day(d) -> str:
    """A day's start as the admin's date filter writes it in its links (aware, local time)."""
    from django.utils import timezone

    return timezone.make_aware(datetime.combine(d, datetime.min.time())).isoformat().replace("+", "%2B")


def targets(conn: psycopg.Connection) -> list[Target]:
    """The lists to time, with ids and values from the data."""
    from django.utils import timezone

    def one(sql: str, *params):
        return conn.execute(sql, params).fetchone() or (None,)  # (None,): no such row in this data

    today = timezone.localdate()
    (agent,) = one("SELECT id FROM calls_agent WHERE display_id = '3001'")
    (vcc_call_id,) = one("SELECT vcc_call_id FROM calls_call WHERE vcc_call_id <> '' ORDER BY id LIMIT 1 OFFSET 1000")
    (owner,) = one("SELECT owner_id FROM calls_contact WHERE owner_id IS NOT NULL LIMIT 1")
    (number,) = one("SELECT to_number FROM calls_call WHERE to_number <> '' ORDER BY id LIMIT 1 OFFSET 5000")
    number = number or "+442079460123"
    (common_code,) = one("SELECT disposition_code FROM calls_call WHERE disposition_code <> '' LIMIT 1")
    common_code = common_code or "Interested"
    (rare_code,) = one(
        "SELECT code FROM calls_dispositioncode ORDER BY (SELECT count(*) FROM calls_call c "
        "WHERE c.disposition_code = code AND c.requested_at > now() - interval '1 day'), code LIMIT 1"
    )
    week, tomorrow = _day(today - timedelta(days=7)), _day(today + timedelta(days=1))
    past_week = f"requested_at__gte={week}&requested_at__lt={tomorrow}"
    year = _day(today.replace(month=1, day=1))
    calls, contacts, phones = "/admin/calls/call/", "/admin/calls/contact/", "/admin/calls/contactphone/"
    lists = [
        ("calls: first page", calls),
        ("calls: page 2", f"{calls}?p=2"),
        ("calls: last page offered (200)", f"{calls}?p=200"),
        ("calls: oldest first", f"{calls}?o=0"),
        ("calls: today", f"{calls}?requested_at__gte={_day(today)}&requested_at__lt={tomorrow}"),
        ("calls: past 7 days", f"{calls}?{past_week}"),
        ("calls: this year, page 150", f"{calls}?requested_at__gte={year}&requested_at__lt={tomorrow}&p=150"),
        ("calls: state ended", f"{calls}?state__exact=ended"),
        ("calls: state requested (rare)", f"{calls}?state__exact=requested"),
        ("calls: outcome busy", f"{calls}?outcome__exact=busy"),
        ("calls: outcome not confirmed (rare)", f"{calls}?outcome__exact=not_confirmed"),
        ("calls: from agent 3001", f"{calls}?from_agent__id__exact={agent}"),
        ("calls: from agent 3001, page 50", f"{calls}?from_agent__id__exact={agent}&p=50"),
        (f"calls: disposition {common_code}", f"{calls}?disposition_code={common_code.replace(' ', '+')}"),
        (f"calls: disposition {rare_code}", f"{calls}?disposition_code={rare_code.replace(' ', '+')}"),
        (
            "calls: busy, past 7 days",
            f"{calls}?outcome__exact=busy&{past_week}",
        ),
        ("calls: search a VCC call ID", f"{calls}?q={vcc_call_id}"),
        ("calls: search a whole number", f"{calls}?q={number.replace('+', '%2B')}"),
        ("calls: search a number's start (020 7946)", f"{calls}?q=020+7946"),
        ("calls: search an unknown id", f"{calls}?q=no-such-call"),
        ("contacts: first page", contacts),
        ("contacts: page 2", f"{contacts}?p=2"),
        ("contacts: last page offered (200)", f"{contacts}?p=200"),
        ("contacts: by name, Z first", f"{contacts}?o=-0"),
        ("contacts: created past 7 days", f"{contacts}?created_at__gte={week}&created_at__lt={tomorrow}"),
        ("contacts: do not call", f"{contacts}?do_not_call__exact=1"),
        ("contacts: owner", f"{contacts}?owner__id__exact={owner}" if owner else f"{contacts}?owner__isnull=True"),
        ("contacts: search a name (smith)", f"{contacts}?q=smith"),
        ("contacts: search two words (ali 0123)", f"{contacts}?q=ali+0123"),
        ("contacts: search a number (020 7946)", f"{contacts}?q=020+7946"),
        ("contacts: search, page 2", f"{contacts}?q=smith&p=2"),
        ("numbers: first page", phones),
        ("numbers: page 2", f"{phones}?p=2"),
        ("numbers: not primary", f"{phones}?is_primary__exact=0"),
        ("numbers: do not call", f"{phones}?do_not_call__exact=1"),
        ("numbers: search a start (+44 20 7946)", f"{phones}?q=%2B44+20+7946"),
        ("numbers: search an ending (0123)", f"{phones}?q=0123"),
    ]
    return [Target(label, path) for label, path in lists]


def make_admin() -> None:
    from django.contrib.auth import get_user_model

    user, _ = get_user_model().objects.get_or_create(username=ADMIN, defaults={"email": "bench@example.com"})
    user.is_staff = user.is_superuser = user.is_active = True
    user.set_password(ADMIN_PASSWORD)
    user.save()


def capture_sql(pages: list[Target]) -> list[Target]:
    """Fetch each list once through Django in this process and keep the SQL it ran; return the lists the data has
    (a page past the last, in a smaller seed, is the admin's redirect to the list's first page)."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST=HOST)
    client.force_login(get_user_model().objects.get(username=ADMIN))
    found = []
    for page in pages:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(page.path)
        if response.status_code == 302 and client.get(re.sub(r"[?&]p=\d+", "", page.path)).status_code == 200:
            print(f"{page.label}: skipped, this data has no such page")  # a smaller seed than 5 M calls
            continue
        assert response.status_code == 200, (page.path, response.status_code)
        page.sql = [(q["sql"], None) for q in captured.captured_queries]
        found.append(page)
    return found


def timed(conn: psycopg.Connection, sql: str) -> float:
    started = time.perf_counter()
    conn.execute(sql).fetchall()
    return (time.perf_counter() - started) * 1000


def what_django_ran_before(conn: psycopg.Connection, only: list[str]) -> None:
    """The queries the lists ran before issue 16, each once: the counts and the date hierarchy's dates."""
    print("\nbefore (Django's defaults), each query once:")
    tables = [("calls", "calls_call", "requested_at"), ("contacts", "calls_contact", "created_at"),
              ("numbers", "calls_contactphone", "")]  # fmt: skip
    for table, column in [(t, c) for label, t, c in tables if not only or label in only]:
        ms = timed(conn, f"SELECT COUNT(*) FROM {table}")
        line = f"  {table}: COUNT(*) {ms:8.0f} ms (run twice a searched list)"
        if column:
            dates = timed(
                conn, f"SELECT DISTINCT date_trunc('year', {column} AT TIME ZONE 'Europe/London') FROM {table}"
            )
            line += f"; date_hierarchy's DISTINCT years {dates:8.0f} ms"
        print(line)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = start_django(args.database)
    import django
    import uvicorn

    conn = psycopg.connect(args.database, autocommit=True)
    pg_version = conn.execute("SHOW server_version").fetchone()[0]
    estimates = dict(conn.execute("SELECT relname, reltuples::bigint FROM pg_class WHERE relname IN "
                                  "('calls_call', 'calls_contact', 'calls_contactphone')").fetchall())  # fmt: skip
    print(f"vccweb admin lists bench · {platform.python_implementation()} {platform.python_version()}, "
          f"Django {django.__version__}, uvicorn {uvicorn.__version__}, PostgreSQL {pg_version}, "
          f"{os.cpu_count()} CPUs (shared)")  # fmt: skip
    print(
        "data (PostgreSQL's estimates, as the lists show them): "
        + ", ".join(f"{t} {n:,}" for t, n in estimates.items())
    )
    print(f"{args.requests} requests per list after warm-ups; goal: p95 at most {GOAL_MS:.0f} ms")
    print("load average at the start: {:.1f} {:.1f} {:.1f} (1, 5, 15 min)".format(*os.getloadavg()))
    make_admin()
    pages = [p for p in targets(conn) if not args.only or p.label.startswith(tuple(args.only))]
    pages = capture_sql(pages)
    from django.db import connections

    connections.close_all()

    port = free_port()
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"admin-bench-{port}.log", "wb")  # noqa: SIM115
    command = [sys.executable, "-m", "uvicorn", "vccweb.asgi:application", "--host", HOST, "--port", str(port)]
    server = subprocess.Popen([*command, "--no-access-log"], cwd=ROOT, env=env, stdout=log, stderr=log)
    over = 0
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=60, trust_env=False) as client:
            while True:
                try:
                    client.get("/login/")
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("uvicorn did not start") from None
                    time.sleep(0.2)
            login(client, ADMIN, ADMIN_PASSWORD)
            print(f"\n{'list':46} {'p50 ms':>8} {'p95 ms':>8} {'SQL p50':>8} {'SQL p95':>8} {'queries':>7}  goal")
            for page in pages:
                time_page(client, page, args.requests)
                time_sql(conn, page, args.requests)
                p50, p95 = percentile(page.page_ms, 50), percentile(page.page_ms, 95)
                s50, s95 = percentile(page.sql_ms, 50), percentile(page.sql_ms, 95)
                met = p95 <= GOAL_MS
                over += not met
                print(f"{page.label:46} {p50:8.1f} {p95:8.1f} {s50:8.1f} {s95:8.1f} {len(page.sql):7d}  "
                      f"{'ok' if met else 'OVER'}")  # fmt: skip
            for floor in (Target("floor: /admin/ (no list)", "/admin/"), Target("floor: /healthz", "/healthz")):
                time_page(client, floor, args.requests)  # what this machine takes for a page without a list
                print(f"{floor.label:46} {percentile(floor.page_ms, 50):8.1f} {percentile(floor.page_ms, 95):8.1f}")
        print(f"\nlists over {GOAL_MS:.0f} ms at p95: {over} of {len(pages)}")
        what_django_ran_before(conn, args.only)
        print("load average at the end: {:.1f} {:.1f} {:.1f} (1, 5, 15 min)".format(*os.getloadavg()))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
