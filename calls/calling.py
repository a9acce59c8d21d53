"""The calling use cases: place a call, follow it, pause or resume its recording, wrap it up, reconcile.

Views, management commands and the call-following worker all call these keyword-only functions; this is the only
code outside calls/vcc/ that opens a VCC client. Each use case loads the facts the rules need (calls/rules.py),
asks VCC, and records what happened through the Call's transitions (calls/models.py).

Database work runs in sync functions through `_db`, which hands the connection back before VCC is awaited: a slow
VCC never holds a database connection, however many clicks are waiting on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone

from calls import directory, health, locks, rules
from calls import permissions as perms
from calls.models import (
    Agent,
    AgentGroup,
    Call,
    CallbackNumber,
    ConsentRule,
    Contact,
    ContactPhone,
    DispositionCode,
    SyncRun,
)
from calls.observability import current_request_id
from calls.rules import Caller, DialPlan, Refused
from calls.sync import sync_from_vcc
from calls.vcc import CallDetail, CallRequest, UserAdminClient, VCCError, get_async_client, get_user_admin_client
from calls.vcc.validation import CONSENT_VERSION, REFERENCE_VERSION

log = logging.getLogger(__name__)

LIVE_CALL_WINDOW = timedelta(hours=2)  # a live call older than this no longer blocks others
FOLLOW_INTERVAL = timedelta(seconds=2)  # VCC is asked about one call at most this often
FOLLOW_BACKOFF_MAX = timedelta(seconds=60)
ABANDONED_AFTER = timedelta(minutes=5)  # a click with no recorded answer after this is closed as not confirmed
READY_SECONDS = 5  # how long VCC's ready-agent answers are reused
RECORDING_PENDING = timedelta(seconds=5)  # how long a requested recording change shows before VCC confirms it
DB_WRITE_TRIES = 4  # writing VCC's answer is retried: a placed call's id must not be lost to a database blip

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    """The time now. Tests replace it (calls.calling.wall_clock) to move time on without waiting for it."""
    return timezone.now()


def _now() -> datetime:
    return wall_clock()  # looked up at each call, so a replaced wall_clock is seen everywhere


_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # tests replace it: nothing waits on the wall clock
_regarding_signer = signing.Signer(salt="calls.regarding")


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


def _db[**P, T](fn: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """Run fn in Django's sync thread, then hand its database connection back (to the pool, or closed)."""

    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        finally:
            if not connection.in_atomic_block:  # tests run inside a transaction: leave theirs alone
                connection.close()

    return sync_to_async(run, thread_sensitive=True)


# --- The facts the rules need ---------------------------------------------------------------------------


def caller_for(user) -> Caller:
    """Who is clicking: their active agent and what their role lets them do."""
    return _caller(user, directory.remembered(_agent_key(user), lambda: _agent_of(user)))


def _caller(user, agent: Agent | None) -> Caller:
    return Caller(
        agent=agent,
        may_call=user.has_perm(perms.PLACE_CALL),
        may_call_groups=user.has_perm(perms.PLACE_GROUP_CALL),
        may_override_dnc=user.has_perm(perms.OVERRIDE_DO_NOT_CALL),
    )


def _agent_key(user) -> str:
    return f"calls:agent-of:{user.pk}"


def _agent_of(user) -> Agent | None:
    return Agent.objects.filter(user=user, is_active=True).first()


CONSENT_RULES_KEY = "calls:consent-rules"


def consent_rules() -> dict[str, str]:
    """The per-country consent defaults, cached until an admin changes one (calls/directory.py)."""
    return directory.remembered(CONSENT_RULES_KEY, _read_consent_rules)


def _read_consent_rules() -> dict[str, str]:
    return dict(ConsentRule.objects.values_list("country", "consent"))


