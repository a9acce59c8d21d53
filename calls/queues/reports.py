"""A call queue's report: its progress, attempts per contact, outcomes and agents, each figure a link to the calls
behind it (the call log filtered by the queue); and its contacts as CSV. Counted from the queue's own rows (its
entries and attempts, indexed by queue), never from the whole call log."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Avg, BooleanField, Count, ExpressionWrapper, Q, Sum
from django.urls import reverse
from django.utils.http import urlencode

from calls import charts
from calls.forms import NONE
from calls.models import Callback, CallQueue, QueueAttempt, QueueEntry
from calls.spreadsheet import Line, inert

EXPORT_BATCH = 5000
NO_ONE = "(no one: a callback marked done, or a deleted user)"  # the agents table's attempts without a user


@dataclass
class Progress:
    total: int = 0
    waiting: int = 0
    reached: int = 0
    unreached: int = 0
    dnc: int = 0
    removed: int = 0
    held: int = 0
    callbacks_due: int = 0

    @property
    def done(self) -> int:
        return self.total - self.waiting

    @property
    def percent_done(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0


@dataclass
class Report:
    progress: Progress
    attempts_chart: str
    outcomes: list[dict[str, object]] = field(default_factory=list)
    agents: list[dict[str, object]] = field(default_factory=list)


def progress(queue: CallQueue, *, now: datetime, claim_idle: object) -> Progress:
    counts = QueueEntry.objects.filter(queue=queue).values("state").annotate(n=Count("pk"))
    out = Progress()
    for row in counts:
        n = row["n"]
        out.total += n
        state = row["state"]
        if state == QueueEntry.State.WAITING:
            out.waiting = n
        elif state == QueueEntry.State.REACHED:
            out.reached = n
        elif state == QueueEntry.State.UNREACHED:
            out.unreached = n
        elif state == QueueEntry.State.DO_NOT_CALL:
            out.dnc = n
        else:
            out.removed += n
    waiting = QueueEntry.objects.filter(queue=queue, state=QueueEntry.State.WAITING)
    out.held = waiting.filter(claimed_by__isnull=False, claimed_at__gt=now - claim_idle).count()  # type: ignore[operator]
    # Of the contacts still waiting in the queue: one it is done with (reached, unreached, do not call) may have a
    # callback due, but the queue waits for it no more. One filter() call: the queue and the state of one entry.
    out.callbacks_due = Callback.objects.filter(
        state=Callback.State.OPEN,
        due_at__lte=now,
        contact__queue_entries__queue=queue,
        contact__queue_entries__state=QueueEntry.State.WAITING,
    ).count()
    return out


PROGRESS_KEPT = 5  # seconds the queue bar's figures are kept: 200 agents' bars would each count the whole queue
LIST_KEPT = 30  # seconds the queue list's figures are kept


def _progress_key(queue_id: int) -> str:
    return f"calls:queue:{queue_id}:progress"


def cached_progress(queue: CallQueue, *, now: datetime, claim_idle: object) -> Progress:
    """The queue's progress as the bar shows it, counted at most every PROGRESS_KEPT seconds (and again as soon as
    an outcome takes a contact out: `forget_progress`)."""
    made = cache.get(_progress_key(queue.pk))
    if made is None:
        made = progress(queue, now=now, claim_idle=claim_idle)
        cache.set(_progress_key(queue.pk), made, PROGRESS_KEPT)
    return made


def forget_progress(queue_id: int) -> None:
    cache.delete(_progress_key(queue_id))


def list_counts(queue_ids: list[int]) -> dict[int, dict[str, int]]:
    """Each queue's contacts: total, waiting and reached, for the queue list; counted at most every LIST_KEPT s."""
    keys = {f"calls:queue:{pk}:counts": pk for pk in queue_ids}
    found = {keys[k]: v for k, v in cache.get_many(list(keys)).items()}
    missing = [pk for pk in queue_ids if pk not in found]
    if missing:
        rows = (
            QueueEntry.objects.filter(queue_id__in=missing)
            .values("queue_id")
            .annotate(
                total=Count("pk"),
                waiting=Count("pk", filter=Q(state=QueueEntry.State.WAITING)),
                reached=Count("pk", filter=Q(state=QueueEntry.State.REACHED)),
            )
        )
        fresh = {pk: {"total": 0, "waiting": 0, "reached": 0} for pk in missing}
        for row in rows:
            fresh[row["queue_id"]] = {k: row[k] for k in ("total", "waiting", "reached")}
        cache.set_many({f"calls:queue:{pk}:counts": v for pk, v in fresh.items()}, LIST_KEPT)
        found |= fresh
    return found


def calls_link(queue: CallQueue, **filters: str | int | None) -> str:
    query = {"queue": queue.pk, **{k: v for k, v in filters.items() if v is not None and v != ""}}
    return f"{reverse('call_log')}?{urlencode(query)}"


