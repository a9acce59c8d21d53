"""Working a call queue: the next contact for an agent, held by them alone; skipping, stopping; and what each call's
outcome does to its contact's place in the queue.

Who holds what is on the rows themselves (QueueEntry.claimed_by, Callback.claimed_by), so it outlives a request and
shows on the queue's page; a claim lapses after CLAIM_IDLE without a sign of its agent (the queue bar's refresh is
one), and another agent may then take the contact. Taking one is a short transaction that locks candidate rows with
`FOR UPDATE SKIP LOCKED`: agents pulling "next" at once each lock different rows, never wait on one another, and
the claim is re-checked on the locked row itself.

The agent's own due callbacks (to them, or to a group they are in) come before the queue's contacts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from calls import permissions as perms
from calls.calling import hours as calling_hours
from calls.models import (
    Agent,
    AgentGroup,
    Call,
    Callback,
    CallQueue,
    Contact,
    ContactPhone,
    QueueAttempt,
    QueueEntry,
)
from calls.queues import claims
from calls.queues.outcomes import (  # noqa: F401  (working.settle & co. are the queue's one interface)
    CLAIM_IDLE,
    WRAP_UP_WAIT,
    after_wrap_up,
    callback_closed,
    note_call,
    settle,
    settle_finished,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger("calls.queues")

CANDIDATES = 8  # callbacks locked at a time when looking for the agent's next one


# --- Who may work which queue -------------------------------------------------------------------------------


def queues_for(user: User) -> list[CallQueue]:
    """The active and paused queues given to the user (to their agent or a group they are in)."""
    agent = Agent.objects.filter(user=user).first()
    if agent is None:
        return []
    given = Q(agents=agent) | Q(groups__members=agent)
    return list(CallQueue.objects.exclude(state=CallQueue.State.CLOSED).filter(given).distinct().order_by("name"))


def may_work(user: User, queue: CallQueue) -> bool:
    """Whether the user may take contacts from the queue: it is given to them, or they run queues (supervisors)."""
    if not user.has_perm(perms.WORK_QUEUE) and not user.has_perm(perms.CHANGE_QUEUE):
        return False
    if user.has_perm(perms.CHANGE_QUEUE):
        return True
    agent = Agent.objects.filter(user=user).first()
    if agent is None:
        return False
    return queue.agents.filter(pk=agent.pk).exists() or queue.groups.filter(members=agent).exists()


def workable(user: User, pk: int) -> CallQueue | None:
    """The queue of that id, if the user may work it: a page's `?queue=` is anyone's to change, so its bar and the
    attempts of its calls go only with a queue given to them."""
    queue = CallQueue.objects.filter(pk=pk).first()
    return queue if queue is not None and may_work(user, queue) else None


# --- What the agent holds -----------------------------------------------------------------------------------


@dataclass
class Held:
    """What an agent holds in a queue: one queue entry, or one callback of theirs (served first)."""

    queue: CallQueue
    contact: Contact
    entry: QueueEntry | None = None
    callback: Callback | None = None

    @property
    def attempt(self) -> QueueAttempt | None:
        """The call made to the held entry since it was taken (the latest), if any: pending until settled."""
        if self.entry is None or self.entry.claimed_since is None:
            return None
        return (
            self.entry.tries.filter(at__gte=self.entry.claimed_since, call__isnull=False)
            .select_related("call")
            .order_by("-pk")
            .first()
        )


def held(user: User, queue: CallQueue, *, now: datetime) -> Held | None:
    """The contact the user holds in this queue (a callback first), if the claim is still theirs."""
    fresh = now - CLAIM_IDLE
    callback = Callback.objects.select_related("contact", "phone").filter(claimed_by=user, claimed_at__gt=fresh).first()
    if callback is not None:
        entry = QueueEntry.objects.filter(queue=queue, contact=callback.contact).first()
        return Held(queue, callback.contact, entry=entry, callback=callback)
    entry = (
        QueueEntry.objects.select_related("contact").filter(queue=queue, claimed_by=user, claimed_at__gt=fresh).first()
    )
    return Held(queue, entry.contact, entry=entry) if entry is not None else None


def still_here(user: User, queue: CallQueue, *, now: datetime) -> None:
    """A sign of the agent (the refresh of this queue's bar): what they hold in this queue, and their callback,
    stay theirs for another CLAIM_IDLE. A contact held in another queue is not kept by it: it lapses."""
    fresh = now - CLAIM_IDLE
    QueueEntry.objects.filter(claimed_by=user, queue=queue, claimed_at__gt=fresh).update(claimed_at=now)
    Callback.objects.filter(claimed_by=user, claimed_at__gt=fresh).update(claimed_at=now)


def _let_go_elsewhere(user: User, queue: CallQueue, *, now: datetime) -> None:
    """Give back what the user holds in other queues (Start here without Stop there), its call's outcome applied
    first if it is known; a call still going on is settled by the minute job, and keeps its contact from being
    offered until then."""
    elsewhere = QueueEntry.objects.filter(claimed_by=user).exclude(queue=queue)
    for attempt in QueueAttempt.objects.filter(
        entry__in=elsewhere, effect=QueueAttempt.Effect.PENDING, call__isnull=False
    ):
        settle(attempt, now=now)
    elsewhere.update(claimed_by=None, claimed_at=None, claimed_since=None)


def release(user: User) -> int:
    """Give back everything the user holds (Stop, or moving on): the contacts keep their place."""
    with transaction.atomic():
        n = QueueEntry.objects.filter(claimed_by=user).update(claimed_by=None, claimed_at=None, claimed_since=None)
        n += Callback.objects.filter(claimed_by=user).update(claimed_by=None, claimed_at=None)
    return n


# --- Taking the next contact --------------------------------------------------------------------------------


@dataclass
class Next:
    held: Held | None
    why_none: str = ""  # when there is nobody to call now: why, in words


def take_next(*, user: User, queue: CallQueue, now: datetime) -> Next:
    """The contact the user should call now: what they already hold if its call is not settled (a call going on,
    or no call yet), else their first due callback, else the queue's next contact within calling hours."""
    if queue.state != CallQueue.State.ACTIVE:
        return Next(None, f"This queue is {queue.get_state_display().lower()}.")
    hours = calling_hours.load_hours()
    if connection.vendor == "postgresql":  # most "next"s: one look at what the agent holds or owes, one claim
        got = claims.take(user.pk, queue, now=now, hours=hours, check_owes=True)
        if got != claims.OWES:
            return _as_next(queue, got, now=now)
    _let_go_elsewhere(user, queue, now=now)
    current = held(user, queue, now=now)
    if current is not None:
        attempt = current.attempt
        if attempt is not None:
            settle(attempt, now=now)
            attempt.refresh_from_db()
        unsettled = attempt is None or attempt.effect == QueueAttempt.Effect.PENDING
        if current.callback is not None:
            kept = _callback_kept(current.callback)
            tried = _callback_tried(current.callback, user, since=current.callback.claimed_at or now)
            if not kept and not tried and (current.entry is None or unsettled):
                return Next(current)  # not called yet: a promise is called or skipped, not passed over
            if not kept:
                _callback_later(current.callback, queue, now=now)  # tried, not reached: again after the wait
        elif unsettled:
            return Next(current)
        release(user)
    if (callback := _take_callback(user, queue, now=now, hours=hours)) is not None:
        return Next(callback)
    return _next_entry(user, queue, now=now, hours=hours)


def _next_entry(user: User, queue: CallQueue, *, now: datetime, hours: calling_hours.Hours) -> Next:
    if connection.vendor == "postgresql":
        got = claims.take(user.pk, queue, now=now, hours=hours, check_owes=False)
        if got == claims.OWES:  # another "next" of theirs claimed a contact since this one let go: that one
            return Next(current) if (current := held(user, queue, now=now)) else Next(None, _why_nobody(queue, now=now))
        return _as_next(queue, got, now=now)
    if (entry := _take_entry(user, queue, now=now, hours=hours)) is not None:
        return Next(entry)
    return Next(None, _why_nobody(queue, now=now))


def _as_next(queue: CallQueue, got: tuple[QueueEntry, Contact] | str | None, *, now: datetime) -> Next:
    """claims.take's answer, once OWES is dealt with, as a Next."""
    assert not isinstance(got, str), got  # OWES, the only text take answers, is dealt with before
    if got is None:
        return Next(None, _why_nobody(queue, now=now))
    entry, contact = got
    return Next(Held(queue, contact, entry=entry))


def _callback_kept(callback: Callback) -> bool:
    callback.refresh_from_db(fields=["state", "claimed_at"])
    return callback.state != Callback.State.OPEN


def _callback_tried(callback: Callback, user: User, *, since: datetime) -> bool:
    """Whether the user called the callback's contact since taking it, and that call is over."""
    return (
        Call.objects.filter(contact_id=callback.contact_id, created_by=user, requested_at__gte=since)
        .exclude(state__in=Call.IN_PROGRESS)
        .exists()
    )


def _callback_later(callback: Callback, queue: CallQueue, *, now: datetime) -> None:
    """A held callback tried or skipped without being kept: due again after the queue's wait, held by nobody."""
    Callback.objects.filter(pk=callback.pk, state=Callback.State.OPEN).update(
        due_at=now + timedelta(minutes=queue.retry_minutes), claimed_by=None, claimed_at=None
    )


def _groups_of(user: User) -> Any:
    """The ids of the user's agent's groups, as a subquery."""
    return AgentGroup.members.through.objects.filter(agent__user=user).values("agentgroup_id")


def _take_callback(user: User, queue: CallQueue, *, now: datetime, hours: calling_hours.Hours) -> Held | None:
    """The user's first due callback (to them or a group of theirs) that nobody else holds and whose callee is
    within calling hours now."""
    mine = Q(assigned_to=user) | Q(group__in=_groups_of(user))
    free = Q(claimed_by__isnull=True) | Q(claimed_by=user) | Q(claimed_at__lte=now - CLAIM_IDLE)
    due = Callback.objects.filter(mine, free, state=Callback.State.OPEN, due_at__lte=now)
    if not due.exists():  # most of the time: one look, no transaction
        return None
    after: tuple[datetime, int] | None = None
    for _ in range(claims.MAX_ROUNDS // 5):  # pages of CANDIDATES: past those whose callee is closed now
        page = due.order_by("due_at", "pk")
        if after is not None:
            page = page.filter(Q(due_at__gt=after[0]) | Q(due_at=after[0], pk__gt=after[1]))
        with transaction.atomic():
            callbacks = list(
                page.select_for_update(skip_locked=True, of=("self",)).select_related("contact", "phone")[:CANDIDATES]
            )
            if not callbacks:
                return None
            for callback in callbacks:
                _, phone = claims.number_to_call(ContactPhone.objects.of_contact(callback.contact_id))  # promised one?
                if callback.phone is not None and phone is not None and not callback.phone.do_not_call:
                    phone = callback.phone
                if phone is None:
                    continue  # do-not-call since the promise: it shows on Today, to be closed there
                key = calling_hours.zone_key(phone.number, callback.contact.time_zone)
                if not hours.check(key, now).open:
                    continue  # its promise stands: it comes first again once the callee's hours open
                Callback.objects.filter(pk=callback.pk).update(claimed_by=user, claimed_at=now)
                callback.claimed_at = now
                entry = QueueEntry.objects.filter(queue=queue, contact=callback.contact).first()
                return Held(queue, callback.contact, entry=entry, callback=callback)
        after = (callbacks[-1].due_at, callbacks[-1].pk)
    return None


def _take_entry(user: User, queue: CallQueue, *, now: datetime, hours: calling_hours.Hours) -> Held | None:
    """Elsewhere than PostgreSQL (calls/queues/claims.py claims there): claim the queue's first contact that is due,
    free, has no open callback (the callback brings them back) and is within calling hours, through the ORM."""
    closed = claims.closed_zones(queue, now=now, hours=hours)
    for _ in range(claims.MAX_ROUNDS):
        claimed = _claim_first(queue, user=user, now=now, closed=closed)
        if claimed is None:
            return None
        contact, phone = claims.number_to_call(ContactPhone.objects.of_contact(claimed.contact_id))
        if claims.offer(claimed, contact, phone, hours=hours, now=now):
            assert contact is not None
            claimed.contact = contact
            return Held(queue, contact, entry=claimed)
    log.warning("queue %s: no contact found for user %s in %s rounds", queue.pk, user.pk, claims.MAX_ROUNDS)
    return None


def _candidates(queue: CallQueue, *, now: datetime, closed: list[str]) -> Any:
    """The queue's entries that may be offered now, in its order (callbacks first): due, not held by anyone (or
    held past CLAIM_IDLE), not in a zone closed now, without a call going on, without an open callback."""
    return (
        QueueEntry.objects.filter(queue=queue, state=QueueEntry.State.WAITING, due_at__lte=now)
        .filter(Q(claimed_by__isnull=True) | Q(claimed_at__lte=now - CLAIM_IDLE))
        .exclude(time_zone__in=closed)
        .exclude(Exists(QueueAttempt.objects.filter(entry=OuterRef("pk"), effect=QueueAttempt.Effect.PENDING)))
        .exclude(Exists(Callback.objects.filter(contact=OuterRef("contact_id"), state=Callback.State.OPEN)))
        .exclude(
            Exists(
                QueueEntry.objects.filter(
                    contact=OuterRef("contact_id"), claimed_by__isnull=False, claimed_at__gt=now - CLAIM_IDLE
                ).exclude(pk=OuterRef("pk"))
            )
        )
        .order_by("-is_callback", "position")
        .values_list("pk", "contact_id", "time_zone")
    )


def _claim_first(queue: CallQueue, *, user: User, now: datetime, closed: list[str]) -> QueueEntry | None:
    """Claim the first candidate for the user, through the ORM (not PostgreSQL); the one they hold in the queue if
    another "next" of theirs claimed it meanwhile (one entry of a queue an agent, queueentry_one_held)."""
    with transaction.atomic():
        mine = QueueEntry.objects.filter(queue=queue, claimed_by=user)
        mine.filter(claimed_at__lte=now - CLAIM_IDLE).update(claimed_by=None, claimed_at=None, claimed_since=None)
        if (holding := mine.first()) is not None:
            return holding
        found = next(iter(_candidates(queue, now=now, closed=closed)[:1]), None)
        if found is None:
            return None
        QueueEntry.objects.filter(pk=found[0]).update(claimed_by=user, claimed_at=now, claimed_since=now)
    return QueueEntry.objects.get(pk=found[0])


ZONES_BATCH = 2000  # queue contacts whose time zones are looked up a transaction


def fill_zones(*, limit: int = 50_000) -> int:
    """Look up the time zones of queue contacts not looked up yet (the periodic upkeep), so that "next" can leave
    closed ones out in SQL. Returns how many were filled. Each batch is one read (the entry, the contact's own zone
    and the number a queue would call) and one write per zone found."""
    entries, contacts, phones = QueueEntry._meta.db_table, Contact._meta.db_table, ContactPhone._meta.db_table
    pending = list(
        QueueEntry.objects.filter(state=QueueEntry.State.WAITING, time_zone="")
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    filled = 0
    for start in range(0, len(pending), ZONES_BATCH):
        chunk = pending[start : start + ZONES_BATCH]
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT e.id, c.time_zone, (SELECT p.number FROM {phones} p WHERE p.contact_id = c.id "
                "AND NOT p.do_not_call ORDER BY p.is_primary DESC, p.id LIMIT 1) "
                f"FROM {entries} e JOIN {contacts} c ON c.id = e.contact_id "
                f"WHERE e.id IN ({', '.join(['%s'] * len(chunk))})",
                chunk,
            )
            rows = cursor.fetchall()
        keys: dict[str, list[int]] = {}
        for entry_id, contact_zone, number in rows:
            key = (calling_hours.zone_key(number, contact_zone) if number else "") or claims.UNKNOWN_ZONE
            keys.setdefault(key, []).append(entry_id)
        with transaction.atomic():
            for key, ids in keys.items():
                filled += QueueEntry.objects.filter(pk__in=ids, time_zone="").update(time_zone=key)
    return filled


def _why_nobody(queue: CallQueue, *, now: datetime) -> str:
    waiting = QueueEntry.objects.filter(queue=queue, state=QueueEntry.State.WAITING)
    if not waiting.exists():
        return "Everyone in this queue has been dealt with."
    later = waiting.filter(due_at__gt=now).order_by("due_at").values_list("due_at", flat=True).first()
    held_by_others = waiting.filter(claimed_by__isnull=False, claimed_at__gt=now - CLAIM_IDLE).count()
    parts = []
    if held_by_others:
        parts.append(f"{held_by_others} being called by colleagues")
    if later is not None:
        at = timezone.localtime(later)
        parts.append(f"the next one is due at {at:%H:%M} {at:%Z} (after a wait, or when their calling hours open)")
    return "Nobody to call right now: " + ("; ".join(parts) or "the rest wait for a callback") + "."


# --- Skipping ----------------------------------------------------------------------------------------------


def skip(*, user: User, queue: CallQueue, reason: str, now: datetime, contact_id: int | None = None) -> bool:
    """Put the held contact back after the queue's wait, with the reason (no call, no attempt counted). A held
    callback keeps its promise and is let go. Returns whether it was skipped: not when the user no longer holds that
    contact (Skip pressed twice, or from a stale tab: the contact held now is one they have not seen). Without
    contact_id, whatever the user holds (a caller that has just taken it)."""
    current = held(user, queue, now=now)
    if current is None or contact_id not in (None, current.contact.pk):
        return False
    with transaction.atomic():
        if current.callback is not None:
            # A promise is not dropped by a skip: it comes back after the queue's wait.
            _callback_later(current.callback, queue, now=now)
            if current.entry is not None:
                QueueAttempt.objects.create(
                    queue=queue, entry=current.entry, user=user, at=now, outcome=reason, effect="skipped"
                )
        elif current.entry is not None and current.attempt is None:
            QueueEntry.objects.filter(pk=current.entry.pk).update(
                due_at=now + timedelta(minutes=queue.retry_minutes),
                claimed_by=None,
                claimed_at=None,
                claimed_since=None,
                skip_reason=reason,
                last_outcome=f"Skipped: {reason}",
            )
            QueueAttempt.objects.create(
                queue=queue,
                entry=current.entry,
                user=user,
                at=now,
                outcome=reason,
                effect=QueueAttempt.Effect.SKIPPED,
            )
        release(user)
    return True
