"""Placing a call: record, ask VCC, record. The click's checks and its row come before VCC is asked; VCC's
answer, or the failure, ends on the row and in front of the person."""

from __future__ import annotations

import asyncio
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import DatabaseError, IntegrityError, transaction
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse

from calls import locks, rules
from calls import permissions as perms
from calls.cache import count
from calls.calling import hours as calling_hours
from calls.calling.common import Clock, _db, _now, log
from calls.calling.facts import _click_facts, _clid_options, _consent, _dnc_reason, _ordered_groups, caller_for
from calls.calling.following import follow
from calls.calling.preview import NumberRow, _number_plan
from calls.models import Agent, Call, Contact, ContactPhone
from calls.observability import current_request_id
from calls.privacy.erasure import without_number
from calls.privacy.hashing import erased_do_not_call
from calls.rules import Busy, Caller, DialPlan, Refused, Reused, Throttled
from calls.vcc import CallRequest, VCCError, budget, get_async_client
from calls.vcc.validation import CONSENT_VERSION, REFERENCE_VERSION
from calls.webhooks import changes

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from calls.vcc.types import PlacedCall

LIVE_CALL_WINDOW = timedelta(hours=2)  # a live call older than this no longer blocks others
DB_WRITE_TRIES = 4  # writing VCC's answer is retried: a placed call's id must not be lost to a database blip

_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # tests replace it: nothing waits on the wall clock
_regarding_signer = signing.Signer(salt="calls.regarding")


# What a click dials, worked out from the database: its plan, the contact's number (None for a colleague), the caller.
_Plan = Callable[[], tuple[DialPlan, ContactPhone | None, Caller]]
# Run with the writing of VCC's answer, in its transaction (see place_number_call).
_OnAnswer = Callable[[Call], None]

_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _click_gate() -> asyncio.Semaphore:
    """This event loop's turnstile for a click's database work before VCC (settings.CLICKS_STARTING_AT_ONCE).

    Hundreds of clicks arriving together would otherwise take every pooled connection and queue in front of
    everyone else's pages; through the gate they queue behind one another, first come first served.
    """
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = asyncio.Semaphore(settings.CLICKS_STARTING_AT_ONCE)
    return gate


@dataclass
class _Started:
    call: Call
    request: CallRequest | None  # None: a repeat of an earlier click, nothing to send
    held: tuple[str, ...] = ()  # the locks it holds while VCC is asked: the number, the contact (calls/locks.py)


def regarding_token(call: Call) -> str:
    """A signed click id: links carrying it open that call's panel, and cannot be guessed for other calls."""
    return _regarding_signer.sign(uuid.UUID(str(call.request_id)).hex)


def request_id_from_regarding(token: str) -> str | None:
    try:
        return _regarding_signer.unsign(token)
    except signing.BadSignature:
        return None


def regarding_url(call: Call, *, base_url: str) -> str:
    """The contact page, pointing at this call: VCC shows it as the call's reference and it opens the call's panel."""
    path = call.contact.get_absolute_url() if call.contact is not None else reverse("agent_directory")
    return f"{base_url.rstrip('/')}{path}?call={regarding_token(call)}"


async def place_number_call(
    *,
    user: User,
    request_id: str,
    base_url: str,
    contact_pk: int,
    phone_pk: int,
    via_groups: bool = False,
    group_pks: Sequence[int] = (),
    clid_pk: int | None = None,
    dnc_reason: str = "",
    hours_reason: str = "",
    clock: Clock = _now,
    on_answer: _OnAnswer | None = None,
) -> Call:
    """Call one of a contact's numbers, from the user's phone or via groups. Raises Refused (no row written).

    Outside the number's calling hours (calls/calling/hours.py, at clock()) the click is refused, unless the user
    may override them and gives `hours_reason`, which is kept on the call.

    on_answer(call), if given, runs in the transaction that writes VCC's answer (or the failure) on the call's row,
    when this click was sent to VCC (not for a repeat of an earlier click): what it writes commits with the answer.
    """

    def plan() -> tuple[DialPlan, ContactPhone, Caller]:
        phone = ContactPhone.objects.for_click(phone_pk, contact_pk)
        if phone is None:
            raise Http404("No such number on this contact.")
        if not phone.blocked_elsewhere and erased_do_not_call(phone.number):
            phone.blocked_elsewhere = True  # do-not-call on a contact since erased: its opt-out holds
        groups = _ordered_groups(group_pks) if via_groups and user.has_perm(perms.PLACE_GROUP_CALL) else []
        caller, clid_options, consent_table = _click_facts(user, groups)
        local = calling_hours.for_phone(phone, calling_hours.load_hours(), clock())
        row = NumberRow(phone, *_consent(phone, consent_table), blocked=_dnc_reason(phone), hours=local)
        dial = _number_plan(caller, row, clid_options, groups=groups if via_groups else None, chosen_clid=clid_pk)
        return dial, phone, caller

    return await _place(
        user=user,
        request_id=request_id,
        base_url=base_url,
        plan=plan,
        dnc_reason=dnc_reason,
        hours_reason=hours_reason,
        clock=clock,
        on_answer=on_answer,
    )