def entries_link(queue: CallQueue, **filters: str | int | None) -> str:
    query = {k: v for k, v in filters.items() if v is not None and v != ""}
    return reverse("queue_entries", args=[queue.pk]) + (f"?{urlencode(query)}" if query else "")


def report(queue: CallQueue, *, now: datetime, claim_idle: object) -> Report:
    made = progress(queue, now=now, claim_idle=claim_idle)
    # Attempts per contact: how many contacts were tried 0, 1, 2, … times (each bar opens those contacts).
    spread = dict(
        QueueEntry.objects.filter(queue=queue).values_list("attempts").annotate(n=Count("pk")).order_by("attempts")
    )
    top = max([queue.max_attempts, *spread.keys()])
    bars = [
        charts.Bar(
            label=str(k),
            value=spread.get(k, 0),
            href=entries_link(queue, attempts=k),
            title=f"{spread.get(k, 0)} contacts tried {k} time{'s' if k != 1 else ''}",
        )
        for k in range(top + 1)
    ]
    chart = charts.bars(bars, label="Contacts by number of attempts", fit=480, height=140)
    # Outcomes: each effect and outcome with the calls that had it; attempts without a call (a skip, a contact
    # taken out as do-not-call before it was called, a call since deleted) are rows of their own, with no link.
    outcomes = []
    by_outcome = (
        QueueAttempt.objects.filter(queue=queue)
        .exclude(effect=QueueAttempt.Effect.PENDING)
        .values("effect", "outcome", called=ExpressionWrapper(Q(call__isnull=False), output_field=BooleanField()))
        .annotate(n=Count("pk"))
        .order_by("-n", "outcome", "effect", "-called")
    )
    labels = dict(QueueAttempt.Effect.choices)
    for row in by_outcome:
        effect, outcome = row["effect"], row["outcome"]
        words = outcome or "—"
        if not row["called"] and effect == QueueAttempt.Effect.REACHED:
            words += " (no call from this queue)"  # a callback kept by another queue's call, or marked done
        elif not row["called"] and effect != QueueAttempt.Effect.SKIPPED:
            words += " (no call placed)"
        outcomes.append(
            {
                "effect": labels.get(effect, effect),
                "outcome": words,
                "n": row["n"],
                "href": calls_link(queue, queue_effect=effect, queue_outcome=outcome or NONE) if row["called"] else "",
            }
        )
    # Per agent: attempts, reached, skipped, talk time.
    users = get_user_model().objects.in_bulk(
        list(QueueAttempt.objects.filter(queue=queue).values_list("user_id", flat=True).distinct())
    )
    agents = []
    per_user = (
        QueueAttempt.objects.filter(queue=queue)
        .values("user_id")
        .annotate(
            calls=Count("pk", filter=Q(call__isnull=False)),
            reached=Count("pk", filter=Q(effect=QueueAttempt.Effect.REACHED)),
            skipped=Count("pk", filter=Q(effect=QueueAttempt.Effect.SKIPPED)),
            talk=Sum("call__duration_seconds", filter=Q(call__connected_at__isnull=False)),
            avg_talk=Avg("call__duration_seconds", filter=Q(call__connected_at__isnull=False)),
        )
        .order_by("-calls")
    )
    for person in per_user:
        user = users.get(person["user_id"])
        agents.append(
            {
                "name": (user.get_full_name() or user.get_username()) if user else NO_ONE,
                "calls": person["calls"],
                "reached": person["reached"],
                "skipped": person["skipped"],
                "talk": person["talk"] or 0,
                "avg_talk": round(person["avg_talk"] or 0),
                "calls_href": calls_link(queue, queue_user=person["user_id"]) if person["user_id"] else "",
                "reached_href": calls_link(queue, queue_user=person["user_id"], queue_effect="reached")
                if person["user_id"]
                else "",
            }
        )
    return Report(made, chart, outcomes, agents)


# The CSV's columns, each with the QueueEntry field it is read from.
EXPORT_COLUMNS = {
    "position": "position",
    "contact_id": "contact_id",
    "contact": "contact__name",
    "company": "contact__company",
    "state": "state",
    "attempts": "attempts",
    "last_outcome": "last_outcome",
    "last_attempt_at": "last_attempt_at",
    "due_at": "due_at",
    "skip_reason": "skip_reason",
    "contact_added_at": "contact__created_at",
    "finished_at": "finished_at",
}


def export_rows(queue: CallQueue) -> Iterator[str]:
    """The queue's contacts as CSV, EXPORT_BATCH rows a piece, by position (keyset), each cell made inert."""
    writer = csv.writer(Line())
    yield writer.writerow(list(EXPORT_COLUMNS))
    after = -1
    while True:
        batch = list(
            QueueEntry.objects.filter(queue=queue, position__gt=after)
            .order_by("position")
            .values_list(*EXPORT_COLUMNS.values())[:EXPORT_BATCH]
        )
        if not batch:
            return
        yield "".join(writer.writerow([_cell(v) for v in row]) for row in batch)
        after = batch[-1][0]


def _cell(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    return inert(value) if isinstance(value, str) else ("" if value is None else value)
