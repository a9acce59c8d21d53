"""The worker under faults, for real: `manage.py worker` processes on PostgreSQL (tests/_workers.py), killed with
SIGKILL, cut off by a PostgreSQL restart, failing jobs, two of them at once. Nothing of the engine is mocked.

The workers run with a 1 s heartbeat, are taken for dead after 3 s and look for stalled jobs every second
(tests._workers.FAST; production: 5 s, 30 s, every 10 s). Jobs go to the real queue in the test database
(`real_queue`), which the tests commit (transaction=True) so the workers see them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from django.db import connection
from procrastinate import SyncPsycopgConnector
from procrastinate.contrib.django import app
from procrastinate.contrib.django.django_connector import DjangoConnector

from calls import imports, tasks
from calls.models import Contact, ContactImport, ContactPhone, JobError, SyncRun
from tests._vccsim_process import start_vccsim
from tests._workers import Worker, cluster, database_url, postgres_bin, wait_for

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the task engine and its workers need PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]

QUEUE_TABLES = "procrastinate_jobs, procrastinate_events, procrastinate_periodic_defers, procrastinate_workers"


def _rows(sql: str, *params: object) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _empty_queue() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {QUEUE_TABLES} CASCADE")


@pytest.fixture
def real_queue() -> Iterator[None]:
    """Jobs the test queues go to PostgreSQL's queue (not the suite's in-memory one), empty before and after: the
    flush between transactional tests leaves the engine's tables alone."""
    _empty_queue()
    with app.replace_connector(DjangoConnector()):
        yield
    _empty_queue()


