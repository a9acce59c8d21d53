"""The calling rules: what a click will send and why, and whether it may be sent. Pure functions, no I/O.

Each rule is written once here and given the facts it needs (calls/calling/facts.py loads them):
- caller ID: the person's choice > a local-presence number of the dialled country > the agent's default >
  the first ticked group's default > the account default;
- recording consent: the contact's override > the country default admins edit > Unknown;
- do-not-call: a number is blocked when it, its contact, or the same number on any other contact is marked;
  anyone may mark a number do-not-call, only supervisors may clear it or call it anyway, giving a reason;
- who may call: your own agent (active, and your role may place calls), or via groups (supervisors);
- calling hours: outside the callee's local hours (calls/calling/hours.py says when) only supervisors may call,
  giving a reason.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from os.path import commonprefix

from calls import phones
from calls.models import Agent, AgentGroup, CallbackNumber, Consent

MIN_DNC_REASON = 5  # characters a supervisor must give to call a do-not-call number
MIN_HOURS_REASON = 5  # characters a supervisor must give to call outside the callee's calling hours


class Refused(Exception):
    """A click we will not send to VCC; the message says what to do instead. No call row is written."""


class Busy(Refused):
    """Refused because a call is live on the caller's phone or on the number (busy_refusal): try again later."""


