"""The call log's pages for the API, read as rows, not models (calls/api/calls.py `list_calls`): a whole log read by
cursor goes at about 15,000 calls a second this way (bench/api_bench.py), where models and the JSON encoder's
callback per value took three times as long. Each row becomes what `resource` makes of its call."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
                "duration_seconds": duration,
                "disposition": disposition or None,
                "notes": notes,
                "wrapped_up_at": _time(wrapped_up_at),
                "error": error or None,
                "vcc_call_id": vcc_call_id or None,
                "url": f"{log_path}{pk}/",
            }
        )
    return items