def _click_facts(user, groups: Sequence[AgentGroup]) -> tuple[Caller, list[CallbackNumber], dict[str, str]]:
    """The caller, the callback numbers this call may present, and the consent table: one read of the cache."""
    agent_key, clids_key = _agent_key(user), _clids_key(user, groups)
    found = directory.remembered_many(
        {
            agent_key: lambda: _agent_of(user),
            clids_key: lambda: _read_clid_options(None if groups else _agent_of(user), groups),
            CONSENT_RULES_KEY: _read_consent_rules,
        }
    )
    return _caller(user, found[agent_key]), found[clids_key], found[CONSENT_RULES_KEY]


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
    phones = list(contact.phones.annotate(blocked_elsewhere=_blocked_elsewhere()))
    for phone in phones:
        phone.contact = contact  # spare a query per number
    return phones


def _dnc_reason(phone: ContactPhone) -> str:
    return rules.do_not_call_reason(
        number_dnc=phone.do_not_call, contact_dnc=phone.contact.do_not_call, blocked_elsewhere=phone.blocked_elsewhere
    )


def _consent(phone: ContactPhone, consent_table: dict[str, str] | None = None) -> tuple[str, str]:
    override = phone.contact.consent_override
    return rules.resolve_consent(
        override=override, number=phone.number, rules={} if override else (consent_table or consent_rules())
    )


def _clid_options(user, caller: Caller, groups: Sequence[AgentGroup]) -> list[CallbackNumber]:
    """The callback numbers a call by user may present: from their own phone, or via groups."""
    agent = None if groups else caller.agent
    return directory.remembered(_clids_key(user, groups), lambda: _read_clid_options(agent, groups))


def _clids_key(user, groups: Sequence[AgentGroup]) -> str:
    # Via groups the numbers depend on the groups alone; from the user's phone, on their agent (the user's).
    return f"calls:clids:groups:{','.join(str(g.pk) for g in groups)}" if groups else f"calls:clids:user:{user.pk}"


def _read_clid_options(agent: Agent | None, groups: Sequence[AgentGroup]) -> list[CallbackNumber]:
    return list(CallbackNumber.objects.usable_by(agent=agent, groups=groups))


def _ordered_groups(pks: Sequence[int]) -> list[AgentGroup]:
    """The groups, in the order the person ticked them: VCC takes them in order."""
    return sorted(AgentGroup.objects.filter(pk__in=pks), key=lambda g: list(pks).index(g.pk))


# --- What the contact page shows before the click --------------------------------------------------------


@dataclass
class NumberRow:
    phone: ContactPhone
    consent: str
    consent_reason: str
    blocked: str


@dataclass
class Dialer:
    """The contact page's call buttons: each number with its consent and do-not-call state, and the two plans."""

    rows: list[NumberRow]
    me: DialPlan | None
    group_plan: DialPlan | None
    groups: list[AgentGroup]
    ticked: set[int]
    caller: Caller


def dialer(*, user, contact: Contact, ticked: Sequence[int] | None = None, chosen_clid: int | None = None) -> Dialer:
    """What calling each of the contact's numbers would send, from the user's phone and via the ticked groups.

    `ticked` (group pks) defaults to the user's default group; an unusable `chosen_clid` falls back to automatic.
    """
    caller = caller_for(user)
    phones = _phones_of(contact)
    table = consent_rules()
    rows = [NumberRow(p, *_consent(p, table), blocked=_dnc_reason(p)) for p in phones]
    groups = rules.visible_groups(AgentGroup.objects.all(), caller)
    if ticked is None:
        default = caller.agent.default_group_id if caller.agent else None
        if caller.agent and default is None:
            first = caller.agent.groups.order_by("name").first()
            default = first.pk if first else None
        ticked = [default] if default else []
    ticked_groups = [g for pk in ticked for g in groups if g.pk == pk]
    me = group_plan = None
    if rows:
        first = rows[0]
        options = _clid_options(user, caller, [])
        try:
            me = _number_plan(caller, first, options, chosen_clid=chosen_clid)
        except Refused:
            me = _number_plan(caller, first, options)
        if groups:
            options = _clid_options(user, caller, ticked_groups)
            try:
                group_plan = _number_plan(caller, first, options, groups=ticked_groups, chosen_clid=chosen_clid)
            except Refused:
                group_plan = _number_plan(caller, first, options, groups=ticked_groups)
                group_plan.clid_reason = (
                    f"the caller ID you picked is not allowed via these groups, so {group_plan.clid_reason}"
                )
    return Dialer(rows, me, group_plan, groups, {g.pk for g in ticked_groups}, caller)