async def place_agent_call(
    *, user: User, request_id: str, base_url: str, to_agent_pk: int, clock: Clock = _now
) -> Call:
    """Call a colleague: VCC rings the user's phone, then theirs. Raises Refused (no row written)."""

    def plan() -> tuple[DialPlan, None, Caller]:
        to_agent = get_object_or_404(Agent, pk=to_agent_pk)
        caller = caller_for(user)
        return (
            rules.plan_agent_call(caller=caller, to_agent=to_agent, clid_options=_clid_options(user, caller, [])),
            None,
            caller,
        )

    return await _place(user=user, request_id=request_id, base_url=base_url, plan=plan, dnc_reason="", clock=clock)


async def _place(
    *,
    user: User,
    request_id: str,
    base_url: str,
    plan: _Plan,
    dnc_reason: str,
    clock: Clock,
    on_answer: _OnAnswer | None = None,
    hours_reason: str = "",
) -> Call:
    reasons = _Reasons(dnc_reason, hours_reason)
    async with _click_gate():
        started = await _db(_check_and_start)(
            plan=plan, user=user, request_id=request_id, base_url=base_url, reasons=reasons, clock=clock
        )
    if isinstance(started, _Blocked):
        # Our log may lag behind VCC when nobody has followed that call yet: ask before refusing. The look is part
        # of the click, with its priority: refused with the polls' share used up, it left the call live and the
        # click refused "You are on a call now" (budget.py: a click is never refused for the budget).
        followed = await follow(call=started.call, clock=clock, force=True, priority=budget.CLICK)
        blocking = followed.call
        # A call VCC answers 404 for cannot be ringing anyone: it does not hold the phone or the number.
        if blocking.is_live and blocking.missing_since is None:
            raise Busy(_busy_words(blocking, user, started.dial, unasked=followed.error))
        async with _click_gate():
            started = await _db(_start)(
                user=user,
                request_id=request_id,
                base_url=base_url,
                dial=started.dial,
                phone=started.phone,
                reasons=reasons,
                clock=clock,
            )
    if started.request is None:
        return started.call
    # A browser that goes away mid-click cancels the view, but the phone may already be ringing: the request and
    # the recording of its answer run as their own task, which the cancellation does not reach.
    task = asyncio.ensure_future(_send(started, clock=clock, on_answer=on_answer))
    _in_flight.add(task)
    task.add_done_callback(_in_flight.discard)
    return await asyncio.shield(task)


_in_flight: set[asyncio.Future[Call]] = set()


async def finish_in_flight() -> None:
    """Wait for every request to VCC that this process has sent, even for clicks whose browser went away."""
    while _in_flight:
        await asyncio.gather(*list(_in_flight), return_exceptions=True)


def _busy_words(call: Call, user: User, dial: DialPlan, *, unasked: str = "") -> str:
    # The caller's phone is on it: they clicked it, it rang them first, or they answered it (a group call).
    on_my_phone = dial.agent is not None and dial.agent.pk in (call.from_agent_id, call.answered_by_id)
    mine = call.created_by_id == user.pk or on_my_phone
    who = (call.created_by.get_full_name() or call.created_by.username) if call.created_by else "Someone"
    other_number = call.to_number != dial.number
    return rules.busy_refusal(mine=mine, who=who, other_number=other_number, unasked=unasked)


# Clicks of one person VCC may refuse or fail in a clock minute (an agent not ready or busy, nobody ready in the groups,
# VCC limiting the account or failing):
# past these, vccweb refuses the person's next clicks itself until the minute ends. A click always goes to VCC
# whatever the request budget (budget.CLICK), and one VCC refuses holds no phone, so without this one person
# clicking again and again, or a script, could spend the whole account's fair use of VCC.
REFUSED_CLICKS_PER_MINUTE = 5


def _refusals_key(user_id: int, at: datetime) -> str:
    return f"calls:vcc-refused-clicks:{user_id}:{int(at.timestamp() // 60)}"


