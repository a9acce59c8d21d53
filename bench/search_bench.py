"""Search and the contact list at a million contacts, served as in production, next to their own SQL.

    .venv/bin/python bench/search_bench.py                 # loads hcbench once (about 6 minutes), then measures
    .venv/bin/python bench/search_bench.py --runs 50       # more requests per case
    .venv/bin/python bench/search_bench.py --reload        # drop the data and load it again
    .venv/bin/python bench/search_bench.py --contacts 100000

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth). Uses the database `hcbench` only, or the one
SEARCH_BENCH_DATABASE_URL names: migrates it and, when it does not hold --contacts contacts, fills it with
bench/_search_data.sql (1 million contacts, ~1.33 million numbers, ~600,000 calls) and
`Contact.objects.refresh_last_calls()`. Then serves the app with uvicorn, DEBUG off, and
for each case times `GET /contacts/?...` as htmx sends it while someone types (the results fragment), and runs the
same SQL that request ran with EXPLAIN ANALYZE (planning + execution time of each query the view sends about
contacts, numbers and calls, summed). Prints median and p95 of both, and their ratio. Nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import _harness as h  # bench/_harness.py: the scripts import each other from bench/

ROOT = Path(__file__).resolve().parent.parent
DB_URL = os.environ.get("SEARCH_BENCH_DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/hcbench"
DB_NAME = DB_URL.rsplit("/", 1)[-1]  # made, filled and counted: the database DB_URL names
PASSWORD = "bench-" + secrets.token_hex(8)
USERNAME = "searchbench"


def psql(*args: str, db: str = DB_NAME) -> str:
    cmd = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt", db, *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"psql {' '.join(args)} failed (exit {done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip()


def prepare(contacts: int, reload: bool) -> None:
    if not psql("-c", f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'", db="postgres"):
        psql("-c", f'CREATE DATABASE "{DB_NAME}"', db="postgres")
    env = {**os.environ, "DATABASE_URL": DB_URL, "DEBUG": "true"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    have = int(psql("-c", "SELECT count(*) FROM calls_contact"))
    if have != contacts or reload:
        print(f"loading {contacts:,} contacts into {DB_NAME} (have {have:,})…", flush=True)
        started = time.monotonic()
        psql("-v", f"contacts={contacts}", "-f", str(ROOT / "bench" / "_search_data.sql"))
        from calls.models import Contact

        Contact.objects.refresh_last_calls()
        # VACUUM sets the tables' visibility maps (without them a search by number reads each row it finds in
        # the table too, not just the index), as autovacuum would in production; ANALYZE, their statistics.
        psql(
            "-c",
            "VACUUM ANALYZE calls_contact",
            "-c",
            "VACUUM ANALYZE calls_contactphone",
            "-c",
            "VACUUM ANALYZE calls_call",
        )
        print(f"loaded in {time.monotonic() - started:.0f} s", flush=True)


def serve(port: int, workers: int) -> subprocess.Popen:
    env = h.production_env(DB_URL) | {"LOG_LEVEL": "WARNING"}
    # DEBUG is off: static files are served by their hashed names, which collectstatic writes.
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "--verbosity", "0"], cwd=ROOT, env=env, check=True
    )
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "vccweb.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("uvicorn did not start within 60 s")


def cases() -> list[tuple[str, dict[str, str]]]:
    """What people type and click, with values taken from the data so that each search finds something."""
    from calls.forms import encode_cursor
    from calls.models import Contact, ContactPhone

    middle = Contact.objects.order_by("pk")[Contact.objects.count() // 2]
    london = ContactPhone.objects.filter(number__startswith="+4420", contact_id__gt=middle.pk).order_by("pk").first()
    mobile = ContactPhone.objects.filter(number__startswith="+447", contact_id__gt=middle.pk).order_by("pk").first()
    deep_name = Contact.objects.order_by("name", "id").values_list("name", "id")[Contact.objects.count() * 3 // 4]
    called = Contact.objects.filter(last_called_at__isnull=False).order_by("-last_called_at", "-id")
    deep_called = called.values_list("last_called_at", "id")[called.count() // 2]
    l_national = "0" + london.number[3:]
    m_national = "0" + mobile.number[3:]
    email = middle.email or Contact.objects.exclude(email="").filter(pk__gt=middle.pk).first().email
    return [
        ("search name: lovelace", {"q": "lovelace"}),
        ("search name: muhammad", {"q": "muhammad"}),
        ("search name as typed: mu", {"q": "mu"}),
        ("search full name", {"q": middle.name}),
        ("search company: brightwater", {"q": "brightwater"}),
        ("search email", {"q": email}),
        ("search email start", {"q": email.split("@")[0][:-2]}),
        ("search words: muhammad brightwater", {"q": "Muhammad Brightwater"}),
        ("search words: grace hopper cobalt", {"q": "grace hopper cobalt"}),
        ("number E.164", {"q": f"+44 {london.number[3:5]} {london.number[5:9]} {london.number[9:]}"}),
        ("number national", {"q": f"{l_national[:3]} {l_national[3:7]} {l_national[7:]}"}),
        ("number national, typing: 020 7", {"q": l_national[:5]}),
        ("number national: 020", {"q": "020"}),
        ("number mobile national", {"q": m_national}),
        ("number ending: 4 digits", {"q": london.number[-4:]}),
        ("number ending: 6 digits", {"q": london.number[-6:]}),
        ("number ending: 7946 0123 style", {"q": f"{mobile.number[-7:-4]} {mobile.number[-4:]}"}),
        ("words + number: name and ending", {"q": f"{middle.name.split()[0]} {london.number[-4:]}"}),
        ("list: first page (name)", {}),
        ("list: deep page (name, 75%)", {"after": encode_cursor(list(deep_name))}),
        ("list: sort company", {"sort": "company"}),
        ("list: sort last called", {"sort": "last_called"}),
        (
            "list: deep page (last called, 50%)",
            {"sort": "last_called", "after": encode_cursor([deep_called[0].isoformat(), deep_called[1]])},
        ),
        ("list: sort created", {"sort": "created"}),
        ("list: filter mine", {"mine": "1"}),
        ("list: filter do-not-call", {"dnc": "only"}),
        ("list: filter company", {"company": "Brightwater Energy"}),
        ("list: mine + search", {"mine": "1", "q": "smith"}),
    ]


def sql_of(client, params: dict[str, str]) -> list[tuple[str, None]]:
    """The SQL the list view sends about contacts, numbers and calls for params (session and auth left out), with the
    planner settings it makes."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.get("/contacts/", params, headers={"HX-Request": "true"})
    assert response.status_code == 200, response.status_code
    return [
        q["sql"]
        for q in captured.captured_queries
        if "calls_contact" in q["sql"] or "calls_call" in q["sql"] or q["sql"].startswith("SET LOCAL")
    ]