def _number_plan(caller: Caller, row: NumberRow, options, *, groups=None, chosen_clid=None) -> DialPlan:
    return rules.plan_number_call(
        caller=caller,
        number=row.phone.number,
        dnc_reason=row.blocked,
        consent=(row.consent, row.consent_reason),
        clid_options=options,
        groups=groups or (),
        via_groups=groups is not None,
        chosen_clid=chosen_clid,
    )


# --- Placing a call: record, ask VCC, record ---------------------------------------------------------------


@dataclass
class _Started:
    call: Call
    request: CallRequest | None  # None: a repeat of an earlier click, nothing to send
    lock_number: str = ""


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
    path = call.contact.get_absolute_url() if call.contact_id else reverse("agent_directory")
    return f"{base_url.rstrip('/')}{path}?call={regarding_token(call)}"


async def place_number_call(
    *,
    user,
    request_id: str,
    base_url: str,
    contact_pk: int,
    phone_pk: int,
    via_groups: bool = False,
    group_pks: Sequence[int] = (),
    clid_pk: int | None = None,
    dnc_reason: str = "",
    clock: Clock = _now,
) -> Call:
    """Call one of a contact's numbers, from the user's phone or via groups. Raises Refused (no row written)."""

    def plan() -> tuple[DialPlan, ContactPhone, Caller]:
        phone = ContactPhone.objects.for_click(phone_pk, contact_pk)
        if phone is None:
            raise Http404("No such number on this contact.")
        groups = _ordered_groups(group_pks) if via_groups and user.has_perm(perms.PLACE_GROUP_CALL) else []
        caller, clid_options, consent_table = _click_facts(user, groups)
        row = NumberRow(phone, *_consent(phone, consent_table), blocked=_dnc_reason(phone))
        dial = _number_plan(caller, row, clid_options, groups=groups if via_groups else None, chosen_clid=clid_pk)
        return dial, phone, caller

    return await _place(
        user=user, request_id=request_id, base_url=base_url, plan=plan, dnc_reason=dnc_reason, clock=clock
    )


async def place_agent_call(*, user, request_id: str, base_url: str, to_agent_pk: int, clock: Clock = _now) -> Call:
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


async def _place(*, user, request_id: str, base_url: str, plan, dnc_reason: str, clock: Clock) -> Call:
    kwargs = {"user": user, "request_id": request_id, "base_url": base_url, "dnc_reason": dnc_reason, "clock": clock}
    async with _click_gate():
        started = await _db(_check_and_start)(plan=plan, **kwargs)
    if isinstance(started, _Blocked):
        # Our log may lag behind VCC when nobody has followed that call yet: ask before refusing.
        blocking = (await follow(call=started.call, clock=clock, force=True)).call
        # A call VCC answers 404 for cannot be ringing anyone: it does not hold the phone or the number.
        if blocking.is_live and blocking.missing_since is None:
            raise Refused(_busy_words(blocking, user))
        async with _click_gate():
            started = await _db(_start)(dial=started.dial, phone=started.phone, **kwargs)
    if started.request is None:
        return started.call
    # A browser that goes away mid-click cancels the view, but the phone may already be ringing: the request and
    # the recording of its answer run as their own task, which the cancellation does not reach.
    task = asyncio.ensure_future(_send(started, clock=clock))
    _in_flight.add(task)
    task.add_done_callback(_in_flight.discard)
    return await asyncio.shield(task)


_in_flight: set[asyncio.Future[Call]] = set()


