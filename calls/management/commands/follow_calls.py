"""The call-following worker: follows every live call to its end, whether or not a page watches it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable

from asgiref.sync import async_to_sync, sync_to_async
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from calls import calling, reports
from calls.models import ContactImport

log = logging.getLogger("calls.worker")

IDLE_SECONDS = 1.0  # pause between rounds when nothing was due
ROLLUP_SECONDS = 60.0  # how often the worker brings the reports' roll-up up to date
EXPIRE_IMPORTS_SECONDS = 3600.0  # how often it expires the import previews nobody confirmed (ContactImport)
MAX_BACKOFF_SECONDS = 60.0


class Command(BaseCommand):
    help = "Follow live calls until they end, at a bounded rate (run one or more beside the web server)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=50, help="calls asked about per round")
        parser.add_argument("--concurrency", type=int, default=8, help="requests to VCC in flight at once")
        parser.add_argument("--once", action="store_true", help="do one round and stop")

    def handle(self, *args: object, batch: int, concurrency: int, once: bool, **options: object) -> None:
        # async_to_sync, not asyncio.run: the database work then runs in this thread, with its connection.
        async_to_sync(run_worker)(batch=batch, concurrency=concurrency, rounds=1 if once else None)


async def run_worker(
    *,
    batch: int,
    concurrency: int,
    rounds: int | None = None,
    wait: Callable[[float], Awaitable[None]] | None = None,
    rollup: bool = True,
    expire_imports: bool = True,
) -> int:
    """Run rounds until stopped (or `rounds` are done); back off while VCC limits us or fails. Returns rounds run.

    `wait(seconds)` pauses between rounds (tests pass their own; nothing waits on the wall clock there)."""
    stop = asyncio.Event()

    async def pause_for(seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)

    wait = wait or pause_for
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread (tests), or no signals
            loop.add_signal_handler(sig, stop.set)
    backoff, done = 0.0, 0
    rollup_due = time.monotonic() if rollup else None
    expire_due = time.monotonic() if expire_imports else None
    while not stop.is_set() and (rounds is None or done < rounds):
        try:
            result = await calling.follow_due(limit=batch, concurrency=concurrency)
        except Exception:  # a database or VCC outage must not end the worker: log it and try again later
            log.exception("follow_calls: round failed")
            result = calling.Round(errors=1, retry_after=5.0)
        done += 1
        await calling.worker_heartbeat()
        if rollup_due is not None and time.monotonic() >= rollup_due:
            # The reports' roll-up of finished days (calls/reports.py), kept current by the same worker.
            try:
                await sync_to_async(reports.refresh_rollup)(now=timezone.now())
            except Exception:
                log.exception("follow_calls: rolling up the call log for reports failed")
            rollup_due = time.monotonic() + ROLLUP_SECONDS
        if expire_due is not None and time.monotonic() >= expire_due:
            # Previews not confirmed within 24 hours, and their rows (calls/models/imports.py).
            try:
                expired = await sync_to_async(ContactImport.objects.expire_previews)(now=timezone.now())
                if expired:
                    log.info("follow_calls: expired %s import previews nobody confirmed", expired)
            except Exception:
                log.exception("follow_calls: expiring import previews failed")
            expire_due = time.monotonic() + EXPIRE_IMPORTS_SECONDS
        if result.errors:
            backoff = min(MAX_BACKOFF_SECONDS, max(result.retry_after or 1.0, backoff * 2 or 1.0))
            log.warning(
                "follow_calls: %s of %s calls could not be asked; waiting %.1f s", result.errors, result.asked, backoff
            )
        else:
            backoff = 0.0
        if result.asked or result.closed_abandoned:
            log.info(
                "follow_calls: asked %s, ended %s, closed %s abandoned clicks",
                result.asked,
                result.ended,
                result.closed_abandoned,
            )
        if rounds is not None and done >= rounds:
            break
        # A full batch means more are due: go again at once (unless backing off).
        pause = backoff or (0.0 if result.asked >= batch else IDLE_SECONDS)
        if pause:
            await wait(pause)
    return done
