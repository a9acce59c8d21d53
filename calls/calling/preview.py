"""What the contact page shows before the click: each number with its consent and do-not-call state, and
what calling it would send, from the user's phone and via groups (the dial preview)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from calls import phones, rules
from calls.calling import hours as calling_hours
from calls.calling.common import _now
from calls.calling.facts import _clid_options, _consent, _dnc_reason, _phones_of, caller_for, consent_rules
from calls.models import AgentGroup, Contact, ContactPhone
from calls.rules import Caller, DialPlan, Refused

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from calls.models import CallbackNumber


@dataclass
class NumberRow:
    phone: ContactPhone
    consent: str
    consent_reason: str
    blocked: str
    hours: calling_hours.LocalTime = calling_hours.UNKNOWN  # its local time, and whether it is within calling hours

    @functools.cached_property
    def barred(self) -> str:
        """Why nobody may dial this number (premium rate, not valid), or ""."""
        return phones.undiallable(self.phone.number)


@dataclass
class Dialer:
    """The contact page's call buttons: each number with its consent and do-not-call state, and the two plans."""

    rows: list[NumberRow]
    me: DialPlan | None
    group_plan: DialPlan | None
    groups: list[AgentGroup]
    ticked: set[int]
    caller: Caller
    # The numbers after the first whose caller ID is not the first's (a local-presence number of their country):
    # the plans name the first number's, and a click on these sends their own.
    me_others: list[tuple[NumberRow, DialPlan]] = field(default_factory=list)
    group_others: list[tuple[NumberRow, DialPlan]] = field(default_factory=list)


def dialer(
    *,
    user: User,
    contact: Contact,
    ticked: Sequence[int] | None = None,
    chosen_clid: int | None = None,
    now: datetime | None = None,
) -> Dialer:
    """What calling each of the contact's numbers would send, from the user's phone and via the ticked groups.

    `ticked` (group pks) defaults to the user's default group; an unusable `chosen_clid` falls back to automatic.
    Each number's calling hours are checked at `now` (the clock's time when not given).
    """
    caller = caller_for(user)
    phones = _phones_of(contact)
    table = consent_rules()
    hours, at = calling_hours.load_hours(), now or _now()
    rows = [
        NumberRow(p, *_consent(p, table), blocked=_dnc_reason(p), hours=calling_hours.for_phone(p, hours, at))
        for p in phones
    ]
    groups = rules.visible_groups(AgentGroup.objects.filter(is_active=True), caller)
    if ticked is None:
        default = caller.agent.default_group_id if caller.agent else None
        if caller.agent and default is None:
            first = caller.agent.groups.filter(is_active=True).order_by("name").first()
            default = first.pk if first else None
        ticked = [default] if default else []
    ticked_groups = [g for pk in ticked for g in groups if g.pk == pk]
    found = Dialer(rows, None, None, groups, {g.pk for g in ticked_groups}, caller)
    if rows:
        first_row = rows[0]
        options = _clid_options(user, caller, [])
        try:
            found.me = _number_plan(caller, first_row, options, chosen_clid=chosen_clid)
            found.me_others = _others(found.me, caller, rows, options, chosen_clid=chosen_clid)
        except Refused:
            found.me = _number_plan(caller, first_row, options)
            found.me_others = _others(found.me, caller, rows, options)
        if groups:
            options = _clid_options(user, caller, ticked_groups)
            try:
                found.group_plan = _number_plan(
                    caller, first_row, options, groups=ticked_groups, chosen_clid=chosen_clid
                )
                found.group_others = _others(
                    found.group_plan, caller, rows, options, groups=ticked_groups, chosen_clid=chosen_clid
                )
            except Refused as refused:
                # The click refuses it too (rules.resolve_clid): say so here, never a caller ID it will not send.
                found.group_plan = _number_plan(caller, first_row, options, groups=ticked_groups)
                found.group_plan.problems.append(str(refused))
    return found


def _others(
    first: DialPlan,
    caller: Caller,
    rows: Sequence[NumberRow],
    options: Sequence[CallbackNumber],
    *,
    groups: Sequence[AgentGroup] | None = None,
    chosen_clid: int | None = None,
) -> list[tuple[NumberRow, DialPlan]]:
    """The numbers after the first that a click would present another caller ID to, with their plans."""
    plans = [(row, _number_plan(caller, row, options, groups=groups, chosen_clid=chosen_clid)) for row in rows[1:]]
    return [(row, plan) for row, plan in plans if plan.clid != first.clid]


def _number_plan(
    caller: Caller,
    row: NumberRow,
    options: Sequence[CallbackNumber],
    *,
    groups: Sequence[AgentGroup] | None = None,
    chosen_clid: int | None = None,
) -> DialPlan:
    return rules.plan_number_call(
        caller=caller,
        number=row.phone.number,
        dnc_reason=row.blocked,
        consent=(row.consent, row.consent_reason),
        clid_options=options,
        groups=groups or (),
        via_groups=groups is not None,
        chosen_clid=chosen_clid,
        closed=row.hours.refusal,
        barred=row.barred,
    )
