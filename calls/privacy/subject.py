"""A subject's data: everything vccweb holds about one contact, as one JSON document (and, from the same document,
a page people can read): the contact, its numbers, its calls with their history and wrap-ups, VCC's events of those
calls, the callbacks promised to them, the call queues they are in (each try, and why a try was skipped), and the
audit entries about them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Prefetch, QuerySet

from calls.models import Call, Callback, Contact, QueueAttempt, QueueEntry, VccEvent
from calls.privacy import audit

FORMAT = "vccweb-subject-data/1"


def _at(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _calls(contact: Contact) -> QuerySet[Call]:
    # Their calls only: a call to one of their numbers that no contact holds may have reached someone else (a number
    # passed on), whose notes are not theirs to read.
    return (
        Call.objects.filter(contact=contact)
        .select_related("from_agent", "answered_by", "to_agent", "created_by")
        .prefetch_related("from_groups", "events")
        .order_by("requested_at", "pk")
    )


def _call(call: Call, vcc_events: list[VccEvent]) -> dict[str, Any]:
    agent = call.agent
    return {
        "id": call.pk,
        "number": call.to_number,
        "agent": {"display_id": agent.display_id, "name": agent.name} if agent else None,
        "via_groups": [g.display_id for g in call.from_groups.all()],
        "placed_by": call.created_by.get_username() if call.created_by else None,
        "origin": call.get_origin_display(),
        "state": call.get_state_display(),
        "outcome": call.get_outcome_display(),
        "requested_at": _at(call.requested_at),
        "connected_at": _at(call.connected_at),
        "ended_at": _at(call.ended_at),
        "duration_seconds": call.talk_seconds,
        "caller_id": call.presented_clid,
        "recording_consent": call.consent,
        "recording_consent_why": call.consent_reason,
        "do_not_call_override_reason": call.dnc_override_reason,
        "calling_hours_override_reason": call.hours_override_reason,
        "wrap_up": {
            "disposition": call.disposition_code,
            "notes": call.notes,
            "wrapped_up_at": _at(call.wrapped_up_at),
        },
        "vcc_call_id": call.vcc_call_id,
        "error": call.error_display or call.error_message,
        "history": [{"at": _at(at), "what": what, "detail": detail} for at, what, detail in call.history()],
        "vcc_events": [
            {"id": e.event_id, "type": e.type, "time": _at(e.time), "received_at": _at(e.received_at), "data": e.data}
            for e in vcc_events
        ],
    }


def _callbacks(contact: Contact) -> QuerySet[Callback]:
    return (
        Callback.objects.filter(contact=contact)
        .select_related("phone", "assigned_to", "group", "created_by")
        .order_by("due_at", "pk")
    )


def _callback(callback: Callback) -> dict[str, Any]:
    return {
        "id": callback.pk,
        "due_at": _at(callback.due_at),
        "number": callback.phone.number if callback.phone else None,
        "to": callback.assigned_to.get_username() if callback.assigned_to else None,
        "group": callback.group.display_id if callback.group else None,
        "note": callback.note,
        "promised_on_call": callback.promised_on_id,
        "promised_by": callback.created_by.get_username() if callback.created_by else None,
        "created_at": _at(callback.created_at),
        "state": callback.get_state_display(),
        "closed_at": _at(callback.done_at),
        "kept_by_call": callback.done_by_call_id,
    }


def _queues(contact: Contact) -> list[dict[str, Any]]:
    """The call queues they are in: their place's state, and each try (a call, or a skip with the agent's reason)."""
    tries = Prefetch("tries", queryset=QueueAttempt.objects.select_related("user").order_by("at", "pk"))
    entries = QueueEntry.objects.filter(contact=contact).select_related("queue").prefetch_related(tries)
    return [
        {
            "queue": entry.queue.name,
            "state": entry.get_state_display(),
            "due_at": _at(entry.due_at),
            "attempts": entry.attempts,
            "last_outcome": entry.last_outcome,
            "skip_reason": entry.skip_reason,
            "finished_at": _at(entry.finished_at),
            "tries": [
                {
                    "at": _at(t.at),
                    "by": t.user.get_username() if t.user else None,
                    "call": t.call_id,
                    "outcome": t.outcome,
                    "effect": t.get_effect_display(),
                }
                for t in entry.tries.all()
            ],
        }
        for entry in entries.order_by("pk")
    ]


def subject_data(contact: Contact, *, now: datetime, by: str) -> dict[str, Any]:
    """Everything held about the contact, as JSON-ready data."""
    phones = list(contact.phones.all())
    calls = list(_calls(contact))
    pks = [c.pk for c in calls]
    vcc: dict[int, list[VccEvent]] = {pk: [] for pk in pks}
    for vcc_event in VccEvent.objects.filter(call_id__in=pks).order_by("received_at", "pk"):
        assert vcc_event.call_id is not None
        vcc[vcc_event.call_id].append(vcc_event)
    return {
        "format": FORMAT,
        "generated_at": _at(now),
        "generated_by": by,
        "contact": {
            "id": contact.pk,
            "name": contact.name,
            "company": contact.company,
            "email": contact.email,
            "notes": contact.notes,
            "external_id": contact.external_id,
            "do_not_call": contact.do_not_call,
            "recording_consent": contact.consent_override,
            "owner": contact.owner.get_username() if contact.owner else None,
            "created_at": _at(contact.created_at),
            "updated_at": _at(contact.updated_at),
            "last_called_at": _at(contact.last_called_at),
        },
        "numbers": [
            {
                "number": p.number,
                "label": p.get_label_display(),
                "primary": p.is_primary,
                "do_not_call": p.do_not_call,
            }
            for p in phones
        ],
        "calls": [_call(c, vcc[c.pk]) for c in calls],
        "callbacks": [_callback(c) for c in _callbacks(contact)],
        "queues": _queues(contact),
        "audit_entries": audit.audit_entries_about(
            contact_pk=contact.pk, phone_pks=[p.pk for p in phones], call_pks=pks
        ),
    }
