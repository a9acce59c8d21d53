"""The integration health page's "Background jobs": queue depth, workers, failed and periodic jobs, and an admin's
Retry button, read from Procrastinate's own tables.

The autouse `jobs` fixture (tests/conftest.py) queues in memory; these tests write Procrastinate's tables with SQL
(its Django models are read-only), and the retry tests put Django's connector back so the retry reaches them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone
from procrastinate.contrib.django import app
from procrastinate.contrib.django.django_connector import DjangoConnector

from calls import health, tasks
from calls.models import JobError

pytestmark = pytest.mark.django_db
URL = "/health/"
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="Procrastinate's tables exist only on PostgreSQL (calls/routers.py); CI runs the suite on PostgreSQL",
)


def add_job(
    task_name: str,
    queue: str,
    *,
    status: str = "todo",
    deferred_at: datetime | None = None,
    scheduled_at: datetime | None = None,
    attempts: int = 0,
    worker_id: int | None = None,
    queueing_lock: str | None = None,
) -> int:
    """A job as Procrastinate leaves it: inserted waiting (its trigger writes the "deferred" event, dated here
    `deferred_at`), then moved to `status` as a worker would."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, scheduled_at, queueing_lock) "
            "VALUES (%s, %s, %s, %s) RETURNING id",
            [queue, task_name, scheduled_at, queueing_lock],
        )
        (job_id,) = cursor.fetchone()
        if deferred_at:
            cursor.execute(
                "UPDATE procrastinate_events SET at = %s WHERE job_id = %s AND type = 'deferred'", [deferred_at, job_id]
            )
        if status != "todo":
            cursor.execute(
                "UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s WHERE id = %s", [worker_id, job_id]
            )
        if status not in ("todo", "doing"):
            cursor.execute(
                "UPDATE procrastinate_jobs SET status = %s, attempts = %s WHERE id = %s", [status, attempts, job_id]
            )
    return job_id


