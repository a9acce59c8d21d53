"""What each call from a call queue does to its contact's place: the call becomes the held contact's attempt
(`note_call`), and its outcome, once known, takes the contact out (reached, do-not-call, unreached) or puts them back
after the wait or at a promised callback (`settle`). The wrap-up settles at once; the minute job settles what agents
left behind (`settle_finished`). calls/queues/working.py re-exports these: it is the queues' one interface."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from calls.models import Call, Callback, DispositionCode, QueueAttempt, QueueEntry
from calls.queues import reports
from calls.vcc.core import refusal_retryable

if TYPE_CHECKING:
    from django.contrib.auth.models import User

CLAIM_IDLE = timedelta(minutes=10)  # a claim with no sign of its agent for this long lapses
WRAP_UP_WAIT = timedelta(hours=1)  # a connected call not wrapped up by then counts as not reached


def note_call(call: Call, *, user: User, now: datetime, queue_id: int | None = None) -> QueueAttempt | None:
    """A call just placed by the user from a queue's bar (queue_id): when it is to the contact they hold there (or
    a callback of theirs whose contact is in that queue), it is that entry's attempt. A contact the queue is done
    with (reached, unreached, do not call), still held for the bar to show it, gets no more attempts: a call to
    them again is theirs alone, and must not turn a reached contact into an unreached one."""
    if call.contact_id is None:
        return None
    fresh = now - CLAIM_IDLE
    entries = QueueEntry.objects.filter(contact_id=call.contact_id, state=QueueEntry.State.WAITING)
    if queue_id is not None:
        entries = entries.filter(queue_id=queue_id)
    entry = entries.filter(claimed_by=user, claimed_at__gt=fresh).first()
    if entry is None:
        held_callback = Callback.objects.filter(claimed_by=user, claimed_at__gt=fresh, contact_id=call.contact_id)
        if queue_id is None or not held_callback.exists():
            return None
        entry = entries.first()
        if entry is None:
            return None
    with transaction.atomic():
        if QueueAttempt.objects.filter(call=call).exists():
            return None
        # The agent holds the entry from now: its outcome shows on their bar, as for any contact of the queue.
        claim = {"claimed_by": user, "claimed_since": entry.claimed_since or now} if entry.claimed_by_id is None else {}
        if claim:  # one entry of a queue an agent (queueentry_one_held): any other of this queue is let go
            QueueEntry.objects.filter(queue_id=entry.queue_id, claimed_by=user).exclude(pk=entry.pk).update(
                claimed_by=None, claimed_at=None, claimed_since=None
            )
        QueueEntry.objects.filter(pk=entry.pk).update(
            attempts=entry.attempts + 1, last_call=call, last_attempt_at=now, claimed_at=now, **claim
        )
        attempt = QueueAttempt.objects.create(queue_id=entry.queue_id, entry=entry, call=call, user=user, at=now)
    if call.state in (Call.State.FAILED, Call.State.ENDED, Call.State.UNCONFIRMED):
        settle(attempt, now=now)
    return attempt


def settle(attempt: QueueAttempt, *, now: datetime) -> str:
    """Apply a call's outcome to its queue entry once it is known: reached (a final disposition), back after the
    wait (no answer, busy, a disposition that did not reach them), back at a promised callback, out for good
    (do-not-call), or unreached (attempts used up). Returns the effect; PENDING while the call or its wrap-up is
    still to come."""
    if attempt.effect != QueueAttempt.Effect.PENDING or attempt.call_id is None or attempt.entry_id is None:
        return attempt.effect
    call = Call.objects.select_related("contact", "phone").get(pk=attempt.call_id)
    effect, outcome = _effect_of(call, now=now)
    if effect == QueueAttempt.Effect.PENDING:
        return effect
    with transaction.atomic():
        # Settled once: the bar, "next", the wrap-up and the minute job may all try at the same moment.
        locked = QueueAttempt.objects.select_for_update().filter(pk=attempt.pk, effect=QueueAttempt.Effect.PENDING)
        if not locked.exists():
            attempt.refresh_from_db(fields=["effect", "outcome"])
            return attempt.effect
        entry = QueueEntry.objects.select_for_update().select_related("queue").get(pk=attempt.entry_id)
        queue = entry.queue
        due = now + timedelta(minutes=queue.retry_minutes)
        promised = Callback.objects.filter(promised_on=call, state=Callback.State.OPEN).order_by("due_at").first()
        if promised is not None and effect in (QueueAttempt.Effect.RETRY, QueueAttempt.Effect.REACHED):
            effect, due = QueueAttempt.Effect.CALLBACK, promised.due_at  # "call me back at 3" wins
        changes: dict[str, object] = {"last_outcome": outcome}
        if _never_rang(call):
            changes["attempts"] = max(entry.attempts - 1, 0)  # note_call counted it: not the contact's attempt
        elif effect == QueueAttempt.Effect.RETRY and entry.attempts >= queue.max_attempts:
            effect = QueueAttempt.Effect.UNREACHED
        if entry.state == QueueEntry.State.REACHED and effect != QueueAttempt.Effect.DO_NOT_CALL:
            # Its callback was kept while this call was pending (callback_closed): reached, as its entry counts.
            effect = QueueAttempt.Effect.REACHED
        # The claim stays: the agent's bar shows the outcome and offers Next (which lets it go).
        if effect in (QueueAttempt.Effect.RETRY, QueueAttempt.Effect.CALLBACK):
            changes |= {"due_at": due, "is_callback": effect == QueueAttempt.Effect.CALLBACK}
        else:
            state = {
                QueueAttempt.Effect.REACHED: QueueEntry.State.REACHED,
                QueueAttempt.Effect.DO_NOT_CALL: QueueEntry.State.DO_NOT_CALL,
                QueueAttempt.Effect.UNREACHED: QueueEntry.State.UNREACHED,
            }[QueueAttempt.Effect(effect)]
            changes |= {"state": state, "finished_at": now, "is_callback": False}
        QueueEntry.objects.filter(pk=entry.pk).update(**changes)
        QueueAttempt.objects.filter(pk=attempt.pk).update(effect=effect, outcome=outcome)
    reports.forget_progress(entry.queue_id)  # the bar shows the contact counted as done at once
    attempt.effect, attempt.outcome = effect, outcome
    return effect


def _never_rang(call: Call) -> bool:
    """Whether the call never rang the contact's phone for a reason not theirs: VCC refused it for now, or the
    agent's own phone, which VCC rings first, was not answered or failed. It puts the contact back after the wait
    without using one of their attempts. A call that may have been placed (unconfirmed) counts."""
    if call.state == Call.State.FAILED:
        # VCC refused it: a refusal that may pass (a busy agent, nobody free in the groups, VCC busy or down) is
        # not the contact's; one that will not (an invalid number) uses an attempt, so the contact is not offered
        # again and again for ever.
        return refusal_retryable(call.error_status, call.error_message)
    agent_side = call.outcome == Call.Outcome.FAILED and call.result_party.lower() == "originator"
    return call.connected_at is None and (call.outcome == Call.Outcome.AGENT_NO_ANSWER or agent_side)


def _effect_of(call: Call, *, now: datetime) -> tuple[str, str]:
    """What a call's outcome does in a queue, and the words for it (the disposition, or how the call ended). A call
    that connected and was never wrapped up counts as not reached once WRAP_UP_WAIT has passed."""
    if call.contact is not None and call.contact.do_not_call:
        return QueueAttempt.Effect.DO_NOT_CALL, "Do not call"
    if call.phone is not None and call.phone.do_not_call:
        return QueueAttempt.Effect.DO_NOT_CALL, "Number marked do not call"
    if call.state in Call.IN_PROGRESS:
        return QueueAttempt.Effect.PENDING, ""
    if call.state in (Call.State.FAILED, Call.State.UNCONFIRMED) or call.outcome in Call.NEVER_CONNECTED:
        return QueueAttempt.Effect.RETRY, call.get_outcome_display()
    if call.wrapped_up_at is None or not call.disposition_code:
        if call.ended_at is not None and call.ended_at <= now - WRAP_UP_WAIT:
            return QueueAttempt.Effect.RETRY, "Not wrapped up"
        return QueueAttempt.Effect.PENDING, ""
    disposition = DispositionCode.objects.filter(code=call.disposition_code).first()
    if disposition is not None and disposition.action in (
        DispositionCode.Action.NUMBER_DNC,
        DispositionCode.Action.CONTACT_DNC,
    ):
        return QueueAttempt.Effect.DO_NOT_CALL, call.disposition_code
    if disposition is not None and disposition.queue_effect == DispositionCode.QueueEffect.RETRY:
        return QueueAttempt.Effect.RETRY, call.disposition_code
    return QueueAttempt.Effect.REACHED, call.disposition_code


CALLED_BACK = "Called back"  # a contact's promised callback kept (or marked done): reached, the queue's outcome


def callback_closed(contact_id: int, *, reached: bool, now: datetime) -> int:
    """The contact's callback was kept (or marked done: reached) or cancelled outside the queue: the entries that
    waited for it are reached, or back in the queue's order. Every waiting entry of the contact waited for it (none
    is offered while the contact has an open callback), whether the queue promised it or a call before the queue
    did. Returns how many entries changed.

    A contact reached so is an attempt of its queue, reached, as any other (the report's outcomes and agents count
    attempts, its progress entries): with the call that kept the callback, when one did and it is no queue's attempt
    yet, by its caller. An entry whose own call from the queue is still to be settled (a held callback called from
    the bar) gets none: that call is its attempt, and settles as reached."""
    waiting = QueueEntry.objects.filter(contact_id=contact_id, state=QueueEntry.State.WAITING)
    if not reached:
        return waiting.filter(is_callback=True).update(is_callback=False, due_at=now)
    keeper = _keeping_call(contact_id, now=now)
    caller = keeper.created_by_id if keeper is not None else None
    call = keeper if keeper is not None and not QueueAttempt.objects.filter(call=keeper).exists() else None
    pending = QueueAttempt.objects.filter(entry=OuterRef("pk"), effect=QueueAttempt.Effect.PENDING)
    with transaction.atomic():
        entries = list(waiting.select_for_update().annotate(pending=Exists(pending)).order_by("pk"))
        for entry in entries:
            linked = call if call is not None and not entry.pending else None
            call = None if linked is not None else call  # a call is one queue's attempt (QueueAttempt.call)
            tried = {"attempts": entry.attempts + 1, "last_call": linked, "last_attempt_at": now} if linked else {}
            QueueEntry.objects.filter(pk=entry.pk).update(
                state=QueueEntry.State.REACHED, finished_at=now, is_callback=False, last_outcome=CALLED_BACK, **tried
            )
            if not entry.pending:
                QueueAttempt.objects.create(
                    queue_id=entry.queue_id,
                    entry=entry,
                    call=linked,
                    user_id=caller,
                    at=now,
                    outcome=CALLED_BACK,
                    effect=QueueAttempt.Effect.REACHED,
                )
    for queue_id in {entry.queue_id for entry in entries}:
        reports.forget_progress(queue_id)
    return len(entries)


def _keeping_call(contact_id: int, *, now: datetime) -> Call | None:
    """The call that kept the contact's callback just now (callbacks.keep), if one did (not marked done by hand)."""
    kept = Callback.objects.filter(contact_id=contact_id, state=Callback.State.DONE, done_at=now)
    call_id = kept.exclude(done_by_call=None).order_by("-pk").values_list("done_by_call_id", flat=True).first()
    return Call.objects.filter(pk=call_id).first() if call_id is not None else None


