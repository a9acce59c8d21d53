"""The calling rules (calls/rules.py): pure functions, tested without a database."""

from __future__ import annotations

import pytest

from calls import rules
from calls.models import Agent, AgentGroup, CallbackNumber
from calls.rules import Caller, Refused

LONDON = CallbackNumber(pk=1, number="+442079460100", label="London main", is_default=True)
CHICAGO = CallbackNumber(pk=2, number="+13125550100", label="Chicago")
MANCHESTER = CallbackNumber(pk=3, number="+441614960200", label="Manchester support")
ALEX = Agent(pk=10, display_id="1001", name="Alex Morgan")
SALES = AgentGroup(pk=20, display_id="030", name="Sales UK")
SUPPORT = AgentGroup(pk=21, display_id="200", name="Support", default_callback_number_id=MANCHESTER.pk)


def agent(**fields) -> Agent:
    return Agent(pk=10, display_id="1001", name="Alex Morgan", **fields)


def caller(**fields) -> Caller:
    return Caller(**{"agent": ALEX, "may_call": True, "may_call_groups": False, "may_override_dnc": False, **fields})


# --- Caller ID ---------------------------------------------------------------------------------------


def test_the_account_default_is_used_when_nothing_more_specific_is_set():
    assert rules.resolve_clid([LONDON, CHICAGO], agent=ALEX, groups=[]) == (LONDON, "the account default")


def test_the_agents_default_beats_the_account_default():
    me = agent(default_callback_number_id=CHICAGO.pk)
    assert rules.resolve_clid([LONDON, CHICAGO], agent=me, groups=[]) == (CHICAGO, "your default caller ID")


def test_the_first_ticked_groups_default_is_used_for_a_group_call():
    clid = rules.resolve_clid([LONDON, MANCHESTER], agent=ALEX, groups=[SALES, SUPPORT])
    assert clid == (MANCHESTER, "default of group Support")


def test_the_users_choice_beats_every_default():
    me = agent(default_callback_number_id=LONDON.pk)
    assert rules.resolve_clid([LONDON, CHICAGO], agent=me, groups=[], chosen=CHICAGO.pk) == (
        CHICAGO,
        "you chose it for this call",
    )


def test_a_number_outside_the_options_cannot_be_chosen():
    with pytest.raises(Refused, match="not one you may present"):
        rules.resolve_clid([LONDON], agent=ALEX, groups=[], chosen=MANCHESTER.pk)


def test_an_agent_default_outside_the_options_is_skipped():
    me = agent(default_callback_number_id=MANCHESTER.pk)
    assert rules.resolve_clid([LONDON], agent=me, groups=[])[0] == LONDON


def test_with_no_number_configured_vcc_presents_its_own():
    clid, reason = rules.resolve_clid([], agent=ALEX, groups=[])
    assert clid is None
    assert "VCC presents the account's own" in reason


def test_local_presence_presents_a_number_of_the_dialled_country():
    chicago = CallbackNumber(pk=2, number="+13125550100", label="Chicago")
    chicago.local_presence = True
    me = agent(default_callback_number_id=LONDON.pk)

    assert rules.resolve_clid([LONDON, chicago], agent=me, groups=[], number="+12125550123") == (
        chicago,
        "local presence: a US number for a US number",
    )
    assert rules.resolve_clid([LONDON, chicago], agent=me, groups=[], number="+447400123456")[0] == LONDON


def test_local_presence_presents_the_number_nearest_the_dialled_one():
    """Several local numbers of one country: the one of the dialled number's area, not the first by label."""
    boston = CallbackNumber(pk=3, number="+16175550100", label="Boston", local_presence=True)
    chicago = CallbackNumber(pk=2, number="+13125550100", label="Chicago", local_presence=True)

    def presented(number: str) -> CallbackNumber | None:
        return rules.resolve_clid([boston, chicago, LONDON], agent=ALEX, groups=[], number=number)[0]

    assert presented("+13125550123") == chicago
    assert presented("+16175550123") == boston
    assert presented("+12125550123") == boston  # New York: neither is nearer, the first listed


# --- Consent ------------------------------------------------------------------------------------------

TABLE = {"GB": "OneParty", "US": "TwoParty"}


def test_consent_comes_from_the_contacts_override_first():
    assert rules.resolve_consent(override="TwoParty", number="+447400123456", rules=TABLE) == (
        "TwoParty",
        "set on this contact",
    )


def test_consent_comes_from_the_countrys_default():
    assert rules.resolve_consent(override="", number="+447400123456", rules=TABLE) == (
        "OneParty",
        "default for GB numbers",
    )
    assert rules.resolve_consent(override="", number="+13125550100", rules=TABLE) == (
        "TwoParty",
        "default for US numbers",
    )


def test_consent_is_unknown_for_a_country_without_a_default():
    assert rules.resolve_consent(override="", number="+33142685300", rules=TABLE) == (
        "Unknown",
        "no default for FR numbers",
    )