def add_worker(last_heartbeat: datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (%s) RETURNING id", [last_heartbeat])
        return cursor.fetchone()[0]


def add_finished_jobs(count: int) -> None:
    """`count` succeeded jobs, as follow_calls leaves one a second, in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, status, attempts) "
            "SELECT 'calls', 'follow_calls', 'succeeded', 1 FROM generate_series(1, %s)",
            [count],
        )


def fail(job_id: int, task_name: str, *, at: datetime, error: str, attempt: int = 1) -> None:
    JobError.objects.create(job_id=job_id, task_name=task_name, attempt=attempt, error=error, at=at)


def status_of(job_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT status FROM procrastinate_jobs WHERE id = %s", [job_id])
        return cursor.fetchone()[0]


# --- Off PostgreSQL: the section says jobs need it, and nothing is read ---------------------------------------


def test_without_the_jobs_database_the_section_says_jobs_need_postgresql(admin_role_client, settings):
    settings.JOBS_DATABASE = False
    report = health.background_jobs(now=timezone.now())
    assert not report.available and report.problems() == []
    response = admin_role_client.get(URL)
    assert response.status_code == 200
    assert "Background jobs need PostgreSQL" in response.content.decode()


def test_without_the_jobs_database_retry_says_so_and_changes_nothing(admin_role_client, settings):
    settings.JOBS_DATABASE = False
    response = admin_role_client.post("/health/jobs/1/retry/", follow=True)
    assert "Background jobs need PostgreSQL" in response.content.decode()


# --- Queues ----------------------------------------------------------------------------------------------------


@postgres_only
def test_every_queue_is_listed_with_what_waits_and_runs_there():
    now = timezone.now()
    worker = add_worker(now)
    add_job("follow_calls", tasks.CALLS, deferred_at=now - timedelta(seconds=90))
    add_job("close_abandoned_clicks", tasks.CALLS, deferred_at=now - timedelta(seconds=10))
    add_job("check_import", tasks.IMPORTS, status="doing", worker_id=worker)
    add_job("sync_vcc", tasks.VCC, scheduled_at=now + timedelta(minutes=10))  # a retry's back-off: not yet due
    add_finished_jobs(50)

    queues = {q.name: q for q in health.background_jobs(now=now).queues}

    assert list(queues) == list(tasks.QUEUES)  # every queue, in calls.tasks' order, empty ones too
    counts = {name: (q.waiting, q.running, q.later) for name, q in queues.items()}
    assert counts == {
        "imports": (0, 1, 0),
        "calls": (2, 0, 0),
        "vcc": (0, 0, 1),
        "maintenance": (0, 0, 0),
        "webhooks": (0, 0, 0),
    }
    assert queues["calls"].oldest_wait_seconds == 90
    assert queues["calls"].waiting_too_long
    assert queues["vcc"].oldest_wait is None and not queues["vcc"].waiting_too_long


@postgres_only
def test_a_job_waiting_over_a_minute_is_shown_first_with_a_warning(admin_role_client):
    now = timezone.now()
    add_job("expire_imports", tasks.MAINTENANCE, deferred_at=now - timedelta(minutes=5))
    report = health.integration_health(now=now)
    assert any("maintenance queue have waited 5 minutes" in p for p in report.problems)
    assert any("No job worker has been seen" in p for p in report.problems)
    page = admin_role_client.get(URL).content.decode()
    warning = page[page.index("data-jobs-waiting-too-long") :]
    assert "Jobs have waited 5 min" in warning[:200]
    assert "No worker may be running" in warning[:400]
    row = page[page.index('data-queue="maintenance"') : page.index("</tr>", page.index('data-queue="maintenance"'))]
    assert '<td data-waiting data-label="Waiting">1</td>' in row and '<span class="badge warn">5 min' in row


@postgres_only
def test_a_job_queued_again_waits_from_when_it_was_queued_again():
    now = timezone.now()
    job = add_job("sync_vcc", tasks.VCC, deferred_at=now - timedelta(hours=2), scheduled_at=now - timedelta(seconds=20))
    queues = {q.name: q for q in health.background_jobs(now=now).queues}
    assert queues["vcc"].waiting == 1 and queues["vcc"].oldest_wait_seconds == 20, job


# --- Workers ---------------------------------------------------------------------------------------------------


@postgres_only
def test_workers_are_listed_alive_or_dead_with_the_jobs_they_run(admin_role_client):
    now = timezone.now()
    alive = add_worker(now - timedelta(seconds=3))
    dead = add_worker(now - tasks.STALLED_AFTER - timedelta(seconds=1))
    add_job("check_import", tasks.IMPORTS, status="doing", worker_id=alive)
    add_job("apply_import", tasks.IMPORTS, status="doing", worker_id=alive)
    add_job("follow_calls", tasks.CALLS, status="succeeded", worker_id=alive)  # finished: not running

    report = health.background_jobs(now=now)

    assert [(w.id, w.dead, w.running) for w in report.workers] == [(alive, False, 2), (dead, True, 0)]
    assert report.live_workers == 1
    assert not any("No job worker" in p for p in report.problems())
    page = admin_role_client.get(URL).content.decode()
    assert f'data-worker="{dead}"' in page and '<span class="badge danger">dead</span>' in page
    assert "running 2 jobs" in page


@postgres_only
def test_only_dead_workers_is_a_problem():
    now = timezone.now()
    add_worker(now - timedelta(minutes=5))
    assert any("No job worker has been seen in the last 30 s" in p for p in health.background_jobs(now=now).problems())


# --- Failed jobs -----------------------------------------------------------------------------------------------


@postgres_only
def test_failed_jobs_are_listed_newest_first_with_their_last_error_and_a_count_of_the_rest(admin_role_client):
    now = timezone.now()
    failed = []
    for n in range(health.FAILED_SHOWN + 5):
        job = add_job("sync_vcc", tasks.VCC, status="failed", attempts=5)
        fail(job, "sync_vcc", at=now - timedelta(minutes=n + 1, seconds=30), error="TransientVCCFailure: earlier")
        fail(job, "sync_vcc", at=now - timedelta(minutes=n), error=f"RuntimeError: VCC refused the sync ({n})")
        failed.append(job)
    retried_then_succeeded = add_job("check_import", tasks.IMPORTS, status="succeeded", attempts=2)
    fail(retried_then_succeeded, "check_import", at=now, error="OperationalError: lost the connection")
    long_ago = add_job("expire_imports", tasks.MAINTENANCE, status="failed", attempts=1)
    fail(long_ago, "expire_imports", at=now - timedelta(hours=25), error="Old news")

    report = health.background_jobs(now=now)

    assert report.failed_count == health.FAILED_SHOWN + 5
    assert [j.id for j in report.failed] == failed[: health.FAILED_SHOWN]
    newest = report.failed[0]
    assert (newest.task_name, newest.queue, newest.attempts) == ("sync_vcc", "vcc", 5)
    assert newest.error == "RuntimeError: VCC refused the sync (0)" and newest.failed_at == now
    assert f"{health.FAILED_SHOWN + 5} background job(s) failed in the last 24 hours." in report.problems()
    page = admin_role_client.get(URL).content.decode()
    assert "<span data-failed-count>25</span>" in page
    assert "VCC refused the sync (0)" in page and "Old news" not in page and "lost the connection" not in page
    assert "and 5 more not shown." in page
    assert page.count('action="/health/jobs/') == health.FAILED_SHOWN  # a Retry button for each, for an admin


@postgres_only
def test_supervisors_see_failed_jobs_without_a_retry_button(supervisor_client):
    job = add_job("sync_vcc", tasks.VCC, status="failed", attempts=1)
    fail(job, "sync_vcc", at=timezone.now(), error="RuntimeError: VCC refused the sync")
    page = supervisor_client.get(URL).content.decode()
    assert f'data-failed-job="{job}"' in page
    assert "/retry/" not in page


# --- Periodic jobs ---------------------------------------------------------------------------------------------


@postgres_only
def test_each_periodic_job_shows_its_last_defer_and_how_its_job_ended(admin_role_client):
    now = timezone.now()
    tick = int(now.timestamp()) - 60
    job = add_job("rollup_calls", tasks.MAINTENANCE, status="succeeded", attempts=1)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO procrastinate_periodic_defers (task_name, periodic_id, defer_timestamp, job_id) "
            "VALUES ('rollup_calls', 'rollup_calls', %s, %s)",
            [tick, job],
        )

    runs = {run.periodic_id: run for run in health.background_jobs(now=now).periodic}

    registered = {periodic_id for _, periodic_id in app.periodic_registry.periodic_tasks}
    assert set(runs) == registered and "follow_calls" in runs
    rollup = runs["rollup_calls"]
    assert (rollup.job_id, rollup.status, int(rollup.deferred_for.timestamp())) == (job, "succeeded", tick)
    assert rollup.status_at is not None
    assert runs["follow_calls"].deferred_for is None
    page = admin_role_client.get(URL).content.decode()
    line = page[page.index('data-periodic-job="rollup_calls"') :]
    assert '<span class="badge ok">succeeded</span>' in line[:600]
    assert "never deferred" in page[page.index('data-periodic-job="follow_calls"') :][:600]


# --- Cheap at volume -------------------------------------------------------------------------------------------


@postgres_only
def test_the_section_costs_four_queries_however_many_jobs_there_are(django_assert_num_queries):
    now = timezone.now()
    worker = add_worker(now)
    add_finished_jobs(2000)
    for n in range(30):
        job = add_job("sync_vcc", tasks.VCC, status="failed", attempts=1)
        fail(job, "sync_vcc", at=now - timedelta(minutes=n), error="boom")
        add_job("check_import", tasks.IMPORTS, status="doing", worker_id=worker)
    with django_assert_num_queries(4):  # queues, workers, failed jobs, periodic jobs
        report = health.background_jobs(now=now)
    assert len(report.failed) == health.FAILED_SHOWN and report.failed_count == 30
    assert report.workers[0].running == 30


# --- Retry -----------------------------------------------------------------------------------------------------


@pytest.fixture
def django_connector():
    """Procrastinate's jobs in the test's database, as the web process reaches them."""
    with app.replace_connector(DjangoConnector()):
        yield


@postgres_only
def test_an_admin_queues_a_failed_job_again(admin_role_client, django_connector):
    job = add_job("sync_vcc", tasks.VCC, status="failed", attempts=5)
    fail(job, "sync_vcc", at=timezone.now(), error="RuntimeError: VCC refused the sync")
    response = admin_role_client.post(f"/health/jobs/{job}/retry/")
    assert response.status_code == 302 and response["Location"] == "/health/#jobs-head"
    assert status_of(job) == "todo"
    queues = {q.name: q for q in health.background_jobs(now=timezone.now()).queues}
    assert queues["vcc"].waiting == 1  # due now, not later
    page = admin_role_client.get(response["Location"]).content.decode()
    assert f"Job {job} (sync_vcc) was queued again" in page


@postgres_only
def test_a_failed_import_job_queued_again_reopens_its_import(admin_role_client, agent_user, django_connector):
    from calls.models import ContactImport

    imp = ContactImport.objects.create(created_by=agent_user, filename="x.csv", status="failed", error="boom")
    job = add_job("apply_import", tasks.IMPORTS, status="failed", attempts=3)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE procrastinate_jobs SET args = %s WHERE id = %s", [f'{{"import_id": "{imp.pk}"}}', job])

    admin_role_client.post(f"/health/jobs/{job}/retry/")

    imp.refresh_from_db()
    assert (imp.status, imp.error) == ("importing", "")  # else the job would find it failed and do nothing
    assert status_of(job) == "todo"


@postgres_only
@pytest.mark.parametrize("status, words", [("todo", "waiting"), ("doing", "running"), ("succeeded", "succeeded")])
def test_a_job_not_failed_is_refused_and_left_as_it_is(admin_role_client, django_connector, status, words):
    job = add_job("check_import", tasks.IMPORTS, status=status, attempts=1)
    page = admin_role_client.post(f"/health/jobs/{job}/retry/", follow=True).content.decode()
    assert f"Job {job} (check_import) is {words}, not failed: only a failed job can be queued again." in page
    assert status_of(job) == status


@postgres_only
def test_a_job_no_longer_there_is_refused(admin_role_client, django_connector):
    page = admin_role_client.post("/health/jobs/987654/retry/", follow=True).content.decode()
    assert "Job 987654 no longer exists" in page


@postgres_only
def test_a_failed_job_whose_kind_already_waits_is_refused(admin_role_client, django_connector):
    failed = add_job("expire_imports", tasks.MAINTENANCE, status="failed", attempts=1, queueing_lock="expire_imports")
    add_job("expire_imports", tasks.MAINTENANCE, queueing_lock="expire_imports")  # the next hour's, waiting
    page = admin_role_client.post(f"/health/jobs/{failed}/retry/", follow=True).content.decode()
    assert "was not queued again: another expire_imports job is already waiting in the queue" in page
    assert status_of(failed) == "failed"


@postgres_only
def test_only_admins_may_queue_a_job_again(supervisor_client, agent_client, django_connector):
    job = add_job("sync_vcc", tasks.VCC, status="failed", attempts=1)
    assert supervisor_client.post(f"/health/jobs/{job}/retry/").status_code == 403
    assert agent_client.post(f"/health/jobs/{job}/retry/").status_code == 403
    assert status_of(job) == "failed"


# --- /readyz does not depend on the workers ----------------------------------------------------------------------


@postgres_only
def test_readyz_is_ready_with_no_worker_and_a_stuck_queue(client):
    now = timezone.now()
    add_job("follow_calls", tasks.CALLS, deferred_at=now - timedelta(hours=1))
    add_worker(now - timedelta(hours=1))  # dead
    assert health.background_jobs(now=now).problems()  # the health page says so ...
    response = client.get("/readyz")
    assert response.status_code == 200  # ... but the app still serves: taking it out of the balancer helps no one
    assert response.json()["status"] == "ok"
