from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, transaction

from calls.models import Agent, AgentGroup, Call, CallbackNumber, Contact, ContactPhone

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("display_id", ["", "12a4", "123456789012", " 1234", "12-34"])
def test_it_refuses_bad_agent_display_ids_in_forms(display_id):
    agent = Agent(display_id=display_id, name="X")
    with pytest.raises(ValidationError) as excinfo:
        agent.full_clean()
    assert "display_id" in excinfo.value.message_dict


@pytest.mark.parametrize("display_id", ["12a4", "123456789012"])
def test_the_database_refuses_bad_agent_display_ids_too(display_id):
    # PostgreSQL refuses an over-long value as a DataError before it checks the constraint.
    with pytest.raises((IntegrityError, DataError)), transaction.atomic():
        Agent.objects.create(display_id=display_id, name="X")


def test_agent_display_ids_are_unique():
    Agent.objects.create(display_id="1234", name="A")
    with pytest.raises(IntegrityError), transaction.atomic():
        Agent.objects.create(display_id="1234", name="B")


def test_group_display_ids_keep_their_leading_zeros():
    AgentGroup.objects.create(display_id="030", name="Sales")
    assert AgentGroup.objects.get(name="Sales").display_id == "030"
    assert not AgentGroup.objects.filter(display_id="30").exists()


def test_there_is_one_account_default_callback_number(london):
    with pytest.raises(IntegrityError), transaction.atomic():
        CallbackNumber.objects.filter(pk=london.pk).update(is_default=False)
        CallbackNumber.objects.bulk_create([CallbackNumber(number="+13125550100", label="A", is_default=True)])
        CallbackNumber.objects.bulk_create([CallbackNumber(number="+13125550101", label="B", is_default=True)])


def test_saving_a_new_default_unsets_the_old_one_in_one_save(london):
    second = CallbackNumber(number="+13125550100", label="Chicago", is_default=True)
    second.full_clean()  # the form does not ask to untick the old default first
    second.save()
    london.refresh_from_db()
    assert not london.is_default
    assert list(CallbackNumber.objects.filter(is_default=True)) == [second]


def test_the_account_default_must_be_active():
    number = CallbackNumber(number="+13125550100", label="Chicago", is_default=True, is_active=False)
    with pytest.raises(ValidationError, match="must be active"):
        number.full_clean()


def test_numbers_are_stored_in_e164_only(contact):
    with pytest.raises(IntegrityError), transaction.atomic():
        ContactPhone.objects.create(contact=contact, number="020 7946 0100")
    with pytest.raises(IntegrityError), transaction.atomic():
        CallbackNumber.objects.create(number="02079460100", label="National")


def test_a_contact_has_one_primary_number(contact):
    with pytest.raises(IntegrityError), transaction.atomic():
        ContactPhone.objects.create(contact=contact, number="+13125550100", is_primary=True)


def test_a_contact_lists_a_number_once(contact):
    with pytest.raises(IntegrityError), transaction.atomic():
        ContactPhone.objects.create(contact=contact, number="+447400123456")


def test_primary_phone_prefers_the_primary_flag(contact):
    assert contact.primary_phone.number == "+447400123456"
    assert Contact.objects.create(name="Nobody").primary_phone is None


def test_a_restricted_callback_number_is_usable_only_by_its_agents_and_groups(london, manchester, agent_user, support):
    alex = agent_user.agent
    assert set(CallbackNumber.objects.usable_by(agent=alex)) == {london}
    support.members.add(alex)
    assert set(CallbackNumber.objects.usable_by(agent=alex)) == {london, manchester}
    assert set(CallbackNumber.objects.usable_by(groups=[support])) == {london, manchester}
    manchester.is_active = False
    manchester.save()
    assert set(CallbackNumber.objects.usable_by(groups=[support])) == {london}


def test_a_number_restricted_to_an_agent_is_not_offered_to_others(london, agent_user, other_agent_user):
    private = CallbackNumber.objects.create(number="+13125550100", label="Chicago")
    private.allowed_agents.add(agent_user.agent)
    assert private.is_restricted
    assert set(CallbackNumber.objects.usable_by(agent=agent_user.agent)) == {london, private}
    assert set(CallbackNumber.objects.usable_by(agent=other_agent_user.agent)) == {london}


def test_a_call_needs_a_destination(agent_user):
    with pytest.raises(IntegrityError), transaction.atomic():
        Call.objects.create(created_by=agent_user, from_agent=agent_user.agent)


def test_vcc_call_ids_are_unique_but_many_calls_may_have_none(agent_user):
    for _ in range(2):
        Call.objects.create(created_by=agent_user, from_agent=agent_user.agent, to_number="+442079460100")
    Call.objects.create(created_by=agent_user, to_number="+442079460100", vcc_call_id="017db4a2")
    with pytest.raises(IntegrityError), transaction.atomic():
        Call.objects.create(created_by=agent_user, to_number="+442079460100", vcc_call_id="017db4a2")


