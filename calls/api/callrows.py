"""The call log's pages for the API, read as rows, not models (calls/api/calls.py `list_calls`). Each row becomes what
`resource` makes of its call.

On PostgreSQL each call's JSON is written by PostgreSQL itself (`json_item`): Python only joins the texts. Reading
the whole log by cursor went from 15,000 calls a second (rows made into dicts and encoded in Python, which was still
three times faster than models) to over 20,000 (bench/api_bench.py). Elsewhere (SQLite) the rows are made into
dicts here (`rows_as_items`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Case, Expression, F, Func, OuterRef, TextField, Value, When
from django.db.models.functions import Coalesce, Concat, NullIf

from calls.models import Call


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


class _ApiTime(Func):
    """A time column as `_time` writes it: milliseconds unless the time is a whole second, and Z (UTC). Names the
    column three times: for columns only (no parameters)."""

    template = (
        "CASE WHEN date_trunc('second', %(expressions)s) = %(expressions)s "
        """THEN to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') """
        """ELSE to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') END"""
    )
    output_field = TextField()


class _JsonText(Func):
    """json_build_object(key, value, …) as text (psycopg would parse json into dicts, which is the cost avoided)."""

    function = "json_build_object"
    template = "%(function)s(%(expressions)s)::text"
    output_field = TextField()


def _via_groups() -> Expression:
    through = Call.from_groups.through.objects.filter(call_id=OuterRef("pk"))
    ordered = through.order_by("agentgroup__name", "agentgroup__display_id").values("agentgroup_id")
    # Only a call with neither agent was placed via groups: no subquery runs for the others.
    return Case(
        When(from_agent__isnull=True, to_agent__isnull=True, then=ArraySubquery(ordered)),
        default=Value([], output_field=ArraySubquery(ordered).output_field),
    )


def json_item(log_path: str) -> Expression:
    """The expression of one call's JSON text, the same object rows_as_items makes of its row (and `resource` of
    its call: tests/test_api_calls.py compares them)."""
    fields: dict[str, Any] = {
        "id": F("id"),
        "state": F("state"),
        "outcome": F("outcome"),
        "to": NullIf("to_number", Value("")),
        "to_agent": F("to_agent__display_id"),
        "contact": F("contact_id"),
        "agent": Coalesce("from_agent__display_id", "answered_by__display_id"),
        "answered_by": F("answered_by__display_id"),
        "via_groups": _via_groups(),
        "caller_id": NullIf("presented_clid", Value("")),
        "placed_by": F("created_by__username"),
        "requested_at": _ApiTime("requested_at"),
        "connected_at": _ApiTime("connected_at"),
        "ended_at": _ApiTime("ended_at"),
        "duration_seconds": Case(  # Call.talk_seconds: none for a call that never connected
            When(connected_at__isnull=True, duration_seconds=0, then=Value(None)), default=F("duration_seconds")
        ),
        "disposition": NullIf("disposition_code", Value("")),
        "notes": F("notes"),
        "wrapped_up_at": _ApiTime("wrapped_up_at"),
        "error": NullIf("error_display", Value("")),
        "vcc_call_id": NullIf("vcc_call_id", Value("")),
        "url": Concat(Value(log_path), F("id"), Value("/"), output_field=TextField()),
    }
    return _JsonText(*(part for key, value in fields.items() for part in (Value(key), value)))
