"""The task engine's wiring: which jobs run when, on which queue, and the worker command's refusals. What the jobs
do is tested beside the code they run (imports, following, reports, sync); tests/test_worker_faults.py runs real
workers."""

from __future__ import annotations

import pytest
from croniter import croniter
from django.core.management import CommandError, call_command
from django.db import connection
from procrastinate.contrib.django import app

from calls import tasks


def test_every_periodic_job_is_scheduled_once_with_its_cadence():
    schedule = {p.periodic_id: p.cron for p in app.periodic_registry.periodic_tasks.values()}
    assert schedule == {
        "follow_calls": "* * * * * *",  # every second
        "close_abandoned_clicks": "* * * * *",
        "announce_callbacks": "* * * * *",
        "rollup_calls": "* * * * *",
        "expire_imports": "17 * * * *",
        "retry_stalled_jobs": "* * * * * */10",  # JOBS_STALLED_CHECK_CRON's default: every 10 s
        "prune_jobs": "41 * * * *",
        "sync_vcc": "0 */1 * * *",  # VCC_SYNC_EVERY's default, hourly
        "process_vcc_events": "* * * * * *",  # every second; each delivery queues it too
        "prune_vcc_events": "29 * * * *",
        "prune_api_keys": "47 * * * *",
        "dispatch_webhooks": "* * * * * *",  # every second, each watching for new events until the next
        "retry_webhooks": "* * * * * */5",
        "prune_webhooks": "53 * * * *",
        "apply_retention": "23 * * * *",  # calls/privacy/retention.py
        "tend_queues": "* * * * *",  # calls/queues/: settle attempts, grow live queues, look up time zones
    }


def test_every_job_is_on_a_queue_a_worker_works():
    own = {name: task for name, task in app.tasks.items() if task.queue != "builtin"}  # Procrastinate's, unused
    assert {task.queue for task in own.values()} <= set(tasks.QUEUES)
    assert own["check_import"].queue == own["apply_import"].queue == tasks.IMPORTS
    assert own["follow_calls"].queue == tasks.CALLS


def test_jobs_that_must_not_pile_up_hold_a_queueing_lock():
    for name in [
        "follow_calls",
        "rollup_calls",
        "close_abandoned_clicks",
        "announce_callbacks",
        "tend_queues",
        "sync_vcc",
        "retry_stalled_jobs",
        "dispatch_webhooks",
        "retry_webhooks",
    ]:
        assert app.tasks[name].queueing_lock == name


def test_the_admin_cannot_queue_two_syncs(jobs):
    assert tasks.enqueue_sync(by_id=None) is True
    assert tasks.enqueue_sync(by_id=None) is False
    assert [j["task_name"] for j in jobs.jobs.values()] == ["sync_vcc"]


def test_the_worker_refuses_sqlite_saying_what_to_set(settings):
    settings.JOBS_DATABASE = False
    with pytest.raises(CommandError, match="The worker needs PostgreSQL: set DATABASE_URL=postgres://"):
        call_command("worker")


def test_the_worker_refuses_a_queue_that_does_not_exist(settings):
    settings.JOBS_DATABASE = True
    refusal = "No such queue: imprts. The queues are imports, calls, vcc, maintenance, webhooks."
    with pytest.raises(CommandError, match=refusal):
        call_command("worker", queues="imprts")


def test_every_periodic_job_takes_the_tick_it_is_queued_with(jobs, settings):
    """The schedule queues each periodic job with `timestamp`: a job that does not take it fails every tick."""
    import inspect

    for periodic in app.periodic_registry.periodic_tasks.values():
        parameters = inspect.signature(periodic.task.func).parameters
        assert "timestamp" in parameters, f"{periodic.task.name} does not take the tick's timestamp"


def test_the_scheduled_sync_runs(jobs, settings, monkeypatch):
    from calls.calling import syncing

    ran = []
    monkeypatch.setattr(
        syncing, "sync_with_vcc", lambda **kw: ran.append(kw) or type("R", (), {"error": "", "pk": 7})()
    )
    monkeypatch.setattr("calls.calling.sync_with_vcc", syncing.sync_with_vcc)
    assert tasks.sync_vcc.func(timestamp=1_700_000_000) == 7
    assert ran == [{"by": None, "dry_run": False}]


