"""Short locks that stop two clicks dialling one number, or two numbers of one contact, at once, shared by every app
process.

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

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from calls.models import DialLock

DIAL_LOCK_SECONDS = 30  # how long one click holds a number while VCC is asked

# Injected by tests; the app processes' clocks are kept in step by NTP, and a lock lasts 30 s.
clock: Callable[[], datetime] = timezone.now

_TABLE = DialLock._meta.db_table


# Insert the keys (in the order given), or take over a row whose holder's time is up; a key's row comes back only if
# we hold it now. PostgreSQL and SQLite (>= 3.35) both run it; on PostgreSQL the row lock makes two takers wait for
# each other (always for the keys in one order: a number before a contact, so no two wait for each other's).
def _acquire_sql(keys: int) -> str:
    return f"""
    INSERT INTO {_TABLE} (number, owner, expires_at) VALUES {", ".join(["(%s, %s, %s)"] * keys)}
    ON CONFLICT (number) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
    WHERE {_TABLE}.expires_at <= %s
    RETURNING number
"""


def acquire_dial_locks(keys: Sequence[str], *, owner: str, seconds: int = DIAL_LOCK_SECONDS) -> list[str]:
    """Take the keys (a number; `contact:<pk>`, a contact) for owner (a click's request id), in one statement; the
    keys another click holds, which this one did not get ([] when it has them all). The caller rolls back what it
    got when one is missing (its transaction)."""
    now = clock()
    adapt = connection.ops.adapt_datetimefield_value
    expires = adapt(now + timedelta(seconds=seconds))
    with connection.cursor() as cursor:
        cursor.execute(_acquire_sql(len(keys)), [v for key in keys for v in (key, str(owner), expires)] + [adapt(now)])
        got = {row[0] for row in cursor.fetchall()}
    return [key for key in keys if key not in got]


def acquire_dial_lock(number: str, *, owner: str, seconds: int = DIAL_LOCK_SECONDS) -> bool:
    """Take the number for owner (a click's request id); False when another click holds it."""
    return not acquire_dial_locks([number], owner=owner, seconds=seconds)


def release_dial_locks(keys: Sequence[str], *, owner: str) -> None:
    """Free the keys, only those owner still holds (an expired lock may have passed to another click)."""
    if keys:
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {_TABLE} WHERE owner = %s AND number IN ({', '.join(['%s'] * len(keys))})",
                [str(owner), *keys],
            )


def release_dial_lock(number: str, *, owner: str) -> None:
    """Free the number, only if owner still holds it (an expired lock may have passed to another click)."""
    release_dial_locks([number], owner=owner)
