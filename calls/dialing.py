"""Placing and following calls: what a click will send and why, and the record -> ask VCC -> record flow.

Sync functions do the database work; the async views await VCC between them, so a slow VCC never holds a worker.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

import phonenumbers
from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from calls import phones
from calls.models import (
    Agent,
    AgentGroup,
    Call,
    CallbackNumber,
    Consent,
    ConsentRule,
    Contact,
    ContactPhone,
    DispositionCode,
)
from calls.vcc import CallDetail, CallRequest, PlacedCall, VCCError, get_client
from calls.vcc.validation import CONSENT_VERSION, REFERENCE_VERSION

log = logging.getLogger(__name__)

DIAL_LOCK_SECONDS = 30  # how long one click holds a number while VCC is asked
LIVE_CALL_WINDOW = timedelta(hours=2)  # a placed call older than this no longer blocks others
_regarding_signer = signing.Signer(salt="calls.regarding")
# VCC documents no "connected" status: a live call whose recording has started (or paused) is taken as connected.
CONNECTED_RECORDING = ("Started", "Paused")


class Refused(Exception):
    """A click we will not send to VCC; the message says what to do instead."""


# --- What a click will send, and why ---------------------------------------------------------------


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
    phone: ContactPhone | None = None
    to_agent: Agent | None = None
    blocked: str = ""  # why this number may not be called ("" when it may)
    problems: list[str] = field(default_factory=list)  # why the user may not place this call at all

    @property
    def from_label(self) -> str:
        if self.groups:
            return "any ready agent in " + ", ".join(g.name for g in self.groups)
        return f"your phone ({self.agent.name}, agent {self.agent.display_id})" if self.agent else "nobody"


def user_agent(user) -> Agent | None:
    try:
        agent = user.agent
    except Agent.DoesNotExist:
        return None
    return agent if agent.is_active else None


def callable_groups(user) -> list[AgentGroup]:
    """The groups this user may call via: all of them for those allowed to make group calls, else none."""
    if not user.has_perm("calls.place_group_call"):
        return []
    return list(AgentGroup.objects.all())


def default_groups(user) -> list[AgentGroup]:
    agent = user_agent(user)
    if agent is None:
        return []
    if agent.default_group_id:
        return [agent.default_group]
    first = agent.groups.order_by("name").first()
    return [first] if first else []


def resolve_clid(
    *, agent: Agent | None, groups: list[AgentGroup], chosen: str | int | None = None
) -> tuple[CallbackNumber | None, str, list[CallbackNumber]]:
    """Pick the presented CLID, most specific first: the user's choice, the agent's default, the group's, the account's.

    A restricted number is never offered to, nor accepted from, someone outside its agents or groups.
    """
    options = list(CallbackNumber.objects.usable_by(agent=None if groups else agent, groups=groups))
    by_pk = {n.pk: n for n in options}
    if chosen not in (None, ""):
        try:
            picked = by_pk.get(int(chosen))
        except (TypeError, ValueError):
            picked = None
        if picked is None:
            raise Refused("That caller ID is not one you may present. Pick one from the list.")
        return picked, "you chose it for this call", options
    if not groups and agent and agent.default_callback_number_id in by_pk:
        return by_pk[agent.default_callback_number_id], "your default caller ID", options
    for group in groups:
        if group.default_callback_number_id in by_pk:
            return by_pk[group.default_callback_number_id], f"default of group {group.name}", options
    default = next((n for n in options if n.is_default), None)
    if default:
        return default, "the account default", options
    return None, "none configured: VCC presents the account's own", options


def consent_rules() -> dict[str, str]:
    """The per-country consent defaults, read once per page (the table is small)."""
    return dict(ConsentRule.objects.values_list("country", "consent"))


def resolve_consent(*, contact: Contact | None, number: str, rules: dict[str, str] | None = None) -> tuple[str, str]:
    """Recording consent: the contact's override, else the default for the number's country, else Unknown."""
    if contact is not None and contact.consent_override:
        return contact.consent_override, "set on this contact"
    try:
        country = phonenumbers.region_code_for_number(phonenumbers.parse(number, None)) if number else None
    except phonenumbers.NumberParseException:
        country = None
    if not country:
        return Consent.UNKNOWN, "no country to go by"
    consent = (rules if rules is not None else consent_rules()).get(country)
    if consent:
        return consent, f"default for {country} numbers"
    return Consent.UNKNOWN, f"no default for {country} numbers"


@dataclass(frozen=True)
class NumberFacts:
    """What the page shows for one number: the consent that would be sent and whether it may be called."""

    consent: str
    consent_reason: str
    blocked: str


def number_facts(
    phone: ContactPhone, *, rules: dict[str, str] | None = None, blocked: set[str] | None = None
) -> NumberFacts:
    consent, reason = resolve_consent(contact=phone.contact, number=phone.number, rules=rules)
    return NumberFacts(consent=consent, consent_reason=reason, blocked=blocked_reason(phone, blocked=blocked))


def numbers_blocked_anywhere(numbers: list[str]) -> set[str]:
    """Which of numbers are do-not-call on any contact: the flag follows the number, not the record it is on."""
    return set(
        ContactPhone.objects.filter(number__in=numbers)
        .filter(Q(do_not_call=True) | Q(contact__do_not_call=True))
        .values_list("number", flat=True)
    )


def blocked_reason(phone: ContactPhone, *, blocked: set[str] | None = None) -> str:
    if phone.contact.do_not_call:
        return "This contact is marked do not call."
    if phone.do_not_call:
        return "This number is marked do not call."
    if phone.number in (blocked if blocked is not None else numbers_blocked_anywhere([phone.number])):
        return "This number is marked do not call on another contact."
    return ""


def _own_phone_problems(user, agent: Agent | None) -> list[str]:
    """Why this user cannot ring their own phone first, if they cannot."""
    if not user.has_perm("calls.place_call"):
        return ["Your role may not place calls."]
    if agent is None:
        return ["You have no active VCC agent, so VCC has no phone of yours to ring. Ask an admin to link one."]
    return []


def plan_for_phone(
    *,
    user,
    phone: ContactPhone,
    groups: list[AgentGroup] | None = None,
    chosen_clid: str | None = None,
    rules: dict[str, str] | None = None,
    blocked: set[str] | None = None,
) -> DialPlan:
    """What calling phone would send: from the user's agent, or via groups when given.

    `rules` and `blocked` (consent rules, numbers blocked anywhere) may be passed in when already read for a page.
    """
    groups = groups or []
    agent = user_agent(user)
    if groups:
        problems = [] if user.has_perm("calls.place_group_call") else ["You may not call via groups: ask a supervisor."]
    else:
        problems = _own_phone_problems(user, agent)
    clid, clid_reason, options = resolve_clid(agent=agent, groups=groups, chosen=chosen_clid)
    facts = number_facts(phone, rules=rules, blocked=blocked)
    return DialPlan(
        agent=agent,
        groups=groups,
        clid=clid,
        clid_reason=clid_reason,
        clid_options=options,
        consent=facts.consent,
        consent_reason=facts.consent_reason,
        number=phone.number,
        phone=phone,
        blocked=facts.blocked,
        problems=problems,
    )


def plan_for_agent(*, user, to_agent: Agent) -> DialPlan:
    agent = user_agent(user)
    problems = _own_phone_problems(user, agent)
    if not problems and agent.pk == to_agent.pk:
        problems = ["That is you: pick another agent."]
    clid, clid_reason, options = resolve_clid(agent=agent, groups=[])
    return DialPlan(
        agent=agent,
        groups=[],
        clid=clid,
        clid_reason=clid_reason,
        clid_options=options,
        consent="",
        consent_reason="not sent for calls between agents",
        to_agent=to_agent,
        blocked="" if to_agent.is_active else "This agent is not active.",
        problems=problems,
    )


# --- The click: record, ask VCC, record --------------------------------------------------------------


@dataclass
class Click:
    call: Call
    request: CallRequest | None  # None: nothing to send (refused, or a repeat of an earlier click)
    lock_key: str = ""


def regarding_token(call: Call) -> str:
    """A signed call id: links carrying it open that call's panel, and cannot be guessed for other calls."""
    return _regarding_signer.sign(str(call.pk))