def settle_finished(*, now: datetime, limit: int = 500) -> int:
    """The periodic catch-up: attempts whose call has ended or been wrapped up since, for agents who moved on."""
    known = (
        Q(call__state__in=[Call.State.FAILED, Call.State.UNCONFIRMED])
        | Q(call__outcome__in=Call.NEVER_CONNECTED)
        | Q(call__wrapped_up_at__isnull=False)
        | Q(call__ended_at__lte=now - WRAP_UP_WAIT)
    )
    pending = (
        QueueAttempt.objects.filter(known, effect=QueueAttempt.Effect.PENDING, call__isnull=False)
        .exclude(call__state__in=Call.IN_PROGRESS)
        .order_by("pk")[:limit]
    )
    done = 0
    for attempt in pending:
        if settle(attempt, now=now) != QueueAttempt.Effect.PENDING:
            done += 1
    return done


def reopened(call: Call) -> None:
    """A click closed by hand and wrapped up before VCC placed it after all (placing._record_answer): the queue
    attempt that wrap-up settled waits for the real call's outcome again, and its entry is back to waiting (not
    offered meanwhile: its attempt is pending)."""
    # Not the attempt a kept callback made of it (callback_closed): the callback stays kept, the contact reached.
    attempts = QueueAttempt.objects.filter(call=call).exclude(outcome=CALLED_BACK, effect=QueueAttempt.Effect.REACHED)
    attempt = attempts.exclude(effect=QueueAttempt.Effect.PENDING).first()
    if attempt is None or attempt.entry_id is None:  # no attempt, or its entry left the queue since
        return
    QueueAttempt.objects.filter(pk=attempt.pk).update(effect=QueueAttempt.Effect.PENDING, outcome="")
    QueueEntry.objects.filter(pk=attempt.entry_id).update(
        state=QueueEntry.State.WAITING, finished_at=None, is_callback=False, last_outcome=""
    )
    reports.forget_progress(attempt.queue_id)


