"""What one click costs the app: SQL queries and CPU time per click, measured in-process.

Drives the real ASGI application (every middleware, the async click view, the calling core) with Django's
AsyncClient, one click at a time, on PostgreSQL, against the in-process VCC simulator. Counts every SQL statement
the app sends (on every connection and thread) and the process's CPU time. Unlike click_bench.py this needs no
servers and is not moved by other load on the machine, so it is the figure to watch for the cost of a click.

    .venv/bin/python bench/click_cost.py                 # 300 clicks after 30 unmeasured
    .venv/bin/python bench/click_cost.py --clicks 1000 --database vccweb_cost
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clicks", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--database", default="vccweb_cost", help="PostgreSQL database, dropped and made afresh")
    parser.add_argument("--page", choices=("contact", "list"), default="contact")
    parser.add_argument(
        "--endpoints",
        type=int,
        default=0,
        help="webhook endpoints taking every event: each click then writes its events",
    )
    parser.add_argument(
        "--alternate",
        action="store_true",
        help="with --endpoints: every other click as if no endpoint existed, the two kinds compared in one run",
    )
    args = parser.parse_args()

    os.environ.update(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="testserver",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{args.database}",
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        LOG_LEVEL="WARNING",
        # Not what is measured: VCC's fair-use budget, which the follower's looks would exhaust after some 50 clicks
        # (a call not followed stays live, and its agent's next click is refused as on a call).
        VCC_REQUESTS_PER_MINUTE="1000000",
        LOG_FORMAT="text",
        VCC_ACCOUNT_KEY="",
        DJANGO_SETTINGS_MODULE="vccweb.settings",
    )
    import socket
    import subprocess

    import httpx
    import psycopg

    # VCC is the simulator in its own process, as in production: its CPU is not the app's.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nor VCC's fair-use limit, which 300 clicks in a few seconds would meet (the app's own budget is lifted too).
    command = [sys.executable, "-m", "vccsim", "--port", str(port), "--fair-use-limit", "off", "--quiet"]
    sim = subprocess.Popen(command, cwd=ROOT)
    sim_url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{sim_url}/_sim/state", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    os.environ["VCCSIM_URL"] = sim_url

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{args.database}"')
        admin.execute(f'CREATE DATABASE "{args.database}"')
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        asyncio.run(measure(args, sim_url))
    finally:
        sim.terminate()
        from django.db import connections

        connections.close_all()
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')


async def measure(args: argparse.Namespace, sim_url: str) -> None:
    import httpx
    from asgiref.sync import sync_to_async
    from django.db.backends.signals import connection_created
    from django.test import AsyncClient
    from django.utils import timezone

    from calls import calling

    statements: list[str] = []

    def count(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    def wrap(sender, connection, **kwargs):
        if count not in connection.execute_wrappers:  # the same wrapper object reconnects after each close
            connection.execute_wrappers.append(count)

    connection_created.connect(wrap)
    total = args.warmup + args.clicks
    users, phones = await sync_to_async(setup)(total, args.endpoints)
    clients = []
    for user in users:
        client = AsyncClient()
        await client.aforce_login(user)
        clients.append(client)
    target = "dialer" if args.page == "contact" else "list-call"
    cpu, queries, wall = [], [], []
    without: list[float] = []  # --alternate: the CPU of the clicks made as if no endpoint existed
    from calls.webhooks import outbox

    profile = os.environ.get("PROFILE")
    for n, phone in enumerate(phones):
        if profile and n == args.warmup:
            import yappi

            yappi.set_clock_type("cpu")
            yappi.start()
        client = clients[n % len(clients)]
        quiet = args.alternate and n % 2 == 1
        if args.alternate:  # what the outbox believes for the next 5 s: whether any endpoint exists
            outbox._known = (time.monotonic(), not quiet)
        data = {"call": f"me:{phone.pk}", "request_id": str(uuid.uuid4())}
        before_sql, before_cpu, before_wall = len(statements), time.process_time(), time.perf_counter()
        response = await client.post(
            f"/contacts/{phone.contact_id}/call/", data, headers={"HX-Request": "true", "HX-Target": target}
        )
        after_cpu, after_wall, after_sql = time.process_time(), time.perf_counter(), len(statements)
        if b'data-call-state="live"' not in response.content:
            raise SystemExit(f"click {n} was not placed: {response.status_code} {response.content[:300]!r}")
        if n >= args.warmup:
            (without if quiet else cpu).append((after_cpu - before_cpu) * 1000)
            wall.append((after_wall - before_wall) * 1000)
            queries.append(after_sql - before_sql)
            last_click = [" ".join(sql.split()) for sql in statements[before_sql:after_sql]]
        # Not measured: the call ends, and the call-following worker's round sees it, as it would beside the app.
        httpx.post(f"{sim_url}/_sim/clock/advance", json={"seconds": 70})
        # The app's clock 70 s on too: every live call is due (a call asked about less than FOLLOW_INTERVAL ago is
        # not, and its agent's next click would be refused as on a call).
        await calling.follow_due(clock=lambda: timezone.now() + timedelta(seconds=70))
    if profile:
        import yappi

        yappi.stop()
        stats = yappi.get_func_stats()
        stats.sort(os.environ.get("PROFILE_SORT", "ttot")).print_all(
            out=sys.stdout, columns={0: ("name", 90), 1: ("ncall", 8), 3: ("ttot", 8)}
        )
    print(
        f"{args.clicks} clicks on the {args.page} page, one at a time, in-process "
        f"(PostgreSQL; vccsim in its own process; {args.endpoints} webhook endpoint(s))"
    )
    print(f"SQL statements per click: min {min(queries)}, median {statistics.median(queries):.0f}, max {max(queries)}")
    print(f"CPU per click (ms):       p50 {pct(cpu, 50):.1f}, p90 {pct(cpu, 90):.1f}, mean {statistics.mean(cpu):.1f}")
    if without:
        print(
            f"  the other clicks, as if no endpoint existed: p50 {pct(without, 50):.1f}, p90 {pct(without, 90):.1f}, "
            f"mean {statistics.mean(without):.1f}; the events cost "
            f"{pct(cpu, 50) - pct(without, 50):+.2f} ms p50, "
            f"{statistics.mean(cpu) - statistics.mean(without):+.2f} ms mean"
        )
    if os.environ.get("SHOW_SQL"):
        print("\n".join(s[:140] for s in last_click))
    print(f"Wall per click (ms):      p50 {pct(wall, 50):.1f}, p90 {pct(wall, 90):.1f}  (includes VCC's answer)")


def pct(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def setup(total: int, endpoints: int = 0):
    import datetime as dt

    from django.contrib.auth import get_user_model

    from calls.models import Agent, CallbackNumber, CallingHours, Contact, ContactPhone, WebhookEndpoint
    from calls.roles import AGENT, assign_role
    from calls.webhooks import signing

    for n in range(endpoints):  # never delivered here (no worker): what the click itself does is measured
        WebhookEndpoint.objects.create(
            url=f"https://hooks{n}.example.com/vccweb", event_types=["*"], secret=signing.new_secret()
        )

    CallbackNumber.objects.create(number="+442079460100", label="London main", is_default=True)
    # The bench clicks at any hour: UK numbers may be called all day, every day (calls/calling/hours.py).
    CallingHours.objects.create(country="GB", opens_at=dt.time(0), closes_at=dt.time.max, days="0123456")
    users = []
    for display_id in ("1001", "1003", "1004"):  # ready agents of the simulator's sample account
        user = get_user_model().objects.create_user(f"agent{display_id}", password=secrets.token_urlsafe(12))
        assign_role(user, AGENT)
        Agent.objects.create(display_id=display_id, name=f"Agent {display_id}", user=user)
        users.append(user)
    # Valid UK landlines, each different, never ending in 91-94 (the simulator's failing endings).
    numbers = (
        f"+44{prefix}{n:04d}"
        for prefix in ("207946", "161496")
        for n in range(10000)
        if n % 100 not in (91, 92, 93, 94)
    )
    phones = []
    for n, number in zip(range(total), numbers, strict=False):
        contact = Contact.objects.create(name=f"Contact {n}")
        phones.append(ContactPhone.objects.create(contact=contact, number=number, is_primary=True))
    return users, phones


if __name__ == "__main__":
    main()