def regarding_url(call: Call, *, base_url: str) -> str:
    """The contact page, pointing at this call: VCC shows it as the call's reference and it opens the call's panel."""
    path = call.contact.get_absolute_url() if call.contact_id else reverse("agent_directory")
    return f"{base_url.rstrip('/')}{path}?call={regarding_token(call)}"


def call_from_regarding(token: str) -> int | None:
    try:
        return int(_regarding_signer.unsign(token))
    except (signing.BadSignature, ValueError):
        return None


def start_click(*, user, plan: DialPlan, request_id: str, base_url: str, dnc_reason: str = "") -> Click:
    """Write the call row before VCC is asked; decide whether to send it.

    The same request_id twice (a double click, a retried request, a second app process) returns the first row
    and sends nothing. A refusal is recorded as a failed call with the reason, so every click leaves a row.
    """
    existing = Call.objects.with_parties().filter(request_id=request_id).first()
    if existing is not None:
        return _repeat_of(existing, user)
    call = Call(
        request_id=request_id,
        created_by=user,
        from_agent=None if plan.groups else plan.agent,
        to_number=plan.number,
        to_agent=plan.to_agent,
        contact=plan.phone.contact if plan.phone else None,
        phone=plan.phone,
        presented_clid=plan.clid.number if plan.clid else "",
        callback_number=plan.clid,
        clid_reason=plan.clid_reason,
        consent=plan.consent,
        consent_reason=plan.consent_reason,
        application=settings.VCC_APPLICATION,
        dnc_override_reason=dnc_reason.strip() if plan.blocked else "",
    )
    refusal = _refusal(user=user, plan=plan, dnc_reason=dnc_reason)
    try:
        with transaction.atomic():
            call.save()
            call.from_groups.set(plan.groups)
    except IntegrityError:
        # Another process saved this click first: that one places the call.
        return _repeat_of(Call.objects.with_parties().get(request_id=request_id), user)
    if refusal:
        _fail(call, message="", status=None, display=refusal)
        return Click(call, None)
    lock_key = ""
    if plan.number:
        lock_key = f"dialling:{plan.number}"
        if not cache.add(lock_key, call.pk, timeout=DIAL_LOCK_SECONDS):
            _fail(
                call,
                message="",
                status=None,
                display="Someone else is dialling this number right now. Try again in a moment.",
            )
            return Click(call, None)
        busy = _live_call_by_someone_else(call)
        if busy is not None and busy.vcc_call_id:
            # Our log may lag behind VCC when nobody watched that call end: ask before refusing.
            with get_client() as client:
                busy = refresh(busy, client)
            busy = busy if busy.state == Call.State.LIVE else None
        if busy is not None:
            cache.delete(lock_key)
            who = busy.created_by.get_full_name() or busy.created_by.username if busy.created_by else "Someone"
            _fail(
                call,
                message="",
                status=None,
                display=f"{who} is on a call with this number now. Try again when it ends.",
            )
            return Click(call, None)
    call.regarding = regarding_url(call, base_url=base_url)
    # Send only what the configured API version knows: reference and application from 4, consent from 6.
    version = settings.VCC_API_VERSION
    request = CallRequest(
        from_agent_id=None if plan.groups else plan.agent.display_id,
        from_groups=tuple(g.display_id for g in plan.groups),
        presented_clid=plan.clid.number if plan.clid else None,
        consent=(plan.consent or None) if version >= CONSENT_VERSION else None,
        to_number=plan.number or None,
        to_agent_id=plan.to_agent.display_id if plan.to_agent else None,
        reference=call.regarding if version >= REFERENCE_VERSION else None,
        application=settings.VCC_APPLICATION if version >= REFERENCE_VERSION else None,
    )
    call.request_body = request.to_json()
    call.save(update_fields=["regarding", "request_body"])
    return Click(call, request, lock_key)


