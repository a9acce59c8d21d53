"""The facts the rules need: who is clicking, the callback numbers they may present, the consent table,
and whether a number is do-not-call anywhere. Cached in Django's cache (calls/directory.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from django.conf import settings
from django.db.models import Exists, OuterRef, Q

from calls import directory, rules
from calls import permissions as perms
from calls.models import Agent, AgentGroup, CallbackNumber, ConsentRule, Contact, ContactPhone
from calls.rules import Caller
from calls.vcc.validation import CONSENT_VERSION

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def caller_for(user: User) -> Caller:
    """Who is clicking: their active agent and what their role lets them do."""
    return _caller(user, directory.remembered(_agent_key(user), lambda: _agent_of(user)))


def _caller(user: User, agent: Agent | None) -> Caller:
    return Caller(
        agent=agent,
        may_call=user.has_perm(perms.PLACE_CALL),
        may_call_groups=user.has_perm(perms.PLACE_GROUP_CALL),
        may_override_dnc=user.has_perm(perms.OVERRIDE_DO_NOT_CALL),
        may_override_hours=user.has_perm(perms.OVERRIDE_CALLING_HOURS),
    )


def _agent_key(user: User) -> str:
    return f"calls:agent-of:{user.pk}"


def _agent_of(user: User) -> Agent | None:
    return Agent.objects.filter(user=user, is_active=True).first()


CONSENT_RULES_KEY = "calls:consent-rules"


def consent_rules() -> dict[str, str]:
    """The per-country consent defaults, cached until an admin changes one (calls/directory.py)."""
    return directory.remembered(CONSENT_RULES_KEY, _read_consent_rules)


def _read_consent_rules() -> dict[str, str]:
    return dict(ConsentRule.objects.values_list("country", "consent"))


def _click_facts(user: User, groups: Sequence[AgentGroup]) -> tuple[Caller, list[CallbackNumber], dict[str, str]]:
    """The caller, the callback numbers this call may present, and the consent table: one read of the cache."""
    agent_key, clids_key = _agent_key(user), _clids_key(user, groups)
    found = directory.remembered_many(
        {
            agent_key: lambda: _agent_of(user),
            clids_key: lambda: _read_clid_options(None if groups else _agent_of(user), groups),
            CONSENT_RULES_KEY: _read_consent_rules,
        }
    )
    # Each answer is what its own read returned.
    return (
        _caller(user, cast("Agent | None", found[agent_key])),
        cast("list[CallbackNumber]", found[clids_key]),
        cast("dict[str, str]", found[CONSENT_RULES_KEY]),
    )


# A number is do-not-call wherever it is marked: on this or any contact, or with its whole contact. The flag follows
# the number, not the record it is on. The click asks the same in SQL (ContactPhone.objects.for_click), held to the
# same answers by tests/test_click_sql.py.
_MARKED = Q(do_not_call=True) | Q(contact__do_not_call=True)


def _blocked_elsewhere() -> Exists:
    """Whether the number of each row is do-not-call on any contact."""
    return Exists(ContactPhone.objects.filter(_MARKED, number=OuterRef("number")))


def numbers_blocked_anywhere(numbers: Sequence[str]) -> set[str]:
    """Which of numbers are do-not-call on any contact (for lists that show many numbers at once)."""
    return set(ContactPhone.objects.filter(_MARKED, number__in=numbers).values_list("number", flat=True))


def _phones_of(contact: Contact) -> list[ContactPhone]:
    # ContactPhone declares blocked_elsewhere (ContactPhone.objects.for_click sets it too); django-stubs' plugin
    # takes an annotation of a declared name for a redefinition.
    phones: list[ContactPhone] = list(
        contact.phones.annotate(blocked_elsewhere=_blocked_elsewhere())  # type: ignore[no-redef]
    )
    for phone in phones:
        phone.contact = contact  # spare a query per number
    return phones


def _dnc_reason(phone: ContactPhone) -> str:
    return rules.do_not_call_reason(
        number_dnc=phone.do_not_call, contact_dnc=phone.contact.do_not_call, blocked_elsewhere=phone.blocked_elsewhere
    )


def _consent(phone: ContactPhone, consent_table: dict[str, str] | None = None) -> tuple[str, str]:
    if settings.VCC_API_VERSION < CONSENT_VERSION:  # the click sends none (calls/calling/placing.py): none is kept
        return (
            "",
            f"not sent: VCC takes it from API version {CONSENT_VERSION}, VCC_API_VERSION is {settings.VCC_API_VERSION}",
        )
    override = phone.contact.consent_override
    return rules.resolve_consent(
        override=override, number=phone.number, rules={} if override else (consent_table or consent_rules())
    )


def _clid_options(user: User, caller: Caller, groups: Sequence[AgentGroup]) -> list[CallbackNumber]:
    """The callback numbers a call by user may present: from their own phone, or via groups."""
    agent = None if groups else caller.agent
    return directory.remembered(_clids_key(user, groups), lambda: _read_clid_options(agent, groups))


def _clids_key(user: User, groups: Sequence[AgentGroup]) -> str:
    # Via groups the numbers depend on the groups alone; from the user's phone, on their agent (the user's).
    return f"calls:clids:groups:{','.join(str(g.pk) for g in groups)}" if groups else f"calls:clids:user:{user.pk}"


def _read_clid_options(agent: Agent | None, groups: Sequence[AgentGroup]) -> list[CallbackNumber]:
    return list(CallbackNumber.objects.usable_by(agent=agent, groups=groups))


def _ordered_groups(pks: Sequence[int]) -> list[AgentGroup]:
    """The groups, in the order the person ticked them: VCC takes them in order. Refused if VCC no longer has one."""
    groups = sorted(AgentGroup.objects.filter(pk__in=pks), key=lambda g: list(pks).index(g.pk))
    if gone := next((g for g in groups if not g.is_active), None):
        raise rules.Refused(
            f"The group {gone} no longer exists in VCC, so a call via it cannot be placed: tick another group, or ask "
            "an admin to create it again in VCC and run the sync."
        )
    return groups
