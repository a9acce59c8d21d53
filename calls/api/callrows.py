"""The call log's pages for the API, read as rows, not models (calls/api/calls.py `list_calls`). Each row becomes what
`resource` makes of its call.

On PostgreSQL each call's JSON is written by PostgreSQL itself (`json_rows`): Python only joins the texts. Reading
the whole log by cursor went from 15,000 calls a second (rows made into dicts and encoded in Python, which was still
three times faster than models) to over 20,000 (bench/api_bench.py). Elsewhere (SQLite) the rows are made into
dicts here (`rows_as_items`)."""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import re
import weakref
from collections.abc import Callable
from datetime import datetime
from typing import Any

import psycopg
from django.contrib.auth import get_user_model
from django.core.exceptions import EmptyResultSet
from django.db import DatabaseError, connections, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import QuerySet

from calls.calllog import NO_DURATION
from calls.models import Agent, AgentGroup, Call
from calls.models.calls import TALK_SECONDS_SQL

log = logging.getLogger(__name__)


def _time(at: datetime | None) -> str | None:
    """A time as the API's JSON writes it (DjangoJSONEncoder's way, which NinjaJSONEncoder uses): milliseconds,
    and Z for UTC. Written here for the log's pages, whose rows carry four times each."""
    if at is None:
        return None
    text = at.isoformat()
    if at.microsecond:
        text = text[:23] + text[26:]
    return text[:-6] + "Z" if text.endswith("+00:00") else text


# A page of the log is read as rows, not models: a whole log read by cursor goes at tens of thousands of calls a
# second (bench/api_bench.py). The columns give what `resource` gives a call, in CallOut's order.
ROW = (
    "id",
    "requested_at",
    "duration_seconds",
    "state",
    "outcome",
    "to_number",
    "to_agent__display_id",
    "contact_id",
    "from_agent__display_id",
    "answered_by__display_id",
    "presented_clid",
    "created_by__username",
    "connected_at",
    "ended_at",
    "disposition_code",
    "notes",
    "wrapped_up_at",
    "error_display",
    "vcc_call_id",
)


def rows_as_items(rows: list[tuple[Any, ...]], log_path: str) -> list[dict[str, Any]]:
    """The calls of a page, as calls.api.calls.resource shows each (tests/test_api_calls.py checks it)."""
    via_groups = [row[0] for row in rows if row[6] is None and row[8] is None]
    groups: dict[int, list[tuple[str, str, int]]] = {}
    if via_groups:
        through = Call.from_groups.through.objects.filter(call_id__in=via_groups)
        for call_id, group_id, name, display_id in through.values_list(
            "call_id", "agentgroup_id", "agentgroup__name", "agentgroup__display_id"
        ):
            groups.setdefault(call_id, []).append((name, display_id, group_id))
    items = []
    for (
        pk,
        requested_at,
        duration,
        state,
        outcome,
        to_number,
        to_agent,
        contact,
        from_agent,
        answered_by,
        clid,
        placed_by,
        connected_at,
        ended_at,
        disposition,
        notes,
        wrapped_up_at,
        error,
        vcc_call_id,
    ) in rows:
        items.append(
            {
                "id": pk,
                "state": state,
                "outcome": outcome,
                "to": to_number or None,
                "to_agent": to_agent,
                "contact": contact,
                "agent": from_agent or answered_by,
                "answered_by": answered_by,
                "via_groups": [g for _, _, g in sorted(groups.get(pk, []))],  # AgentGroup's order: name, id
                "caller_id": clid or None,
                "placed_by": placed_by,
                "requested_at": _time(requested_at),
                "connected_at": _time(connected_at),
                "ended_at": _time(ended_at),
                "duration_seconds": None if connected_at is None and not duration else duration,  # talk_seconds
                "disposition": disposition or None,
                "notes": notes,
                "wrapped_up_at": _time(wrapped_up_at),
                "error": error or None,
                "vcc_call_id": vcc_call_id or None,
                "url": f"{log_path}{pk}/",
            }
        )
    return items


# --- PostgreSQL writes each call's JSON -------------------------------------------------------------------------


def _time_sql(column: str) -> str:
    """A time column as `_time` writes it: milliseconds unless the time is a whole second, and Z (UTC)."""
    return (
        f"CASE WHEN date_trunc('second', {column}) = {column} "
        f"""THEN to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') """
        f"""ELSE to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') END"""
    )