def _repeat_of(call: Call, user) -> Click:
    """The same click again: show its call, send nothing."""
    if call.created_by_id != user.pk:
        raise Refused("That click belongs to someone else. Reload the page and try again.")
    return Click(call, None)


def _refusal(*, user, plan: DialPlan, dnc_reason: str) -> str:
    if plan.problems:
        return plan.problems[0]
    if plan.blocked:
        if not plan.phone:
            return plan.blocked
        if not user.has_perm("calls.override_do_not_call"):
            return f"{plan.blocked} Only a supervisor can call it, giving a reason."
        if len(dnc_reason.strip()) < 5:
            return f"{plan.blocked} To call anyway, say why (at least 5 characters)."
    return ""


def _live_call_by_someone_else(call: Call) -> Call | None:
    return (
        Call.objects.filter(
            to_number=call.to_number, state=Call.State.LIVE, requested_at__gte=timezone.now() - LIVE_CALL_WINDOW
        )
        .exclude(created_by=call.created_by)
        .select_related("created_by")
        .first()
    )


def _fail(call: Call, *, message: str, status: int | None, display: str, latency_ms: int | None = None) -> None:
    call.state = Call.State.FAILED
    call.error_message = message
    call.error_status = status
    call.error_display = display
    call.responded_at = timezone.now()
    call.latency_ms = latency_ms
    call.save(update_fields=["state", "error_message", "error_status", "error_display", "responded_at", "latency_ms"])
    log.warning("call %s failed: status=%s vcc_message=%r shown=%r", call.pk, status, message, display)