def after_wrap_up(call: Call, *, now: datetime) -> None:
    """Run with a wrap-up: the queue attempt it ends, if any, is settled at once. A wrap-up again with another
    disposition (a mistake corrected), or one made after the minute job counted the call as not wrapped up, settles
    it again, while it is still its contact's latest attempt."""
    attempt = QueueAttempt.objects.filter(call=call).first()
    if attempt is None:
        return
    if attempt.effect == QueueAttempt.Effect.PENDING or _unsettle(attempt, call, now=now):
        settle(attempt, now=now)


def _unsettle(attempt: QueueAttempt, call: Call, *, now: datetime) -> bool:
    """Undo what a settled attempt did to its entry, so that settle applies the call's outcome as it is now: only
    when its outcome changed and nothing happened to the entry since (no later attempt, no callback kept). Returns
    whether it was undone."""
    if attempt.entry_id is None or _effect_of(call, now=now)[1] in ("", attempt.outcome):
        return False
    with transaction.atomic():
        locked = QueueAttempt.objects.select_for_update().filter(pk=attempt.pk).first()
        entry = QueueEntry.objects.select_for_update().filter(pk=attempt.entry_id).first()
        if locked is None or entry is None or locked.effect == QueueAttempt.Effect.PENDING:
            return False
        later = QueueAttempt.objects.filter(entry_id=entry.pk, pk__gt=locked.pk).exists()
        if later or entry.last_call_id != call.pk or entry.last_outcome != locked.outcome:
            return False
        QueueEntry.objects.filter(pk=entry.pk).update(
            state=QueueEntry.State.WAITING,
            finished_at=None,
            # settle takes back the attempt of a call that never rang the contact each time it settles it
            attempts=entry.attempts + (1 if _never_rang(call) else 0),
        )
        QueueAttempt.objects.filter(pk=locked.pk).update(effect=QueueAttempt.Effect.PENDING, outcome="")
    attempt.effect, attempt.outcome = QueueAttempt.Effect.PENDING, ""
    return True