async def finish_in_flight() -> None:
    """Wait for every request to VCC that this process has sent, even for clicks whose browser went away."""
    while _in_flight:
        await asyncio.gather(*list(_in_flight), return_exceptions=True)


def _busy_words(call: Call, user) -> str:
    mine = call.created_by_id == user.pk or (call.from_agent_id is not None and call.from_agent.user_id == user.pk)
    who = (call.created_by.get_full_name() or call.created_by.username) if call.created_by else "Someone"
    return rules.busy_refusal(mine=mine, who=who)


def _repeat(request_id: str, user) -> Call | None:
    """The row of an earlier click with this id (a double click, a retried request), if it is this user's."""
    call = Call.objects.with_parties().filter(request_id=request_id).first()
    if call is not None and call.created_by_id != user.pk:
        raise Refused("That click belongs to someone else. Reload the page and try again.")
    return call


@dataclass
class _Blocked:
    """A live call in our log holds the caller's phone or the number: VCC is asked about it before refusing."""

    call: Call
    dial: DialPlan
    phone: ContactPhone | None


def _check_and_start(*, plan, user, request_id: str, base_url: str, dnc_reason: str, clock: Clock):
    """The click's database work before VCC, in one step: check it, then write its row (unless a call blocks)."""
    checked = _check(user=user, request_id=request_id, plan=plan, dnc_reason=dnc_reason, clock=clock)
    if isinstance(checked, Call):
        return _Started(checked, None)  # the same click again
    dial, phone, blocking = checked
    if blocking is not None:
        return _Blocked(blocking, dial, phone)
    return _start(
        user=user, request_id=request_id, base_url=base_url, dial=dial, phone=phone, dnc_reason=dnc_reason, clock=clock
    )


def _check(*, user, request_id: str, plan, dnc_reason: str, clock: Clock):
    """Decide whether the click may be sent; find a live call that would block it. A repeat returns its row."""
    dial, phone, caller = plan()
    refused = rules.refusal(dial, caller=caller, dnc_reason=dnc_reason)
    if refused:
        if (earlier := _repeat(request_id, user)) is not None:
            return earlier
        log.info("click %s refused before VCC: %s", request_id, refused)
        raise Refused(refused)
    blocking = Call.objects.blocking(
        agent_id=dial.agent.pk if dial.agent and not dial.groups else None,
        number=dial.number,
        user_id=user.pk,
        since=clock() - LIVE_CALL_WINDOW,
        request_id=request_id,
    )
    return dial, phone, blocking


def _start(*, user, request_id: str, base_url: str, dial: DialPlan, phone, dnc_reason: str, clock: Clock) -> _Started:
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
        dnc_override_reason=dnc_reason.strip() if dial.blocked else "",
        requested_at=clock(),
        trace_id=current_request_id(),
    )
    call.regarding = regarding_url(call, base_url=base_url)
    # Send only what the configured API version knows: reference and application from 4, consent from 6.
    version = settings.VCC_API_VERSION
    request = CallRequest(
        from_agent_id=None if dial.groups else dial.agent.display_id,
        from_groups=tuple(g.display_id for g in dial.groups),
        presented_clid=dial.clid.number if dial.clid else None,
        consent=(dial.consent or None) if version >= CONSENT_VERSION else None,
        to_number=dial.number or None,
        to_agent_id=dial.to_agent.display_id if dial.to_agent else None,
        reference=call.regarding if version >= REFERENCE_VERSION else None,
        application=settings.VCC_APPLICATION if version >= REFERENCE_VERSION else None,
    )
    call.request_body = request.to_json()
    try:
        with transaction.atomic():
            call.insert()
            if dial.groups:
                Call.from_groups.through.objects.bulk_create(
                    [Call.from_groups.through(call=call, agentgroup=g) for g in dial.groups]
                )
    except IntegrityError:
        # The same click again, saved first by another request or process: that one places the call.
        return _Started(_repeat(request_id, user), None)
    if dial.number and not locks.acquire_dial_lock(dial.number, owner=request_id):
        call.delete()  # refused before VCC was asked: no row stays behind
        raise Refused("Someone else is dialling this number right now. Try again in a moment.")
    return _Started(call, request, dial.number)