def finish_click(click: Click, *, placed: PlacedCall | None, error: Exception | None, started: float) -> Call:
    """Write VCC's answer (or the error) to the click's row and free the number."""
    call = click.call
    latency = round((time.monotonic() - started) * 1000)
    try:
        if placed is not None:
            call.vcc_status = placed.status or ""
            call.recording_status = placed.recording_status or ""
            _mark_placed(call, placed.call_id, latency)
            log.info("call %s placed: vcc_call_id=%s latency_ms=%s", call.pk, placed.call_id, latency)
        elif isinstance(error, VCCError) and error.call_id:
            # VCC said 201 and named the call in Location, but its body was unreadable: follow the call by its id.
            call.error_message = error.message
            call.error_status = error.status
            call.error_display = "VCC placed the call but its reply could not be read; following it by its id."
            _mark_placed(call, error.call_id, latency)
            log.warning("call %s placed with an unreadable reply: %s", call.pk, error.message)
        elif isinstance(error, VCCError):
            _fail(call, message=error.message, status=error.status, display=error.user_message, latency_ms=latency)
        else:
            log.error("call %s: unexpected error talking to VCC", call.pk, exc_info=error)
            _fail(
                call,
                message=f"{type(error).__name__}: {error}",
                status=None,
                display="Something went wrong on our side while asking VCC. The call may not have been placed; "
                "try again, and tell an admin if it keeps happening.",
                latency_ms=latency,
            )
    finally:
        if click.lock_key and cache.get(click.lock_key) == call.pk:
            cache.delete(click.lock_key)
    return call


def _mark_placed(call: Call, call_id: str, latency_ms: int) -> None:
    call.state = Call.State.LIVE
    call.vcc_call_id = call_id
    call.responded_at = timezone.now()
    call.latency_ms = latency_ms
    call.save()


# --- Following a call --------------------------------------------------------------------------------


def apply_detail(call: Call, detail: CallDetail) -> Call:
    """Update the row from VCC's call detail. VCC documents only status (Active/null), recordingStatus and result:
    a live call whose recording has started or paused is taken as connected; one without a status has ended."""
    now = timezone.now()
    fields = list(_DETAIL_FIELDS)
    call.vcc_status = detail.status or ""
    call.recording_status = detail.recording_status or ""
    if detail.disposition_code and not call.disposition_code:
        call.disposition_code = detail.disposition_code
        fields.append("disposition_code")
    if detail.is_live:
        if call.connected_at is None and detail.recording_status in CONNECTED_RECORDING:
            call.connected_at = now
    else:
        call.state = Call.State.ENDED
        call.ended_at = call.ended_at or now
        call.result_code = detail.result_code or ""
        call.result_party = detail.result_party or ""
        call.result_reason = detail.result_reason or ""
        if call.connected_at and call.duration_seconds is None:
            call.duration_seconds = max(0, round((call.ended_at - call.connected_at).total_seconds()))
        elif call.duration_seconds is None:
            call.duration_seconds = 0
    # Only VCC's fields: a stale copy (a slow poll, reconcile_calls) must not undo a wrap-up saved meanwhile.
    call.save(update_fields=fields)
    return call