def _throttled(user_id: int, at: datetime) -> Throttled | None:
    refused = cache.get(_refusals_key(user_id, at), 0)
    if refused < REFUSED_CLICKS_PER_MINUTE:
        return None
    wait = max(1, 60 - int(at.timestamp() % 60))
    return Throttled(
        f"VCC refused or failed {refused} of your calls this minute, so vccweb waits {wait} s before asking it "
        "again. The call log says why for each one (a phone not ready or busy, nobody ready in the groups, a number "
        "VCC will not call, VCC limiting requests or failing).",
        retry_after=wait,
    )


async def _count_refusal(user_id: int | None, at: datetime) -> None:
    if user_id is not None:
        await sync_to_async(count)([_refusals_key(user_id, at)], 120)


def _repeat(request_id: str, user: User, phone: ContactPhone | None = None) -> Call | None:
    """The row of an earlier click with this id (a double click, a retried request), if it is this user's and was
    for this number (`phone`; a number deleted since is not compared)."""
    call = Call.objects.with_parties().with_request_id(request_id).first()
    if call is not None and call.created_by_id != user.pk:
        raise Refused("That click belongs to someone else. Reload the page and try again.")
    if call is not None and phone is not None and call.phone_id not in (None, phone.pk):
        # A page kept from before its click (Back, a lost answer): its id placed a call to another number.
        raise Reused(
            "This page is out of date: it already placed a call to another number. Reload it and click again.",
            call_id=call.pk,
        )
    return call


@dataclass(frozen=True)
class _Reasons:
    """Why the person calls anyway: a do-not-call number, a number outside its calling hours."""

    dnc: str = ""
    hours: str = ""


@dataclass
class _Blocked:
    """A live call in our log holds the caller's phone or the number: VCC is asked about it before refusing."""

    call: Call
    dial: DialPlan
    phone: ContactPhone | None


def _check_and_start(
    *, plan: _Plan, user: User, request_id: str, base_url: str, reasons: _Reasons, clock: Clock
) -> _Started | _Blocked:
    """The click's database work before VCC, in one step: check it, then write its row (unless a call blocks)."""
    checked = _check(user=user, request_id=request_id, plan=plan, reasons=reasons, clock=clock)
    if isinstance(checked, Call):
        return _Started(checked, None)  # the same click again
    dial, phone, blocking = checked
    if blocking is not None:
        return _Blocked(blocking, dial, phone)
    return _start(
        user=user, request_id=request_id, base_url=base_url, dial=dial, phone=phone, reasons=reasons, clock=clock
    )


def _check(
    *, user: User, request_id: str, plan: _Plan, reasons: _Reasons, clock: Clock
) -> Call | tuple[DialPlan, ContactPhone | None, Call | None]:
    """Decide whether the click may be sent; find a live call that would block it. A repeat returns its row."""
    dial, phone, caller = plan()
    refused = rules.refusal(dial, caller=caller, dnc_reason=reasons.dnc, hours_reason=reasons.hours)
    throttled = None if refused else _throttled(user.pk, clock())
    if refused or throttled:
        if (earlier := _repeat(request_id, user, phone)) is not None:
            return earlier
        log.info("click %s refused before VCC: %s", request_id, refused or throttled)
        raise throttled or Refused(refused)
    blocking = Call.objects.blocking(
        agent_id=dial.agent.pk if dial.agent and not dial.groups else None,
        number=dial.number,
        user_id=user.pk,
        since=clock() - LIVE_CALL_WINDOW,
        request_id=request_id,
        contact_id=phone.contact_id if phone is not None else None,
    )
    return dial, phone, blocking


