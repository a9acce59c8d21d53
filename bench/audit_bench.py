"""Time /audit/ at 10 million entries: the first page, deep keyset pages, and filtered pages, p50 and p95.

Makes a scratch PostgreSQL database (dropped first, and at the end unless --keep), migrates it, fills the audit
table with --entries rows in one INSERT … SELECT generate_series (the indexes dropped during the fill and built
after, as a restore would), then fetches each page --requests times after a few unmeasured fetches, through the
whole Django stack in-process (Django's test client, DEBUG off, logged in as an admin). Beside each, the page's
own SQL is timed straight on PostgreSQL, with the plan's top node. A benchmark, not a test: it prints figures and
asserts nothing.

    .venv/bin/python bench/audit_bench.py                       # 10 M entries: a few minutes to fill
    .venv/bin/python bench/audit_bench.py --entries 200000 --requests 20 --keep
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

START = datetime(2025, 1, 1, tzinfo=UTC)
STEP_SECONDS = 6  # between entries: 10 M entries span about 694 days
PEOPLE = 20
CONTACTS = 1_000_000
ADMIN = "auditadmin"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--requests", type=int, default=40, help="measured fetches of each page")
    parser.add_argument("--database", default="audit_bench", help="PostgreSQL database, dropped and made afresh")
    parser.add_argument("--keep", action="store_true", help="keep the database (and reuse it if filled)")
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
        LOG_FORMAT="text",
        DJANGO_SETTINGS_MODULE="vccweb.settings",
    )
    import psycopg

    admin_url = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [args.database]).fetchone()
        if exists and not args.keep:
            admin.execute(f'DROP DATABASE "{args.database}" WITH (FORCE)')
            exists = None
        if not exists:
            admin.execute(f'CREATE DATABASE "{args.database}"')
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from django.conf import settings
        from django.test import override_settings

        fill(args.entries)
        # Static files as they are in the source tree: no collectstatic manifest is needed to render the page.
        storages = settings.STORAGES | {
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
        }
        with override_settings(STORAGES=storages):
            measure(args)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')


INDEXES = [
    "audit_at_idx",
    "audit_actor_idx",
    "audit_object_idx",
    "audit_contact_idx",
    "audit_kind_idx",
    "audit_dnc_cleared_idx",
]


def fill(entries: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from calls.models import AuditEntry
    from calls.roles import ADMIN as ADMIN_ROLE
    from calls.roles import assign_role

    table = AuditEntry._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        have = cursor.fetchone()[0]
    if have >= entries:
        print(f"{have:,} entries already there")
        return
    users = get_user_model().objects
    people = [users.get_or_create(username=f"person{n:02d}")[0].pk for n in range(PEOPLE)]
    admin, made = users.get_or_create(username=ADMIN)
    if made:
        assign_role(admin, ADMIN_ROLE)
    # Rows: mostly contact and number changes and logins, a few exports, and a lock-out one entry in 10,000.
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table}")
        for name in INDEXES:
            cursor.execute(f"DROP INDEX IF EXISTS {name}")
        cursor.execute("SET synchronous_commit = off")
        cursor.execute(
            f"""
            INSERT INTO {table}
                (at, actor_id, actor_name, request_id, kind, object_type, object_id, contact_id, before, after, reason)
            SELECT %s::timestamptz + make_interval(secs => i * %s),
                   (%s::int[])[1 + h.person],
                   'person' || lpad(h.person::text, 2, '0'),
                   md5(i::text),
                   k.kind,
                   k.object_type,
                   CASE k.object_type WHEN 'user' THEN h.person::text ELSE h.contact::text END,
                   CASE WHEN k.object_type IN ('contact', 'number', 'call') THEN h.contact END,
                   CASE WHEN k.kind LIKE '%%.update' THEN jsonb_build_object('notes', md5((i - 1)::text)) END,
                   jsonb_build_object('notes', md5(i::text)),
                   ''
              FROM generate_series(1, %s) AS i
              -- Who and which contact: hashed, so that neither follows the kind (which goes by i).
              CROSS JOIN LATERAL (
                  SELECT (hashint4(i) & 2147483647) %% %s AS person,
                         (hashint4(-i) & 2147483647) %% %s AS contact
              ) AS h
              CROSS JOIN LATERAL (
                  SELECT CASE
                      WHEN i %% 10000 = 0 THEN 'lockout'
                      WHEN i %% 1000 = 0 THEN 'export.contacts'
                      WHEN i %% 10 < 4 THEN 'contact.update'
                      WHEN i %% 10 < 6 THEN 'number.update'
                      WHEN i %% 10 < 8 THEN 'call.update'
                      ELSE 'login'
                  END AS kind
              ) AS kinds
              CROSS JOIN LATERAL (SELECT kinds.kind, split_part(kinds.kind, '.', 1) AS object_type) AS k0
              CROSS JOIN LATERAL (
                  SELECT k0.kind,
                         CASE k0.object_type WHEN 'login' THEN 'user' WHEN 'export' THEN '' ELSE k0.object_type END
                             AS object_type
              ) AS k
            """,
            [START, STEP_SECONDS, people, entries, PEOPLE, CONTACTS],
        )
    filled = time.perf_counter()
    print(f"filled {entries:,} entries in {filled - started:.0f} s")
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '512MB'")
        with connection.schema_editor() as editor:
            for index in AuditEntry._meta.indexes:
                editor.add_index(AuditEntry, index)
        cursor.execute(f"VACUUM ANALYZE {table}")
        cursor.execute(f"SELECT pg_size_pretty(pg_total_relation_size('{table}'))")
        size = cursor.fetchone()[0]
    print(f"built the {len(INDEXES)} indexes and analysed in {time.perf_counter() - filled:.0f} s; table {size}")


def measure(args: argparse.Namespace) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from calls.audit import trail

    client = Client()
    client.force_login(get_user_model().objects.get(username=ADMIN))
    end = START + timedelta(seconds=STEP_SECONDS * args.entries)

    def cursor_at(fraction: float) -> str:
        at = START + (end - START) * fraction
        pk = int(args.entries * fraction)
        return f"{(at - trail.EPOCH) // timedelta(microseconds=1)}_{pk}"

    middle_day = (START + (end - START) / 2).date()
    cases = {
        "first page": {},
        "deep page (half way back)": {"after": cursor_at(0.5)},
        "deep page (the oldest)": {"after": cursor_at(0.0001)},
        "person": {"person": "person07"},
        "person, deep": {"person": "person07", "after": cursor_at(0.3)},
        "kind (common)": {"kind": "contact.update"},
        "kind (rare: 1 in 10,000)": {"kind": "lockout"},
        "kind (rare), deep": {"kind": "lockout", "after": cursor_at(0.2)},
        "object (a contact)": {"type": "contact", "id": "4242"},
        "contact's history": {"contact": "4242"},
        "dates (one day)": {"since": middle_day.isoformat(), "until": middle_day.isoformat()},
        "person and dates": {"person": "person03", "since": middle_day.isoformat(), "until": middle_day.isoformat()},
        "kind and person": {"kind": "number.update", "person": "person11"},
    }
    print(f"\n/audit/ at {args.entries:,} entries, {args.requests} fetches each (DEBUG off, in-process)")
    print(f"{'page':34} {'rows':>5} {'p50 ms':>8} {'p95 ms':>8}   {'SQL p95 ms':>10}  plan")
    for name, params in cases.items():
        for _ in range(3):
            client.get("/audit/", params)
        times = []
        for _ in range(args.requests):
            t0 = time.perf_counter()
            response = client.get("/audit/", params)
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.content[:300]
        rows = response.content.count(b'data-entry="')
        with CaptureQueriesContext(connection) as captured:
            client.get("/audit/", params)
        sql = max((q["sql"] for q in captured.captured_queries if "calls_auditentry" in q["sql"]), key=len)
        sql_times = []
        with connection.cursor() as cursor:
            for _ in range(args.requests):
                t0 = time.perf_counter()
                cursor.execute(sql)
                cursor.fetchall()
                sql_times.append((time.perf_counter() - t0) * 1000)
            cursor.execute("EXPLAIN " + sql)
            plan = " | ".join(line for (line,) in cursor.fetchall()[:3]).strip()
        figures = f"{rows:>5} {pct(times, 50):>8.1f} {pct(times, 95):>8.1f}   {pct(sql_times, 95):>10.1f}"
        print(f"{name:34} {figures}  {plan[:110]}")


def pct(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


if __name__ == "__main__":
    main()
