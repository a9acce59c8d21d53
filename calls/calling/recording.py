"""Recording and wrap-up: pause or resume a live call's recording, and send an ended call's disposition to VCC
with the notes kept here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from calls import callbacks, locks, phones
from calls.cache import count
from calls.calling.common import Clock, _db, _now, log
from calls.models import AgentGroup, Call, Contact, ContactPhone, DispositionCode
from calls.privacy import hashing
from calls.privacy.masking import is_masked
from calls.rules import Refused
from calls.vcc import VCCError, budget, get_async_client
from calls.webhooks import changes

if TYPE_CHECKING:
    from django.contrib.auth.models import User

FIRST_WRAP_UP_CLAIM = 120  # s: a first wrap-up holds its call this long at most (VCC's answer, then the write)
RECORDING_PENDING = timedelta(seconds=5)  # how long a requested recording change shows before VCC confirms it
# Recording changes and wrap-ups one person may send VCC in a clock minute. They draw from the request budget above
# following calls (budget.RECORDING: "a person pressed a button; rare"): without a limit of their own, one person
# pressing them again and again (or a script) would take that share from everyone's live calls.
BUTTONS_PER_MINUTE = 20


class TooManyPresses(VCCError):
    """Not sent: the person sent BUTTONS_PER_MINUTE recording changes and wrap-ups this minute (vccweb's limit, not
    VCC's: the API answers 429 with Retry-After)."""

    def __init__(self, user_id: int, *, wait: int) -> None:
        super().__init__(
            f"user {user_id} sent {BUTTONS_PER_MINUTE} recording changes or wrap-ups this minute",
            user_message=f"You sent {BUTTONS_PER_MINUTE} recording changes or wrap-ups this minute: wait {wait} s, "
            "then send it again.",
            retryable=True,
            retry_after=wait,
            local=True,
        )


async def _person_may_send(user: User | None, clock: Clock) -> None:
    """Count a recording change or wrap-up the user is about to send VCC; TooManyPresses past BUTTONS_PER_MINUTE this
    minute."""
    if user is None:
        return
    at = clock().timestamp()
    (sent,) = await sync_to_async(count)([f"calls:vcc-buttons:{user.pk}:{int(at // 60)}"], 120)
    if sent > BUTTONS_PER_MINUTE:
        raise TooManyPresses(user.pk, wait=max(1, 60 - int(at % 60)))


async def set_recording(*, call: Call, status: str, clock: Clock = _now, user: User | None = None) -> str:
    """Pause ("Paused") or resume ("Started") a live call's recording; returns an error for people, or "". The
    changes `user` sends are limited (BUTTONS_PER_MINUTE)."""
    if not call.is_live or not call.vcc_call_id:
        return "The call is not live, so its recording cannot change."
    try:
        await _person_may_send(user, clock)
        with budget.priority(budget.RECORDING):
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


@dataclass(frozen=True)
class CallbackPromise:
    """A callback promised at the wrap-up: when, to the person wrapping up or to a group, and a short note."""

    due_at: datetime
    group: AgentGroup | None = None
    note: str = ""


@dataclass
class WrappedUp:
    error: str = ""  # for people: what to do next (the notes are saved either way)
    changed: tuple[str, ...] = ()  # what else the disposition changed, in words
    vcc: str = ""  # VCC's own text, when VCC refused or failed (for the log and the API)
    vcc_status: int | None = None
    retry_after: float | None = None  # not sent: vccweb's own limit or budget; send again after this many seconds


async def wrap_up(
    *,
    call: Call,
    disposition: DispositionCode,
    notes: str,
    clock: Clock = _now,
    user: User | None = None,
    callback: CallbackPromise | None = None,
    first: bool = False,
) -> WrappedUp:
    """Send the disposition to VCC and store it with the notes; notes (and a callback promised by `user`) are kept
    even when VCC fails, or `user` sent too many this minute (BUTTONS_PER_MINUTE). Once wrapped up, the call keeps
    the callbacks it was the callback for (callbacks.keep).

    `first`: the form was drawn for a call not wrapped up yet. Two of them sent at once (two tabs, the bar and the
    panel) must not both reach VCC and the row, the later replacing the earlier's outcome and notes: the first to
    claim the call goes on, the other is refused (Refused), as is one that finds it wrapped up once it may write."""
    if call.state != Call.State.ENDED:
        return WrappedUp(error="Wrap up once the call has ended.")
    if not call.asks_sales_wrap_up and call.wrapped_up_at is None:
        why = "it was a call to a colleague" if call.to_agent_id else "it never connected"
        return WrappedUp(error=f"This call needs no wrap-up: {why}.")
    if not first:
        return await _wrap_up(
            call=call, disposition=disposition, notes=notes, clock=clock, user=user, callback=callback
        )
    claim, owner = f"wrap-up:{call.pk}", uuid.uuid4().hex
    await _db(_claim_first_wrap_up)(call, claim, owner)
    try:
        return await _wrap_up(
            call=call, disposition=disposition, notes=notes, clock=clock, user=user, callback=callback, first=True
        )
    finally:
        await _db(locks.release_dial_lock)(claim, owner=owner)


def _claim_first_wrap_up(call: Call, claim: str, owner: str) -> None:
    """Hold the call for this first wrap-up (a row in the database, as a click holds a number: a cache key would
    hold nothing while Redis is down, or across processes without it), then make sure it is not wrapped up already:
    both before VCC is told anything. Refused otherwise."""
    if not locks.acquire_dial_lock(claim, owner=owner, seconds=FIRST_WRAP_UP_CLAIM):
        raise Refused("This call is being wrapped up in another tab or window: nothing was changed here. Reload the "
                      "page to see its wrap-up.")  # fmt: skip
    done = Call.objects.filter(pk=call.pk, wrapped_up_at__isnull=False).values_list("disposition_code", flat=True)
    if (code := done.first()) is not None:
        locks.release_dial_lock(claim, owner=owner)
        raise Refused(
            f"This call was wrapped up meanwhile, as “{code}”: nothing was changed here. Reload the page to edit the "
            "wrap-up."
        )


async def _wrap_up(
    *,
    call: Call,
    disposition: DispositionCode,
    notes: str,
    clock: Clock,
    user: User | None,
    callback: CallbackPromise | None,
    first: bool = False,
) -> WrappedUp:
    confirmed, remarks, error, vcc, vcc_status, retry_after = True, [], "", "", None, None
    if call.vcc_call_id:
        try:
            await _person_may_send(user, clock)
            with budget.priority(budget.RECORDING):
                async with get_async_client() as client:
                    agent = call.agent  # for a group call, the agent who answered it
                    agent_id = agent.display_id if agent else None
                    await client.set_disposition(call.vcc_call_id, disposition.code, agent_id)
        except VCCError as exc:
            (log.info if exc.local else log.warning)(
                "call %s: disposition failed: %s (status %s)", call.pk, exc.message, exc.status
            )
            if exc.local and exc.retry_after is not None:  # not sent: vccweb's limit or budget, not VCC's refusal
                confirmed, retry_after = False, exc.retry_after
                error = f"{exc.user_message} Your notes are saved."
            elif exc.status == 404:
                # VCC keeps calls for 24 hours: past that, the outcome can only be kept here.
                remarks.append("VCC no longer has this call, so the outcome is kept in vccweb only.")
            else:
                confirmed = False
                error = f"{exc.user_message} Your notes are saved; send the outcome again."
                vcc, vcc_status = exc.message, exc.status
    changed = await _db(_store_wrap_up)(
        call,
        disposition=disposition,
        notes=notes,
        now=clock(),
        confirmed=confirmed,
        user=user,
        callback=callback,
        first=first,
    )
    if error and changed:  # shown with the error, in place of the wrap-up's lines (the form stays open)
        error = f"{error} {' '.join(changed)}"
    return WrappedUp(
        error=error, changed=tuple(remarks + changed), vcc=vcc, vcc_status=vcc_status, retry_after=retry_after
    )


def _store_wrap_up(
    call: Call,
    *,
    disposition: DispositionCode,
    notes: str,
    now: datetime,
    confirmed: bool,
    user: User | None = None,
    callback: CallbackPromise | None = None,
    first: bool = False,
) -> list[str]:
    with transaction.atomic():  # the wrap-up, the callbacks it keeps and the one it promises: all or nothing
        if first:  # wrapped up since the form was drawn, by a writer that did not claim it (the API): left as it is
            done = Call.objects.select_for_update().filter(pk=call.pk).values_list("wrapped_up_at", "disposition_code")
            if (row := done.first()) is not None and row[0] is not None:
                raise Refused(
                    f"This call was wrapped up meanwhile, as “{row[1]}”, which vccweb keeps; VCC was told "
                    f"“{disposition.code}” after it. Reload the page and save the wrap-up again for VCC to agree."
                )
        with changes.call_change(call):
            call.record_wrap_up(code=disposition.code, notes=notes, now=now, confirmed=confirmed)
        remarks = _callbacks(call, now=now, keeps=confirmed, user=user, callback=callback)
        # An opt-out is honoured at once, whether or not VCC has the disposition yet: the person asked not to be
        # called, and nobody may be sent back to the wrap-up.
        remarks += _do_not_call(call, disposition, now=now)
        if confirmed:
            _settle_queue_attempt(call, now=now)  # after the callback it promised and the do-not-call it marked
        return remarks


def _callbacks(
    call: Call, *, now: datetime, keeps: bool, user: User | None, callback: CallbackPromise | None
) -> list[str]:
    remarks = []
    if keeps and (kept := callbacks.keep(call, now)):
        remarks.append("This call kept the callback that was due." if kept == 1 else f"It kept {kept} callbacks.")
    if callback is not None and user is not None:
        try:
            made = callbacks.promise(
                call=call, user=user, due_at=callback.due_at, to_group=callback.group, note=callback.note, now=now
            )
            when = timezone.localtime(made.due_at)
            remarks.append(f"Callback promised for {when:%a %-d %b, %H:%M}, to {made.to_whom}.")
        except ValidationError as exc:  # the form checked it a moment ago: time has moved on since
            remarks.append(f"The callback was not saved: {' '.join(exc.messages)}")
    return remarks


def _do_not_call(call: Call, disposition: DispositionCode, *, now: datetime) -> list[str]:
    # Anyone may mark a number do-not-call: an opt-out is honoured at once. Only supervisors clear it.
    if disposition.action == DispositionCode.Action.NUMBER_DNC and call.phone_id:
        with changes.contact_change(_loaded(call.phone).contact_id):
            # The number dialled, not whatever the contact's row holds now: it may have been corrected since.
            marked = ContactPhone.objects.filter(pk=call.phone_id, number=call.to_number).update(do_not_call=True)
        if not marked:
            return [
                f"Nothing was marked do not call: {phones.display(call.to_number)} was changed on the contact since "
                "this call. Mark it on the contact's page if it is still theirs."
            ]
        return [f"{_loaded(call.phone).display} is now marked do not call."]
    if disposition.action == DispositionCode.Action.NUMBER_DNC:
        # No contact's number to mark: one not in the contacts, or masked since (masking drops the call's link).
        why = "has been masked: the call no longer knows it" if is_masked(call.to_number) else "is not a contact's"
        return [f"Nothing was marked do not call: this call's number {why}. Mark it on the contact's page."]
    if disposition.action == DispositionCode.Action.CONTACT_DNC and call.contact_id:
        with changes.contact_change(call.contact_id):
            Contact.objects.filter(pk=call.contact_id).update(do_not_call=True)
        return [f"{_loaded(call.contact).name} is now marked do not call."]
    if disposition.action == DispositionCode.Action.CONTACT_DNC:
        # The contact was deleted (or erased) since the call: the number dialled keeps the opt-out, as a deleted
        # do-not-call contact's numbers do, so a contact given it later is do-not-call at once.
        if not call.to_number or is_masked(call.to_number):
            return ["Nothing was marked do not call: this call's contact and number are no longer kept."]
        hashing.keep_opt_outs([call.to_number], at=now)
        return [f"{phones.display(call.to_number)} is kept as do not call: this call's contact was deleted since."]
    return []


def _loaded[M: Model](row: M | None) -> M:
    """The row a set foreign key points to (Django returns None only when the key is None)."""
    assert row is not None
    return row


def _settle_queue_attempt(call: Call, *, now: datetime) -> None:
    """A wrap-up ends the call's attempt in a call queue, if it was one (after its do-not-call marks)."""
    from calls.queues import working  # the queues build on calling, not the other way round

    working.after_wrap_up(call, now=now)