class Throttled(Refused):
    """Refused because VCC refused so many of the person's clicks this minute: try again in `retry_after` s."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Reused(Refused):
    """Refused because the click's id placed a call to another number before (`call_id`): a page kept from before
    its click, or an API key sent again with another number."""

    def __init__(self, message: str, *, call_id: int) -> None:
        super().__init__(message)
        self.call_id = call_id


# --- Who may call --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """The person clicking: their active agent (None if they have none) and what their role lets them do."""

    agent: Agent | None
    may_call: bool
    may_call_groups: bool
    may_override_dnc: bool
    may_override_hours: bool = False

    def own_phone_problem(self) -> str:
        """Why this person cannot ring their own phone first, or ""."""
        if not self.may_call:
            return "Your role may not place calls."
        if self.agent is None:
            return "You have no active VCC agent, so VCC has no phone of yours to ring. Ask an admin to link one."
        return ""

    def group_problem(self) -> str:
        return "" if self.may_call_groups else "You may not call via groups: ask a supervisor."


# --- Caller ID -----------------------------------------------------------------------------------------


def resolve_clid(
    options: Sequence[CallbackNumber],
    *,
    agent: Agent | None,
    groups: Sequence[AgentGroup],
    number: str = "",
    chosen: int | None = None,
) -> tuple[CallbackNumber | None, str]:
    """Pick the presented CLID from the numbers this call may present (`options`), most specific first.

    A choice outside `options` (a restricted number, or one VCC does not list for the agent) is refused.
    """
    by_pk = {n.pk: n for n in options}
    if chosen is not None:
        if chosen not in by_pk:
            if groups:
                raise Refused("That caller ID is not one you may present via these groups: pick another, or Automatic.")
            raise Refused("That caller ID is not one you may present. Pick one from the list.")
        return by_pk[chosen], "you chose it for this call"
    country = phones.country(number)
    if country:
        local = [n for n in options if n.local_presence and n.country == country]
        if local:
            # Of several (New York, Chicago), the one nearest the number: the most first digits in common (its
            # area code), the first listed of those equally near.
            nearest = max(local, key=lambda n: len(commonprefix([n.number, number])))
            return nearest, f"local presence: a {country} number for a {country} number"
    if not groups and agent is not None and agent.default_callback_number_id in by_pk:
        return by_pk[agent.default_callback_number_id], "your default caller ID"
    for group in groups:
        if group.default_callback_number_id in by_pk:
            return by_pk[group.default_callback_number_id], f"default of group {group.name}"
    default = next((n for n in options if n.is_default), None)
    if default is not None:
        return default, "the account default"
    return None, "none configured: VCC presents the account's own"


# --- Recording consent -----------------------------------------------------------------------------------


def resolve_consent(*, override: str, number: str, rules: Mapping[str, str]) -> tuple[str, str]:
    """Recording consent: the contact's override, else the default for the number's country, else Unknown."""
    if override:
        return override, "set on this contact"
    country = phones.country(number)
    if not country:
        return Consent.UNKNOWN, "no country to go by"
    if consent := rules.get(country):
        return consent, f"default for {country} numbers"
    return Consent.UNKNOWN, f"no default for {country} numbers"


# --- Do-not-call -------------------------------------------------------------------------------------------


def do_not_call_reason(*, number_dnc: bool, contact_dnc: bool, blocked_elsewhere: bool) -> str:
    """Why a number may not be called, or "" when it may."""
    if contact_dnc:
        return "This contact is marked do not call."
    if number_dnc:
        return "This number is marked do not call."
    if blocked_elsewhere:
        return "This number is marked do not call on another contact."
    return ""


# --- The dial plan -------------------------------------------------------------------------------------------


@dataclass
class DialPlan:
    """Everything the contact page shows before the click, and everything the click sends."""

    agent: Agent | None
    groups: list[AgentGroup]
    clid: CallbackNumber | None
    clid_reason: str
    clid_options: list[CallbackNumber]
    consent: str
    consent_reason: str
    number: str = ""
    to_agent: Agent | None = None
    blocked: str = ""  # why this number may not be called ("" when it may)
    barred: str = ""  # why nobody may dial it at all: premium rate, not a valid number (phones.undiallable)
    closed: str = ""  # why it may not be called now, outside its calling hours ("" when within them)
    problems: list[str] = field(default_factory=list)  # why this person may not place this call at all

    @property
    def via_groups(self) -> bool:
        return bool(self.groups)

    @property
    def from_label(self) -> str:
        if self.groups:
            return "any ready agent in " + ", ".join(g.name for g in self.groups)
        return f"your phone ({self.agent.name}, agent {self.agent.display_id})" if self.agent else "nobody"


def plan_number_call(
    *,
    caller: Caller,
    number: str,
    dnc_reason: str,
    consent: tuple[str, str],
    clid_options: Sequence[CallbackNumber],
    groups: Sequence[AgentGroup] = (),
    via_groups: bool = False,
    chosen_clid: int | None = None,
    closed: str = "",
    barred: str = "",
) -> DialPlan:
    """What calling a number would send: from the caller's agent, or via groups."""
    groups = list(groups)
    if via_groups:
        problems = [p for p in (caller.group_problem(),) if p]
        if not groups:
            problems.append("Tick at least one group to call via.")
    else:
        problems = [p for p in (caller.own_phone_problem(),) if p]
    clid, clid_reason = resolve_clid(clid_options, agent=caller.agent, groups=groups, number=number, chosen=chosen_clid)
    return DialPlan(
        agent=caller.agent,
        groups=groups,
        clid=clid,
        clid_reason=clid_reason,
        clid_options=list(clid_options),
        consent=consent[0],
        consent_reason=consent[1],
        number=number,
        blocked=dnc_reason,
        barred=barred,
        closed=closed,
        problems=problems,
    )


def plan_agent_call(*, caller: Caller, to_agent: Agent, clid_options: Sequence[CallbackNumber]) -> DialPlan:
    """What calling a colleague would send: VCC rings the caller's phone, then theirs; no consent is sent."""
    problems = [p for p in (caller.own_phone_problem(),) if p]
    if not problems and caller.agent is not None and caller.agent.pk == to_agent.pk:
        problems = ["That is you: pick another agent."]
    clid, clid_reason = resolve_clid(clid_options, agent=caller.agent, groups=())
    return DialPlan(
        agent=caller.agent,
        groups=[],
        clid=clid,
        clid_reason=clid_reason,
        clid_options=list(clid_options),
        consent="",
        consent_reason="not sent for calls between agents",
        to_agent=to_agent,
        blocked="" if to_agent.is_active else "This agent is not active.",
        problems=problems,
    )


SAY_WHY = "To call anyway, say why"  # the API names the field that says it instead (calls/api/errors.py)


class Refusal(str):
    """Why a click is refused, in words; `asks`: the reason that would let this caller call anyway, if one would
    ("dnc": a do-not-call number; "hours": outside calling hours), so the API can name its field."""

    asks = ""