def test_agents_see_their_own_calls_and_supervisors_see_all(agent_user, other_agent_user, supervisor_user):
    mine = Call.objects.create(created_by=agent_user, from_agent=agent_user.agent, to_number="+442079460100")
    theirs = Call.objects.create(
        created_by=other_agent_user, from_agent=other_agent_user.agent, to_number="+442079460100"
    )
    assert list(Call.objects.visible_to(agent_user)) == [mine]
    assert set(Call.objects.visible_to(supervisor_user)) == {mine, theirs}


def test_each_call_gets_its_own_request_id(agent_user):
    a = Call.objects.create(created_by=agent_user, to_number="+442079460100")
    b = Call.objects.create(created_by=agent_user, to_number="+442079460100")
    assert a.request_id != b.request_id


# --- Call transitions write only the fields they change ----------------------------------------------------


def _live_call(agent_user) -> Call:
    from django.utils import timezone

    now = timezone.now()
    return Call.objects.create(
        created_by=agent_user, from_agent=agent_user.agent, to_number="+447400123456", state=Call.State.LIVE,
        outcome=Call.Outcome.IN_PROGRESS, vcc_call_id="c-1", responded_at=now, next_check_at=now,
    )  # fmt: skip


def _transitions(now):
    return {
        "detail (ended)": lambda c: c.record_detail(
            live=False,
            recording_status="",
            result=("Success", "", ""),
            connected=False,
            disposition_code="",
            now=now,
            next_check_at=None,
        ),  # fmt: skip
        "detail (still live)": lambda c: c.record_detail(
            live=True,
            recording_status="Started",
            result=("", "", ""),
            connected=True,
            disposition_code="",
            now=now,
            next_check_at=now,
        ),  # fmt: skip
        "missing": lambda c: c.record_missing(now=now, next_check_at=now),
        "follow error": lambda c: c.record_follow_error(message="x", status=503, now=now, next_check_at=now),
        "recording": lambda c: c.record_recording(status="Paused", now=now),
    }


@pytest.mark.parametrize("transition", list(_transitions(None)))
def test_a_transition_on_a_stale_copy_keeps_what_another_request_wrote(agent_user, transition):
    """Two requests hold the same call (the worker follows it while the agent wraps it up): each transition
    writes only its own fields, so neither undoes the other."""
    from django.utils import timezone

    now = timezone.now()
    stale = _live_call(agent_user)
    fresh = Call.objects.get(pk=stale.pk)
    fresh.record_wrap_up(code="Interested", notes="typed by the agent", now=now, confirmed=True)

    _transitions(now)[transition](stale)

    stored = Call.objects.get(pk=stale.pk)
    assert (stored.notes, stored.disposition_code, stored.wrapped_up_at) == ("typed by the agent", "Interested", now)


def test_a_wrap_up_on_a_stale_copy_keeps_the_end_another_request_recorded(agent_user):
    from django.utils import timezone

    now = timezone.now()
    stale = _live_call(agent_user)
    _transitions(now)["detail (ended)"](Call.objects.get(pk=stale.pk))

    stale.record_wrap_up(code="Interested", notes="n", now=now, confirmed=True)

    stored = Call.objects.get(pk=stale.pk)
    assert (stored.state, stored.outcome, stored.ended_at) == (Call.State.ENDED, Call.Outcome.ANSWERED, now)


@pytest.mark.parametrize(
    ("result", "connected", "outcome"),
    [
        (("Success", "", ""), False, Call.Outcome.ANSWERED),
        (("", "", ""), True, Call.Outcome.ANSWERED),
        (("", "", ""), False, Call.Outcome.UNKNOWN),
        (("Failure", "Originator", "NoAnswer"), False, Call.Outcome.AGENT_NO_ANSWER),
        (("Failure", "Destination", "No Answer"), False, Call.Outcome.NO_ANSWER),
        (("Failure", "Destination", "Busy"), False, Call.Outcome.BUSY),
        (("Failure", "Destination", "Rejected"), False, Call.Outcome.FAILED),
        (("", "Destination", "Rejected"), False, Call.Outcome.FAILED),
        # VCC documents only "Failure" (vcc-api.md §6.1): another code is no failure it knows of. A call that
        # connected was answered; one that did not is unknown (wrapped up, counted neither way), never "failed",
        # which would skip its wrap-up and have a queue ring the contact again.
        (("Completed", "Destination", "Answered"), True, Call.Outcome.ANSWERED),
        (("Answered", "", ""), True, Call.Outcome.ANSWERED),
        (("Completed", "Destination", "Hangup"), False, Call.Outcome.UNKNOWN),
        (("Completed", "Destination", "Busy"), False, Call.Outcome.BUSY),
        (("Failed", "Destination", "Rejected"), False, Call.Outcome.FAILED),
        (("Error", "", "Rejected"), False, Call.Outcome.FAILED),
    ],
)
def test_the_outcome_read_from_vccs_result(result, connected, outcome):
    from calls.models.outcomes import outcome_of

    assert outcome_of(*result, connected=connected) == outcome
