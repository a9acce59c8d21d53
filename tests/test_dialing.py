"""What a click will send and why: caller ID and consent resolution, do-not-call, the dial plan."""

from __future__ import annotations

import pytest

from calls import dialing
from calls.models import Agent, CallbackNumber, ConsentRule, Contact, ContactPhone

pytestmark = pytest.mark.django_db


@pytest.fixture
def chicago(db) -> CallbackNumber:
    return CallbackNumber.objects.create(number="+13125550100", label="Chicago")


def test_the_account_default_is_used_when_nothing_more_specific_is_set(agent_user, london, chicago):
    clid, reason, options = dialing.resolve_clid(agent=agent_user.agent, groups=[])
    assert clid == london
    assert reason == "the account default"
    assert set(options) == {london, chicago}


def test_the_agents_default_beats_the_account_default(agent_user, london, chicago):
    Agent.objects.filter(pk=agent_user.agent.pk).update(default_callback_number=chicago)
    agent = Agent.objects.get(pk=agent_user.agent.pk)
    assert dialing.resolve_clid(agent=agent, groups=[])[:2] == (chicago, "your default caller ID")


def test_the_groups_default_is_used_for_a_group_call(agent_user, london, manchester, support):
    support.default_callback_number = manchester
    support.save()
    clid, reason, _ = dialing.resolve_clid(agent=agent_user.agent, groups=[support])
    assert (clid, reason) == (manchester, "default of group Support")


def test_the_users_choice_beats_every_default(agent_user, london, chicago):
    Agent.objects.filter(pk=agent_user.agent.pk).update(default_callback_number=london)
    clid, reason, _ = dialing.resolve_clid(agent=agent_user.agent, groups=[], chosen=str(chicago.pk))
    assert (clid, reason) == (chicago, "you chose it for this call")


def test_a_restricted_number_cannot_be_chosen_by_someone_outside_it(agent_user, london, manchester):
    with pytest.raises(dialing.Refused, match="not one you may present"):
        dialing.resolve_clid(agent=agent_user.agent, groups=[], chosen=str(manchester.pk))
    assert manchester not in dialing.resolve_clid(agent=agent_user.agent, groups=[])[2]


def test_a_restricted_agent_default_is_skipped_for_someone_no_longer_allowed(agent_user, london, manchester):
    Agent.objects.filter(pk=agent_user.agent.pk).update(default_callback_number=manchester)
    agent = Agent.objects.get(pk=agent_user.agent.pk)
    assert dialing.resolve_clid(agent=agent, groups=[])[0] == london


def test_an_inactive_number_is_never_offered(agent_user, london):
    london.is_default = False
    london.is_active = False
    london.save()
    clid, reason, options = dialing.resolve_clid(agent=agent_user.agent, groups=[])
    assert clid is None
    assert "VCC presents the account's own" in reason
    assert options == []


def test_consent_comes_from_the_contacts_override_first(contact):
    contact.consent_override = "TwoParty"
    assert dialing.resolve_consent(contact=contact, number="+447400123456") == ("TwoParty", "set on this contact")


def test_consent_comes_from_the_countrys_default(contact):
    assert dialing.resolve_consent(contact=contact, number="+447400123456") == ("OneParty", "default for GB numbers")
    assert dialing.resolve_consent(contact=contact, number="+13125550100") == ("TwoParty", "default for US numbers")


def test_consent_is_unknown_for_a_country_without_a_default(contact):
    ConsentRule.objects.filter(country="GB").delete()
    assert dialing.resolve_consent(contact=contact, number="+447400123456") == ("Unknown", "no default for GB numbers")


def test_the_plan_shows_everything_a_click_sends(agent_user, contact, london):
    phone = contact.phones.get(number="+447400123456")
    plan = dialing.plan_for_phone(user=agent_user, phone=phone)
    assert plan.number == "+447400123456"
    assert plan.agent == agent_user.agent
    assert plan.clid == london
    assert plan.consent == "OneParty"
    assert plan.blocked == ""
    assert plan.problems == []
    assert plan.from_label == "your phone (Alex Morgan, agent 1001)"


def test_the_plan_says_why_a_user_without_an_agent_cannot_call(make_user, contact):
    user = make_user("noagent", "agent")
    plan = dialing.plan_for_phone(user=user, phone=contact.phones.first())
    assert "no active VCC agent" in plan.problems[0]