async def _send(started: _Started, *, clock: Clock) -> Call:
    """Ask VCC to place the call, then record its answer; every failure ends on the row and in front of the person."""
    call, began = started.call, time.monotonic()
    placed = error = None
    try:
        async with get_async_client() as client:
            placed = await client.place_call(started.request)
    except Exception as exc:  # expected or not, it must end up on the row
        error = exc
    latency = round((time.monotonic() - began) * 1000)
    transition, answer = _answer(call, placed, error, latency_ms=latency, now=clock())
    released = False
    try:
        await _write(_record_answer, transition, answer, started.lock_number, str(call.request_id))
        released = True
    finally:
        if started.lock_number and not released:
            await _db(locks.release_dial_lock)(started.lock_number, owner=str(call.request_id))
    return call


def _answer(call: Call, placed, error: Exception | None, *, latency_ms: int, now: datetime):
    """Which transition VCC's answer (or the failure) calls for, with its arguments; logs it before it is written,
    so that if the database is gone the log still ties VCC's call to our click."""
    ids = f"click {call.request_id} (call {call.pk})"
    if placed is not None:
        log.info("%s: VCC placed call %s", ids, placed.call_id)
        return call.record_placed, {
            "vcc_call_id": placed.call_id,
            "vcc_status": placed.status or "",
            "recording_status": placed.recording_status or "",
            "latency_ms": latency_ms,
            "now": now,
        }
    if isinstance(error, VCCError) and error.call_id:
        # VCC said 201 and named the call in Location, but its body was unreadable: follow the call by its id.
        log.warning("%s: VCC placed call %s; reply unreadable: %s", ids, error.call_id, error.message)
        call.error_message, call.error_status = error.message, error.status
        return call.record_placed, {
            "vcc_call_id": error.call_id,
            "vcc_status": "",
            "recording_status": "",
            "latency_ms": latency_ms,
            "now": now,
            "note": "VCC placed the call but its reply could not be read; following it by its id.",
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
        return call.record_unconfirmed if unsure else call.record_failed, {
            "message": error.message,
            "status": error.status,
            "display": error.user_message,
            "latency_ms": latency_ms,
            "now": now,
        }
    log.error("%s: unexpected error talking to VCC", ids, exc_info=error)
    return call.record_unconfirmed, {
        "message": f"{type(error).__name__}: {error}",
        "status": None,
        "display": "Something went wrong on our side while asking VCC, so the call may have been placed: "
        "check your phone and the call log before trying again.",
        "latency_ms": latency_ms,
        "now": now,
    }


def _record_answer(transition: Callable[..., None], answer: dict[str, Any], lock_number: str, owner: str) -> None:
    """Write VCC's answer, note the call on its contact (the list's "last called"), and free the number: one trip
    to the database."""
    transition(**answer)
    call = transition.__self__
    if call.contact_id:
        Contact.objects.note_call(call)
    if lock_number:
        locks.release_dial_lock(lock_number, owner=owner)


async def _write(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Write VCC's answer, trying again when the database fails: losing it would lose a placed call's id."""
    for attempt in range(1, DB_WRITE_TRIES + 1):
        try:
            await _db(fn)(*args, **kwargs)
            return
        except DatabaseError:
            if attempt == DB_WRITE_TRIES:
                raise
            log.warning(
                "writing VCC's answer failed (try %s of %s); trying again", attempt, DB_WRITE_TRIES, exc_info=True
            )
            await _sleep(0.2 * 2**attempt)


# --- Following a call ----------------------------------------------------------------------------------------


@dataclass
class Followed:
    call: Call
    changed: bool = False  # its phase changed: pages showing it should refresh
    error: str = ""  # for people, when VCC could not be asked
    retry_after: float | None = None  # VCC asked us to slow down


def _claim(call: Call, *, now: datetime, force: bool) -> bool:
    """Take this call's next look at VCC, so that the panel and the workers never ask about it at once."""
    due = Q() if force else Q(next_check_at__isnull=True) | Q(next_check_at__lte=now)
    return bool(Call.objects.filter(due, pk=call.pk, state=Call.State.LIVE).update(next_check_at=now + FOLLOW_INTERVAL))


async def follow(*, call: Call, clock: Clock = _now, force: bool = False, client=None) -> Followed:
    """Ask VCC where a live call is (unless someone asked within FOLLOW_INTERVAL) and record it."""
    if call.state != Call.State.LIVE or not call.vcc_call_id:
        return Followed(call)
    if not await _db(_claim)(call, now=clock(), force=force):
        if force:
            # A forced claim fails only when the call stopped being live meanwhile (another request recorded its
            # end): answer with what was recorded, not the stale copy (a click would be refused as "on a call").
            await _db(call.refresh_from_db)()
        return Followed(call)
    detail = error = None
    try:
        if client is None:
            async with get_async_client() as own:
                detail = await own.get_call(call.vcc_call_id)
        else:
            detail = await client.get_call(call.vcc_call_id)
    except VCCError as exc:
        error = exc
    return await _db(_record_follow)(call, detail=detail, error=error, now=clock())


def _record_follow(call: Call, *, detail: CallDetail | None, error: VCCError | None, now: datetime) -> Followed:
    if detail is not None:
        changed = call.record_detail(
            live=detail.is_live,
            recording_status=detail.recording_status or "",
            result=(detail.result_code or "", detail.result_party or "", detail.result_reason or ""),
            connected=rules.is_connected(detail.recording_status),
            disposition_code=detail.disposition_code or "",
            now=now,
            next_check_at=now + FOLLOW_INTERVAL,
        )
        return Followed(call, changed=changed)
    assert error is not None
    log.warning("call %s: asking VCC failed: %s (status %s)", call.pk, error.message, error.status)
    if error.status == 404:
        closed = call.record_missing(now=now, next_check_at=now + FOLLOW_INTERVAL * 5)
        return Followed(call, changed=closed)
    # Retry-After when VCC gives one; a failure that retrying cannot mend soon (credentials) waits longest.
    wait = FOLLOW_BACKOFF_MAX if not error.retryable and error.status != 429 else FOLLOW_INTERVAL * 4
    wait = max(timedelta(seconds=error.retry_after or 0), wait)
    call.record_follow_error(
        message=error.message, status=error.status, now=now, next_check_at=now + min(wait, FOLLOW_BACKOFF_MAX)
    )
    return Followed(
        call, error=f"Couldn't get the latest status from VCC: {error.user_message}", retry_after=error.retry_after
    )


def _claim_due(*, now: datetime, limit: int) -> list[Call]:
    """Take up to `limit` live calls due a look, skipping ones another worker holds."""
    with transaction.atomic():
        due = list(
            Call.objects.select_for_update(skip_locked=True)
            .filter(state=Call.State.LIVE, next_check_at__lte=now)
            .exclude(vcc_call_id="")
            .order_by("next_check_at")[:limit]
        )
        Call.objects.filter(pk__in=[c.pk for c in due]).update(next_check_at=now + FOLLOW_INTERVAL)
    return due


@dataclass
class Round:
    """What one round of the worker did."""

    asked: int = 0
    ended: int = 0
    errors: int = 0
    closed_abandoned: int = 0
    retry_after: float | None = None  # VCC asked us to slow down (429) or is failing (5xx): wait this long


async def follow_due(*, clock: Clock = _now, limit: int = 50, concurrency: int = 8) -> Round:
    """One round of the worker: follow every live call that is due, and close clicks VCC never answered."""
    now = clock()
    due = await _db(_claim_due)(now=now, limit=limit)
    result = Round(asked=len(due))
    if due:
        gate = asyncio.Semaphore(concurrency)
        async with get_async_client() as client:

            async def one(call: Call) -> Followed:
                async with gate:
                    return await follow(call=call, clock=clock, force=True, client=client)

            for followed in await asyncio.gather(*(one(c) for c in due)):
                result.ended += followed.call.state == Call.State.ENDED
                if followed.error:
                    result.errors += 1
                    result.retry_after = max(result.retry_after or 0, followed.retry_after or 2.0)
    result.closed_abandoned = await _db(close_abandoned_clicks)(now=now)
    return result


def close_abandoned_clicks(*, now: datetime) -> int:
    """Clicks whose answer from VCC was never recorded (their process died mid-request): not confirmed."""
    count = 0
    for call in Call.objects.filter(state=Call.State.REQUESTED, requested_at__lt=now - ABANDONED_AFTER):
        call.record_unconfirmed(
            message="No answer from VCC was recorded for this click",
            status=None,
            display="No answer from VCC was recorded for this click, so the call may have been placed: check your "
            "phone and the call log before trying again.",
            latency_ms=None,
            now=now,
        )
        count += 1
    return count


# --- Recording and wrap-up ------------------------------------------------------------------------------------


async def set_recording(*, call: Call, status: str, clock: Clock = _now) -> str:
    """Pause ("Paused") or resume ("Started") a live call's recording; returns an error for people, or ""."""
    if not call.is_live or not call.vcc_call_id:
        return "The call is not live, so its recording cannot change."
    try:
        async with get_async_client() as client:
            await client.set_recording(call.vcc_call_id, status)
    except VCCError as exc:
        log.warning("call %s: recording change failed: %s (status %s)", call.pk, exc.message, exc.status)
        return exc.user_message
    now = clock()
    await _db(call.record_recording)(status=status, now=now)
    # VCC applies it asynchronously: panels show what was asked for until VCC reports it.
    await cache.aset(_pending_key(call), (status, now.timestamp()), int(RECORDING_PENDING.total_seconds()) + 1)
    log.info("call %s: recording set to %s", call.pk, status)
    return ""


def _pending_key(call: Call) -> str:
    return f"calls:recording-pending:{call.pk}"


async def shown_recording(call: Call, *, clock: Clock = _now) -> str:
    """The recording status to show: VCC's, or a change asked for moments ago that VCC has not reported yet."""
    pending = await cache.aget(_pending_key(call))
    if pending and call.is_live:
        status, asked_at = pending
        if clock().timestamp() - asked_at < RECORDING_PENDING.total_seconds():
            return status
    return call.recording_status


@dataclass
class WrappedUp:
    error: str = ""  # for people: what to do next (the notes are saved either way)
    changed: tuple[str, ...] = ()  # what else the disposition changed, in words


async def wrap_up(*, call: Call, disposition: DispositionCode, notes: str, clock: Clock = _now) -> WrappedUp:
    """Send the disposition to VCC and store it with the notes; notes are kept even when VCC fails."""
    if call.state != Call.State.ENDED:
        return WrappedUp(error="Wrap up once the call has ended.")
    confirmed, remarks, error = True, [], ""
    if call.vcc_call_id:
        try:
            async with get_async_client() as client:
                agent_id = call.from_agent.display_id if call.from_agent else None
                await client.set_disposition(call.vcc_call_id, disposition.code, agent_id)
        except VCCError as exc:
            log.warning("call %s: disposition failed: %s (status %s)", call.pk, exc.message, exc.status)
            if exc.status == 404:
                # VCC keeps calls for 24 hours: past that, the outcome can only be kept here.
                remarks.append("VCC no longer has this call, so the outcome is kept in vccweb only.")
            else:
                confirmed = False
                error = f"{exc.user_message} Your notes are saved; send the outcome again."
    changed = await _db(_store_wrap_up)(call, disposition=disposition, notes=notes, now=clock(), confirmed=confirmed)
    return WrappedUp(error=error, changed=tuple(remarks + changed))


def _store_wrap_up(
    call: Call, *, disposition: DispositionCode, notes: str, now: datetime, confirmed: bool
) -> list[str]:
    call.record_wrap_up(code=disposition.code, notes=notes, now=now, confirmed=confirmed)
    if not confirmed:
        return []
    # Anyone may mark a number do-not-call: an opt-out is honoured at once. Only supervisors clear it.
    if disposition.action == DispositionCode.Action.NUMBER_DNC and call.phone_id:
        ContactPhone.objects.filter(pk=call.phone_id).update(do_not_call=True)
        return [f"{call.phone.display} is now marked do not call."]
    if disposition.action == DispositionCode.Action.CONTACT_DNC and call.contact_id:
        Contact.objects.filter(pk=call.contact_id).update(do_not_call=True)
        return [f"{call.contact.name} is now marked do not call."]
    return []


# --- Who is ready --------------------------------------------------------------------------------------------


@dataclass
class Readiness:
    me: bool | None  # whether VCC has the caller's agent ready for a phone call (None: unknown)
    groups: dict[int, int | None]  # ready agents per group pk (None: unknown)
    error: str = ""


async def ready_agent_ids() -> tuple[set[str] | None, str]:
    """Which agents VCC has ready for a phone call now (cached briefly), or None and why not."""
    ready = await cache.aget("calls:ready-agents")
    if ready is not None:
        return ready, ""
    try:
        async with get_async_client() as client:
            ready = set((await client.agents_ready(count_only=False)).agent_ids)
    except VCCError as exc:
        log.warning("agent availability failed: %s (status %s)", exc.message, exc.status)
        return None, exc.user_message
    await cache.aset("calls:ready-agents", ready, READY_SECONDS)
    return ready, ""


async def readiness(*, agent: Agent | None, groups: Sequence[AgentGroup]) -> Readiness:
    """Before the click: is the caller ready, and how many are ready in each group (VCC, cached briefly)."""
    result = Readiness(me=None, groups={})
    if agent is not None:
        ready, result.error = await ready_agent_ids()
        result.me = None if ready is None else agent.display_id in ready
    if groups:
        async with get_async_client() as client:
            for group in groups:
                key = f"calls:ready:{group.display_id}"
                count = await cache.aget(key)
                if count is None:
                    try:
                        count = (await client.agents_ready([group.display_id])).count
                        await cache.aset(key, count, READY_SECONDS)
                    except VCCError as exc:
                        result.error = exc.user_message
                result.groups[group.pk] = count
    return result


async def worker_heartbeat(*, clock: Clock = _now) -> None:
    """Note that the call-following worker ran (the health page shows it)."""
    health.record_heartbeat("follow_calls", clock())


# --- Keeping in step with VCC's account --------------------------------------------------------------------


def sync_with_vcc(
    *,
    by=None,
    dry_run: bool,
    client: UserAdminClient | None = None,
    clock: Clock = _now,
) -> SyncRun:
    """Sync from VCC (or preview it, `dry_run`) and store the run, failed or not: the admin's button and the command.

    A VCC error is stored on the run (`run.error`) rather than raised; nothing was changed then.
    """
    run = SyncRun.objects.create(started_at=clock(), dry_run=dry_run, by=by)
    try:
        if client is None:
            with get_user_admin_client() as own:
                report = sync_from_vcc(own, dry_run=dry_run, now=run.started_at)
        else:
            report = sync_from_vcc(client, dry_run=dry_run, now=run.started_at)
    except VCCError as exc:
        run.error = f"{exc.user_message} ({exc.message})"
    except Exception as exc:  # a fault in vccweb: the run still ends, then the error goes on to be reported
        run.error, run.finished_at = f"vccweb failed during the sync: {type(exc).__name__}", clock()
        run.save()
        raise
    else:
        run.lines = report.lines()
        run.created, run.updated = len(report.created), len(report.updated)
        run.deactivated, run.problems = len(report.deactivated), len(report.problems)
    run.finished_at = clock()
    run.save()
    return run
