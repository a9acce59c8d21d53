"""Statements a pooled connection prepares once and runs on their generic plan, for hot SQL whose planning costs as
much as running it: the API's call-log pages (calls/api/callrows.py). Only for SQL whose generic plan is as good
as its custom one: a query that needs a partial index (`WHERE state = 'waiting'`) must carry that value as a
literal, not a parameter. (A call queue's claim is not one: calls/queues/claims.py.)"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
import weakref
from typing import Any

import psycopg
from django.db import DatabaseError, transaction
from django.db.backends.utils import CursorWrapper

log = logging.getLogger(__name__)

# The statements each pooled connection has prepared: the SQL text (a call-log page: one per combination of filters,
# cursor and sort) and its name, or "" for one PostgreSQL would not prepare. Forgotten with the connection.
_prepared: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()
MAX_PREPARED = 64  # a connection's statements; beyond, planned at each run as before


def execute_prepared(cursor: CursorWrapper, sql: str, params: list[Any]) -> None:
    """Run sql (%s placeholders) as a statement this connection prepared (PREPARE, then EXECUTE) on its generic
    plan: PostgreSQL planned a page of the log in about as long as it took to run it (1.2 to 5 ms against 3 to 6
    ms at 5 M calls); the generic plan takes 0.03 ms to reuse and reads the sort's index as the custom one did
    (2.3 ms). The same rows: only the planning is saved."""
    if not cursor.db.settings_dict.get("OPTIONS", {}).get("pool"):
        # Without vccweb's pool (DB_POOL=false: behind PgBouncer, whose transaction mode may run the EXECUTE on
        # another server connection than the PREPARE; or a connection a request) each page is planned as it comes.
        cursor.execute(sql, params)
        return
    raw = cursor.db.connection
    names = _prepared.setdefault(raw, {})
    name = names.get(sql)
    if name is None and len(names) < MAX_PREPARED:
        name = f"vccweb_{hashlib.sha256(sql.encode()).hexdigest()[:24]}"
        try:
            with transaction.atomic(using=cursor.db.alias):  # a statement refused leaves any transaction usable
                cursor.execute(f"PREPARE {name} AS {_numbered(sql)}")
        except DatabaseError as error:
            # Already prepared on this connection (this process forgot it, the connection did not): use it.
            if not isinstance(error.__cause__, psycopg.errors.DuplicatePreparedStatement):
                log.warning("a statement could not be prepared; planned at each run instead", exc_info=True)
                name = ""
        names[sql] = name
    if name:
        # Its generic plan, at once and every time (one round trip: the SET lasts for this statement's transaction).
        # Left to itself PostgreSQL kept planning each page afresh (a "custom plan"), as fast as the generic one.
        arguments = ", ".join(["%s"] * len(params))
        cursor.execute(f"SET LOCAL plan_cache_mode = force_generic_plan; EXECUTE {name}({arguments})", params)
        cursor.nextset()
    else:
        cursor.execute(sql, params)


def _numbered(sql: str) -> str:
    """sql with psycopg's placeholders (%s, and %% for a %) as PREPARE takes them: $1, $2, … and %."""
    count = itertools.count(1)
    return re.sub(r"%([s%])", lambda m: "%" if m.group(1) == "%" else f"${next(count)}", sql)