@pytest.mark.parametrize(
    ("job", "seconds"),
    [("follow_calls", 1), ("retry_stalled_jobs", 10), ("rollup_calls", 60), ("prune_jobs", 3600)],
)
def test_periodic_jobs_tick_as_often_as_said(job, seconds):
    """Cron's sixth field, seconds, comes last: `*/10 * * * * *` would run every second of every tenth minute."""
    from datetime import UTC, datetime

    [periodic] = [p for p in app.periodic_registry.periodic_tasks.values() if p.periodic_id == job]
    ticks = croniter(periodic.cron, datetime(2026, 12, 5, 21, 3, 7, tzinfo=UTC))
    times = [ticks.get_next(float) for _ in range(4)]
    assert {round(b - a) for a, b in zip(times, times[1:], strict=False)} == {seconds}


def test_the_workers_queue_connections_commit_without_waiting_for_the_disk(settings):
    """Only the queue's own bookkeeping (fetch, finish, heartbeat): the work a job does keeps the database's setting."""
    from calls import worker

    connector = worker.queue_connector()
    assert connector._pool_args["kwargs"]["options"].endswith("-c synchronous_commit=off")


def test_a_stalled_job_that_cannot_go_back_never_keeps_the_others_from_it():
    """A stalled follow_calls whose next tick waits already (its queueing lock) ends failed; the stalled import
    after it is still queued again."""
    from types import SimpleNamespace

    from asgiref.sync import async_to_sync
    from procrastinate.exceptions import UniqueViolation
    from procrastinate.jobs import Status

    tick, apply_job = SimpleNamespace(id=1, task_name="follow_calls"), SimpleNamespace(id=2, task_name="apply_import")
    done: list[tuple] = []

    class Manager:
        async def get_stalled_jobs(self, seconds_since_heartbeat):
            return [tick, apply_job]

        async def retry_job(self, job):
            if job is tick:
                raise UniqueViolation(constraint_name="procrastinate_jobs_queueing_lock_idx_v1", queueing_lock="x")
            done.append(("retried", job.id))

        async def finish_job(self, job, status, delete_job):
            done.append(("finished", job.id, status))

    context = SimpleNamespace(app=SimpleNamespace(job_manager=Manager()))
    assert async_to_sync(tasks.retry_stalled_jobs.func)(context, timestamp=0) == 1
    assert done == [("finished", 1, Status.FAILED), ("retried", 2)]


def _defer_tick(cursor, timestamp: int) -> int | None:
    cursor.execute(
        "SELECT procrastinate_defer_periodic_job_v2('calls', NULL, NULL, 'follow_calls', 0, 'follow_calls', %s, %s)",
        [timestamp, f'{{"timestamp": {timestamp}}}'],
    )
    return cursor.fetchone()[0]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="Procrastinate's queue is PostgreSQL's")
@pytest.mark.django_db
def test_a_worker_behind_another_never_queues_a_periodic_tick_twice():
    # Worker A queues ticks 100 and 101 (Procrastinate then deletes tick 100's row); worker B, a second behind,
    # queues 100: migration 0035's trigger refuses it, where Procrastinate alone would queue it again.
    with connection.cursor() as cursor:
        assert _defer_tick(cursor, 100) is not None
        assert _defer_tick(cursor, 101) is not None
        assert _defer_tick(cursor, 100) is None
        assert _defer_tick(cursor, 101) is None  # the same tick twice: Procrastinate's own unique row
        assert _defer_tick(cursor, 102) is not None  # and the next tick goes on as before
        cursor.execute("SELECT args->>'timestamp' FROM procrastinate_jobs WHERE task_name = 'follow_calls' ORDER BY 1")
        assert [row[0] for row in cursor.fetchall()] == ["100", "101", "102"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="Procrastinate's queue is PostgreSQL's")
@pytest.mark.django_db
def test_a_tick_queued_by_a_worker_whose_clock_ran_ahead_holds_no_other_tick_back():
    # A host an hour fast queued its tick (then its clock was put right, or the host went away): the other workers'
    # ticks still go, rather than none at all for an hour.
    with connection.cursor() as cursor:
        cursor.execute("SELECT extract(epoch FROM now())::bigint")
        now = cursor.fetchone()[0]
        assert _defer_tick(cursor, now + 3600) is not None
        assert _defer_tick(cursor, now) is not None
        assert _defer_tick(cursor, now + 1) is not None
        assert _defer_tick(cursor, now) is None  # a worker behind the others still never queues a tick twice
        # And the tick far ahead is gone: kept, it would hold every tick back once real time came near it.
        cursor.execute("SELECT count(*) FROM procrastinate_periodic_defers WHERE defer_timestamp = %s", [now + 3600])
        assert cursor.fetchone()[0] == 0
        # A fast host's deferrers (two a worker process) still queue each of its ticks once.
        assert _defer_tick(cursor, now + 120) is not None
        assert _defer_tick(cursor, now + 120) is None