@functools.cache  # the same text for every page: built once a process
def _item_sql() -> str:
    """json_build_object(...) of call `c` (its agents ta, fa, aa and its clicker u joined): the object rows_as_items
    makes of the row, key for key (tests/test_api_calls.py compares both with `resource`)."""
    through = Call.from_groups.through._meta.db_table
    groups = AgentGroup._meta.db_table
    fields = {
        "id": "c.id",
        "state": "c.state",
        "outcome": "c.outcome",
        "to": "NULLIF(c.to_number, '')",
        "to_agent": "ta.display_id",
        "contact": "c.contact_id",
        "agent": "COALESCE(fa.display_id, aa.display_id)",
        "answered_by": "aa.display_id",
        # Only a call with neither agent was placed via groups: no subquery runs for the others.
        "via_groups": "CASE WHEN c.from_agent_id IS NULL AND c.to_agent_id IS NULL THEN ARRAY("
        f"SELECT g.id FROM {through} t JOIN {groups} g ON g.id = t.agentgroup_id WHERE t.call_id = c.id "
        "ORDER BY g.name, g.display_id) ELSE '{}' END",
        "caller_id": "NULLIF(c.presented_clid, '')",
        "placed_by": "u.username",
        "requested_at": _time_sql("c.requested_at"),
        "connected_at": _time_sql("c.connected_at"),
        "ended_at": _time_sql("c.ended_at"),
        "duration_seconds": TALK_SECONDS_SQL,  # Call.talk_seconds: none for a call that never connected
        "disposition": "NULLIF(c.disposition_code, '')",
        "notes": "c.notes",
        "wrapped_up_at": _time_sql("c.wrapped_up_at"),
        "error": "NULLIF(c.error_display, '')",
        "vcc_call_id": "NULLIF(c.vcc_call_id, '')",
        "url": "%s::text || c.id || '/'",
    }
    return f"json_build_object({', '.join(f"'{key}', {value}" for key, value in fields.items())})::text"


_SORTS = {
    "-time": "page.requested_at DESC, page.id DESC",
    "time": "page.requested_at, page.id",
    "-duration": f"COALESCE(page.duration_seconds, {NO_DURATION}) DESC, page.id DESC",
    "duration": f"COALESCE(page.duration_seconds, {NO_DURATION}), page.id",
}


def json_rows(log_path: str) -> Callable[[QuerySet[Call, tuple[Any, ...]], str], list[tuple[Any, ...]]]:
    """For calllog.rows_page on PostgreSQL: the page's query (a values_list of id, requested_at, duration_seconds,
    ordered and sliced) read as those three and each call's JSON text, which PostgreSQL writes. The JSON is built
    around the page's SQL, not through the ORM: compiling it cost more per page than PostgreSQL spends on it."""
    agents, users = Agent._meta.db_table, get_user_model()._meta.db_table

    def fetch(page: QuerySet[Call, tuple[Any, ...]], sort: str) -> list[tuple[Any, ...]]:
        try:
            inner, params = page.query.sql_with_params()
        except EmptyResultSet:  # a condition that nothing meets (Django answers no rows without asking)
            return []
        sql = (
            f"SELECT page.id, page.requested_at, page.duration_seconds, {_item_sql()} "
            f"FROM ({inner}) AS page (id, requested_at, duration_seconds) "
            f"JOIN {Call._meta.db_table} c ON c.id = page.id "
            f"LEFT JOIN {agents} ta ON ta.id = c.to_agent_id LEFT JOIN {agents} fa ON fa.id = c.from_agent_id "
            f"LEFT JOIN {agents} aa ON aa.id = c.answered_by_id LEFT JOIN {users} u ON u.id = c.created_by_id "
            f"ORDER BY {_SORTS[sort]}"
        )
        with connections[page.db].cursor() as cursor:
            execute_prepared(cursor, sql, [log_path, *params])
            return cursor.fetchall()

    return fetch


# --- Prepared once a connection ---------------------------------------------------------------------------------

# The statements each pooled connection has prepared: the page's SQL text (one per combination of filters, cursor
# and sort) and its name, or "" for one PostgreSQL would not prepare. Forgotten with the connection.
_prepared: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()
MAX_PREPARED = 64  # a connection's statements; beyond, planned at each page as before


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
                log.warning("the call log's page could not be prepared; planned at each page instead", exc_info=True)
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
