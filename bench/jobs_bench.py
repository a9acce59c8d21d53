"""Time the background jobs on Procrastinate with real worker processes: issue 18's three goals (item 5).

    .venv/bin/python bench/jobs_bench.py            # 3 uploads of 20,000 rows, 200 pings, 10,000 jobs
    .venv/bin/python bench/jobs_bench.py --quick    # small numbers: a check that the bench still runs

Makes a PostgreSQL database of its own (dropped and created afresh, then migrated), starts one `manage.py worker`
process against it (DEBUG off, the connection pool on, as in production; sandbox VCC without its hourly sync, no
Redis: no job here uses the cache), and measures:

1. An import's progress after an upload: a CSV of --rows rows is posted to /contacts/import/ by Django's test
   client in this process, as a logged-in agent; the view stores it and queues the check on the real queue (the
   app's DjangoConnector), the worker runs it. Timed from the upload's answer to the import's first progress
   (the first batch of rows checked, calls.imports.BATCH, or its status changed), polled every few ms; and to the
   job's `started` event (negative when the worker took the job before the answer reached the client). Each upload
   waits for the previous check to finish, so the worker is idle when it arrives.
2. A job's start on an idle worker: `ping` (calls/tasks.py, a job that does nothing) deferred --pings times, one
   at a time, each waited for until it succeeded; from just before `defer()` to its `started` event.
3. Two workers draining --jobs pings: a second worker is started, then the pings are deferred in one batch
   (`batch_defer`, one query); from the batch's commit to the last job's `succeeded` event.

The workers run every periodic job as in production (`follow_calls` every second, with no live call to ask about),
so a ping may wait behind one. Times come from this machine's clock on both sides (PostgreSQL's `now()` and this
process's `time.time()`). A benchmark, not a test: it prints figures against the goals and asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _harness as h  # run as bench/jobs_bench.py, bench/ is on the path
import import_bench

POLL_SECONDS = 0.005  # how often a row or a job is looked at while waiting for it
START_SECONDS = 60.0  # a worker that has not answered a ping by then has failed to start
GOALS = {"progress": 1.0, "start_p50": 0.100, "rate": 500.0}  # issue 18 item 5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="small numbers (1 upload of 2,000 rows, 10 pings, 200 jobs)")
    add("--rows", type=h.positive, default=20_000, help="rows in each uploaded file")
    add("--uploads", type=h.positive, default=3, help="uploads, one after the other")
    add("--pings", type=h.positive, default=200, help="jobs deferred one at a time on an idle worker")
    add("--jobs", type=h.positive, default=10_000, help="jobs deferred at once for two workers to drain")
    add("--concurrency", type=h.positive, default=8, help="each worker's --concurrency (WORKER_CONCURRENCY's default)")
    add("--db-name", default="vccweb_jobs_bench", help="the bench's PostgreSQL database, dropped and created afresh")
    add("--keep", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", args.db_name):
        parser.error("--db-name: lower-case letters, digits and underscores")
    if args.quick:
        args.rows, args.uploads, args.pings, args.jobs = 2_000, 1, 10, 200
    # What _harness's helpers read; the bench uses no Redis (REDIS_URL is left out of the environment).
    args.redis_db, args.db_conn_max_age, args.db_pool_max_size, args.db_pool_timeout = h.REDIS_DB, 0, None, None
    return args


def worker_env(args: argparse.Namespace) -> dict[str, str]:
    """_harness's production environment in sandbox mode (no VCC account, VCC simulated in each process)."""
    env = h.app_env("http://127.0.0.1:9", args)
    for name in ("VCC_ACCOUNT_KEY", "VCC_API_TOKEN", "VCC_BASE_URL", "VCC_AUTH_URL", "VCC_GATEWAY_URL", "REDIS_URL"):
        env.pop(name, None)
    return env | {"VCC_SYNC_EVERY": "off"}  # the sandbox has no VCC account to sync


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(1, -(-len(ordered) * p // 100)) - 1] if ordered else float("nan")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def wait_until(what: str, ready: Callable[[], Any], seconds: float, pause: float = POLL_SECONDS) -> Any:
    """Call ready() until it returns something true; that value. Gives up with RuntimeError after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := ready():
            return value
        time.sleep(pause)
    raise RuntimeError(f"gave up waiting for {what} after {seconds:.0f} s")


def query(sql: str, params: tuple = ()) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def job_status(job_id: int) -> str:
    return query("SELECT status FROM procrastinate_jobs WHERE id = %s", (job_id,))[0][0]


def event_times(job_ids: list[int], kind: str) -> dict[int, float]:
    """Job id -> when it had this event (`started`, `succeeded`), as a Unix time."""
    rows = query(
        "SELECT job_id, extract(epoch FROM at) FROM procrastinate_events WHERE job_id = ANY(%s) AND type = %s",
        (job_ids, kind),
    )
    return {job_id: float(at) for job_id, at in rows}


def postgres_pids() -> tuple[int, ...]:
    """The PostgreSQL processes serving the bench's database (the server runs on this machine), not other sessions'."""
    return tuple(pid for (pid,) in query("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"))


def start_worker(name: str, args: argparse.Namespace, env: dict[str, str], tmp: Path, managed: list) -> h.Managed:
    """Start `manage.py worker` and wait until it has registered itself (a row in procrastinate_workers)."""
    before = query("SELECT count(*) FROM procrastinate_workers")[0][0]
    command = [sys.executable, "manage.py", "worker", "--concurrency", str(args.concurrency), "--name", name]
    worker = h.start(name, command, env, tmp, managed)

    def registered() -> bool:
        if worker.process.poll() is not None:
            raise RuntimeError(f"{name} exited with {worker.process.returncode}:\n{h.log_tail(worker)}")
        return query("SELECT count(*) FROM procrastinate_workers")[0][0] > before

    wait_until(f"{name} to start", registered, START_SECONDS, pause=0.05)
    return worker


def ping_and_wait(seconds: float = 30.0) -> int:
    from calls import tasks

    job_id = tasks.ping.defer()
    wait_until(f"ping job {job_id}", lambda: job_status(job_id) == "succeeded", seconds)
    return job_id


# --- 1. An import's first progress ------------------------------------------------------------------------------


def import_progress(args: argparse.Namespace) -> list[dict[str, float]]:
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    from calls.models import ContactImport
    from calls.roles import AGENT, assign_role

    user = get_user_model().objects.create(username="jobsbench")
    assign_role(user, AGENT)
    client = Client(SERVER_NAME="127.0.0.1")  # one of ALLOWED_HOSTS, as a browser's request would be
    client.force_login(user)
    data = import_bench.build_csv(args.rows)
    runs = []
    for n in range(args.uploads):
        sent = time.time()
        response = client.post("/contacts/import/", {"file": SimpleUploadedFile(f"bench{n}.csv", data, "text/csv")})
        answered = time.time()
        if response.status_code != 302:
            raise RuntimeError(f"the upload answered {response.status_code}: {h.page_text(response.text)}")
        pk = response.url.rstrip("/").rsplit("/", 1)[-1]

        def progressed(pk: str = pk) -> bool:
            status, progress = ContactImport.objects.filter(pk=pk).values_list("status", "progress").get()
            return progress > 0 or status != ContactImport.Status.CHECKING

        wait_until("the import's first progress", progressed, 60)
        first_progress = time.time()
        wait_until(
            "the check to finish",
            lambda pk=pk: ContactImport.objects.filter(pk=pk).exclude(status=ContactImport.Status.CHECKING).exists(),
            600,
            pause=0.05,
        )
        checked = time.time()
        [(job_id,)] = query(
            "SELECT id FROM procrastinate_jobs WHERE task_name = 'check_import' AND args->>'import_id' = %s", (pk,)
        )
        started = event_times([job_id], "started")[job_id]
        runs.append(
            {
                "upload": answered - sent,
                "job started": started - answered,
                "progress": first_progress - answered,
                "check": checked - answered,
            }
        )
    return runs


def print_import(args: argparse.Namespace, runs: list[dict[str, float]]) -> None:
    progress = [r["progress"] for r in runs]
    goal = GOALS["progress"]
    print(
        f"1. import progress after the upload's answer ({args.uploads} upload{'s' if args.uploads > 1 else ''} of "
        f"{args.rows:,} rows, one worker): "
        f"p50 {statistics.median(progress) * 1000:.0f} ms, max {max(progress) * 1000:.0f} ms   "
        f"[goal ≤ {goal:g} s: {verdict(max(progress) <= goal)}]"
    )
    for n, r in enumerate(runs, 1):
        print(
            f"   upload {n}: request {r['upload']:.2f} s; after its answer: job started "
            f"{r['job started'] * 1000:.0f} ms, first progress {r['progress'] * 1000:.0f} ms, "
            f"check done {r['check']:.1f} s"
        )


# --- 2. A job's start on an idle worker -------------------------------------------------------------------------


def job_starts(args: argparse.Namespace) -> list[float]:
    from calls import tasks

    deferred: dict[int, float] = {}
    for _ in range(args.pings):
        sent = time.time()
        job_id = tasks.ping.defer()
        deferred[job_id] = sent
        wait_until(f"ping job {job_id}", lambda job_id=job_id: job_status(job_id) == "succeeded", 30)
    started = event_times(list(deferred), "started")
    return [started[job_id] - sent for job_id, sent in deferred.items()]


def print_starts(args: argparse.Namespace, waits: list[float]) -> None:
    p50 = percentile(waits, 50)
    goal = GOALS["start_p50"]
    print(
        f"2. defer → start of a job on an idle worker ({args.pings} pings, one at a time): p50 {p50 * 1000:.1f} ms, "
        f"p95 {percentile(waits, 95) * 1000:.1f} ms, max {max(waits) * 1000:.1f} ms   "
        f"[goal p50 ≤ {goal * 1000:.0f} ms: {verdict(p50 <= goal)}]"
    )


# --- 3. Two workers draining a batch ----------------------------------------------------------------------------


def drain(args: argparse.Namespace, workers: list[h.Managed]) -> dict[str, float]:
    from calls import tasks

    pids = tuple(w.process.pid for w in workers)
    postgres = postgres_pids()
    cpu_before, pg_before, busy_before = h.cpu_ms(pids), h.cpu_ms(postgres), h.machine_busy_ms()
    began = time.time()
    job_ids = tasks.ping.batch_defer(*({} for _ in range(args.jobs)))
    committed = time.time()
    first, last = min(job_ids), max(job_ids)

    def drained() -> bool:
        done = (
            "SELECT count(*) FROM procrastinate_jobs WHERE id BETWEEN %s AND %s AND task_name = 'ping' AND status = %s"
        )
        return query(done, (first, last, "succeeded"))[0][0] >= args.jobs

    # Looked at four times a second: the end is read from the jobs' events, and counting costs PostgreSQL CPU.
    wait_until(f"{args.jobs:,} jobs to finish", drained, max(120.0, args.jobs / 20), pause=0.25)
    seconds = time.time() - committed
    cpu, busy = h.cpu_ms(pids) - cpu_before, h.machine_busy_ms() - busy_before
    pg_cpu = h.cpu_ms(tuple(set(postgres) | set(postgres_pids()))) - pg_before
    finished = event_times(job_ids, "succeeded")
    first_start = min(event_times(job_ids, "started").values())
    return {
        "defer": committed - began,
        # The batch is in the queue from its commit, just before batch_defer returns: a job may start in between.
        "drain": max(finished.values()) - min(first_start, committed),
        "first start": first_start - committed,
        "waited": seconds,
        "worker cpu": cpu / 1000,
        "postgres cpu": pg_cpu / 1000,
        "machine busy": busy / 1000 / (seconds * (os.cpu_count() or 1)),
    }


def print_drain(args: argparse.Namespace, d: dict[str, float]) -> None:
    rate = args.jobs / d["drain"]
    goal = GOALS["rate"]
    print(
        f"3. two workers (--concurrency {args.concurrency} each) drain {args.jobs:,} pings: {d['drain']:.2f} s from "
        f"the batch's commit to the last finished, {rate:,.0f} jobs/s   [goal ≥ {goal:.0f}/s: {verdict(rate >= goal)}]"
    )
    print(
        f"   batch_defer of {args.jobs:,}: {d['defer']:.2f} s; first job started {d['first start'] * 1000:.0f} ms after"
        f" it returned; all cores {d['machine busy']:.0%} busy meanwhile (whoever used them)"
    )
    per_job = {name: d[f"{name} cpu"] * 1000 / args.jobs for name in ("worker", "postgres")}
    print(
        f"   CPU: workers {d['worker cpu']:.1f} s ({per_job['worker']:.2f} ms a job), "
        f"PostgreSQL {d['postgres cpu']:.1f} s ({per_job['postgres']:.2f} ms a job; the "
        "processes serving the bench's database)"
    )


# --- Main -----------------------------------------------------------------------------------------------------------


def header(args: argparse.Namespace, pg_version: str) -> None:
    import django
    import procrastinate
    from django.conf import settings
    from procrastinate.contrib.django import app
    from procrastinate.contrib.django.django_connector import DjangoConnector

    if not isinstance(app.connector, DjangoConnector):  # the jobs must reach the real queue, not a test's memory
        raise RuntimeError(f"the app defers jobs through {type(app.connector).__name__}, not DjangoConnector")
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(
        f"vccweb jobs bench, {time.strftime('%Y-%m-%d %H:%M %Z')} on {os.cpu_count()} cores ({platform.machine()}, "
        f"load average {load}), Python {platform.python_version()}, Django {django.__version__}, Procrastinate "
        f"{procrastinate.__version__}, PostgreSQL {pg_version}; database {settings.DATABASES['default']['NAME']}, "
        f"DEBUG {settings.DEBUG}, workers `manage.py worker --concurrency {args.concurrency}`"
    )


def run(args: argparse.Namespace, tmp: Path, managed: list[h.Managed]) -> int:
    pg_version = h.reset_database()
    (tmp / "static").mkdir()  # nothing is served from it; the app only wants it to exist
    env = worker_env(args) | {"STATIC_ROOT": str(tmp / "static")}
    h.run_python(["manage.py", "migrate", "--no-input"], env=env)
    os.environ.clear()  # this process's Django: the same database and settings as the workers', nothing else
    os.environ.update(env)
    sys.path.insert(0, str(h.ROOT))
    import django

    django.setup()
    header(args, pg_version)
    first = start_worker("worker-1", args, env, tmp, managed)
    ping_and_wait(START_SECONDS)  # it answers: its first job, not measured
    print_import(args, import_progress(args))
    print_starts(args, job_starts(args))
    second = start_worker("worker-2", args, env, tmp, managed)
    ping_and_wait()
    print_drain(args, drain(args, [first, second]))
    for worker in managed:
        print(f"{worker.name}: ", end="")
        h.print_app_log(worker, limit=3)
    return 0


def cleanup(managed: list[h.Managed], *, keep: bool) -> None:
    """Stop the workers (SIGTERM, then SIGKILL after _harness's STOP_SECONDS), then drop the database."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for worker in managed[::-1]:
        try:
            h.stop(worker)
        except Exception as e:
            print(f"cleanup: stopping {worker.name} failed: {e}", file=sys.stderr)
    with contextlib.suppress(Exception):
        from django.db import connections

        connections.close_all()
    if not keep:
        try:
            h.drop_database()
        except Exception as e:
            print(f"cleanup: dropping the bench database failed: {e}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    h.configure(args)
    signal.signal(signal.SIGTERM, h.raise_interrupt)
    managed: list[h.Managed] = []
    status = 1
    with tempfile.TemporaryDirectory(prefix="vccweb-jobs-bench-") as tmp:
        try:
            status = run(args, Path(tmp), managed)
        except KeyboardInterrupt:
            print("\ninterrupted: cleaning up", file=sys.stderr)
            status = 130
        except (RuntimeError, TimeoutError, subprocess.SubprocessError) as e:
            print(f"\nbench failed: {e}", file=sys.stderr)
            for worker in managed:
                print(f"--- {worker.name}'s log, last lines:\n{h.log_tail(worker)}", file=sys.stderr)
        finally:
            cleanup(managed, keep=args.keep)
    return status


if __name__ == "__main__":
    sys.exit(main())