def test_an_inactive_agent_cannot_call(agent_user, contact):
    Agent.objects.filter(user=agent_user).update(is_active=False)
    agent_user.refresh_from_db()
    assert dialing.plan_for_phone(user=agent_user, phone=contact.phones.first()).problems


def test_an_agent_may_not_plan_a_group_call(agent_user, contact, sales):
    plan = dialing.plan_for_phone(user=agent_user, phone=contact.phones.first(), groups=[sales])
    assert plan.problems == ["You may not call via groups: ask a supervisor."]


@pytest.mark.parametrize(
    ("on_contact", "on_number", "reason"),
    [
        (True, False, "This contact is marked do not call."),
        (False, True, "This number is marked do not call."),
    ],
)
def test_do_not_call_blocks_the_number_with_the_reason(agent_user, contact, on_contact, on_number, reason):
    Contact.objects.filter(pk=contact.pk).update(do_not_call=on_contact)
    ContactPhone.objects.filter(contact=contact).update(do_not_call=on_number)
    phone = ContactPhone.objects.select_related("contact").filter(contact=contact).first()
    assert dialing.plan_for_phone(user=agent_user, phone=phone).blocked == reason


def test_the_regarding_link_is_signed(agent_user, contact):
    from calls.models import Call

    call = Call.objects.create(created_by=agent_user, contact=contact, to_number="+447400123456")
    url = dialing.regarding_url(call, base_url="https://crm.example.com/")
    assert url.startswith(f"https://crm.example.com/contacts/{contact.pk}/?call={call.pk}:")
    token = url.split("?call=")[1]
    assert dialing.call_from_regarding(token) == call.pk
    assert dialing.call_from_regarding(f"{call.pk + 1}:{token.split(':')[1]}") is None
    assert dialing.call_from_regarding("garbage") is None


def test_default_groups_prefer_the_agents_default_group(agent_user, sales, support):
    agent = agent_user.agent
    assert dialing.default_groups(agent_user) == [sales]
    agent.default_group = support
    agent.save()
    agent_user.refresh_from_db()
    assert dialing.default_groups(agent_user) == [support]


def test_a_click_whose_answer_was_never_recorded_is_closed_with_an_explanation(agent_user, contact):
    from datetime import timedelta

    from django.utils import timezone

    from calls.models import Call

    old = Call.objects.create(created_by=agent_user, contact=contact, to_number="+447400123456")
    Call.objects.filter(pk=old.pk).update(requested_at=timezone.now() - timedelta(minutes=10))
    fresh = Call.objects.create(created_by=agent_user, contact=contact, to_number="+447400123456")
    assert dialing.close_abandoned_clicks(older_than=timedelta(minutes=5)) == 1
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.state == Call.State.FAILED
    assert "may or may not have been placed" in old.error_display
    assert fresh.state == Call.State.REQUESTED


def test_a_number_marked_do_not_call_on_another_contact_is_blocked_here_too(agent_user, contact):
    other = Contact.objects.create(name="Same Number Elsewhere")
    ContactPhone.objects.create(contact=other, number="+447400123456", do_not_call=True)
    phone = contact.phones.get(number="+447400123456")
    plan = dialing.plan_for_phone(user=agent_user, phone=phone)
    assert plan.blocked == "This number is marked do not call on another contact."


def test_a_stale_copy_of_a_call_does_not_undo_a_wrap_up(agent_user, contact):
    from calls.models import Call, DispositionCode
    from calls.vcc import CallDetail

    call = Call.objects.create(
        created_by=agent_user, contact=contact, to_number="+447400123456", state="live", vcc_call_id="c1"
    )
    stale = Call.objects.get(pk=call.pk)
    ended = CallDetail("c1", None, None, "Success", "Destination", "Answered", None, None, raw={})
    dialing.apply_detail(call, ended)
    dialing.wrap_up(
        call, disposition=DispositionCode.objects.get(code="Interested"), notes="Keep me", vcc_confirmed=True
    )
    dialing.apply_detail(stale, ended)  # e.g. reconcile_calls reaching a call it loaded earlier
    call.refresh_from_db()
    assert call.notes == "Keep me"
    assert call.disposition_code == "Interested"
    assert call.wrapped_up_at is not None