@pytest.fixture
def start_worker(real_queue, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start a worker on the test database actually in use (each xdist worker has its own); all are stopped at the
    end, and a failing test shows their logs."""
    started: list[Worker] = []
    url = database_url(connection.settings_dict)

    def start(name: str, **options) -> Worker:
        worker = Worker(name, options.pop("url", url), tmp_path, **options)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def _logs(*workers: Worker) -> Callable[[], str]:
    return lambda: "\n".join(worker.log() for worker in workers)


def _job(job_id: int) -> dict:
    status, attempts, scheduled_at = _rows(
        "SELECT status, attempts, scheduled_at FROM procrastinate_jobs WHERE id = %s", job_id
    )[0]
    return {"status": status, "attempts": attempts, "scheduled_at": scheduled_at}


def _ready_import(user, rows: int, settings) -> ContactImport:
    """An import of `rows` new contacts, checked (here, at once) and confirmed: its apply is what is queued."""
    settings.CONTACT_IMPORT_BACKGROUND = False
    lines = "".join(f"Person {i},+4474009{i:05d}\n" for i in range(rows))
    imp = imports.store_upload(user=user, filename="people.csv", chunks=[f"Name,Mobile\n{lines}".encode()])
    imp.refresh_from_db()
    assert imp.status == ContactImport.Status.PREVIEW and imp.report["ready"] == rows, imp.report
    ContactImport.objects.filter(pk=imp.pk).update(status=ContactImport.Status.IMPORTING, progress=0)
    return imp


def test_an_import_whose_worker_is_killed_half_way_is_finished_by_another_once(
    start_worker, make_user, settings, tmp_path
):
    rows = 25
    imp = _ready_import(make_user("olu"), rows, settings)
    pause = tmp_path / "pause-apply"
    pause.touch()
    first = start_worker(
        "first",
        patched=True,
        env={"VCCWEB_TEST_IMPORT_BATCH": "10", "VCCWEB_TEST_PAUSE_APPLY_FILE": str(pause)},
    )
    tasks.enqueue_import("apply", imp.pk)
    # The first batch of ten contacts is written (in the apply's transaction) and the apply waits there.
    wait_for(lambda: ContactImport.objects.get(pk=imp.pk).progress >= 10, "the first batch written", logs=_logs(first))
    first.kill()
    assert Contact.objects.count() == 0  # nothing of the killed try shows: its transaction never committed
    pause.unlink()

    second = start_worker("second", patched=True, env={"VCCWEB_TEST_IMPORT_BATCH": "10"})
    wait_for(
        lambda: ContactImport.objects.get(pk=imp.pk).status == ContactImport.Status.DONE,
        "the import done by the second worker",
        timeout=30,
        logs=_logs(first, second),
    )
    imp.refresh_from_db()
    assert imp.result["created"] == rows and not imp.error
    assert Contact.objects.count() == rows
    assert Contact.objects.values("name").distinct().count() == rows
    assert ContactPhone.objects.count() == rows
    # The job's own end is written just after the import's transaction commits: wait for it too.
    query = "SELECT status, attempts FROM procrastinate_jobs WHERE task_name = 'apply_import'"
    wait_for(lambda: _rows(query)[0][0] == "succeeded", "the job marked succeeded", logs=_logs(second))
    [(status, attempts)] = _rows(query)
    # Two tries: the killed one, put back in the queue by retry_stalled_jobs, and the one that finished.
    assert (status, attempts) == ("succeeded", 2)
    assert "left running by a dead worker: queued again" in second.log()


def test_a_worker_goes_on_after_postgresql_restarts_and_no_job_is_lost(start_worker, tmp_path):
    """On a PostgreSQL of the test's own, restarted under the worker: jobs queued before, due during, and queued
    after the restart all run. The jobs are checks of imports that are gone: each fails at once and says why in a
    JobError, which shows it ran."""
    if postgres_bin() is None:
        pytest.skip("no PostgreSQL server programs (initdb, pg_ctl) to run a private PostgreSQL")
    with cluster() as pg:
        url = pg.url()
        pg.copy_schema(database_url(connection.settings_dict))
        worker = start_worker("restarted", url=url)

        def queue(**schedule) -> int:
            connector = SyncPsycopgConnector(conninfo=url, min_size=1, max_size=1)
            with app.replace_connector(connector) as own, own.open():
                return own.tasks["check_import"].configure(**schedule).defer(import_id=str(uuid.uuid4()))

        def ran(job_id: int) -> bool:
            """The job failed for good (not put back to try again), and said why."""
            with psycopg.connect(url) as conn:
                status = conn.execute("SELECT status FROM procrastinate_jobs WHERE id = %s", (job_id,)).fetchone()
                why = conn.execute("SELECT error FROM calls_joberror WHERE job_id = %s", (job_id,)).fetchall()
            return status == ("failed",) and any("ImportGone" in error for (error,) in why)

        before = queue()
        wait_for(lambda: ran(before), "the job queued before the restart", logs=_logs(worker))
        due_during = queue(schedule_in={"seconds": 2})
        pg.pg_ctl("restart", "-m", "fast")
        after = queue()
        for job_id, what in ((due_during, "the job due during the restart"), (after, "the job queued after")):
            wait_for(lambda job_id=job_id: ran(job_id), what, timeout=30, logs=_logs(worker))
        assert worker.process.poll() is None, worker.log()
        assert "lost the database or its connection" in worker.log()
        with psycopg.connect(url) as conn:
            jobs = conn.execute("SELECT id FROM procrastinate_jobs WHERE task_name = 'check_import'").fetchall()
            # Only these jobs' errors: a periodic job cut off by the restart fails too, and runs at its next tick.
            errors = conn.execute(
                "SELECT job_id, error FROM calls_joberror WHERE job_id = ANY(%s) ORDER BY job_id",
                ([before, due_during, after],),
            ).fetchall()
        assert sorted(jobs) == [(before,), (due_during,), (after,)]
        # Each ran once, failing only because its import is gone: none on a connection from before the restart.
        assert [job_id for job_id, _ in errors] == [before, due_during, after], errors
        assert all("ImportGone" in error for _, error in errors), errors
        assert "could not record why" not in worker.log()
        worker.stop()


def test_a_job_that_fails_for_good_says_why_and_the_import_shows_it(start_worker, make_user):
    imp = ContactImport.objects.create(
        created_by=make_user("olu"), filename="gone.csv", status=ContactImport.Status.IMPORTING, row_count=5
    )  # its rows are gone: no try can ever write it
    worker = start_worker("only")
    tasks.enqueue_import("apply", imp.pk)
    wait_for(lambda: JobError.objects.exists(), "the failure recorded", logs=_logs(worker))
    [job_id] = [r[0] for r in _rows("SELECT id FROM procrastinate_jobs WHERE task_name = 'apply_import'")]
    wait_for(lambda: _job(job_id)["status"] == "failed", "the job failed", logs=_logs(worker))
    assert _job(job_id)["attempts"] == 1  # one try: trying again would change nothing
    [error] = JobError.objects.filter(job_id=job_id)
    assert error.task_name == "apply_import" and error.attempt == 1
    assert "ImportGone" in error.error and imports.GONE in error.error
    imp.refresh_from_db()
    assert imp.status == ContactImport.Status.FAILED and imp.error == imports.GONE


@pytest.fixture
def vccsim_server() -> Iterator[str]:
    """A vccsim process of this test's own (its faults are its own)."""
    yield from start_vccsim()


def test_a_sync_vcc_cannot_answer_is_tried_again_later_and_then_succeeds(start_worker, vccsim_server):
    sim = vccsim_server
    httpx.post(f"{sim}/_sim/reset", json={}, timeout=5).raise_for_status()
    httpx.post(f"{sim}/_sim/faults/*", json={"status": 503}, timeout=5).raise_for_status()
    worker = start_worker("vcc", env={"VCCSIM_URL": sim})
    tasks.enqueue_sync(by_id=None)
    [job_id] = [r[0] for r in _rows("SELECT id FROM procrastinate_jobs WHERE task_name = 'sync_vcc'")]
    wait_for(lambda: _job(job_id)["attempts"] == 1, "the first try failed and queued again", logs=_logs(worker))
    first = _job(job_id)
    [error] = JobError.objects.filter(job_id=job_id)
    assert first["status"] == "todo" and first["scheduled_at"] > error.at  # later, not at once
    assert error.attempt == 1 and "TransientVCCFailure" in error.error
    httpx.delete(f"{sim}/_sim/faults", timeout=5).raise_for_status()  # VCC answers again
    wait_for(lambda: _job(job_id)["status"] == "succeeded", "the second try succeeded", timeout=30, logs=_logs(worker))
    assert _job(job_id)["attempts"] == 2  # the failed try and the one that succeeded
    runs = list(SyncRun.objects.order_by("pk").values_list("error", flat=True))
    assert len(runs) == 2 and runs[0] and not runs[1], runs
    assert JobError.objects.filter(job_id=job_id).count() == 1


def test_two_workers_never_run_a_job_or_a_periodic_tick_twice(start_worker):
    workers = [start_worker("host-a"), start_worker("host-b")]
    logs = _logs(*workers)
    # Each `manage.py worker` runs two of Procrastinate's workers: its queues', and the webhooks' (calls/tasks.py).
    up = "SELECT count(*) FROM procrastinate_workers"
    wait_for(lambda: _rows(up)[0][0] == 2 * len(workers), "both workers up", logs=logs)
    job_ids = [tasks.check_import.defer(import_id=str(uuid.uuid4())) for _ in range(40)]
    wait_for(lambda: JobError.objects.filter(job_id__in=job_ids).count() >= len(job_ids), "every job run", logs=logs)
    ticks = "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'follow_calls'"
    wait_for(lambda: _rows(ticks)[0][0] >= 5, "five follow_calls ticks", logs=logs)
    for worker in workers:
        worker.stop()

    # Each job ran once: one start, one recorded failure.
    assert sorted(JobError.objects.values_list("job_id", flat=True)) == sorted(job_ids)
    started = _rows(
        "SELECT job_id, count(*) FROM procrastinate_events WHERE type = 'started' AND job_id = ANY(%s) GROUP BY 1",
        job_ids,
    )
    assert sorted(started) == sorted((job_id, 1) for job_id in job_ids)
    # Each tick of a periodic job (follow_calls and retry_stalled_jobs: every second) was queued once, though both
    # workers queue every tick.
    repeated = _rows(
        "SELECT task_name, args->>'timestamp', count(*) FROM procrastinate_jobs WHERE args ? 'timestamp' "
        "GROUP BY 1, 2 HAVING count(*) > 1"
    )
    assert repeated == []
    # And no job of any kind, periodic ones included, was started twice.
    started_twice = _rows(
        "SELECT job_id FROM procrastinate_events WHERE type = 'started' GROUP BY 1 HAVING count(*) > 1"
    )
    assert started_twice == []
    # Both really worked (each started jobs, its log says which), and no job is in both logs.
    ran_by = [set(map(int, re.findall(r"Starting job \w+\[(\d+)\]", worker.log()))) for worker in workers]
    assert all(ran_by) and not ran_by[0] & ran_by[1], ran_by