def _asking(words: str, asks: str) -> Refusal:
    found = Refusal(words)
    found.asks = asks
    return found


def refusal(plan: DialPlan, *, caller: Caller, dnc_reason: str, hours_reason: str = "") -> str:
    """Why this click must not be sent, or "" when it may: the plan's problems, a number nobody may dial,
    do-not-call, then calling hours."""
    if plan.problems:
        return plan.problems[0]
    if plan.barred:
        return plan.barred
    if plan.blocked:
        if plan.to_agent is not None:
            return plan.blocked
        if not caller.may_override_dnc:
            return f"{plan.blocked} Only a supervisor can call it, giving a reason."
        if len(dnc_reason.strip()) < MIN_DNC_REASON:
            return _asking(f"{plan.blocked} {SAY_WHY} (at least {MIN_DNC_REASON} characters).", "dnc")
    if plan.closed:
        if not caller.may_override_hours:
            return f"{plan.closed} Only a supervisor can call outside calling hours, giving a reason."
        if len(hours_reason.strip()) < MIN_HOURS_REASON:
            return _asking(f"{plan.closed} {SAY_WHY} (at least {MIN_HOURS_REASON} characters).", "hours")
    return ""


def busy_refusal(*, mine: bool, who: str, other_number: bool = False, unasked: str = "") -> str:
    """Why a click is refused because a call is already live: the caller's own phone, the number, or another
    number of the same contact (`other_number`). `unasked`: why VCC could not be asked whether that call has ended
    (following.Followed.error), when it could not."""
    if unasked:
        whose = "Your last call" if mine else f"{who}'s call with this {'contact' if other_number else 'number'}"
        return f"{whose} still shows as live. {unasked}"
    if mine:
        return "You are on a call now: finish it, then call again."
    if other_number:
        return f"{who} is on a call with this contact now, on another of their numbers. Try again when it ends."
    return f"{who} is on a call with this number now. Try again when it ends."


# --- How a call is going, in words ------------------------------------------------------------------------

# VCC documents no "connected" status: a live call whose recording has started (or paused) is taken as connected.
CONNECTED_RECORDING = ("Started", "Paused")


def is_connected(recording_status: str | None) -> bool:
    return recording_status in CONNECTED_RECORDING


def phase(
    *,
    state: str,
    outcome_label: str,
    recording_status: str,
    from_agent: bool,
    connected: bool = False,
    agent_answered: bool = False,
    lost_since: str = "",
    gone: bool = False,
    last_seen: str = "",
    closed: bool = False,
) -> str:
    """Where the call is, in words a person reads (and a screen reader announces); the call panel and the call bar
    show the same words.

    `closed`: a supervisor closed it by hand. `connected`: the call is known to have connected (VCC's
    `channel.connected` event, which carries no recording status). `agent_answered`: the agent's phone was answered
    and VCC now rings the contact; `lost_since`: the time (as shown to the viewer) from which VCC could not be asked
    about a live call; `gone`: VCC no longer knows the call, last seen at `last_seen`."""
    if state == "requested":
        return "Asking VCC to place the call…"
    if state == "live":
        if lost_since:
            return f"Lost contact with VCC: status unknown since {lost_since}"
        if connected or is_connected(recording_status):
            return "Connected"
        if agent_answered:
            return "Ringing…"
        return "Ringing your phone…" if from_agent else "Ringing an agent…"
    if state == "failed":
        return "Call not placed"
    if state == "unconfirmed":
        return "Not confirmed: the call may have been placed"
    if gone:
        return "Ended: VCC no longer knows this call" + (f" (last seen {last_seen})" if last_seen else "")
    if closed:
        return "Ended: closed by a supervisor"
    if outcome_label == "Answered":
        return "Call ended"
    return f"Call ended: {outcome_label.lower().removeprefix('ended, ')}"  # "Ended, result unknown": no "ended" twice


def visible_groups(groups: Collection[AgentGroup], caller: Caller) -> list[AgentGroup]:
    """The groups this person may call via: all of them for those allowed group calls, else none."""
    return list(groups) if caller.may_call_groups else []