_DETAIL_FIELDS = [
    "vcc_status",
    "recording_status",
    "connected_at",
    "state",
    "ended_at",
    "result_code",
    "result_party",
    "result_reason",
    "duration_seconds",
]


def record_refresh(call: Call, *, detail: CallDetail | None = None, error: VCCError | None = None) -> tuple[Call, str]:
    """Write the result of asking VCC about a call; return the call and a message for people if it failed."""
    if detail is not None:
        return apply_detail(call, detail), ""
    assert error is not None
    log.warning("call %s: refreshing from VCC failed: %s (status %s)", call.pk, error.message, error.status)
    if error.status == 404:
        return mark_gone(call), ""
    return call, f"Couldn't get the latest status from VCC: {error.user_message}"


def refresh(call: Call, client) -> Call:
    """Ask VCC (sync client) where a placed call is, and record it; failures leave the row as it was."""
    try:
        detail = client.get_call(call.vcc_call_id)
    except VCCError as exc:
        return record_refresh(call, error=exc)[0]
    return record_refresh(call, detail=detail)[0]


def mark_gone(call: Call) -> Call:
    """VCC keeps a call for 24 hours; after that, close it without a result rather than follow it forever."""
    call.state = Call.State.ENDED
    call.ended_at = call.ended_at or timezone.now()
    call.result_reason = call.result_reason or "Unknown: VCC no longer has this call"
    call.save(update_fields=["state", "ended_at", "result_reason"])
    return call


def close_abandoned_clicks(*, older_than: timedelta) -> int:
    """Fail clicks that never got VCC's answer recorded (their process died mid-request), saying what that means."""
    abandoned = Call.objects.filter(state=Call.State.REQUESTED, requested_at__lt=timezone.now() - older_than)
    count = 0
    for call in abandoned:
        _fail(
            call,
            message="",
            status=None,
            display="No answer from VCC was recorded for this click: the call may or may not have been placed. "
            "Check your phone and the call log before trying again.",
        )
        count += 1
    return count


def phase(call: Call) -> str:
    """Where the call is, in words a person reads (and a screen reader announces)."""
    if call.state == Call.State.REQUESTED:
        return "Asking VCC to place the call…"
    if call.state == Call.State.FAILED:
        return "Call not placed"
    if call.state == Call.State.ENDED:
        if call.result_code == "Success" or (call.connected_at and not call.result_code):
            return "Call ended"
        return "Call ended: " + (_reason_words(call) or "no result from VCC")
    if call.recording_status in CONNECTED_RECORDING:
        return "Connected"
    return "Ringing your phone…" if call.from_agent_id else "Ringing an agent…"


def _reason_words(call: Call) -> str:
    reason = {"NoAnswer": "no answer", "Busy": "line busy", "Failed": "the call failed"}.get(
        call.result_reason, call.result_reason
    )
    if call.result_party == "Originator" and call.result_reason == "NoAnswer":
        return "the agent's phone was not answered"
    return reason


def wrap_up(call: Call, *, disposition: DispositionCode, notes: str, vcc_confirmed: bool) -> list[str]:
    """Store the disposition and notes and carry out the disposition's action; return what was changed besides."""
    call.notes = notes
    if vcc_confirmed or not call.vcc_call_id:
        call.disposition_code = disposition.code
        call.wrapped_up_at = timezone.now()
    call.save(update_fields=["notes", "disposition_code", "wrapped_up_at"])
    if not call.wrapped_up_at:
        return []
    changed = []
    if disposition.action == DispositionCode.Action.NUMBER_DNC and call.phone_id:
        ContactPhone.objects.filter(pk=call.phone_id).update(do_not_call=True)
        changed.append(f"{phones.display(call.to_number)} is now marked do not call.")
    elif disposition.action == DispositionCode.Action.CONTACT_DNC and call.contact_id:
        Contact.objects.filter(pk=call.contact_id).update(do_not_call=True)
        changed.append(f"{call.contact.name} is now marked do not call.")
    return changed
