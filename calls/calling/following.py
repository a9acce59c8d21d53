"""Following a call: ask VCC where a live call is and record it, from the panel or the worker's rounds, and
close clicks whose answer from VCC was never recorded."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Q

from calls import health, rules
from calls.calling import events
from calls.calling.common import Clock, _db, _now, log
from calls.models import Agent, Call, CallEvent, VccEvent
from calls.vcc import AsyncVCCClient, CallDetail, VCCError, budget, get_async_client
from calls.webhooks import changes, outbox

FOLLOW_INTERVAL = timedelta(seconds=2)  # VCC is asked about one call at most this often
FOLLOW_BACKOFF_MAX = timedelta(seconds=60)
ABANDONED_AFTER = timedelta(minutes=5)  # a click with no recorded answer after this is closed as not confirmed


@dataclass
class Followed:
    call: Call
    changed: bool = False  # its phase changed: pages showing it should refresh
    error: str = ""  # for people, when VCC could not be asked
    retry_after: float | None = None  # VCC asked us to slow down


SILENT_LOOK_MAX = timedelta(minutes=10)  # a silent call that had events is asked about at least this often


def events_flowing(*, now: datetime) -> bool:
    """Whether VCC's events flow: one arrived within EVENT_SILENCE_SECONDS and was applied (a receiver that stores
    events nobody can apply is not a flow)."""
    since = now - timedelta(seconds=settings.EVENT_SILENCE_SECONDS)
    # Oldest first: events are applied in the order they arrive, so the first of the window has been applied
    # unless none has. Newest first (as EXISTS read the time index) walked the whole backlog of events not yet
    # applied on each call, on every look at a call while the worker was behind.
    applied = (
        VccEvent.objects.filter(received_at__gte=since, processed_at__isnull=False)
        .exclude(result__startswith="failed")
        .exclude(result__startswith=events.NOT_APPLIED_VERSION)
        .order_by("received_at")
        .values_list("pk", flat=True)[:1]
    )
    return bool(list(applied))


def applied_up_to(*, now: datetime) -> datetime:
    """The time up to which VCC's events have been applied: when the oldest event still waiting arrived (one that
    waits for its call, `not_before`, aside), else now; at most EVENT_SILENCE_SECONDS back, so one event that
    cannot be applied holds nothing back for long."""
    oldest = (
        VccEvent.objects.filter(processed_at__isnull=True)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .order_by("received_at", "id")
        .values_list("received_at", flat=True)
        .first()
    )
    floor = now - timedelta(seconds=settings.EVENT_SILENCE_SECONDS)
    return max(floor, min(now, oldest)) if oldest is not None else now


def polled(*, now: datetime, flowing: bool | None = None) -> Q:
    """Which live calls are due a look at VCC. While VCC's events flow: those no event has told of, once every
    event that arrived up to FOLLOW_INTERVAL after their look fell due has been applied (`applied_up_to`: the
    events of a call just placed arrive within a second; a worker behind on applying them must not ask VCC about
    calls whose events it holds, at a cost to VCC's request budget and to its own catching up), and those whose own
    events fell silent for EVENT_SILENCE_SECONDS (a lost `disconnected` must not leave a call live for ever), at a
    growing interval (`next_look`). When events stop: every call whose next look is due, and at once every call
    events were following (its next look was set for a flow that stopped)."""
    if flowing is None:
        flowing = events_flowing(now=now)
    due = Q(next_check_at__lte=now)
    if not flowing:
        return due | Q(last_event_at__isnull=False)
    untold = Q(last_event_at__isnull=True, next_check_at__lte=applied_up_to(now=now) - FOLLOW_INTERVAL)
    silent = Q(last_event_at__lt=now - timedelta(seconds=settings.EVENT_SILENCE_SECONDS))
    return untold | (due & silent)


def next_look(call: Call, *, now: datetime, flowing: bool | None = None) -> datetime:
    """When VCC is next asked about a live call: FOLLOW_INTERVAL, or for a call events follow (while they flow)
    twice as long as it has been silent, between EVENT_SILENCE_SECONDS and SILENT_LOOK_MAX: a long talk costs one
    or two looks, not one every two seconds."""
    if flowing is None:
        flowing = events_flowing(now=now)
    if call.last_event_at is None:
        # While events flow, `polled` waits FOLLOW_INTERVAL more for the call's events: every 2 s either way.
        return now if flowing else now + FOLLOW_INTERVAL
    if not flowing:
        return now + FOLLOW_INTERVAL
    silence = timedelta(seconds=settings.EVENT_SILENCE_SECONDS)
    return now + min(SILENT_LOOK_MAX, max(silence, 2 * (now - call.last_event_at)))


def _claim(call: Call, *, now: datetime, force: bool, flowing: bool | None = None) -> tuple[bool, bool]:
    """Take this call's next look at VCC, so that the panel and the workers never ask about it at once. Returns
    whether it was taken, and whether VCC's events flow (asked here unless `flowing` says), for its record."""
    if flowing is None:
        flowing = events_flowing(now=now)
    due = Q() if force else Q(next_check_at__isnull=True) | polled(now=now, flowing=flowing)
    taken = {"next_check_at": now + FOLLOW_INTERVAL} | ({} if flowing else {"last_event_at": None})
    return bool(Call.objects.filter(due, pk=call.pk, state=Call.State.LIVE).update(**taken)), flowing


async def follow(
    *,
    call: Call,
    clock: Clock = _now,
    force: bool = False,
    client: AsyncVCCClient | None = None,
    flowing: bool | None = None,
    priority: budget.Priority = budget.FOLLOW,
) -> Followed:
    """Ask VCC where a live call is (unless someone asked within FOLLOW_INTERVAL) and record it. `flowing`: whether
    VCC's events flow (events_flowing), when the caller knows; else it is asked. `priority`: what the look is for in
    the VCC request budget (a click's look at the call that would block it is the click's own)."""
    if call.state != Call.State.LIVE or not call.vcc_call_id:
        return Followed(call)
    taken, flowing = await _db(_claim)(call, now=clock(), force=force, flowing=flowing)
    if not taken:
        if force:
            # A forced claim fails only when the call stopped being live meanwhile (another request recorded its
            # end): answer with what was recorded, not the stale copy (a click would be refused as "on a call").
            await _db(call.refresh_from_db)()
        return Followed(call)
    detail = error = None
    try:
        # A poll refused by the budget (BudgetExhausted) backs the call off as VCC's own 429 would.
        with budget.priority(priority):
            if client is None:
                async with get_async_client() as own:
                    detail = await own.get_call(call.vcc_call_id)
            else:
                detail = await client.get_call(call.vcc_call_id)
    except VCCError as exc:
        error = exc
    return await _db(_record_follow)(call, detail=detail, error=error, now=clock(), flowing=flowing)


def _answerer(call: Call, detail: CallDetail) -> Agent | None:
    """The agent of a group call's groups who took it (VCC's from.agentId), once known; None for other calls."""
    if call.from_agent_id or call.answered_by_id or not detail.agent_id:
        return None
    return Agent.objects.filter(display_id=detail.agent_id).first()


# A call's columns that are not references to other rows (calls.models.Call).
_OWN_FIELDS = [f.attname for f in Call._meta.concrete_fields if not f.is_relation and not f.primary_key]


def _record_follow(
    call: Call, *, detail: CallDetail | None, error: VCCError | None, now: datetime, flowing: bool | None = None
) -> Followed:
    with transaction.atomic():
        # What VCC said is recorded only on a call still live: a supervisor may have closed it (or another look
        # recorded its end) while VCC was being asked, and a stale answer must not undo that. The row's own values
        # are read again under its lock (its related rows stay as loaded): VCC's events may have recorded more
        # meanwhile, its connection say, which the answer must neither write again nor announce twice.
        call.refresh_from_db(fields=_OWN_FIELDS, from_queryset=Call.objects.select_for_update())
        if call.state != Call.State.LIVE:
            return Followed(call, changed=True)
        with changes.call_change(call):
            return _record_answer(call, detail=detail, error=error, now=now, flowing=flowing)


def _phase(call: Call) -> str:
    if call.state == Call.State.ENDED:
        return "ended"
    if call.connected_at is not None:
        return "connected"
    return "ringing the contact" if call.agent_answered_at is not None else "ringing"


def _record_answer(
    call: Call, *, detail: CallDetail | None, error: VCCError | None, now: datetime, flowing: bool | None = None
) -> Followed:
    if detail is not None:
        changed = call.record_detail(
            agent_answered=detail.agent_answered,
            answered_by=_answerer(call, detail),
            live=detail.is_live,
            recording_status=detail.recording_status or "",
            result=(detail.result_code or "", detail.result_party or "", detail.result_reason or ""),
            connected=rules.is_connected(detail.recording_status),
            disposition_code=detail.disposition_code or "",
            now=now,
            next_check_at=next_look(call, now=now, flowing=flowing),
        )
        if changed:  # in the call's history with its source, as an event's change is (calls/calling/events.py)
            CallEvent.objects.create(
                call=call, at=now, kind=CallEvent.Kind.PROGRESS, detail=f"VCC: {_phase(call)} (poll)"
            )
        return Followed(call, changed=changed)
    assert error is not None
    if isinstance(error, budget.BudgetExhausted):
        # Not sent (the request budget had no room): VCC was not asked, so nothing is lost with it; the call keeps
        # what was last recorded and is looked at again once there is room.
        wait = max(timedelta(seconds=error.retry_after or 0), FOLLOW_INTERVAL)
        Call.objects.filter(pk=call.pk).update(next_check_at=now + min(wait, FOLLOW_BACKOFF_MAX))
        return Followed(call, retry_after=error.retry_after)
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


def _back_off(call_pk: int, until: datetime) -> None:
    Call.objects.filter(pk=call_pk, state=Call.State.LIVE).update(next_check_at=until)


def _claim_due(*, now: datetime, limit: int) -> tuple[list[Call], bool]:
    """Take up to `limit` live calls due a look, skipping ones another worker holds; and whether VCC's events
    flow (the round's looks need not ask again)."""
    flowing = events_flowing(now=now)
    calls = Call.objects.select_for_update(skip_locked=True, of=("self",))
    if outbox.wanted():  # the events of a look that changes a call are its API resource: read what that names here
        from calls.api.calls import with_parties

        calls = with_parties(calls)
    with transaction.atomic():
        due = list(
            calls.filter(polled(now=now, flowing=flowing), state=Call.State.LIVE)
            .exclude(vcc_call_id="")
            .order_by("next_check_at")[:limit]
        )
        # Events stopped: a call they followed is back to plain polling (no longer due at once every round).
        taken = {"next_check_at": now + FOLLOW_INTERVAL} | ({} if flowing else {"last_event_at": None})
        Call.objects.filter(pk__in=[c.pk for c in due]).update(**taken)
    return due, flowing


@dataclass
class Round:
    """What one round of the worker did."""

    asked: int = 0
    ended: int = 0
    errors: int = 0
    closed_abandoned: int = 0
    retry_after: float | None = None  # VCC asked us to slow down (429) or is failing (5xx): wait this long


async def follow_due(
    *, clock: Clock = _now, limit: int = 50, concurrency: int = 8, close_abandoned: bool = True
) -> Round:
    """One round of following: every live call that is due (up to `limit`), and the clicks VCC never answered
    (unless `close_abandoned` is off: the worker closes those in a job of their own, calls/tasks.py)."""
    now = clock()
    due, flowing = await _db(_claim_due)(now=now, limit=limit)
    result = Round(asked=len(due))
    if due:
        gate = asyncio.Semaphore(concurrency)
        async with get_async_client() as client:

            async def one(call: Call) -> Followed:
                async with gate:
                    try:
                        return await follow(call=call, clock=clock, force=True, client=client, flowing=flowing)
                    except Exception:
                        # One call whose look cannot be recorded (a fault here, an answer the database refuses) must
                        # not lose the looks of the others of the round, nor fail every round: it is asked again,
                        # after the longest back-off (not every 2 s, a request and a traceback each time).
                        log.exception("call %s: recording VCC's answer failed", call.pk)
                        await _db(_back_off)(call.pk, clock() + FOLLOW_BACKOFF_MAX)
                        return Followed(call, error="vccweb could not record VCC's answer")

            for followed in await asyncio.gather(*(one(c) for c in due)):
                result.ended += followed.call.state == Call.State.ENDED
                if followed.error:
                    result.errors += 1
                    result.retry_after = max(result.retry_after or 0, followed.retry_after or 2.0)
    if close_abandoned:
        result.closed_abandoned = await _db(close_abandoned_clicks)(now=now)
    return result


def close_abandoned_clicks(*, now: datetime) -> int:
    """Clicks whose answer from VCC was never recorded (their process died mid-request): not confirmed."""
    count = 0
    for pk in Call.objects.filter(state=Call.State.REQUESTED, requested_at__lt=now - ABANDONED_AFTER).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():  # locked, and still asking VCC: not one a late answer or another run just wrote
            call = Call.objects.select_for_update(skip_locked=True).filter(pk=pk, state=Call.State.REQUESTED).first()
            if call is None:
                continue
            with changes.call_change(call):
                call.record_unconfirmed(
                    message="No answer from VCC was recorded for this click",
                    status=None,
                    display="No answer from VCC was recorded for this click, so the call may have been placed: check "
                    "your phone and the call log before trying again.",
                    latency_ms=None,
                    now=now,
                )
        count += 1
    return count


async def worker_heartbeat(*, clock: Clock = _now) -> None:
    """Note that the call-following worker ran (the health page shows it, from the database). A database outage
    must not end the worker: the missing heartbeat then shows on the health page, which is true."""
    try:
        await _db(health.record_heartbeat)("follow_calls", clock())
    except DatabaseError:
        log.exception("follow_calls: noting the heartbeat failed")