def explain_ms(statements: list[str]) -> float:
    import json

    from django.db import connection, transaction

    total = 0.0
    # Replayed as the request ran them: the windowed statements under the planner setting the view sets for them,
    # and the fallback (its ORDER BY starts with an expression no index serves) without it.
    with transaction.atomic(), connection.cursor() as cursor:
        for sql in statements:
            if sql.startswith("SET LOCAL"):
                cursor.execute(sql)
                continue
            if re.search(r"ORDER BY \(", sql):
                cursor.execute("SET LOCAL enable_bitmapscan = on")
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql.replace("%", "%%"))
            plan = cursor.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            total += plan[0]["Planning Time"] + plan[0]["Execution Time"]
    return total


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--reload", action="store_true", help="load the data again even if it is there")
    parser.add_argument("--runs", type=int, default=30, help="measured requests per case (after 3 warm-up ones)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (requests go one at a time)")
    args = parser.parse_args()

    # LOG_LEVEL: the in-process requests that capture each case's SQL log no line between the dots.
    os.environ.update(
        {"DATABASE_URL": DB_URL, "DEBUG": "true", "LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "vccweb.settings"}
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import httpx
    from django.contrib.auth import get_user_model
    from django.test import Client

    from calls.models import Contact
    from calls.roles import AGENT, assign_role

    prepare(args.contacts, args.reload)
    user, _ = get_user_model().objects.get_or_create(username=USERNAME)
    user.set_password(PASSWORD)
    user.save()
    assign_role(user, AGENT)
    if not Contact.objects.filter(owner=user).exists():  # "mine": a colleague with 1 % of the contacts
        Contact.objects.filter(
            pk__in=Contact.objects.filter(pk__lt=100_000, owner__isnull=True).values("pk")[:10_000]
        ).update(owner=user)
    local = Client(SERVER_NAME="127.0.0.1")
    local.force_login(user)
    todo = cases()

    port = h.free_port()
    server = serve(port, args.workers)
    rows = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            login = http.get("/login/")
            token = http.cookies["csrftoken"]
            login = http.post(
                "/login/",
                data={"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": token},
                headers={"Referer": f"http://127.0.0.1:{port}/login/"},
            )
            assert login.status_code == 302, f"login failed: {login.status_code}"
            for label, params in todo:
                url = "/contacts/?" + urlencode(params)
                app = []
                for i in range(args.runs + 3):
                    started = time.perf_counter()
                    response = http.get(url, headers={"HX-Request": "true", "HX-Target": "results"})
                    elapsed = (time.perf_counter() - started) * 1000
                    assert response.status_code == 200, (label, response.status_code)
                    if i >= 3:
                        app.append(elapsed)
                found = response.text.count('<td data-label="Name">')  # a row each (none: no table, no header)
                statements = sql_of(local, params)
                sql = [explain_ms(statements) for _ in range(args.runs)]
                rows.append((label, found, app, sql, sum(1 for q in statements if not q.startswith("SET"))))
                print(".", end="", flush=True)
            floor = []  # the same server answering with no session, no SQL and no template
            for i in range(args.runs + 3):
                started = time.perf_counter()
                http.get("/healthz")
                if i >= 3:
                    floor.append((time.perf_counter() - started) * 1000)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    print()
    counts = psql(
        "-c",
        "SELECT (SELECT count(*) FROM calls_contact) || ' contacts, '"
        " || (SELECT count(*) FROM calls_contactphone) || ' numbers, '"
        " || (SELECT count(*) FROM calls_call) || ' calls'",
    )
    print(f"{DB_NAME}: {counts}; uvicorn x{args.workers}, DEBUG off; {args.runs} requests per case, one at a time")
    head = ("rows", "app p50", "app p95", "SQL p50", "SQL p95", "app/SQL", "app-SQL", "queries")
    print(f"{'case':44} {head[0]:>4} " + " ".join(f"{h:>8}" for h in head[1:5]) + "".join(f" {h:>7}" for h in head[5:]))
    worst, within = 0.0, 0
    for label, found, app, sql, n in rows:
        a50, a95, s50, s95 = statistics.median(app), pct(app, 95), statistics.median(sql), pct(sql, 95)
        worst = max(worst, a95)
        within += a50 <= 1.5 * s50
        print(
            f"{label:44} {found:>4} {a50:>8.1f} {a95:>8.1f} {s50:>8.1f} {s95:>8.1f} {a50 / s50:>6.1f}x"
            f" {a50 - s50:>7.1f} {n:>7}"
        )
    print(f"worst app p95: {worst:.1f} ms (goal: at most 150 ms)")
    print(f"within 1.5x of their SQL (p50): {within} of {len(rows)} cases")
    print(
        "floor: GET /healthz on the same server (no session, no SQL, no template):"
        f" p50 {statistics.median(floor):.1f} ms, p95 {pct(floor, 95):.1f} ms"
    )


if __name__ == "__main__":
    main()
