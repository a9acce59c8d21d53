"""Time a first retention pass over a year of calls while the call log is read, on a large data set.

The database (DATABASE_URL, or --database; by default `hlbench`) holds `manage.py seed_volume` data: a year of calls.
The policy is set to delete notes and mask numbers after --days days (1: the whole year but today), with no pass
made yet; the pass runs here (calls.privacy.retention.apply_retention, as the job runs it) while a thread reads call
log pages from the app under uvicorn (DEBUG off), as people would. Printed: the pass's duration, calls walked and
rows changed a second, its windows' durations (each one transaction: how long its row locks are held at most), and
the call log's p50/p95 before and during the pass. A benchmark, not a test: it prints figures, asserts nothing.

It changes the data for good (numbers masked, notes gone): seed the database again to run it again.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hlbench .venv/bin/python manage.py seed_volume \\
        --contacts 1000000 --calls 5000000      # once, about 13 minutes
    .venv/bin/python bench/retention_bench.py [--database URL] [--days N] [--baseline N] [--minutes M]

With --minutes, the pass stops after M minutes and the whole pass's time is worked out from its rate so far: run it
on a copy of the seeded database (`CREATE DATABASE hl_copy TEMPLATE hlbench`, a minute) to compare two versions of
the code on the same data at the same point of the pass.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import free_port  # noqa: E402  (the bench scripts import each other from bench/)
from calllog_bench import (  # noqa: E402  (the bench scripts import each other from bench/)
    HOST,
    ROOT,
    STARTUP_SECONDS,
    login,
    percentile,
    start_django,
)


def io_counters(conn: psycopg.Connection) -> dict[str, int]:
    """PostgreSQL's cumulative counters that say where a pass's writing goes: the write-ahead log's bytes and
    full-page images, checkpoints, and the blocks of the call table's heap and of each of its indexes read from
    outside shared_buffers ("read …") and found in them ("hit …")."""
    wal_bytes, fpi = conn.execute("SELECT wal_bytes, wal_fpi FROM pg_stat_wal").fetchone()
    timed, requested = conn.execute("SELECT checkpoints_timed, checkpoints_req FROM pg_stat_bgwriter").fetchone()
    counters = {"wal": int(wal_bytes), "fpi": fpi, "checkpoints": timed + requested}
    counters["read heap"], counters["hit heap"] = conn.execute(
        "SELECT heap_blks_read, heap_blks_hit FROM pg_statio_user_tables WHERE relname = 'calls_call'"
    ).fetchone()
    for name, read, hit in conn.execute(
        "SELECT indexrelname, idx_blks_read, idx_blks_hit FROM pg_statio_user_indexes WHERE relname = 'calls_call'"
    ):
        counters[f"read {name}"], counters[f"hit {name}"] = read, hit
    return counters


def print_io(before: dict[str, int], after: dict[str, int], rows: int) -> None:
    """What the pass cost PostgreSQL's log and buffers for each call it changed; then the indexes whose blocks it
    read most from outside shared_buffers (a key at a random place in a big index: a page seldom in memory)."""
    delta = {key: after[key] - before.get(key, 0) for key in after}
    per = max(rows, 1)
    print(f"  write-ahead log: {delta['wal'] / 2**30:.1f} GB, {delta['wal'] / per / 1024:.1f} KB a call changed; "
          f"{delta['fpi'] / per:.2f} full-page images a call; {delta['checkpoints']} checkpoints")  # fmt: skip
    print(f"  blocks a call changed, read / found in shared_buffers: heap {delta['read heap'] / per:.2f} / "
          f"{delta['hit heap'] / per:.2f}; the indexes that read most:")  # fmt: skip
    names = [key.removeprefix("read ") for key in delta if key.startswith("read ") and key != "read heap"]
    for name in sorted(names, key=lambda n: -delta[f"read {n}"])[:8]:
        print(f"    {name:36} {delta[f'read {name}'] / per:5.2f} / {delta[f'hit {name}'] / per:5.2f}")


class Stopped(Exception):
    """--minutes have passed: the pass stops before its next window."""


DEFAULT_DATABASE = os.environ.get("DATABASE_URL") or f"postgres://postgres@{HOST}:5432/hlbench"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=DEFAULT_DATABASE, help="PostgreSQL with seed_volume data")
    parser.add_argument("--days", type=int, default=1, help="the policy's days, for notes and for numbers")
    parser.add_argument("--baseline", type=int, default=60, help="call log reads before the pass")
    parser.add_argument("--batch", type=int, default=0, help="calls a window (default: the job's, BATCH)")
    parser.add_argument("--reads-per-second", type=float, default=4.0, help="call log reads during the pass")
    parser.add_argument(
        "--minutes",
        type=float,
        default=0,
        help="stop the pass after this long and print its rate so far, and the whole pass's time at that rate "
        "(default: the whole pass). Windows done stay done: use a copy of the seeded database "
        "(CREATE DATABASE copy TEMPLATE hlbench) to compare changes on the same data",
    )
    parser.add_argument(
        "--vacuum",
        action="store_true",
        help="vacuum the call table first, as autovacuum would have on a server (off here: the earlier runs in "
        "bench/README.md started from the data as seed_volume left it)",
    )
    return parser.parse_args(argv)


def log_pages(conn: psycopg.Connection) -> list[str]:
    """The call log as people read it: the first page, a deep page, one agent's, one outcome's."""
    from calls.calllog import _micros

    deep_at, deep_id = conn.execute(
        "SELECT requested_at, id FROM calls_call WHERE requested_at < now() - interval '200 days' "
        "ORDER BY requested_at DESC, id DESC LIMIT 1"
    ).fetchone()
    (agent,) = conn.execute("SELECT min(from_agent_id) FROM calls_call WHERE from_agent_id IS NOT NULL").fetchone()
    return [
        "/calls/",
        f"/calls/?after={_micros(deep_at)}_{deep_id}",
        f"/calls/?agent={agent}",
        "/calls/?outcome=busy",
    ]


class Reader(threading.Thread):
    """Reads the call log pages in turn, --reads-per-second of them (as people open pages, not back to back, which
    would take a core of this 2-core machine from the pass), until told to stop; keeps each read's milliseconds."""

    def __init__(self, client: httpx.Client, pages: list[str], per_second: float) -> None:
        super().__init__(daemon=True)
        self.client, self.pages, self.ms = client, pages, []
        self.stop = threading.Event()
        self.errors = 0
        self.interval = 1 / per_second

    def run(self) -> None:
        n = 0
        next_at = time.monotonic()
        while not self.stop.is_set():
            started = time.perf_counter()
            response = self.client.get(self.pages[n % len(self.pages)])
            self.ms.append((time.perf_counter() - started) * 1000)
            self.errors += response.status_code != 200
            n += 1
            next_at += self.interval
            self.stop.wait(max(0.0, next_at - time.monotonic()))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = start_django(args.database)
    import django
    from django.db import connections
    from django.utils import timezone

    from calls.models import RetentionPolicy, RetentionRun
    from calls.privacy import retention

    conn = psycopg.connect(args.database, autocommit=True)
    pg_version = conn.execute("SHOW server_version").fetchone()[0]
    calls, first, last = conn.execute(
        "SELECT count(*), min(requested_at), max(requested_at) FROM calls_call"
    ).fetchone()
    with_notes, masked = conn.execute(
        "SELECT count(*) FILTER (WHERE notes <> '' OR dnc_override_reason <> ''), "
        "count(*) FILTER (WHERE to_number LIKE '%•%') FROM calls_call"
    ).fetchone()
    print(f"vccweb retention bench · {platform.python_implementation()} {platform.python_version()}, "
          f"Django {django.__version__}, PostgreSQL {pg_version}, {os.cpu_count()} CPUs (shared)")  # fmt: skip
    print(f"data: {calls:,} calls from {first:%Y-%m-%d} to {last:%Y-%m-%d}; {with_notes:,} with notes, "
          f"{masked:,} masked already")  # fmt: skip
    print("load average at the start: {:.1f} {:.1f} {:.1f} (1, 5, 15 min)".format(*os.getloadavg()))
    pages = log_pages(conn)
    if args.vacuum:
        # A year of calls on a server has been vacuumed by autovacuum many times over: its pages are marked all
        # visible. This machine's PostgreSQL runs with autovacuum off (/etc/postgresql/15/main/conf.d/90-ci.conf)
        # and seed_volume loads the calls at once.
        started = time.perf_counter()
        conn.execute("VACUUM (ANALYZE) calls_call")
        print(f"calls_call vacuumed first, as autovacuum would have: {time.perf_counter() - started:.0f} s")

    policy = RetentionPolicy.current()
    policy.notes_days, policy.mask_days, policy.audit_days = args.days, args.days, None
    policy.notes_done_before = policy.masked_done_before = None  # a first pass
    policy.save()
    connections.close_all()

    stop_at: float | None = None  # set as the pass starts, with --minutes
    # Each window's transaction, timed from its start to its commit: the longest a window holds its row locks.
    windows: list[float] = []
    real_window = retention._window

    def timed_window(*a, **kw):  # type: ignore[no-untyped-def]
        if stop_at is not None and time.monotonic() >= stop_at:  # --minutes
            raise Stopped
        started = time.perf_counter()
        try:
            return real_window(*a, **kw)
        finally:
            windows.append((time.perf_counter() - started) * 1000)

    retention._window = timed_window  # type: ignore[assignment]
    if args.minutes:
        logging.getLogger("calls.privacy").setLevel(logging.CRITICAL)  # the stop is no failure to report

    port = free_port()
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"retention-bench-{port}.log", "wb")  # noqa: SIM115
    command = [sys.executable, "-m", "uvicorn", "vccweb.asgi:application", "--host", HOST, "--port", str(port)]
    server = subprocess.Popen([*command, "--no-access-log"], cwd=ROOT, env=env, stdout=log, stderr=log)
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
            login(client)
            baseline = Reader(client, pages, args.reads_per_second)
            for n in range(args.baseline + len(pages)):  # the first round of each page unmeasured
                started = time.perf_counter()
                client.get(pages[n % len(pages)]).raise_for_status()
                if n >= len(pages):
                    baseline.ms.append((time.perf_counter() - started) * 1000)

            reader = Reader(client, pages, args.reads_per_second)
            reader.start()
            io_before = io_counters(conn)
            started = time.perf_counter()
            batch = args.batch or retention.BATCH
            now = timezone.now()
            if args.minutes:
                stop_at = time.monotonic() + args.minutes * 60
            try:
                run = retention.apply_retention(now=now, clock=timezone.now, batch=batch)
            except Stopped:
                run = RetentionRun.objects.order_by("-pk").first()
            seconds = time.perf_counter() - started
            reader.stop.set()
            reader.join()
            with connections["default"].cursor() as cursor:
                # The pass's connection sends its counts to PostgreSQL's statistics at most once a second (PostgreSQL
                # 15): without this, the last second's writes (a short pass's all) are missing from io_after.
                cursor.execute("SELECT pg_stat_force_next_flush()")
            io_after = io_counters(conn)
        changed = run.notes_cleared + run.numbers_masked
        cutoff = now - timezone.timedelta(args.days)
        (due,) = conn.execute("SELECT count(*) FROM calls_call WHERE requested_at < %s", [cutoff]).fetchone()
        walked = due
        if stop_at is not None and run.error:  # stopped: the calls before where the windows got to
            (walked,) = conn.execute(
                "SELECT count(*) FROM calls_call WHERE requested_at < "
                "(SELECT masked_done_before FROM calls_retentionpolicy)"
            ).fetchone()
            whole = f"{due / walked * seconds / 60:.1f} min" if walked else "(unknown: no window was done)"
            print(f"\nthe pass was stopped after {seconds:.1f} s (--minutes {args.minutes:g}); at its rate so far the "
                  f"whole pass ({due:,} calls) would take {whole}")  # fmt: skip
        print(f"\nfirst pass (notes and numbers after {args.days} day(s)): {seconds:.1f} s, {run.batches:,} windows "
              f"of at most {batch:,} calls")  # fmt: skip
        print(f"  calls walked: {walked:,} = {walked / seconds:,.0f} a second")
        print(f"  notes cleared: {run.notes_cleared:,}; numbers masked: {run.numbers_masked:,}; "
              f"{changed / seconds:,.0f} changes a second (a call's notes and number count as two)")  # fmt: skip
        print(f"  at {args.reads_per_second:g} call log reads a second meanwhile")
        if windows:
            print(f"  a window's transaction (its row locks held): p50 {percentile(windows, 50):.0f} ms, "
                  f"p95 {percentile(windows, 95):.0f} ms, max {max(windows):.0f} ms")  # fmt: skip
        print_io(io_before, io_after, max(run.notes_cleared, run.numbers_masked))
        for label, ms in (("before the pass", baseline.ms), ("during the pass", reader.ms)):
            print(f"call log {label}: {len(ms):,} reads, p50 {percentile(ms, 50):.0f} ms, "
                  f"p95 {percentile(ms, 95):.0f} ms, max {max(ms):.0f} ms")  # fmt: skip
        if reader.errors:
            print(f"  {reader.errors} reads answered other than 200")
        assert stop_at is not None or RetentionRun.objects.filter(pk=run.pk, error="").exists()
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
