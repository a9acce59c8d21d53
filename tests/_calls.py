"""Calls in any state for the call log, export and report tests, written straight to the database."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from calls.models import Call, Callback

# What each outcome looks like when stored: state, VCC's result (code, party, reason) and error fields.
SHAPES = {
    "answered": {"state": "ended", "result_code": "Success"},
    "no_answer": {
        "state": "ended",
        "result_code": "Failure",
        "result_party": "Destination",
        "result_reason": "NoAnswer",
    },
    "agent_no_answer": {
        "state": "ended",
        "result_code": "Failure",
        "result_party": "Originator",
        "result_reason": "NoAnswer",
    },
    "busy": {"state": "ended", "result_code": "Failure", "result_party": "Destination", "result_reason": "Busy"},
    "failed": {
        "state": "failed",
        "error_message": "Agent is not available",
        "error_status": 409,
        "error_display": "Your phone is not ready in VCC.",
    },
    "not_confirmed": {"state": "unconfirmed", "error_message": "Read timed out", "error_display": "May be placed."},
    "unknown": {"state": "ended", "result_reason": "Unknown: VCC no longer has this call"},
    "gone": {"state": "ended", "result_reason": "VCC no longer knows this call"},
    "in_progress": {"state": "live"},
}


def local(day: str, hour: int = 10, minute: int = 0) -> datetime:
    """An aware datetime on a local day ("2026-03-02") at hour:minute."""
    naive = datetime.fromisoformat(day).replace(hour=hour, minute=minute)
    return timezone.make_aware(naive)


def make_call(*, user, agent=None, outcome: str = "answered", at: datetime | None = None, groups=(), **fields) -> Call:
    """A call clicked by user from agent (or via groups), stored as having ended with outcome."""
    at = at or timezone.now() - timedelta(hours=1)
    shape = dict(SHAPES[outcome])
    if outcome == "answered":
        shape.setdefault("duration_seconds", 60)
    elif shape["state"] == "ended":
        shape.setdefault("duration_seconds", 0)
    if shape["state"] == "ended":
        shape.setdefault("ended_at", at + timedelta(seconds=30 + (shape.get("duration_seconds") or 0)))
    values = {
        "created_by": user,
        "from_agent": None if groups else agent,
        "to_number": "+447400123456",
        "requested_at": at,
        "outcome": outcome,
        "changed_at": at,
        **shape,
        **fields,
    }
    call = Call.objects.create(**values)
    if groups:
        call.from_groups.set(groups)
    return call


def promised_at(callback: Callback, moment: datetime) -> Callback:
    """The callback as promised at moment (created_at is the database's clock, not the test's)."""
    Callback.objects.filter(pk=callback.pk).update(created_at=moment)
    callback.created_at = moment
    return callback
