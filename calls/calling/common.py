"""What every calling use case shares: the clock, the log, and database work off the event loop."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from asgiref.sync import sync_to_async
from django.db import connection
from django.utils import timezone

# One logger for every use case, named as before the package was split.
log = logging.getLogger("calls.calling")

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    """The time now. Tests replace it (calls.calling.common.wall_clock) to move time on without waiting for it."""
    return timezone.now()


def _now() -> datetime:
    return wall_clock()  # looked up at each call, so a replaced wall_clock is seen everywhere


def _db[**P, T](fn: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """Run fn in Django's sync thread, then hand its database connection back (to the pool, or closed)."""

    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        finally:
            if not connection.in_atomic_block:  # tests run inside a transaction: leave theirs alone
                connection.close()

    return sync_to_async(run, thread_sensitive=True)
