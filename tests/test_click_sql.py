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
    grace, hers = Contact.objects.create(name="Grace"), {"agent_id": None, "number": "+447400999999"}
    assert blocking(**hers, contact_id=grace.pk) is None
    to_her_other_number = live(created_by=other_agent_user, to_number="+447400999998", contact=grace)
    assert blocking(**hers, contact_id=grace.pk) == to_her_other_number  # one person, called by one at a time
    assert blocking(**hers) is None
    assert blocking(**hers, contact_id=grace.pk, user_id=other_agent_user.pk) is None  # by its own clicker
    to_her_other_number.delete()
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


def test_the_bars_sql_and_the_models_rules_agree_on_every_kind_of_call(agent_user, other_agent_user):
    """calls.calling.bar.bar_call_ids against `(in_progress | to_wrap_up) & changeable_by` and the bar's order, over
    every mix of who clicked, whose phone rang, who answered (an agent with a login or without) and where the call
    is (going on, ended with or without a wrap-up due, to a colleague, not placed), inside and outside the window."""
    from itertools import product

    from django.db.models import Case, Value, When

    from calls.calling.bar import bar_call_ids
    from calls.models import Agent

    now = timezone.now()
    mine, theirs = agent_user.agent, other_agent_user.agent
    no_login = Agent.objects.create(display_id="1009", name="Desk phone")
    where = {
        "requested": {"state": Call.State.REQUESTED},
        "live": {"state": Call.State.LIVE},
        "live, talking": {"state": Call.State.LIVE, "connected_at": now},
        "not placed": {"state": Call.State.FAILED, "outcome": Call.Outcome.FAILED},
        "not confirmed": {"state": Call.State.UNCONFIRMED, "outcome": Call.Outcome.NOT_CONFIRMED},
        "ended, talked": {"state": Call.State.ENDED, "outcome": Call.Outcome.ANSWERED, "connected_at": now},
        "ended, wrapped up": {
            "state": Call.State.ENDED, "outcome": Call.Outcome.ANSWERED, "connected_at": now, "wrapped_up_at": now,
        },
        "ended, no answer": {"state": Call.State.ENDED, "outcome": Call.Outcome.NO_ANSWER},
        "ended, busy but connected": {"state": Call.State.ENDED, "outcome": Call.Outcome.BUSY, "connected_at": now},
        "ended, to a colleague": {
            "state": Call.State.ENDED, "outcome": Call.Outcome.ANSWERED, "connected_at": now, "to_agent": theirs,
        },
    }  # fmt: skip
    calls = [
        Call(
            created_by=clicker,
            from_agent=from_agent,
            answered_by=answered_by,
            to_number=SHARED,
            requested_at=now - timedelta(seconds=i) - (timedelta(hours=13) if old else timedelta()),
            **fields,
        )  # fmt: skip
        for i, (clicker, from_agent, answered_by, fields, old) in enumerate(
            product(
                [agent_user, other_agent_user],
                [mine, theirs, no_login, None],
                [None, mine, theirs, no_login],
                where.values(),
                [False, True],
            )
        )
    ]
    Call.objects.bulk_create(calls)
    since = now - timedelta(hours=12)
    for user in (agent_user, other_agent_user):
        by_rules = list(
            ((Call.objects.in_progress() | Call.objects.to_wrap_up()) & Call.objects.changeable_by(user))
            .filter(requested_at__gte=since)
            .order_by(Case(When(state__in=Call.IN_PROGRESS, then=Value(0)), default=Value(1)), "-requested_at", "-pk")
            .values_list("pk", flat=True)
        )
        assert 10 < len(by_rules) < len(calls) / 4  # the mix has some of each
        assert bar_call_ids(user.pk, since=since, size=len(calls)) == (by_rules, len(by_rules))
        assert bar_call_ids(user.pk, since=since) == (by_rules[:3], len(by_rules))
    assert bar_call_ids(agent_user.pk, since=now + timedelta(seconds=1)) == ([], 0)
