"""Every background job vccweb runs, on Procrastinate's queue in PostgreSQL (README, "Background jobs").

One kind of worker process runs them all (`manage.py worker`, calls/worker.py); any number may run on any host.
The `webhooks` queue has slots of its own in each worker process (WEBHOOK_WORKER_CONCURRENCY), the others share.
Periodic jobs are deferred by every worker and kept once per tick by the engine; a job that must not run twice at
once holds a `lock`, and one that must not wait twice in the queue a `queueing_lock`.

| job | when | queue |
| --- | --- | --- |
| `check_import`, `apply_import` | an upload, a correction, a confirmation | imports |
| `follow_calls` | every second: ask VCC about the live calls that are due | calls |
| `close_abandoned_clicks` | every minute | calls |
| `learn_recording` | VCC's events say a call connected: VCC is asked once whether it records (they never say) | calls |
| `rollup_calls` | every minute: the reports' roll-up of finished days | maintenance |
| `announce_callbacks` | every minute: callbacks whose time has come are announced once (`callback.due`) | calls |
| `sync_vcc` | `VCC_SYNC_EVERY` (hourly), and the admin's button | vcc |
| `expire_imports` | hourly | maintenance |
| `retry_stalled_jobs` | every 10 s (JOBS_STALLED_CHECK_CRON): a dead worker's jobs go back in the queue | maintenance |
| `prune_jobs` | hourly: finished jobs older than a day are deleted | maintenance |
| `process_vcc_events` | every second, and on a delivery to POST /vcc/events/ (once a second a process) | calls |
| `prune_vcc_events` | hourly: applied events older than two days are deleted | maintenance |
| `prune_api_keys` | hourly: the API's Idempotency-Keys older than a day are forgotten | maintenance |
| `dispatch_webhooks` | every second, watching until the next: new events fanned out to the endpoints | webhooks |
| `deliver_webhooks` | per endpoint, after a fan-out or a retry falling due: one pass over its deliveries | webhooks |
| `retry_webhooks` | every 5 s: queue a pass over the endpoints with deliveries (or a probe) due | webhooks |
| `replay_webhooks` | "Replay since …": the events since then that the endpoint takes are sent again | webhooks |
| `prune_webhooks` | hourly: events and attempts older than WEBHOOK_KEEP_DAYS are deleted | maintenance |
| `apply_retention` | hourly: call notes deleted, numbers masked, after the days admins set (privacy/) | maintenance |
| `ping` | by hand: does nothing (a worker answers; what a job costs) | maintenance |
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone
from procrastinate import JobContext, RetryStrategy
from procrastinate.contrib.django import app
from procrastinate.exceptions import AlreadyEnqueued, UniqueViolation
from procrastinate.jobs import Status

from calls import imports, rules

log = logging.getLogger("calls.worker")

IMPORTS, CALLS, MAINTENANCE, VCC, WEBHOOKS = "imports", "calls", "maintenance", "vcc", "webhooks"
QUEUES = (IMPORTS, CALLS, VCC, MAINTENANCE, WEBHOOKS)
IMPORT_ATTEMPTS = 3  # a lost database connection is tried again; anything else fails for good at once
SYNC_ATTEMPTS = 5  # VCC busy or failing (429, 5xx, no answer): tried again after 5, 25, 125, 625 s, then failed
# A worker silent this long is dead: its running jobs go back in the queue (settings.WORKER_STALLED_SECONDS).
STALLED_AFTER = timedelta(seconds=settings.WORKER_STALLED_SECONDS)
KEEP_FINISHED_HOURS = 24


class TransientVCCFailure(Exception):
    """VCC could not answer now (rate limit, 5xx, timeout): the job is tried again with back-off."""


# --- Contact imports --------------------------------------------------------------------------------------------


def enqueue_import(step: str, pk: object) -> None:
    """Queue the check or apply of an import. One job per import runs at a time (lock); a check already waiting in
    the queue reads the import afresh when it runs, so a second one is not queued (queueing lock)."""
    task = check_import if step == "check" else apply_import
    try:
        task.configure(lock=f"import:{pk}", queueing_lock=f"import:{step}:{pk}").defer(import_id=str(pk))
    except AlreadyEnqueued:
        log.info("contact import %s: a %s is already waiting in the queue", pk, step)


IMPORT_RETRY = RetryStrategy(
    max_attempts=IMPORT_ATTEMPTS - 1, wait=5, retry_exceptions={OperationalError, InterfaceError}
)


def _import_job(context: JobContext, step: str, import_id: str) -> None:
    attempts = (context.job.attempts if context.job else 0) + 1
    imports.run(step, uuid.UUID(import_id), last_try=attempts >= IMPORT_ATTEMPTS)


@app.task(name="check_import", queue=IMPORTS, pass_context=True, retry=IMPORT_RETRY)
def check_import(context: JobContext, import_id: str) -> None:
    _import_job(context, "check", import_id)


@app.task(name="apply_import", queue=IMPORTS, pass_context=True, retry=IMPORT_RETRY)
def apply_import(context: JobContext, import_id: str) -> None:
    _import_job(context, "apply", import_id)


@app.periodic(cron="17 * * * *", periodic_id="expire_imports")
@app.task(name="expire_imports", queue=MAINTENANCE, queueing_lock="expire_imports")
def expire_imports(timestamp: int) -> int:
    from calls.models import ContactImport

    expired = ContactImport.objects.expire_previews(now=timezone.now())
    if expired:
        log.info("expired %s import previews nobody confirmed", expired)
    return expired


# --- Calls --------------------------------------------------------------------------------------------------------

FOLLOW_BATCH = 50
FOLLOW_CONCURRENCY = 8
# Batches one tick asks at most: with many live calls and a budget raised above VCC's (VCC_REQUESTS_PER_MINUTE),
# full batches could keep coming due (every 2 s each), and the tick would never end, nor write its heartbeat; the
# next tick takes up where it stopped.
FOLLOW_BATCHES_PER_TICK = 20


@app.periodic(cron="* * * * * *", periodic_id="follow_calls")  # every second
@app.task(name="follow_calls", queue=CALLS, queueing_lock="follow_calls")
async def follow_calls(timestamp: int) -> dict[str, int]:
    """Ask VCC about every live call that is due (each at most every couple of seconds, calls.calling.following),
    a batch at a time while more are due. Several workers share the calls: each claims its own (SKIP LOCKED)."""
    from calls import calling

    asked = ended = errors = 0
    for _ in range(FOLLOW_BATCHES_PER_TICK):
        result = await calling.follow_due(limit=FOLLOW_BATCH, concurrency=FOLLOW_CONCURRENCY, close_abandoned=False)
        asked, ended, errors = asked + result.asked, ended + result.ended, errors + result.errors
        if result.asked < FOLLOW_BATCH or result.errors:
            break
    await calling.worker_heartbeat()
    if asked:
        log.info("follow_calls: asked %s, ended %s, %s could not be asked", asked, ended, errors)
    return {"asked": asked, "ended": ended, "errors": errors}


LEARN_TRIES = 3  # learn_recording's tries, 15 s apart, when VCC or the request budget has no room
LEARN_RETRY = RetryStrategy(max_attempts=LEARN_TRIES, wait=15, retry_exceptions={TransientVCCFailure})


@app.task(name="learn_recording", queue=CALLS, retry=LEARN_RETRY, pass_context=True)
async def learn_recording(context: JobContext, call_id: int) -> str:
    """Ask VCC once about a call its events say connected: they never say whether it records, and the call panel and
    bar offer Pause and Resume only when they know. One request a connected call; none when polling follows it. The
    call's next look stays when its events set it (a look moves it sooner). Asked again later when VCC, or the
    request budget, had no room."""
    from calls import calling
    from calls.models import Call

    call = await Call.objects.filter(pk=call_id, state=Call.State.LIVE).afirst()
    if call is None or rules.is_connected(call.recording_status):  # ended, or a look since learnt it
        return "nothing to learn"
    later, told = call.next_check_at, call.last_event_at
    followed = await calling.follow(call=call, force=True)
    if later is not None:  # unless an event set the next look meanwhile (it may want one sooner: a hang-up)
        await Call.objects.filter(
            pk=call_id, state=Call.State.LIVE, next_check_at__lt=later, last_event_at=told
        ).aupdate(next_check_at=later)
    if followed.retry_after is not None:
        if context.job.attempts + 1 >= LEARN_TRIES:  # not a failed job: the call's next look learns it
            return "VCC or the request budget had no room; the call's next look will say"
        raise TransientVCCFailure(f"call {call_id}: VCC or the request budget had no room; asked again later")
    return followed.call.recording_status or followed.error or "VCC does not say"


@app.periodic(cron="* * * * *", periodic_id="close_abandoned_clicks")
@app.task(name="close_abandoned_clicks", queue=CALLS, queueing_lock="close_abandoned_clicks")
def close_abandoned_clicks(timestamp: int) -> int:
    from calls import calling

    closed = calling.close_abandoned_clicks(now=timezone.now())
    if closed:
        log.info("closed %s clicks VCC never answered", closed)
    return closed


@app.periodic(cron="* * * * *", periodic_id="announce_callbacks")
@app.task(name="announce_callbacks", queue=CALLS, queueing_lock="announce_callbacks")
def announce_callbacks(timestamp: int | None = None) -> int:
    """Callbacks whose time has come, each announced once: marked, with a `callback.due` webhook event."""
    from calls import callbacks

    announced = callbacks.announce_due(timezone.now())
    if announced:
        log.info("announced %s callbacks falling due", announced)
    return announced


@app.periodic(cron="* * * * *", periodic_id="rollup_calls")
@app.task(name="rollup_calls", queue=MAINTENANCE, lock="rollup_calls", queueing_lock="rollup_calls")
def rollup_calls(timestamp: int) -> int:
    """The reports' roll-up of finished days (calls/reports.py), kept current; a full rebuild is `rollup_calls
    --rebuild`, by hand."""
    from calls import reports

    return len(reports.refresh_rollup(now=timezone.now()))


# --- VCC ------------------------------------------------------------------------------------------------------------

SYNC_RETRY = RetryStrategy(max_attempts=SYNC_ATTEMPTS - 1, exponential_wait=5, retry_exceptions={TransientVCCFailure})


@app.task(name="sync_vcc", queue=VCC, lock="sync_vcc", queueing_lock="sync_vcc", retry=SYNC_RETRY)
def sync_vcc(by_id: int | None = None, dry_run: bool = False, timestamp: int | None = None) -> int | None:
    """Sync agents, groups and callback numbers from VCC; the run (failed or not) is stored as a SyncRun. A VCC
    that cannot answer now is tried again with back-off; one that refuses (credentials) fails the job at once.
    `timestamp` is the tick, when the schedule (VCC_SYNC_EVERY) queued it."""
    from django.contrib.auth import get_user_model

    from calls.calling import sync_with_vcc

    if not settings.VCC_SYNC_ENABLED:
        log.info("sync_vcc: sync is off (no VCC_CLIENT_ID and VCC_CLIENT_SECRET)")
        return None
    by = get_user_model().objects.filter(pk=by_id).first() if by_id else None
    run = sync_with_vcc(by=by, dry_run=dry_run)
    if run.error and dry_run:  # a preview that failed says why on the page: the admin asks again, or applies
        return run.pk
    if run.error and run.retryable:
        raise TransientVCCFailure(run.error)
    if run.error:
        raise RuntimeError(f"VCC refused the sync: {run.error}")
    return run.pk


if settings.VCC_SYNC_CRON:
    app.periodic(cron=settings.VCC_SYNC_CRON, periodic_id="sync_vcc")(sync_vcc)


def sync_waiting() -> bool:
    """Whether a sync or a preview is queued or running (the admin's page says so, and reloads until it ends)."""
    manager = app.job_manager
    return bool(
        manager.list_jobs(queueing_lock="sync_vcc", status="todo") or manager.list_jobs(lock="sync_vcc", status="doing")
    )


def enqueue_sync(*, by_id: int | None, dry_run: bool = False) -> bool:
    """Queue a sync (the admin's button); False when one is already waiting in the queue."""
    try:
        sync_vcc.defer(by_id=by_id, dry_run=dry_run)
    except AlreadyEnqueued:
        return False
    return True


# --- VCC's events (Webhooks API) -------------------------------------------------------------------------------------


def enqueue_event_processing() -> None:
    """Queue the job that applies stored events, unless one is already waiting (it will see these too). One job runs
    at a time (its lock), so events apply in VCC's order; a process asks at most once a second (the cache), not
    for each of a thousand deliveries a second: the tick every second takes what arrived meanwhile."""
    if not cache.add("vcc-events:queued", 1, 1):
        return
    with contextlib.suppress(AlreadyEnqueued):
        process_vcc_events.defer()


@app.periodic(cron="* * * * * *", periodic_id="process_vcc_events")  # and each delivery queues it (at most 1/s)
@app.task(name="process_vcc_events", queue=CALLS, lock="process_vcc_events", queueing_lock="process_vcc_events")
def process_vcc_events(timestamp: int | None = None) -> int:
    """Apply the events VCC pushed in (calls/calling/events.py), a batch at a time until none is waiting."""
    from calls.calling import events

    applied = 0
    while True:
        done = events.process_pending()
        applied += done.applied
        # A full batch means more may wait, whatever its events did: one waiting for its click counts too (it is
        # not taken again until its `not_before`), else a storm with such events was applied a batch a second.
        if done.applied + done.late + done.other + done.failed + done.waiting < events.BATCH:
            return applied


KEEP_EVENTS = timedelta(days=2)  # applied events are kept two days (what VCC said, for a doubt about a call)
PRUNE_BATCH = 10_000


@app.periodic(cron="29 * * * *", periodic_id="prune_vcc_events")
@app.task(name="prune_vcc_events", queue=MAINTENANCE, queueing_lock="prune_vcc_events")
def prune_vcc_events(timestamp: int | None = None) -> int:
    """Delete applied events older than KEEP_EVENTS, PRUNE_BATCH at a time (at 1,000 events a second a day is 86
    million rows: each batch is a short transaction, not one long one). Events never applied are kept."""
    from calls.models import VccEvent

    cutoff, deleted = timezone.now() - KEEP_EVENTS, 0
    while True:
        batch = list(
            VccEvent.objects.filter(processed_at__isnull=False, received_at__lt=cutoff)
            .order_by("received_at")
            .values_list("pk", flat=True)[:PRUNE_BATCH]
        )
        if not batch:
            return deleted
        deleted += VccEvent.objects.filter(pk__in=batch).delete()[0]


KEEP_API_KEYS = timedelta(days=1)  # an Idempotency-Key's first answer is answered again for a day


@app.periodic(cron="47 * * * *", periodic_id="prune_api_keys")
@app.task(name="prune_api_keys", queue=MAINTENANCE, queueing_lock="prune_api_keys")
def prune_api_keys(timestamp: int | None = None) -> int:
    """Forget the API's Idempotency-Keys older than KEEP_API_KEYS (calls/api/calls.py): a repeat after that gets a
    422 naming the call the key placed, not a second call (the call's request id comes from the key)."""
    from calls.models import ApiIdempotentRequest

    cutoff, deleted = timezone.now() - KEEP_API_KEYS, 0
    while True:
        batch = list(
            ApiIdempotentRequest.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:PRUNE_BATCH]
        )
        if not batch:
            return deleted
        deleted += ApiIdempotentRequest.objects.filter(pk__in=batch).delete()[0]


# --- Outgoing webhooks (calls/webhooks/) --------------------------------------------------------------------------


# The periodic fan-out watches for new events until the next second's takes over, so a change becomes deliveries
# within WATCH_PAUSE (plus the delivery job's pick-up) while the change itself queues nothing: the click writes its
# events and no job (bench/click_cost.py --endpoints 3 --alternate). A pass every 0.25 s costs the worker what the
# kick after each change did (at most every 0.25 s a process); every 0.1 s cost it 15 % of a core more at 500 calls
# a minute (bench/webhooks_bench.py).
WATCH_SECONDS = 0.9
WATCH_PAUSE = 0.25
# One fan-out at a time, across workers: a PostgreSQL advisory lock, held by the watching job's connection; the next
# second's job waits for it (at most FANOUT_LOCK_WAIT_MS), then watches in its turn. Unlike Procrastinate's `lock` (a
# row, freed by retry_stalled_jobs 30 to 40 s after a worker dies), PostgreSQL frees it with a dead worker's
# connection, and the next job takes over at once.
FANOUT_LOCK = "calls.webhooks.fan-out"
FANOUT_LOCK_WAIT_MS = 2000


@app.periodic(cron="* * * * * *", periodic_id="dispatch_webhooks")
@app.task(
    name="dispatch_webhooks",
    queue=WEBHOOKS,
    priority=1,  # before the deliveries waiting in the same queue: they wait on it
    queueing_lock="dispatch_webhooks",
)
def dispatch_webhooks(timestamp: int | None = None) -> int:
    """New events become deliveries for the endpoints that want them; each such endpoint's delivery is queued.
    Deferred by the periodic tick (`timestamp`), it keeps watching for WATCH_SECONDS; deferred by hand, one pass."""
    return watch_events(WATCH_SECONDS if timestamp is not None else 0.0)


def watch_events(
    seconds: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    pause: Callable[[float], None] = time.sleep,
    lock_wait_ms: int = FANOUT_LOCK_WAIT_MS,
) -> int:
    """Fan new events out, then again every WATCH_PAUSE until `seconds` have passed (while some endpoint exists:
    without one nothing is written to wait for). Waits its turn while another fan-out runs (FANOUT_LOCK), at most
    `lock_wait_ms` (0: not at all), and does nothing if it does not come. Returns how many endpoints were given
    deliveries."""
    from calls.webhooks import delivery, outbox

    given: set[int] = set()
    with _fanning_out(lock_wait_ms) as alone:
        until = clock() + seconds
        while alone:
            endpoints = delivery.dispatch_all()
            for endpoint_id in sorted(endpoints):
                enqueue_delivery(endpoint_id)
            given |= endpoints
            if clock() + WATCH_PAUSE > until or not outbox.wanted():
                break
            pause(WATCH_PAUSE)
    return len(given)


@contextlib.contextmanager
def _fanning_out(wait_ms: int) -> Iterator[bool]:
    """Whether this job took FANOUT_LOCK, waiting at most wait_ms (always, off PostgreSQL: no worker runs there);
    released at the end."""
    if connection.vendor != "postgresql":
        yield True
        return
    key = "hashtextextended(%s, 0)"
    held = True
    if wait_ms > 0:
        try:  # a session's lock, taken in a transaction only for its lock_timeout: it outlives the commit
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = {int(wait_ms)}")
                cursor.execute(f"SELECT pg_advisory_lock({key})", [FANOUT_LOCK])
        except OperationalError:  # lock_timeout: another fan-out still runs
            held = False
    else:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT pg_try_advisory_lock({key})", [FANOUT_LOCK])
            held = bool(cursor.fetchone()[0])
    try:
        yield held
    finally:
        if held:
            # A connection that failed is closed after the job (calls/worker.py), which frees the lock with it.
            with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
                cursor.execute(f"SELECT pg_advisory_unlock({key})", [FANOUT_LOCK])


def enqueue_delivery(endpoint_id: int) -> None:
    """Queue a pass over one endpoint's deliveries: one runs at a time per endpoint (its lock), one waits (queueing
    lock)."""
    key = f"deliver_webhooks:{endpoint_id}"
    with contextlib.suppress(AlreadyEnqueued):
        deliver_webhooks.configure(lock=key, queueing_lock=key).defer(endpoint_id=endpoint_id)


@app.task(name="deliver_webhooks", queue=WEBHOOKS)
async def deliver_webhooks(endpoint_id: int) -> int:
    """One pass over the endpoint's due deliveries (calls/webhooks/delivery.py), then it ends: a full pass, or one
    whose probe released a backlog, queues the next; a fan-out or the retry tick queue the others. An endpoint that
    is down thus never holds a worker. Returns the attempts made."""
    from asgiref.sync import sync_to_async

    from calls.webhooks import delivery

    done = await delivery.deliver_pass(endpoint_id, keep=True)  # the worker's loop: its connections are kept
    if done.more:
        await sync_to_async(enqueue_delivery)(endpoint_id)
    return done.attempts


@app.periodic(cron="* * * * * */5", periodic_id="retry_webhooks")  # every 5 s: the first retry waits 5 s
@app.task(name="retry_webhooks", queue=WEBHOOKS, priority=1, queueing_lock="retry_webhooks")
def retry_webhooks(timestamp: int | None = None) -> int:
    """Queue a pass over every endpoint with a delivery due (a retry, a probe, a "send again")."""
    from calls.webhooks import delivery

    endpoints = delivery.endpoints_due()
    for endpoint_id in endpoints:
        enqueue_delivery(endpoint_id)
    return len(endpoints)


@app.task(name="replay_webhooks", queue=WEBHOOKS)
def replay_webhooks(endpoint_id: int, since: str) -> int:
    """ "Replay since …" of an endpoint's page: every event since `since` (ISO 8601) that the endpoint wants becomes
    a delivery again, in order (calls/webhooks/manual.py replay_since); its passes are queued as they are made."""
    from datetime import datetime

    from calls.models import WebhookEndpoint
    from calls.webhooks import manual

    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        return 0  # deleted since: nothing to send
    made = manual.replay_since(endpoint, datetime.fromisoformat(since))
    log.info("webhook endpoint %s: %d event(s) since %s queued to be sent again", endpoint_id, made, since)
    return made


@app.periodic(cron="53 * * * *", periodic_id="prune_webhooks")
@app.task(name="prune_webhooks", queue=MAINTENANCE, queueing_lock="prune_webhooks")
def prune_webhooks(timestamp: int | None = None) -> int:
    """Delete webhook events (with their deliveries) and attempts older than WEBHOOK_KEEP_DAYS."""
    from calls.webhooks import delivery

    return delivery.prune()


# --- Privacy (calls/privacy/) ---------------------------------------------------------------------------------------


@app.periodic(cron="23 * * * *", periodic_id="apply_retention")  # calls.privacy.retention.CRON
@app.task(name="apply_retention", queue=MAINTENANCE, lock="apply_retention", queueing_lock="apply_retention")
def apply_retention(timestamp: int | None = None) -> dict[str, int]:
    """Apply the retention policy: a window of at most 5,000 calls a transaction, oldest first, from where the last
    run stopped (calls/privacy/retention.py). What it did shows on the health page."""
    from calls.privacy import retention

    run = retention.apply_retention(now=timezone.now(), clock=timezone.now)
    return {"notes_cleared": run.notes_cleared, "numbers_masked": run.numbers_masked, "batches": run.batches}


# --- Call queues (calls/queues/) ------------------------------------------------------------------------------------


@app.periodic(cron="* * * * *", periodic_id="tend_queues")
@app.task(name="tend_queues", queue=MAINTENANCE, lock="tend_queues", queueing_lock="tend_queues")
def tend_queues(timestamp: int | None = None) -> dict[str, int]:
    """Every minute, and as soon as a queue is made: settle the queue attempts whose call ended or was wrapped up
    after its agent moved on, take the new matches of live queues in, and look up new contacts' time zones."""
    from calls.queues import tend

    return tend(now=timezone.now())


def enqueue_tend() -> None:
    """Tend the queues now (a queue was just made: its contacts' time zones), unless a run already waits."""
    with contextlib.suppress(AlreadyEnqueued):
        tend_queues.defer()


# --- The engine's own upkeep ----------------------------------------------------------------------------------------


@app.periodic(cron=settings.JOBS_STALLED_CHECK_CRON, periodic_id="retry_stalled_jobs")
@app.task(name="retry_stalled_jobs", queue=MAINTENANCE, pass_context=True, queueing_lock="retry_stalled_jobs")
async def retry_stalled_jobs(context: JobContext, timestamp: int) -> int:
    """Jobs left running by a worker that stopped beating (kill -9, a lost host) go back in the queue; returns how
    many. A periodic job whose next tick already waits (its queueing lock) is not needed again: it ends failed,
    saying so. One job that cannot be put back never keeps the others from it."""
    manager = context.app.job_manager
    stalled = list(await manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER.total_seconds()))
    retried = 0
    for job in stalled:
        try:
            await manager.retry_job(job)
        except UniqueViolation:  # procrastinate_jobs_queueing_lock_idx: a tick of the same job waits already
            log.warning(
                "job %s (%s) was left running by a dead worker; its next run waits already", job.id, job.task_name
            )
            await manager.finish_job(job, status=Status.FAILED, delete_job=False)
        except Exception:
            log.exception(
                "job %s (%s) was left running by a dead worker and could not be queued again", job.id, job.task_name
            )
        else:
            retried += 1
            log.warning("job %s (%s) was left running by a dead worker: queued again", job.id, job.task_name)
    return retried


@app.periodic(cron="41 * * * *", periodic_id="prune_jobs")
@app.task(name="prune_jobs", queue=MAINTENANCE, pass_context=True, queueing_lock="prune_jobs")
async def prune_jobs(context: JobContext, timestamp: int) -> None:
    """Finished jobs older than a day are deleted (follow_calls alone adds one a second); failed ones are kept a
    week for the health page."""
    from asgiref.sync import sync_to_async

    from calls.models import JobError

    await context.app.job_manager.delete_old_jobs(nb_hours=KEEP_FINISHED_HOURS)
    await context.app.job_manager.delete_old_jobs(
        nb_hours=24 * 7, include_failed=True, include_cancelled=True, include_aborted=True
    )
    await sync_to_async(JobError.objects.filter(at__lt=timezone.now() - timedelta(days=7)).delete)()


# --- Checks ---------------------------------------------------------------------------------------------------------


@app.task(name="ping", queue=MAINTENANCE)
async def ping() -> None:
    """Do nothing: a job that shows a worker answers, and what the engine itself costs a job (bench/jobs_bench.py)."""
