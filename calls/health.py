"""The integration health page's facts: how vccweb's link to VCC is doing, read cheaply, with no secret in them.

Workers say they are alive with `record_heartbeat(name, now)`; the page reads everything through
`integration_health(now=...)`, and the task engine's state (queues, workers, failed and periodic jobs) through
`background_jobs(now=...)`. An admin queues a failed job again with `retry_failed_job(job_id, now=...)`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from procrastinate.contrib.django import app as jobs_app
from procrastinate.contrib.django.models import (
    ProcrastinateEvent,
    ProcrastinateJob,
    ProcrastinatePeriodicDefer,
    ProcrastinateWorker,
)
from procrastinate.exceptions import ConnectorException, UniqueViolation

from calls import tasks
from calls.calling.events import EventsHealth, events_health
from calls.models import VCC_RETENTION, Call, CallbackNumber, JobError, SyncRun, WorkerHeartbeat
from calls.vcc import VCCConfig
from calls.vcc import budget as vcc_budget
from calls.vcc import stats as vcc_stats

HEARTBEAT_LATE = timedelta(minutes=5)  # a worker silent for longer is shown as not running
LIVE_TOO_LONG = timedelta(hours=2)  # calls "live" for longer probably ended without VCC telling us
UNCONFIRMED_RECENT = VCC_RETENTION  # an unconfirmed call can be checked with VCC only while VCC keeps it
SHOWN = 5  # rows listed for each kind of call that needs a look
COUNT_CAP = 1000  # counts stop here: the page never counts a million rows

WORKERS = {"follow_calls": "Following calls (the worker's follow_calls job)"}

WAITING_TOO_LONG = timedelta(minutes=1)  # a due job waiting longer: no worker may be running, or all are busy
FAILED_SINCE = timedelta(hours=24)
FAILED_SHOWN = 20
WORKERS_SHOWN = 20
PERIODIC_DEFERS_READ = 100  # Procrastinate keeps the latest defer of each periodic job: a handful of rows

log = logging.getLogger("calls.worker")

# Procrastinate's job statuses, as the page says them.
JOB_STATUS_WORDS = {
    "todo": "waiting",
    "doing": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "cancelled",
    "aborted": "aborted",
}


def record_heartbeat(name: str, now: datetime) -> None:
    """Note that the worker `name` is alive at `now`: one row in the database, which every process sees whatever
    the cache is (each process's own memory without Redis, or a Redis that is down)."""
    WorkerHeartbeat.objects.update_or_create(name=name, defaults={"seen_at": now})


def last_heartbeat(name: str) -> datetime | None:
    return WorkerHeartbeat.objects.filter(name=name).values_list("seen_at", flat=True).first()


def mask(secret: str) -> str:
    """Say whether a secret is set, never any of it."""
    return "set (hidden)" if secret else "not set"


@dataclass
class Worker:
    name: str
    label: str
    last_seen: datetime | None
    late: bool


@dataclass
class CacheState:
    """Redis as the shared cache (REDIS_URL), or each process's own memory; and whether Redis answers."""

    shared: bool
    where: str = ""  # Redis's address, never its password
    error: str = ""  # what went wrong asking it ("" when it answers)
    retry_seconds: float = 0  # each process asks again after this long (REDIS_BREAKER_SECONDS)

    @property
    def down(self) -> bool:
        return self.shared and bool(self.error)


def without_credentials(location: str) -> str:
    """A Redis URL (or several, comma-separated) with no user name or password: scheme, host, port, database."""
    shown = []
    for url in location.split(","):
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        shown.append(f"{parts.scheme}://{host}{port}{parts.path}")
    return ",".join(shown)


def cache_state() -> CacheState:
    """Ask Redis for a PING (a process whose breaker is open does not ask: it reports the last error)."""
    check = getattr(cache, "health", None)
    if check is None:
        return CacheState(shared=False)
    problem = check()
    breaker = getattr(cache, "breaker", None)
    error = ((breaker.last_error if breaker else "") or problem) if problem else ""
    return CacheState(
        shared=True,
        where=without_credentials(getattr(cache, "location", "")),
        error=error,
        retry_seconds=breaker.seconds if breaker else 0,
    )


@dataclass
class Request:
    at: datetime
    method: str
    path: str
    status: int | None
    error: str


@dataclass
class Health:
    now: datetime
    sandbox: bool
    region: str
    config: list[tuple[str, str]]
    v0_token_expires: datetime | None
    gateway_token_expires: datetime | None
    requests_last_hour: int
    failures_last_hour: int
    last_success: Request | None
    last_failure: Request | None
    unconfirmed_count: int
    unconfirmed: list[Call]
    long_live_count: int
    long_live: list[Call]
    not_listed: list[CallbackNumber]
    never_checked: list[CallbackNumber]
    last_sync: SyncRun | None
    last_applied_sync: SyncRun | None
    sync_enabled: bool
    workers: list[Worker]
    shared_counts: bool
    cache: CacheState
    jobs: Jobs
    events: EventsHealth
    budget: Any  # calls.vcc.budget.Snapshot: VCC requests this minute against VCC_REQUESTS_PER_MINUTE, and 429s
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _request(data: dict[str, Any] | None) -> Request | None:
    if not data:
        return None
    return Request(
        at=datetime.fromtimestamp(data["at"], tz=UTC),
        method=data["method"],
        path=data["path"],
        status=data["status"],
        error=data["error"],
    )


def _capped_count(queryset: QuerySet) -> int:
    return queryset.order_by()[:COUNT_CAP].count()


def integration_health(*, now: datetime) -> Health:
    """Everything the page shows, as of `now`."""
    cache_now = cache_state()  # first: a hung Redis costs one timeout here, then every read below falls back at once
    config = VCCConfig.from_settings()
    recorded = vcc_stats.snapshot(cache, now)
    unconfirmed = Call.objects.filter(state=Call.State.UNCONFIRMED, requested_at__gte=now - UNCONFIRMED_RECENT)
    long_live = Call.objects.filter(state=Call.State.LIVE, requested_at__lt=now - LIVE_TOO_LONG)
    last_applied = SyncRun.objects.filter(dry_run=False, finished_at__isnull=False, error="").first()
    never_checked = (
        list(CallbackNumber.objects.filter(is_active=True, vcc_listing_synced_at__isnull=True)) if last_applied else []
    )
    workers = []
    for name, label in WORKERS.items():
        seen = last_heartbeat(name)
        late = seen is None or seen < now - HEARTBEAT_LATE
        workers.append(Worker(name=name, label=label, last_seen=seen, late=late))
    health = Health(
        now=now,
        sandbox=settings.VCC_SANDBOX,
        region=settings.VCC_REGION,
        config=[
            ("V0 API (calls)", config.base_url),
            ("Token host (gateway)", config.auth_url),
            ("Gateway API (User Admin)", config.gateway_url),
            ("Account key", config.account_key),
            ("API authentication token", mask(config.api_token)),
            ("Gateway client ID", config.client_id or "not set"),
            ("Gateway client secret", mask(config.client_secret)),
            ("Application name sent", settings.VCC_APPLICATION),
            ("API version", str(config.api_version)),
        ],
        v0_token_expires=vcc_stats.token_expiry(cache, config.v0_token.cache_key),
        gateway_token_expires=vcc_stats.token_expiry(cache, config.gateway_token.cache_key),
        requests_last_hour=recorded.requests,
        failures_last_hour=recorded.failures,
        last_success=_request(recorded.last_success),
        last_failure=_request(recorded.last_failure),
        unconfirmed_count=_capped_count(unconfirmed),
        unconfirmed=list(unconfirmed.select_related("from_agent", "contact")[:SHOWN]),
        long_live_count=_capped_count(long_live),
        long_live=list(long_live.select_related("from_agent", "contact").order_by("requested_at")[:SHOWN]),
        not_listed=list(CallbackNumber.objects.not_listed_by_vcc()),
        never_checked=never_checked,
        last_sync=SyncRun.objects.select_related("by").first(),
        last_applied_sync=last_applied,
        sync_enabled=settings.VCC_SYNC_ENABLED,
        workers=workers,
        shared_counts=vcc_stats.needs_io(cache),
        cache=cache_now,
        jobs=background_jobs(now=now),
        events=events_health(now=now),
        budget=vcc_budget.snapshot(),
    )
    health.problems = _problems(health)
    return health


def _problems(h: Health) -> list[str]:
    problems = []
    if h.cache.down:
        problems.append("Redis (the shared cache) is not answering: see above for what works differently meanwhile.")
    if h.last_failure and (not h.last_success or h.last_failure.at > h.last_success.at):
        problems.append("The last request to VCC failed.")
    if h.unconfirmed_count:
        problems.append(f"{h.unconfirmed_count} call(s) not confirmed: VCC may have placed them.")
    if h.long_live_count:
        problems.append(f"{h.long_live_count} call(s) live for more than {_hours(LIVE_TOO_LONG)} hours.")
    if h.not_listed:
        problems.append(f"{len(h.not_listed)} caller ID(s) VCC lists for nobody.")
    if h.last_sync and h.last_sync.error:
        problems.append("The last sync from VCC failed.")
    problems += [f"{w.label}: not running." for w in h.workers if w.late]
    problems += h.jobs.problems()
    if h.budget.limited_last_hour:
        problems.append(f"VCC answered 429 (too many requests) {h.budget.limited_last_hour} time(s) in the last hour.")
    if h.events.refused_last_hour:
        problems.append(f"{h.events.refused_last_hour} delivery(ies) of VCC events refused in the last hour.")
    if h.events.problem():
        problems.append(h.events.problem())
    if h.events.waiting >= 1000:
        problems.append(f"{h.events.waiting}+ VCC events wait to be applied: is the worker running?")
    return problems


def _hours(delta: timedelta) -> int:
    return int(delta.total_seconds() // 3600)


# --- Background jobs: Procrastinate's tables, read with aggregates its indexes serve ------------------------------
#
# procrastinate_jobs holds about a day of finished jobs (follow_calls alone adds one a second), so nothing here scans
# it: queue depth reads only jobs waiting or running (the partial index on status todo/doing), failed jobs are found
# from JobError (indexed on `at`) and then by primary key, the workers' table is a few rows, and Procrastinate keeps
# only the latest defer of each periodic job. Every list is bounded.


@dataclass
class QueueDepth:
    name: str
    waiting: int = 0  # due now, not started
    later: int = 0  # scheduled for later (a retry's back-off)
    running: int = 0
    oldest_waiting_since: datetime | None = None
    now: datetime | None = None

    @property
    def oldest_wait(self) -> timedelta | None:
        if self.oldest_waiting_since is None or self.now is None:
            return None
        return max(timedelta(0), self.now - self.oldest_waiting_since)

    @property
    def oldest_wait_seconds(self) -> int | None:
        wait = self.oldest_wait
        return None if wait is None else int(wait.total_seconds())

    @property
    def waiting_too_long(self) -> bool:
        wait = self.oldest_wait
        return wait is not None and wait > WAITING_TOO_LONG


@dataclass
class JobWorker:
    id: int
    last_heartbeat: datetime
    running: int
    dead: bool  # silent longer than the stalled timeout: its jobs go back in the queue (retry_stalled_jobs)


@dataclass
class FailedJob:
    id: int
    task_name: str
    queue: str
    attempts: int
    failed_at: datetime
    error: str


@dataclass
class PeriodicRun:
    task_name: str
    periodic_id: str
    cron: str
    queue: str
    deferred_for: datetime | None = None  # the tick the last job was deferred for
    job_id: int | None = None
    status: str = ""  # the job's status; "" when it was never deferred or has been deleted since
    status_at: datetime | None = None  # when it reached that status (its latest event)

    @property
    def status_words(self) -> str:
        return JOB_STATUS_WORDS.get(self.status, self.status)


@dataclass
class Jobs:
    """The task engine's state. `available` is False off PostgreSQL, where Procrastinate's tables do not exist."""

    available: bool
    now: datetime
    queues: list[QueueDepth] = field(default_factory=list)
    workers: list[JobWorker] = field(default_factory=list)
    more_workers: bool = False
    failed: list[FailedJob] = field(default_factory=list)
    failed_count: int = 0
    periodic: list[PeriodicRun] = field(default_factory=list)
    stalled_after: timedelta = tasks.STALLED_AFTER
    waiting_too_long_after: timedelta = WAITING_TOO_LONG

    @property
    def oldest_wait(self) -> timedelta | None:
        waits = [q.oldest_wait for q in self.queues if q.oldest_wait is not None]
        return max(waits) if waits else None

    @property
    def oldest_wait_seconds(self) -> int | None:
        wait = self.oldest_wait
        return None if wait is None else int(wait.total_seconds())

    @property
    def waiting_too_long(self) -> bool:
        return any(q.waiting_too_long for q in self.queues)

    @property
    def stalled_seconds(self) -> int:
        return int(self.stalled_after.total_seconds())

    @property
    def live_workers(self) -> int:
        return sum(1 for w in self.workers if not w.dead)

    @property
    def failed_not_shown(self) -> int:
        return max(0, self.failed_count - len(self.failed))

    def problems(self) -> list[str]:
        if not self.available:
            return []
        problems = []
        if not self.live_workers:
            problems.append(
                f"No job worker has been seen in the last {self.stalled_seconds} s: background jobs wait for one."
            )
        for queue in self.queues:
            if queue.waiting_too_long:
                problems.append(
                    f"Jobs in the {queue.name} queue have waited {_minutes(queue.oldest_wait)} for a worker."
                )
        if self.failed_count:
            problems.append(f"{self.failed_count} background job(s) failed in the last 24 hours.")
        return problems


def _minutes(wait: timedelta | None) -> str:
    minutes = int((wait or timedelta(0)).total_seconds() // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def background_jobs(*, now: datetime) -> Jobs:
    """The queues, workers, failed jobs and periodic jobs, as of `now`: four queries, whatever the volume."""
    if not settings.JOBS_DATABASE:
        return Jobs(available=False, now=now)
    workers, more = _job_workers(now)
    failed, failed_count = _failed_jobs(now)
    return Jobs(
        available=True,
        now=now,
        queues=_queue_depths(now),
        workers=workers,
        more_workers=more,
        failed=failed,
        failed_count=failed_count,
        periodic=_periodic_runs(),
    )


def _queue_depths(now: datetime) -> list[QueueDepth]:
    """Every queue of calls.tasks (with zeros), then any other queue a job names. A job waits since it was deferred,
    queued again, or scheduled (the latest of these): its events are read by job id, for waiting jobs only."""
    jobs, events = ProcrastinateJob._meta.db_table, ProcrastinateEvent._meta.db_table
    due = "j.status = 'todo' AND (j.scheduled_at IS NULL OR j.scheduled_at <= %(now)s)"
    sql = f"""
        SELECT j.queue_name,
               count(*) FILTER (WHERE {due}),
               count(*) FILTER (WHERE j.status = 'todo' AND j.scheduled_at > %(now)s),
               count(*) FILTER (WHERE j.status = 'doing'),
               min(GREATEST(j.scheduled_at, (
                   SELECT max(e.at) FROM {events} e
                   WHERE e.job_id = j.id AND e.type IN ('deferred', 'deferred_for_retry', 'retried')
               ))) FILTER (WHERE {due})
        FROM {jobs} j
        WHERE j.status IN ('todo', 'doing')
        GROUP BY j.queue_name
    """  # table names from the models (style.md); values as parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, {"now": now})
        rows = cursor.fetchall()
    depths = {name: QueueDepth(name=name, now=now) for name in tasks.QUEUES}
    for name, waiting, later, running, oldest in rows:
        depths[name] = QueueDepth(name, waiting, later, running, oldest, now)
    return list(depths.values())


def _job_workers(now: datetime) -> tuple[list[JobWorker], bool]:
    """The workers Procrastinate knows, the last seen first, each with how many jobs it is running."""
    running = (
        ProcrastinateJob.objects.filter(worker_id=OuterRef("pk"), status="doing")
        .order_by()
        .values("worker_id")
        .annotate(n=Count("*"))
        .values("n")
    )
    rows = list(
        ProcrastinateWorker.objects.annotate(running=Coalesce(Subquery(running), 0))
        .order_by("-last_heartbeat", "-id")
        .values_list("id", "last_heartbeat", "running")[: WORKERS_SHOWN + 1]
    )
    dead_before = now - tasks.STALLED_AFTER
    workers = [JobWorker(pk, seen, n, dead=seen < dead_before) for pk, seen, n in rows[:WORKERS_SHOWN]]
    return workers, len(rows) > WORKERS_SHOWN


def _failed_jobs(now: datetime) -> tuple[list[FailedJob], int]:
    """Jobs that failed for good in the last 24 hours, the latest first, each with the error of its last attempt.

    JobError (a row per failed attempt, indexed on `at`) finds them; each job is then read by its primary key. A
    job that failed without a JobError row (the worker could not write it) is not listed."""
    jobs, errors = ProcrastinateJob._meta.db_table, JobError._meta.db_table
    sql = f"""
        WITH failed AS (
            SELECT j.id, j.task_name, j.queue_name, j.attempts, f.failed_at, count(*) OVER () AS total
            FROM (SELECT job_id, max(at) AS failed_at FROM {errors} WHERE at >= %(since)s GROUP BY job_id) f
            JOIN {jobs} j ON j.id = f.job_id
            WHERE j.status = 'failed'
            ORDER BY f.failed_at DESC, j.id DESC
            LIMIT %(limit)s
        )
        SELECT failed.*,
               (SELECT e.error FROM {errors} e WHERE e.job_id = failed.id ORDER BY e.at DESC, e.id DESC LIMIT 1)
        FROM failed
        ORDER BY failed.failed_at DESC, failed.id DESC
    """  # table names from the models (style.md); values as parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, {"since": now - FAILED_SINCE, "limit": FAILED_SHOWN})
        rows = cursor.fetchall()
    failed = [FailedJob(pk, task, queue, attempts, at, error) for pk, task, queue, attempts, at, _, error in rows]
    return failed, rows[0][5] if rows else 0


def _periodic_runs() -> list[PeriodicRun]:
    """Each periodic job registered (calls/tasks.py), with its latest defer: the job, its status, and when it
    reached it (its latest event)."""
    latest = ProcrastinateEvent.objects.filter(job_id=OuterRef("job_id")).order_by("-at", "-id")
    defers = {
        (d["task_name"], d["periodic_id"]): d
        for d in ProcrastinatePeriodicDefer.objects.annotate(
            event_type=Subquery(latest.values("type")[:1]), event_at=Subquery(latest.values("at")[:1])
        )
        .order_by("defer_timestamp")
        .values("task_name", "periodic_id", "defer_timestamp", "job_id", "job__status", "event_type", "event_at")[
            :PERIODIC_DEFERS_READ
        ]
    }
    runs = []
    for (task_name, periodic_id), periodic in sorted(jobs_app.periodic_registry.periodic_tasks.items()):
        run = PeriodicRun(task_name, periodic_id, periodic.cron, periodic.task.queue)
        defer = defers.get((task_name, periodic_id))
        if defer:
            stamp = defer["defer_timestamp"]
            run.deferred_for = datetime.fromtimestamp(stamp, tz=UTC) if stamp is not None else None
            run.job_id = defer["job_id"]
            run.status = defer["job__status"] or ""
            run.status_at = defer["event_at"] if run.status else None
        runs.append(run)
    return runs


@dataclass
class RetryOutcome:
    queued: bool
    message: str


def retry_failed_job(job_id: int, *, now: datetime) -> RetryOutcome:
    """Queue a failed job again, to run at once (an admin's button on the health page). Anything not failed is
    refused: Procrastinate's retry also takes a running job, which would then run twice.

    The job's row is locked while it is checked and queued again, so two admins clicking at once queue it once.
    The web process's connector is Django's own connection (DjangoConnector), inside this lock's transaction."""
    if not settings.JOBS_DATABASE:
        return RetryOutcome(False, "Background jobs need PostgreSQL: there are none to queue again here.")
    with transaction.atomic():
        job = (
            ProcrastinateJob.objects.select_for_update().filter(pk=job_id).values("task_name", "status", "args").first()
        )
        if job is None:
            return RetryOutcome(False, f"Job {job_id} no longer exists: failed jobs are deleted after a week.")
        name = f"Job {job_id} ({job['task_name']})"
        if job["status"] != "failed":
            status = JOB_STATUS_WORDS.get(job["status"], job["status"])
            return RetryOutcome(False, f"{name} is {status}, not failed: only a failed job can be queued again.")
        try:
            with transaction.atomic():
                jobs_app.job_manager.retry_job_by_id(job_id, retry_at=now)
                _reopen_import(job["task_name"], job["args"])
        except UniqueViolation:
            return RetryOutcome(
                False, f"{name} was not queued again: another {job['task_name']} job is already waiting in the queue."
            )
        except ConnectorException as error:
            log.warning("could not queue job %s again: %s", job_id, error)
            return RetryOutcome(False, f"{name} could not be queued again: {error}")
    log.info("job %s (%s) queued again by hand", job_id, job["task_name"])
    return RetryOutcome(True, f"{name} was queued again: a worker runs it next.")


def _reopen_import(task_name: str, args: dict[str, Any]) -> None:
    """A failed import's job queued again: the import is working again (it failed, so nothing was written), or the
    job would find it failed and do nothing."""
    from calls.models import ContactImport

    working = {"check_import": ContactImport.Status.CHECKING, "apply_import": ContactImport.Status.IMPORTING}
    if task_name in working and args.get("import_id"):
        ContactImport.objects.filter(pk=args["import_id"], status=ContactImport.Status.FAILED).update(
            status=working[task_name], error="", progress=0, updated_at=timezone.now()
        )