def _start(
    *,
    user: User,
    request_id: str,
    base_url: str,
    dial: DialPlan,
    phone: ContactPhone | None,
    reasons: _Reasons,
    clock: Clock,
) -> _Started:
    """Write the call row, take the number, and build the request. Nothing is sent yet."""
    call = Call(
        request_id=request_id,
        created_by=user,
        from_agent=None if dial.groups else dial.agent,
        to_number=dial.number,
        to_agent=dial.to_agent,
        contact=phone.contact if phone else None,
        phone=phone,
        presented_clid=dial.clid.number if dial.clid else "",
        callback_number=dial.clid,
        clid_reason=dial.clid_reason,
        consent=dial.consent,
        consent_reason=dial.consent_reason,
        application=settings.VCC_APPLICATION,
        dnc_override_reason=reasons.dnc.strip() if dial.blocked else "",
        hours_override_reason=reasons.hours.strip() if dial.closed else "",
        requested_at=clock(),
        trace_id=current_request_id(),
    )
    call.regarding = regarding_url(call, base_url=base_url)
    # Send only what the configured API version knows: reference and application from 4, consent from 6.
    version = settings.VCC_API_VERSION
    request = CallRequest(
        # Without groups the plan has the caller's agent (rules.refusal refuses a click without one).
        from_agent_id=dial.agent.display_id if dial.agent is not None and not dial.groups else None,
        from_groups=tuple(g.display_id for g in dial.groups),
        # VCC's own form of the number when the sync read it (VCC may compare it as a string), else E.164.
        presented_clid=dial.clid.presented_clid if dial.clid else None,
        consent=(dial.consent or None) if version >= CONSENT_VERSION else None,
        to_number=dial.number or None,
        to_agent_id=dial.to_agent.display_id if dial.to_agent else None,
        reference=call.regarding if version >= REFERENCE_VERSION else None,
        application=settings.VCC_APPLICATION if version >= REFERENCE_VERSION else None,
    )
    call.request_body = request.to_json()
    held = _locks_for(dial, phone)
    # The row, its groups and the locks are one transaction, one commit: a click whose number (or contact) another
    # click holds leaves nothing behind (no row, no call.requested), and a repeat of this click never takes the lock.
    try:
        with transaction.atomic(), changes.call_change(call):  # call.requested, with the row
            call.insert()
            if dial.groups:
                Call.from_groups.through.objects.bulk_create(
                    [Call.from_groups.through(call=call, agentgroup=g) for g in dial.groups]
                )
            if held and (taken := locks.acquire_dial_locks(held, owner=request_id)):
                raise _NumberTaken(taken[0])
    except IntegrityError:
        # The same click again, saved first by another request or process: that one places the call.
        earlier = _repeat(request_id, user, phone)
        if earlier is None:
            raise  # not a repeat of this click: a conflict of another kind, not to be hidden
        return _Started(earlier, None)
    except _NumberTaken as taken:
        if taken.args[0] == dial.number:
            raise Busy("Someone else is dialling this number right now. Try again in a moment.") from None
        raise Busy(
            "This contact is being dialled right now, on another of their numbers. Try again in a moment."
        ) from None
    return _Started(call, request, held)


def _locks_for(dial: DialPlan, phone: ContactPhone | None) -> tuple[str, ...]:
    """What a click holds while VCC is asked (calls/locks.py), the number first: the number, and the contact.

    The contact's lock stops two people's clicks on two of their numbers at the same moment, each checked before
    the other's row was written (Call.objects.blocking): one person would be called by two at once."""
    return tuple(key for key in (dial.number, f"contact:{phone.contact_id}" if phone else "") if key)


class _NumberTaken(Exception):
    """Another click holds the number, or the contact (calls/locks.py): this click's transaction is rolled back."""


async def _send(started: _Started, *, clock: Clock, on_answer: _OnAnswer | None = None) -> Call:
    """Ask VCC to place the call, then record its answer; every failure ends on the row and in front of the person."""
    call, request, began = started.call, started.request, time.monotonic()
    assert request is not None  # _place sends new clicks only
    placed: PlacedCall | None = None
    error: Exception | None = None
    try:
        with budget.priority(budget.CLICK):  # a click always goes: VCC, not our budget, may refuse it
            async with get_async_client() as client:
                placed = await client.place_call(request)
    except Exception as exc:  # expected or not, it must end up on the row
        error = exc
    latency = round((time.monotonic() - began) * 1000)
    transition, answer = _answer(call, placed, error, latency_ms=latency, now=clock())
    if transition != Call.record_placed and isinstance(error, VCCError) and error.status is not None:
        # VCC answered, refusing or failing this click (the person's phone, the groups, the number; VCC limiting the
        # account, or down): counted (_throttled). A click goes whatever the budget's back-off, so while VCC limits
        # the account a person clicking again and again would keep it limited for everyone.
        await _count_refusal(call.created_by_id, clock())
    released = False
    try:
        call = await _write(
            _record_answer,
            call.pk,
            transition,
            answer,
            started.held,
            str(call.request_id),
            on_answer,
            asked=call.to_number,
        )
        released = True
    finally:
        if started.held and not released:
            await _db(locks.release_dial_locks)(started.held, owner=str(call.request_id))
    return call


