"""The call log's pages for the API, read as rows, not models (calls/api/calls.py `list_calls`). Each row becomes what
`resource` makes of its call.

On PostgreSQL each call's JSON is written by PostgreSQL itself (`json_rows`): Python only joins the texts. Reading
the whole log by cursor went from 15,000 calls a second (rows made into dicts and encoded in Python, which was still
three times faster than models) to over 20,000 (bench/api_bench.py). Elsewhere (SQLite) the rows are made into
dicts here (`rows_as_items`)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import QuerySet

from calls.calllog import NO_DURATION
from calls.models import Agent, AgentGroup, Call
from calls.models.calls import TALK_SECONDS_SQL
from calls.prepared import execute_prepared

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
    """The calls of a page, as calls.api.calls.resource shows each (tests/test_api_calls_log.py checks it)."""
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
    makes of the row, key for key (tests/test_api_calls_log.py compares both with `resource`)."""
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
