"""Retention: the periodic job that applies RetentionPolicy (calls/models/privacy.py), and what the health page says
of it.

After the days admins set, (a) call notes, wrap-up notes and do-not-call override reasons are deleted, (b) called
numbers in the call log are masked (+44 20 •••• •100; the request sent to VCC with them; where VCC's words quote
them: the call's error and reasons, its history, the reports' failure reasons; and the call's link to the contact's
number, which holds it whole), (c) audit entries are deleted. Calls are walked oldest first by keyset on
(requested_at, id) in windows of at most BATCH calls (fewer when a window's transaction takes over WINDOW_SECONDS,
so its row locks are never held long), each window one short transaction that waits at most LOCK_TIMEOUT for a lock
(`SET LOCAL lock_timeout`), so the call log, clicks and the follower keep going; the policy's `*_done_before`
advance in the same transaction, so a job killed half-way starts again where it stopped, and later runs read only
the calls that aged since. No column a report counts is written, nor `changed_at`: reports' figures stay as they
were (a failure's reason that quoted a number masked keeps its count, under its masked words).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import DatabaseError, OperationalError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from calls.models import AuditEntry, Call, CallEvent, CallRollup, RetentionPolicy, RetentionRun
from calls.phones import MASK
from calls.privacy import audit
from calls.privacy.erasure import CALL_TEXTS, without_number
from calls.privacy.masking import mask_number

log = logging.getLogger("calls.privacy")

BATCH = 5000  # calls a transaction at most
MIN_BATCH = 100  # a window never shrinks below this
WINDOW_SECONDS = 0.5  # a window's transaction aims at this at most: its locks are held no longer (next_size)
LOCK_TIMEOUT = "1s"  # a window waits no longer than this for a row a click or the follower holds
LOCK_TRIES = 3  # a window that could not get its locks is tried again this many times, then the run fails
CRON = "23 * * * *"  # hourly (calls/tasks.py)

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class _Step:
    cutoff: datetime | None  # calls asked for before this are due; None: the step is off
    done_before: datetime | None  # calls before this are done already

    @property
    def due(self) -> bool:
        return self.cutoff is not None and (self.done_before is None or self.done_before < self.cutoff)


def cutoff(now: datetime, days: int | None) -> datetime | None:
    return None if days is None else now - timedelta(days=days)


def apply_retention(*, now: datetime, batch: int = BATCH, clock: Clock | None = None) -> RetentionRun:
    """One run of the policy as of `now`: every due window of calls, then the audit trail's old entries. Returns
    the run, saved with what it did (or its error, and the error raised again)."""
    policy = RetentionPolicy.current()
    run = RetentionRun.objects.create(started_at=now)
    try:
        notes = _Step(cutoff(now, policy.notes_days), policy.notes_done_before)
        masks = _Step(cutoff(now, policy.mask_days), policy.masked_done_before)
        if notes.due or masks.due:
            _walk(run, notes, masks, batch)
        run.notes_cleared += _clear_late_notes(run, notes)
        if policy.audit_days is not None:
            run.audit_deleted = audit.delete_audit_entries_before(now - timedelta(days=policy.audit_days))
        run.finished_at = (clock or (lambda: now))()
        run.save()
        audit.audit_retention_run(run, policy)
    except Exception as exc:
        run.error = f"{type(exc).__name__}: {exc}"[:2000]
        run.save()
        with contextlib.suppress(DatabaseError):  # the run's own error is the one to raise
            audit.audit_retention_run(run, policy)
        log.exception("retention: run %s failed; the next run starts where it stopped", run.pk)
        raise
    log.info("retention: %s", run.summary)
    return run


LATE_MARGIN = timedelta(hours=1)  # an audit entry's time is its transaction's start, which may precede the run's


def _clear_late_notes(run: RetentionRun, notes: _Step) -> int:
    """Notes written since the last run on calls the walk had passed already (`notes.done_before`): a wrap-up can be
    edited any time (its page, the API), and later runs walk only the calls that aged since. The audit trail names
    the calls whose notes changed (its triggers, PostgreSQL's) since the last run that ended well; their notes go
    now, as the walk's do. Returns how many calls' notes went."""
    if notes.cutoff is None or notes.done_before is None or connection.vendor != "postgresql":
        return 0
    previous = (
        RetentionRun.objects.filter(started_at__lt=run.started_at, finished_at__isnull=False, error="")
        .order_by("-started_at", "-pk")
        .values_list("started_at", flat=True)
        .first()
    )
    since = previous - LATE_MARGIN if previous is not None else notes.done_before - LATE_MARGIN
    changed = (
        AuditEntry.objects.filter(kind="call.update", at__gte=since).values_list("object_id", flat=True).distinct()
    )
    passed = min(notes.done_before, notes.cutoff)
    pks = list(
        Call.objects.filter(pk__in=[int(pk) for pk in changed if pk.isdigit()], requested_at__lt=passed)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    cleared = 0
    for start in range(0, len(pks), BATCH):
        changes, count, *_ = _changes(Call._meta.db_table, pks[start : start + BATCH], notes, _Step(None, None))
        cleared_pks = [c[0] for c in changes if c[2]]
        plan = _Plan(cleared_pks, None, False, changes, count, 0, [], [], notes_due=cleared_pks)
        with transaction.atomic():
            _apply(Call._meta.db_table, plan)
        cleared += count
    return cleared


# A call's change: its id, its masked number (None: kept), whether its notes go, and its CALL_TEXTS with the number
# masked (None: each kept).
Change = tuple[int, str | None, bool, tuple[str | None, ...] | None]


@dataclass
class _Plan:
    """A window read and worked out, not written yet: its calls `pks` up to `last`, and what changes among them."""

    pks: list[int]
    last: tuple[datetime, int] | None
    done: bool  # the walk's last window
    changes: list[Change]
    cleared: int
    masked: int
    events: list[tuple[int, str]]  # (history entry, its detail with the number masked)
    reasons: list[tuple[date, str, str]]  # (day, the reports' failure reason, as it becomes: CallRollup keys)
    # The calls whose notes are due here: their audit entries keep that the notes changed, not what they said (those
    # whose notes are empty now too: an agent may have written notes and removed them).
    notes_due: list[int] = field(default_factory=list)


def _walk(run: RetentionRun, notes: _Step, masks: _Step, batch: int) -> None:
    """Every due window, oldest first. On PostgreSQL outside a transaction (the job), the next window is read and its
    numbers masked (Python's work, a third of a window's) in a thread of its own while this one is written
    (PostgreSQL's), so the two cores work together; each window is still written in order, in its own transaction."""
    steps = [s for s in (notes, masks) if s.due]
    starts = [s.done_before for s in steps]
    start = None if any(s is None for s in starts) else min(s for s in starts if s is not None)
    end = max(s.cutoff for s in steps if s.cutoff is not None)
    size = [batch]  # the next window's size, which each window's writing time sets (next_size)
    plans = _plans(notes, masks, start, end, lambda: size[0])
    ahead = connection.vendor == "postgresql" and not connection.in_atomic_block
    windows = _read_ahead(plans) if ahead else plans
    try:
        for plan in windows:
            began = time.monotonic()
            _window(run, notes, masks, plan)
            size[0] = next_size(size[0], time.monotonic() - began, batch)
    finally:
        windows.close()  # a window that failed stops the reading ahead at once


def _plans(
    notes: _Step, masks: _Step, start: datetime | None, end: datetime, size: Callable[[], int]
) -> Generator[_Plan]:
    """The walk's windows, oldest first, each read and worked out (_changes); the last one has `done` set."""
    table = Call._meta.db_table
    adapt = connection.ops.adapt_datetimefield_value
    position: tuple[datetime, int] | None = (start, 0) if start is not None else None
    while True:
        limit = size()
        where, params = "requested_at < %s", list[Any]([adapt(end)])
        if position is not None:
            # A row comparison, which PostgreSQL reads as the index's bound: an OR of the two was a filter, and
            # each window read every call before it again (0.5 s a window a month into a year of 5 M calls).
            where += " AND (requested_at, id) > (%s, %s)"
            params += [adapt(position[0]), position[1]]
        with connection.cursor() as cursor:
            # The window's calls, read from the index alone; their rows are then read by primary key. (Asked for
            # the window's rows with their conditions at once, PostgreSQL misjudged the row comparisons and read
            # another index, 0.4 s a window.)
            cursor.execute(
                f"SELECT requested_at, id FROM {table} WHERE {where} ORDER BY requested_at, id LIMIT {int(limit)}",
                params,
            )
            keys = cursor.fetchall()
        done = len(keys) < limit
        last = (_aware(keys[-1][0]), keys[-1][1]) if keys else position
        pks = [pk for _, pk in keys]
        due = [pk for at, pk in keys if notes.due and notes.cutoff is not None and _aware(at) < notes.cutoff]
        yield _Plan(pks, last, done, *_changes(table, pks, notes, masks), notes_due=due)
        if done:
            return
        position = last


_END = object()


def _read_ahead(plans: Generator[_Plan]) -> Generator[_Plan]:
    """plans, each worked out in a thread (with its own database connection) while the one before is written. The
    thread is at most one window ahead, and reads it once the one before is being written, so each window's size
    follows the time of the last one written; an error there is raised here, and one here stops it."""
    ready: queue.Queue[Any] = queue.Queue()
    taken = threading.Semaphore(0)  # a window taken to be written: the thread may read the next
    stop = threading.Event()

    def work() -> None:
        _yield_cpu()
        try:
            for plan in plans:  # the next is read only once this one is taken (its size set by the one before)
                ready.put(plan)
                taken.acquire()
                if stop.is_set():
                    break
        except Exception as exc:  # raised again where the windows are written
            ready.put(exc)
        finally:
            ready.put(_END)
            connection.close()  # this thread's

    thread = threading.Thread(target=work, name="retention-read-ahead", daemon=True)
    thread.start()
    item: Any = None
    try:
        while (item := ready.get()) is not _END:
            if isinstance(item, Exception):
                raise item
            taken.release()
            yield item
    finally:
        stop.set()
        taken.release()  # a thread waiting to read the next window sees the stop
        while item is not _END:  # let the thread finish: what it puts is dropped
            item = ready.get()
        thread.join()


NICENESS = 10  # the reading ahead's thread yields the CPU to the process's others (Linux: a thread's own nice)


def _yield_cpu() -> None:
    """Lower this thread's CPU priority where the system lets one thread have its own (Linux): its masking is a core's
    worth of Python while a first pass runs, and the people reading the call log come first."""
    with contextlib.suppress(AttributeError, OSError):  # no per-thread priority here (macOS, Windows)
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)


def next_size(size: int, seconds: float, batch: int) -> int:
    """The next window's size: halved after a window whose transaction took over WINDOW_SECONDS, grown back towards
    `batch` after a quick one. Each window's row locks are held for its whole transaction: on a slow or busy server
    5,000 calls took 1.4 s (p95 2 s, bench/README.md), so the size follows the time, not the count alone."""
    if seconds > WINDOW_SECONDS:
        return min(size, max(MIN_BATCH, size // 2))
    if seconds < WINDOW_SECONDS / 2:
        return min(batch, size + size // 2 + 1)
    return size


def _aware(value: datetime | str) -> datetime:
    """A timestamp as the cursor returned it (SQLite: text, in UTC) as an aware datetime."""
    parsed = parse_datetime(value) if isinstance(value, str) else value
    assert parsed is not None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _window(run: RetentionRun, notes: _Step, masks: _Step, plan: _Plan) -> None:
    """Write a window's changes, in one transaction, and note how far each step has got (`done`: to its cutoff)."""
    for attempt in range(1, LOCK_TRIES + 1):
        try:
            with transaction.atomic():
                _apply(Call._meta.db_table, plan)
                _advance(notes, masks, plan.last, plan.done)
                run.notes_cleared += plan.cleared
                run.numbers_masked += plan.masked
                run.batches += 1
                run.save(update_fields=["notes_cleared", "numbers_masked", "batches"])
            return
        except OperationalError as exc:
            if "lock timeout" not in str(exc) or attempt == LOCK_TRIES:
                raise
            log.warning(
                "retention: a window waited over %s for its locks (try %s); trying again", LOCK_TIMEOUT, attempt
            )


def _apply(table: str, plan: _Plan) -> None:
    """In the open transaction: the window's changes written, each lock waited for at most LOCK_TIMEOUT."""
    if not plan.changes and not plan.notes_due:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            # A window lost to a crash is done again by the next run: its commit need not wait for the disk.
            cursor.execute("SET LOCAL synchronous_commit = off")
            cursor.execute("SET LOCAL jit = off")  # compiling costs more than these few thousand rows
    audit.strip_notes_of_calls(plan.notes_due)
    _update(table, plan.changes)
    _scrub_history(plan.events)
    _scrub_reasons(plan.reasons)


def _changes(
    table: str, pks: list[int], notes: _Step, masks: _Step
) -> tuple[list[Change], int, int, list[tuple[int, str]], list[tuple[date, str, str]]]:
    """What changes among the window's calls `pks`: a Change for each call with something to clear or mask; how
    many notes are cleared and numbers masked; the history entries and the reports' failure reasons that quote a
    number masked, as they become."""
    if not pks:
        return [], 0, 0, [], []
    id_params: list[Any]
    if connection.vendor == "postgresql":
        ids, id_params = "id = ANY(%s)", [pks]
    else:
        ids, id_params = f"id IN ({', '.join(['%s'] * len(pks))})", list(pks)
    query: list[Any] = [*id_params, f"%{MASK}%"]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, requested_at, to_number, {_HAS_TEXT}, error_status, {', '.join(CALL_TEXTS)} FROM {table} "
            f"WHERE {ids} AND ({_HAS_TEXT} "
            f"OR (to_number <> '' AND to_number NOT LIKE %s))",
            query,
        )
        rows = cursor.fetchall()
    changes: list[Change] = []
    reasons: set[tuple[date, str, str]] = set()
    numbers: dict[int, str] = {}  # call -> its number, of the calls whose number is masked
    cleared = masked = 0
    for pk, at, number, has_notes, status, *texts in rows:
        at = _aware(at)
        clear = bool(has_notes) and notes.cutoff is not None and at < notes.cutoff
        mask = scrubbed = None
        if masks.cutoff is not None and at < masks.cutoff and number and MASK not in number:
            mask, numbers[pk] = mask_number(number), number
            if any(texts):  # most calls have none: a failure's words, a refusal's reason
                new = [without_number(text, number) for text in texts]
                if new != texts:
                    scrubbed = tuple(n if n != t else None for n, t in zip(new, texts, strict=True))
                    if scrubbed[_MESSAGE] is not None:  # the reports' failure reason (calls/reports.py)
                        was, becomes = _reason(status, texts[_MESSAGE]), _reason(status, new[_MESSAGE])
                        reasons.add((timezone.localdate(at), was, becomes))
        if clear or mask is not None:
            changes.append((pk, mask, clear, scrubbed))
            cleared += clear
            masked += mask is not None
    return changes, cleared, masked, _history_quoting(numbers), sorted(reasons)


_MESSAGE = CALL_TEXTS.index("error_message")


def _reason(status: int | None, message: str) -> str:
    """A failure's reason as the reports' roll-up keys it (calls/reports.py, Facet.ERROR)."""
    return f"{'' if status is None else status}|{message[:280]}"


def _history_quoting(numbers: dict[int, str]) -> list[tuple[int, str]]:
    """The history entries of these calls that quote their number, each with its detail as it becomes."""
    if not numbers:
        return []
    table = CallEvent._meta.db_table
    pks = list(numbers)
    params: list[Any]
    if connection.vendor == "postgresql":
        ids, params = "call_id = ANY(%s) AND detail ~ '[0-9]'", [pks]
    else:
        ids, params = f"call_id IN ({', '.join(['%s'] * len(pks))}) AND detail <> ''", pks
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, call_id, detail FROM {table} WHERE {ids}", params)
        rows = cursor.fetchall()
    found = []
    for pk, call_pk, detail in rows:
        if (new := without_number(detail, numbers[call_pk])) != detail:
            found.append((pk, new))
    return found


# A call's free text that the notes step clears: its notes and the reasons given to override a refusal.
_HAS_TEXT = "(notes <> '' OR dnc_override_reason <> '' OR hours_override_reason <> '')"


def _update(table: str, changes: list[Change]) -> None:
    """One UPDATE for the window: the masked number (NULL: kept), whether the notes go, and the texts that quoted
    the number (NULL: kept), by id."""
    # The row triggers would copy the notes cleared here into the audit trail (audit.quiet); the entries the calls'
    # wrap-ups made keep that the notes changed, not what they said (strip_notes_of_calls, in _apply).
    if not changes:
        return
    with audit.quiet(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            texts = [[None if c[3] is None else c[3][i] for c in changes] for i in range(len(CALL_TEXTS))]
            cursor.execute(
                f"""UPDATE {table} c SET
                      to_number = COALESCE(v.masked, c.to_number),
                      phone_id = CASE WHEN v.masked IS NOT NULL THEN NULL ELSE c.phone_id END,
                      request_body = CASE WHEN v.masked IS NOT NULL AND c.request_body -> 'to' ? 'telephoneNumber'
                          THEN jsonb_set(c.request_body, '{{to,telephoneNumber}}', to_jsonb(v.masked))
                          ELSE c.request_body END,
                      notes = CASE WHEN v.clear THEN '' ELSE c.notes END,
                      dnc_override_reason = CASE WHEN v.clear THEN '' ELSE c.dnc_override_reason END,
                      hours_override_reason = CASE WHEN v.clear THEN '' ELSE c.hours_override_reason END,
                      {", ".join(f"{name} = COALESCE(v.{name}, c.{name})" for name in CALL_TEXTS)}
                    FROM unnest(%s::bigint[], %s::text[], %s::boolean[]{", %s::text[]" * len(CALL_TEXTS)})
                      AS v(id, masked, clear, {", ".join(CALL_TEXTS)})
                    WHERE c.id = v.id""",
                [[c[0] for c in changes], [c[1] for c in changes], [c[2] for c in changes], *texts],
            )
            return
        for pk, masked, clear, scrubbed in changes:  # SQLite: the demo and quick tests
            call = Call.objects.only("pk", "request_body").get(pk=pk)
            fields: dict[str, object] = {}
            if masked is not None:
                fields["to_number"], fields["phone"] = masked, None
                body = call.request_body
                if isinstance(body, dict) and isinstance(body.get("to"), dict) and "telephoneNumber" in body["to"]:
                    body["to"]["telephoneNumber"] = masked
                    fields["request_body"] = body
            if clear:
                fields.update(notes="", dnc_override_reason="", hours_override_reason="")
            fields.update(
                {name: text for name, text in zip(CALL_TEXTS, scrubbed or (), strict=False) if text is not None}
            )
            Call.objects.filter(pk=pk).update(**fields)


def _scrub_history(events: list[tuple[int, str]]) -> None:
    """The history entries that quoted a number masked, written as they become."""
    if connection.vendor == "postgresql" and events:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {CallEvent._meta.db_table} e SET detail = v.detail "
                "FROM unnest(%s::bigint[], %s::text[]) AS v(id, detail) WHERE e.id = v.id",
                [[pk for pk, _ in events], [detail for _, detail in events]],
            )
        return
    for pk, detail in events:
        CallEvent.objects.filter(pk=pk).update(detail=detail)


def _scrub_reasons(reasons: list[tuple[date, str, str]]) -> None:
    """The reports' failure reasons (CallRollup keys) that quoted a number masked, as the calls' own now give them:
    building the roll-up again from the calls gives the same keys."""
    scopes = list(CallRollup.Scope.values)  # the index's first column: each day's rows are found through it
    if connection.vendor == "postgresql" and reasons:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {CallRollup._meta.db_table} r SET key = v.becomes "
                "FROM unnest(%s::date[], %s::text[], %s::text[]) AS v(day, reason, becomes) "
                "WHERE r.scope = ANY(%s) AND r.day = v.day AND r.facet = %s AND r.key = v.reason",
                [
                    [r[0] for r in reasons],
                    [r[1] for r in reasons],
                    [r[2] for r in reasons],
                    scopes,
                    CallRollup.Facet.ERROR,
                ],
            )
        return
    for day, reason, becomes in reasons:
        CallRollup.objects.filter(day=day, facet=CallRollup.Facet.ERROR, key=reason).update(key=becomes)


def _advance(notes: _Step, masks: _Step, last: tuple[datetime, int] | None, done: bool) -> None:
    """Note, in the window's transaction, that every call before the window's last one is done for each step (and,
    at the end of the walk, every call before the step's cutoff)."""
    updates: dict[str, datetime] = {}
    for name, step in (("notes_done_before", notes), ("masked_done_before", masks)):
        if not step.due or step.cutoff is None:
            continue
        reached = step.cutoff if done or last is None else min(last[0], step.cutoff)
        updates[name] = reached
    if updates:
        policy = RetentionPolicy.objects.select_for_update().get(pk=RetentionPolicy.SINGLETON)
        for name, reached in updates.items():
            if getattr(policy, name) is None or getattr(policy, name) < reached:
                setattr(policy, name, reached)
        policy.save(update_fields=list(updates))


# --- The health page ------------------------------------------------------------------------------------------------


@dataclass
class RetentionHealth:
    policy: RetentionPolicy
    last: RetentionRun | None
    next_at: datetime | None

    @property
    def problem(self) -> str:
        return f"The retention job failed: {self.last.error}" if self.last and self.last.error else ""


def retention_health(*, now: datetime) -> RetentionHealth:
    """The policy, the last run and when the next one is due (two queries)."""
    from croniter import croniter  # type: ignore[import-untyped]  # Procrastinate's own dependency

    return RetentionHealth(
        policy=RetentionPolicy.current(),
        last=RetentionRun.objects.order_by("-started_at", "-pk").first(),
        next_at=croniter(CRON, now).get_next(datetime),
    )
