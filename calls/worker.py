"""The worker process (`manage.py worker`, `make worker`): runs every job of calls/tasks.py, and keeps running.

It is Procrastinate's worker with what a deployment needs around it:

- **It outlives PostgreSQL restarts.** Procrastinate's own worker ends (exit code 0) when its connection is lost;
  this one opens a fresh connector and starts again, waiting 1, 2, 4 … up to 30 s between tries, and says so in
  the log. Jobs it was running when the database went away are put back in the queue by `retry_stalled_jobs`.
  Django's pools test each connection before lending it (`check_connections_when_lent`), so no job fails on a
  connection from before the restart.
- **It records why a job failed** (`JobError`): Procrastinate keeps that a job failed, not the error; the
  integration health page shows it.
- **Each sync job gets a fresh database connection** (Django's rule for threads that outlive a request).
- **Webhooks have slots of their own.** The `webhooks` queue is worked by a second Procrastinate worker in the same
  process (`WEBHOOK_WORKER_CONCURRENCY` slots, polling every WEBHOOK_POLL_SECONDS), the other queues by the first
  (`WORKER_CONCURRENCY`): a burst of deliveries never keeps calls' jobs waiting, nor a long `follow_calls` the
  webhooks' fan-out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone
from procrastinate import JobContext, PsycopgConnector
from procrastinate.contrib.django import app
from procrastinate.contrib.django.django_connector import DjangoConnector
from procrastinate.contrib.django.utils import connector_params

log = logging.getLogger("calls.worker")

MAX_RESTART_WAIT = 30.0
WEBHOOK_POLL_SECONDS = 0.25


def _error_text(exc: BaseException) -> str:
    """What the health page shows: the exception and where it came from, without the locals of any frame."""
    lines = traceback.format_exception_only(exc)
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = "".join(f"  {f.filename.rsplit('/', 2)[-1]}:{f.lineno} in {f.name}\n" for f in frames)
    return ("".join(lines).strip() + ("\n" + where if where else ""))[:4000]


def _record_error(context: JobContext, exc: BaseException) -> None:
    from calls.models import JobError

    job = context.job
    close_old_connections()  # this thread's connection may be from before a restart of PostgreSQL
    try:
        JobError.objects.create(
            job_id=job.id or 0,
            task_name=job.task_name,
            attempt=job.attempts + 1,
            error=_error_text(exc),
            at=timezone.now(),
        )
    finally:
        close_old_connections()


# The jobs this process is running (by their context), as a stop names them: name, id, and when each started.
_running: dict[int, tuple[str, float]] = {}


async def note_running(call_next: Callable[[], Awaitable[Any]], context: JobContext, worker: object) -> Any:
    """Worker middleware: keep the running jobs in `_running` while they run, for `stopping_line`."""
    job = context.job
    _running[id(context)] = (f"{job.task_name} (job {job.id})", time.monotonic())
    try:
        return await call_next()
    finally:
        _running.pop(id(context), None)


def stopping_line(now: float) -> str:
    """What a stop logs: which jobs it waits for. An async job still running after the graceful timeout is cancelled
    (its work is taken up again: the next tick, the call's next look); a sync one is not, and runs to its end."""
    if not _running:
        return "worker: stopping; no job running"
    jobs = ", ".join(f"{name} running {now - since:.0f} s" for name, since in _running.values())
    return (
        f"worker: stopping; waiting for {len(_running)} running job(s) to finish (an import's check or apply, "
        f"retention or a sync runs to its end, however long): {jobs}"
    )


async def record_failures(call_next: Callable[[], Awaitable[Any]], context: JobContext, worker: object) -> Any:
    """Worker middleware: a job that raises leaves its error in JobError, then fails (or is retried) as usual."""
    try:
        return await call_next()
    except Exception as exc:
        try:
            await sync_to_async(_record_error, thread_sensitive=False)(context, exc)
        except Exception:
            log.exception("could not record why job %s failed", context.job.id if context.job else "?")
        raise


def fresh_connections(call_next: Callable[[], Any], context: JobContext, worker: object) -> Any:
    """Sync task middleware: the job's thread starts and ends without a stale or broken database connection."""
    close_old_connections()
    try:
        return call_next()
    finally:
        close_old_connections()


def check_connections_when_lent() -> None:
    """Django's pools in the worker test a connection before lending it (CONN_HEALTH_CHECKS: psycopg_pool's check,
    an empty query): after PostgreSQL restarts, every pooled connection is dead, and without the check each failed
    a job ("terminating connection due to administrator command"), whether or not Procrastinate's worker noticed
    the restart. Web processes keep the setting as configured."""
    for alias in connections:
        connections.settings[alias]["CONN_HEALTH_CHECKS"] = True  # the dict each connection of alias reads
        wrapper = connections[alias]
        close_pool = getattr(wrapper, "close_pool", None)  # PostgreSQL's backend only
        if close_pool is not None and alias in getattr(wrapper, "_connection_pools", {}):
            close_pool()  # made before this: made again, with the check, when next needed


def queue_connector() -> PsycopgConnector:
    """The worker's own pool for the queue's tables (Procrastinate's fetch, finish, heartbeat, LISTEN).

    Its commits do not wait for the write-ahead log to reach the disk (`synchronous_commit=off`, these connections
    only): a job's status change is then durable a fraction of a second later. Should PostgreSQL crash in that
    window, a job that had finished is found running by a dead worker and runs again (`retry_stalled_jobs`), which
    every job here allows (an import re-checks its status in the transaction that writes; the rest are idempotent).
    The work jobs do goes through Django's connections, with the database's own setting."""
    params = connector_params("default")
    params["options"] = (params.get("options", "") + " -c synchronous_commit=off").strip()
    return PsycopgConnector(kwargs=params)


def workers(queues: list[str] | None, concurrency: int | None) -> list[dict[str, Any]]:
    """The Procrastinate workers a process runs, as their queues and slots: the webhooks' queue on its own."""
    from calls import tasks

    wanted = list(queues or tasks.QUEUES)
    others = [queue for queue in wanted if queue != tasks.WEBHOOKS]
    found: list[dict[str, Any]] = []
    if others:
        found.append({"queues": others, "concurrency": concurrency or None, "suffix": ""})
    if tasks.WEBHOOKS in wanted:
        slots = concurrency if concurrency and not others else settings.WEBHOOK_WORKER_CONCURRENCY
        found.append(
            {
                "queues": [tasks.WEBHOOKS],
                "concurrency": slots,
                "suffix": "-webhooks" if others else "",
                # It polls rather than LISTENs: a pass that ends lets the endpoint's next one (queued meanwhile, held
                # by its lock) run, which no NOTIFY announces; and a second LISTEN connection per process held up
                # PostgreSQL's fast shutdown (tests/test_worker_faults.py, restarted under the worker).
                "fetch_job_polling_interval": WEBHOOK_POLL_SECONDS,
                "listen_notify": False,
            }
        )
    return found


async def _run_workers(worker_app: Any, options: dict[str, Any], plan: list[dict[str, Any]]) -> None:
    """Run the planned workers side by side. Waiting for jobs, all end when one does (a lost database ends
    Procrastinate's worker: the process starts them again together); until the queues are empty, each ends alone.
    Cancelled (a stop), each stops gracefully."""
    running = []
    for one in plan:
        each = options | {"queues": one["queues"]}
        for option in ("fetch_job_polling_interval", "listen_notify"):
            if option in one:
                each[option] = one[option]
        if one["concurrency"]:
            each["concurrency"] = one["concurrency"]
        if one["suffix"]:
            each["name"] = f"{options.get('name') or 'worker'}{one['suffix']}"
        running.append(asyncio.create_task(worker_app.run_worker_async(**each)))
    until = asyncio.FIRST_COMPLETED if options["wait"] else asyncio.ALL_COMPLETED
    try:
        done, _ = await asyncio.wait(running, return_when=until)
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
    for task in done:
        task.result()  # an error ending a worker is the run's


async def run(
    *,
    queues: list[str] | None = None,
    concurrency: int | None = None,
    name: str | None = None,
    wait: bool = True,
    restart: bool = True,
) -> None:
    """Run the worker until SIGINT/SIGTERM (or, with `wait` off, until the queues are empty)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    options: dict[str, Any] = {
        "wait": wait,
        "install_signal_handlers": False,
        "worker_middleware": [note_running, record_failures],
        "task_middleware": [fresh_connections],
    }
    plan = workers(queues, concurrency)
    if name:
        options["name"] = name
    await sync_to_async(check_connections_when_lent)()
    pause = 1.0
    while not stop.is_set():
        connector = app.connector
        if isinstance(connector, DjangoConnector):  # the worker needs a pool and LISTEN/NOTIFY of its own
            connector = queue_connector()
        started = loop.time()
        try:
            with app.replace_connector(connector) as worker_app:
                async with worker_app.open_async():
                    work = asyncio.create_task(_run_workers(worker_app, options, plan))
                    stopping = asyncio.create_task(stop.wait())
                    await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    if stopping.done() and not work.done():
                        log.info(stopping_line(time.monotonic()))
                        work.cancel()  # Procrastinate's graceful stop: running jobs get shutdown_graceful_timeout
                    stopping.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await work
        except Exception:
            log.exception("worker: stopped by an error")
        if stop.is_set():
            log.info("worker: stopped")
        if stop.is_set() or not wait or not restart:
            return
        if loop.time() - started > 60:
            pause = 1.0  # it ran a while: the next failure starts the back-off afresh
        log.warning("worker: lost the database or its connection; starting again in %.0f s", pause)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=pause)
        pause = min(MAX_RESTART_WAIT, pause * 2)
