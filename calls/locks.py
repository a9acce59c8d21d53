"""Short locks that stop two clicks dialling one number at once, shared by every app process.

The lock is a row in the database (DialLock), not a cache key: the cache degrades when Redis is down or hung
(calls/cache.py answers `add` with True then) and is per-process without Redis, so it cannot promise that only one
click holds a number. The database can, and a click needs it anyway. Taking the lock is one statement and freeing
it another. The click takes it in the transaction that writes its Call row and frees it in the one that writes
VCC's answer (calls/calling/placing.py: one commit each, not two), each committed at once: no connection or
transaction is held while VCC is asked, and a lock whose click died frees itself when it expires. Do not take it
in a transaction that goes on to other work: the row stays invisible to other clicks (and blocks them) until the
commit.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from calls.models import DialLock

DIAL_LOCK_SECONDS = 30  # how long one click holds a number while VCC is asked

# Injected by tests; the app processes' clocks are kept in step by NTP, and a lock lasts 30 s.
clock: Callable[[], datetime] = timezone.now

_TABLE = DialLock._meta.db_table

# Insert the number, or take over a row whose holder's time is up; a row comes back only if we hold it now.
# PostgreSQL and SQLite (>= 3.35) both run it; on PostgreSQL the row lock makes two takers wait for each other.
_ACQUIRE = f"""
    INSERT INTO {_TABLE} (number, owner, expires_at) VALUES (%s, %s, %s)
    ON CONFLICT (number) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
    WHERE {_TABLE}.expires_at <= %s
    RETURNING owner
"""
_RELEASE = f"DELETE FROM {_TABLE} WHERE number = %s AND owner = %s"


def acquire_dial_lock(number: str, *, owner: str, seconds: int = DIAL_LOCK_SECONDS) -> bool:
    """Take the number for owner (a click's request id); False when another click holds it."""
    now = clock()
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(_ACQUIRE, [number, str(owner), adapt(now + timedelta(seconds=seconds)), adapt(now)])
        row = cursor.fetchone()
    return row is not None


def release_dial_lock(number: str, *, owner: str) -> None:
    """Free the number, only if owner still holds it (an expired lock may have passed to another click)."""
    with connection.cursor() as cursor:
        cursor.execute(_RELEASE, [number, str(owner)])