def _answer(
    call: Call, placed: PlacedCall | None, error: Exception | None, *, latency_ms: int, now: datetime
) -> tuple[Callable[..., None], dict[str, Any]]:
    """Which transition VCC's answer (or the failure) calls for (one of Call's record_ methods, unbound: it is
    applied to the row as _record_answer reads it), with its arguments; logs it before it is written, so that if the
    database is gone the log still ties VCC's call to our click."""
    ids = f"click {call.request_id} (call {call.pk})"
    if placed is not None:
        log.info("%s: VCC placed call %s", ids, placed.call_id)
        return Call.record_placed, {
            "vcc_call_id": placed.call_id,
            "vcc_status": placed.status or "",
            "recording_status": placed.recording_status or "",
            "latency_ms": latency_ms,
            "now": now,
        }
    if isinstance(error, VCCError) and error.call_id:
        # VCC said 201 and named the call in Location, but its body was unreadable: follow the call by its id.
        log.warning("%s: VCC placed call %s; reply unreadable: %s", ids, error.call_id, error.message)
        return Call.record_placed, {
            "vcc_call_id": error.call_id,
            "vcc_status": "",
            "recording_status": "",
            "latency_ms": latency_ms,
            "now": now,
            "note": "VCC placed the call but its reply could not be read; following it by its id.",
            "error_message": error.message,
            "error_status": error.status,
        }
    if isinstance(error, VCCError):
        if error.local:  # our own checks refused what we built: bad data here (an agent ID, a caller ID)
            log.error("%s: not sent, vccweb built an invalid request: %s", ids, error.message)
        unsure = error.may_have_placed
        log.warning(
            "%s: %s: status=%s vcc_message=%r",
            ids,
            "not confirmed" if unsure else "failed",
            error.status,
            error.message,
        )
        return Call.record_unconfirmed if unsure else Call.record_failed, {
            "message": error.message,
            "status": error.status,
            "display": error.user_message,
            "latency_ms": latency_ms,
            "now": now,
        }
    log.error("%s: unexpected error talking to VCC", ids, exc_info=error)
    return Call.record_unconfirmed, {
        "message": f"{type(error).__name__}: {error}",
        "status": None,
        "display": "Something went wrong on our side while asking VCC, so the call may have been placed: "
        "check your phone and the call log before trying again.",
        "latency_ms": latency_ms,
        "now": now,
    }


def _record_answer(
    call_pk: int,
    transition: Callable[..., None],
    answer: dict[str, Any],
    held: Sequence[str],
    owner: str,
    on_answer: _OnAnswer | None = None,
    *,
    asked: str = "",
) -> Call:
    """Write VCC's answer (`transition`, one of Call's record_ methods), note the call on its contact (the list's
    "last called"), free the number and the contact (`held`) and run on_answer: one trip to the database, one
    transaction (one commit, not three or four: each commit waits for the disk). A failure rolls all of it back, to
    be written again (_write). Returns the call as written. `asked`: the number VCC was asked to call, masked in
    VCC's words (which may quote it) if an erasure masked it on the row meanwhile."""
    with transaction.atomic():
        # The row as it is now, locked, not the click's copy from before VCC was asked: meanwhile a supervisor may
        # have closed the call, or an erasure masked its number and unlinked its contact. The answer is written on
        # this row, and the events it makes and the API's kept answer (on_answer) are built from it.
        call = Call.objects.with_parties().select_for_update(of=("self",)).get(pk=call_pk)
        if asked and call.contact_erased and call.to_number != asked:
            answer = {key: without_number(v, asked) if isinstance(v, str) else v for key, v in answer.items()}
        with changes.call_change(call):
            if call.awaits_answer:  # else a try whose commit went through although the database said it failed
                closed = call.state == Call.State.ENDED
                transition(call, **answer)
                if closed and call.is_live:  # a close VCC's answer undid: a queue attempt waits for this call again
                    from calls.queues import outcomes  # the queues build on calling, not the other way round

                    outcomes.reopened(call)
            if call.contact_id:
                Contact.objects.note_call(call)
            locks.release_dial_locks(held, owner=owner)
            if on_answer is not None:
                on_answer(call)
    return call


async def _write[T](fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Write VCC's answer, trying again when the database fails: losing it would lose a placed call's id."""
    for attempt in range(1, DB_WRITE_TRIES):
        try:
            return await _db(fn)(*args, **kwargs)
        except DatabaseError:
            log.warning(
                "writing VCC's answer failed (try %s of %s); trying again", attempt, DB_WRITE_TRIES, exc_info=True
            )
            await _sleep(0.2 * 2**attempt)
    return await _db(fn)(*args, **kwargs)  # the last try: its failure is raised