# --- Do-not-call ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number_dnc", "contact_dnc", "elsewhere", "reason"),
    [
        (False, True, False, "This contact is marked do not call."),
        (True, False, False, "This number is marked do not call."),
        (False, False, True, "This number is marked do not call on another contact."),
        (False, False, False, ""),
    ],
)
def test_do_not_call_says_why(number_dnc, contact_dnc, elsewhere, reason):
    assert (
        rules.do_not_call_reason(number_dnc=number_dnc, contact_dnc=contact_dnc, blocked_elsewhere=elsewhere) == reason
    )


def plan(who: Caller, *, blocked: str = "", groups=(), via_groups: bool = False) -> rules.DialPlan:
    return rules.plan_number_call(
        caller=who,
        number="+447400123456",
        dnc_reason=blocked,
        consent=("OneParty", "default for GB numbers"),
        clid_options=[LONDON],
        groups=groups,
        via_groups=via_groups,
    )


def test_an_agent_cannot_call_a_do_not_call_number():
    who = caller()
    refused = rules.refusal(plan(who, blocked="This number is marked do not call."), caller=who, dnc_reason="x" * 20)
    assert refused == "This number is marked do not call. Only a supervisor can call it, giving a reason."


@pytest.mark.parametrize("reason", ["", "  no "])
def test_a_supervisor_must_say_why_to_call_a_do_not_call_number(reason):
    who = caller(may_override_dnc=True)
    refused = rules.refusal(plan(who, blocked="This number is marked do not call."), caller=who, dnc_reason=reason)
    assert refused == "This number is marked do not call. To call anyway, say why (at least 5 characters)."


def test_a_supervisor_with_a_reason_may_call_a_do_not_call_number():
    who = caller(may_override_dnc=True)
    assert rules.refusal(plan(who, blocked="x"), caller=who, dnc_reason="They asked us to call back") == ""


# --- Who may call ----------------------------------------------------------------------------------------


def test_the_plan_shows_everything_a_click_sends():
    p = plan(caller())
    assert (p.number, p.agent, p.clid, p.consent, p.blocked, p.problems) == (
        "+447400123456",
        ALEX,
        LONDON,
        "OneParty",
        "",
        [],
    )
    assert p.from_label == "your phone (Alex Morgan, agent 1001)"


def test_someone_without_an_agent_is_told_why():
    assert plan(caller(agent=None)).problems == [
        "You have no active VCC agent, so VCC has no phone of yours to ring. Ask an admin to link one."
    ]


def test_a_role_that_may_not_call_is_told_so():
    assert plan(caller(may_call=False)).problems == ["Your role may not place calls."]


def test_an_agent_may_not_call_via_groups():
    assert plan(caller(), groups=[SALES], via_groups=True).problems == [
        "You may not call via groups: ask a supervisor."
    ]


def test_a_group_call_needs_a_ticked_group():
    assert plan(caller(may_call_groups=True), via_groups=True).problems == ["Tick at least one group to call via."]


def test_a_group_call_rings_any_ready_agent_of_the_groups():
    p = plan(caller(may_call_groups=True), groups=[SALES, SUPPORT], via_groups=True)
    assert p.problems == []
    assert p.from_label == "any ready agent in Sales UK, Support"


def test_calling_yourself_is_refused():
    p = rules.plan_agent_call(caller=caller(), to_agent=ALEX, clid_options=[LONDON])
    assert p.problems == ["That is you: pick another agent."]


def test_an_inactive_colleague_cannot_be_called():
    tom = Agent(pk=11, display_id="1003", name="Tom Okafor", is_active=False)
    who = caller()
    assert rules.refusal(
        rules.plan_agent_call(caller=who, to_agent=tom, clid_options=[]), caller=who, dnc_reason=""
    ) == ("This agent is not active.")


# --- Words ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "outcome", "recording", "from_agent", "words"),
    [
        ("requested", "In progress", "", True, "Asking VCC to place the call…"),
        ("live", "In progress", "Stopped", True, "Ringing your phone…"),
        ("live", "In progress", "Stopped", False, "Ringing an agent…"),
        ("live", "In progress", "Started", True, "Connected"),
        ("live", "In progress", "Paused", True, "Connected"),
        ("ended", "Answered", "", True, "Call ended"),
        ("ended", "Not answered by the contact", "", True, "Call ended: not answered by the contact"),
        ("failed", "Failed", "", True, "Call not placed"),
        (
            "unconfirmed",
            "Not confirmed: may have been placed",
            "",
            True,
            "Not confirmed: the call may have been placed",
        ),
    ],
)
def test_the_phase_is_said_in_plain_words(state, outcome, recording, from_agent, words):
    assert rules.phase(state=state, outcome_label=outcome, recording_status=recording, from_agent=from_agent) == words
