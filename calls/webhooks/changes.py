"""The events of calls and contacts, worked out from what a change did: every path that changes a call (the click, the
follower, VCC's events, wrap-up, a supervisor closing it) or a contact (its pages, the API, imports, Django's admin,
a do-not-call disposition) goes through `call_change` or `contact_change`, which write the events in the change's
transaction. Payloads are the API's resources (calls.api.calls.resource, calls.api.contacts.contact_out)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.db import transaction

from calls.webhooks import outbox

if TYPE_CHECKING:
    from calls.models import Call, Contact

_Marks = tuple[str, bool, bool, bool] | None  # state, connected, ended, wrapped up; None before the call exists


def _call_marks(call: Call) -> _Marks:
    if call.pk is None or call._state.adding:
        return None
    return (call.state, call.connected_at is not None, call.state == "ended", call.wrapped_up_at is not None)


def call_event_types(before: _Marks, after: _Marks) -> list[str]:
    """The events a change of a call from `before` to `after` makes, in the order they happened."""
    assert after is not None
    state, connected, ended, wrapped = after
    was_state, was_connected, was_ended, was_wrapped = before or ("", False, False, False)
    types = []
    if before is None:
        types.append("call.requested" if state == "requested" else "call.placed")  # VCC's events log live calls
    if state != was_state:
        types += {"live": ["call.placed"], "failed": ["call.failed"], "unconfirmed": ["call.not_confirmed"]}.get(
            state, []
        )
    if connected and not was_connected:
        types.append("call.connected")
    if ended and not was_ended:
        types.append("call.ended")
    if wrapped and not was_wrapped:
        types.append("call.wrapped_up")
    return list(dict.fromkeys(types))


def call_data(call: Call) -> dict[str, Any]:
    """The call's resource, its times as they are: the event makes it JSON once, when written (outbox.Event)."""
    from calls.api.calls import resource

    return resource(call)


@contextmanager
def call_change(call: Call) -> Iterator[None]:
    """Around a change of `call` (a transition, or its INSERT): writes the events it makes, in its transaction."""
    if not outbox.wanted():
        yield
        return
    before = _call_marks(call)
    with transaction.atomic(savepoint=False):
        yield
        types = call_event_types(before, _call_marks(call))
        if types:
            data = call_data(call)
            outbox.emit_many(outbox.event(t, f"call:{call.pk}", data) for t in types)


# --- Contacts ---------------------------------------------------------------------------------------------------


def _contacts(pks: Iterable[int], *, lock: bool = False) -> list[Contact]:
    """The contacts with their numbers; `lock`: their rows locked for the rest of the transaction (FOR UPDATE), so
    that two changes of one contact write their events in the order they commit, even when neither updates the
    contact's own row (a number's change): the dispatch job sends a subject's events in the order of their ids."""
    from calls.api.contacts import _contacts as with_phones

    contacts = with_phones().filter(pk__in=list(pks)).order_by("pk")
    return list(contacts.select_for_update(of=("self",)) if lock else contacts)


def _dnc(contact: Contact) -> tuple[bool, frozenset[int]]:
    """What do-not-call says of a contact: its own flag, and which of its numbers are marked (a number added or
    removed unmarked changes nothing of it)."""
    return contact.do_not_call, frozenset(p.pk for p in contact.phones.all() if p.do_not_call)


def contact_data(contact: Contact) -> dict[str, Any]:
    from calls.api.calls import as_json
    from calls.api.contacts import contact_out

    return as_json(contact_out(contact).model_dump())


def _events_of(contact: Contact, *, created: bool, dnc_before: object) -> list[outbox.Event]:
    data, subject = contact_data(contact), f"contact:{contact.pk}"
    events = [outbox.event("contact.created" if created else "contact.updated", subject, data)]
    if ((False, frozenset()) if created else dnc_before) != _dnc(contact):
        events.append(outbox.event("contact.do_not_call_changed", subject, data))
    return events


def dnc_of(pks: Iterable[int]) -> dict[int, object]:
    """The contacts' do-not-call flags as they are now, to compare after a change (contact_saved); called in the
    change's transaction, it locks the contacts until it ends."""
    return {c.pk: _dnc(c) for c in _contacts(pks, lock=True)} if outbox.wanted() else {}


def contacts_saved(pks: Iterable[int], *, before: dict[int, object]) -> None:
    """Events for contacts just saved: contact.created for those not in `before` (dnc_of before the change),
    contact.updated for the others; contact.do_not_call_changed for each whose flags changed."""
    if not outbox.wanted():
        return
    events: list[outbox.Event] = []
    for contact in _contacts(pks):
        events += _events_of(contact, created=contact.pk not in before, dnc_before=before.get(contact.pk))
    outbox.emit_many(events)


@contextmanager
def contact_change(*pks: int | None) -> Iterator[list[int]]:
    """Around a change of the contacts `pks` (None: a contact being created), in its transaction: writes their
    events (contacts_saved). Yields a list: append the ids of the contacts the change creates."""
    created: list[int] = []
    if not outbox.wanted():
        yield created
        return
    with transaction.atomic(savepoint=False):
        before = dnc_of(pk for pk in pks if pk is not None)
        yield created
        contacts_saved([*before, *created], before=before)


def contacts_created(pks: Iterable[int]) -> None:
    """Events for contacts just created (in bulk: an import), in the transaction that created them."""
    if outbox.wanted():
        outbox.emit_many(e for c in _contacts(pks) for e in _events_of(c, created=True, dnc_before=None))


@contextmanager
def contact_deletion(pks: Iterable[int]) -> Iterator[None]:
    """Around deleting contacts: contact.deleted for each, with the contact as it was."""
    if not outbox.wanted():
        yield
        return
    with transaction.atomic(savepoint=False):
        gone = [(c.pk, contact_data(c)) for c in _contacts(pks, lock=True)]
        yield
        outbox.emit_many(outbox.event("contact.deleted", f"contact:{pk}", data) for pk, data in gone)
