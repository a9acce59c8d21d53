"""The click's raw SQL (calls/models/contacts.py, calls/models/calls.py) says what the ORM versions it replaced say."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from calls.calling.facts import _blocked_elsewhere
from calls.models import Call, Contact, ContactPhone

pytestmark = pytest.mark.django_db

SHARED, OWN = "+442079460123", "+442079460124"


def test_for_click_and_the_orm_agree_on_every_number_blocked_elsewhere():
    clean = Contact.objects.create(name="Clean")
    flagged_contact = Contact.objects.create(name="Flagged", do_not_call=True)
    flagged_number = Contact.objects.create(name="Has a flagged number")
    phones = [
        ContactPhone.objects.create(contact=clean, number=SHARED),
        ContactPhone.objects.create(contact=clean, number=OWN),
        ContactPhone.objects.create(contact=flagged_contact, number=SHARED),
        ContactPhone.objects.create(contact=flagged_number, number=OWN, do_not_call=True),
        ContactPhone.objects.create(contact=flagged_number, number="+442079460125"),
    ]
    by_orm = dict(ContactPhone.objects.annotate(b=_blocked_elsewhere()).values_list("pk", "b"))
    for phone in phones:
        found = ContactPhone.objects.for_click(phone.pk, phone.contact_id)
        assert found == phone
        assert found.contact == phone.contact
        assert found.contact.do_not_call == phone.contact.do_not_call
        assert found.blocked_elsewhere is by_orm[phone.pk], phone.number
        for instance, model in ((found, ContactPhone), (found.contact, Contact)):
            loaded = model.objects.get(pk=instance.pk)
            assert field_values(instance) == field_values(loaded)  # dates, flags and all, as the ORM reads them
            assert not instance._state.adding
    assert [by_orm[p.pk] for p in phones] == [True, True, True, True, False]


def field_values(instance) -> dict[str, object]:
    return {
        f.attname: (getattr(instance, f.attname), type(getattr(instance, f.attname)))
        for f in instance._meta.concrete_fields
    }


def test_for_click_finds_nothing_for_a_number_of_another_contact():
    mine, theirs = Contact.objects.create(name="Mine"), Contact.objects.create(name="Theirs")
    phone = ContactPhone.objects.create(contact=theirs, number=SHARED)
    assert ContactPhone.objects.for_click(phone.pk, mine.pk) is None
    assert ContactPhone.objects.for_click(phone.pk + 1000, theirs.pk) is None


def test_blocking_finds_the_live_call_that_holds_the_phone_or_the_number(agent_user, other_agent_user):
    now = timezone.now()
    agent = agent_user.agent

    def live(**fields) -> Call:
        return Call.objects.create(state=Call.State.LIVE, requested_at=now - timedelta(minutes=1), **fields)

    def blocking(**kwargs):
        args = {"agent_id": agent.pk, "number": SHARED, "user_id": agent_user.pk, "since": now - timedelta(hours=2)}
        return Call.objects.blocking(**{**args, "request_id": "00000000-0000-4000-8000-000000000001", **kwargs})

    assert blocking() is None
    mine_to_number = live(created_by=agent_user, to_number=SHARED)
    assert blocking(agent_id=None) is None  # my own call to the number does not block me by the number
    on_my_phone = live(created_by=other_agent_user, from_agent=agent, to_number=OWN)
    assert blocking() == on_my_phone
    assert blocking().created_by == other_agent_user  # loaded with who clicked it, for the refusal's words
    assert blocking(agent_id=None, number="") is None
    theirs_to_number = live(created_by=other_agent_user, to_number=SHARED)
    assert blocking(agent_id=None) == theirs_to_number
    assert blocking(agent_id=None, request_id=str(theirs_to_number.request_id)) is None  # the same click
    assert blocking(since=now) is None  # older than the window
    Call.objects.filter(pk__in=[on_my_phone.pk, theirs_to_number.pk]).update(state=Call.State.ENDED)
    assert blocking() is None
    assert mine_to_number.state == Call.State.LIVE


def test_call_insert_and_save_fields_write_what_save_would(agent_user, london):
    from django.db import DatabaseError
    from django.db.models.signals import post_save, pre_save

    # They skip save()'s signals: if something listens to Call's, it must use save() instead.
    assert not pre_save.has_listeners(Call) and not post_save.has_listeners(Call)
    now = timezone.now()
    call = Call(
        created_by=agent_user,
        from_agent=agent_user.agent,
        to_number=SHARED,
        callback_number=london,
        presented_clid=london.number,
        requested_at=now,
        request_body={"from": {"agentId": "1001"}, "to": {"number": SHARED}},
    )
    call.insert()
    stored = Call.objects.get(pk=call.pk)
    for field in Call._meta.concrete_fields:
        assert getattr(stored, field.attname) == getattr(call, field.attname), field.name
    assert not call._state.adding

    call.record_placed(vcc_call_id="vcc-1", vcc_status="Ringing", recording_status="", latency_ms=12, now=now)
    stored.refresh_from_db()
    assert (stored.state, stored.vcc_call_id, stored.latency_ms, stored.responded_at) == ("live", "vcc-1", 12, now)

    Call.objects.filter(pk=call.pk).delete()
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        call.save_fields(["vcc_status"])
