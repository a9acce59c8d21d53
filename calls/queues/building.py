"""Making a call queue: its contacts, in its order, written by one INSERT … SELECT (100,000 contacts in about a
second, bench/queue_bench.py), and the new matches of a live queue added later by the same statement.

A queue holds contacts that may be called when it is made: a do-not-call contact, or one whose every number is
do-not-call or who has none, is left out (and counted, so the page can say so)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.db.models import Max

from calls.models import CallQueue, Contact, ContactImport, ContactPhone, ImportedContact, QueueEntry

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from calls.models import Agent, AgentGroup

# The filters of the contact list a queue can be made from (ContactListForm's, less its paging and sort).
FILTER_KEYS = ("q", "mine", "dnc", "company")

_ORDER_SQL = {
    CallQueue.Order.OLDEST: "c.created_at, c.id",
    CallQueue.Order.LAST_CALLED: "c.last_called_at ASC NULLS FIRST, c.id",
    CallQueue.Order.PRIORITY: "c.priority DESC, c.created_at, c.id",
}


@dataclass
class Made:
    queue: CallQueue
    added: int
    left_out: int  # matching contacts that cannot be called (do-not-call, no number)


def make_queue(
    *,
    user: User,
    name: str,
    now: datetime,
    source_filter: dict[str, Any] | None = None,
    source_import: ContactImport | None = None,
    live: bool = False,
    sort: str = CallQueue.Order.OLDEST,
    max_attempts: int = 3,
    retry_minutes: int = 60,
    description: str = "",
    agents: Iterable[Agent] = (),
    groups: Iterable[AgentGroup] = (),
) -> Made:
    """Make a queue of the contacts matching a contact-list filter (or added or updated by an import), as they are
    now; a live queue made from a filter takes in new matches later (`add_new_matches`)."""
    filters = {k: v for k, v in (source_filter or {}).items() if k in FILTER_KEYS and v}
    with transaction.atomic():
        queue = CallQueue.objects.create(
            name=name,
            description=description,
            source_filter=filters if source_import is None else {},
            source_import=source_import,
            live=live and source_import is None,
            sort=sort,
            max_attempts=max_attempts,
            retry_minutes=retry_minutes,
            created_by=user,
            live_after=Contact.objects.aggregate(last=Max("pk"))["last"] or 0,
        )
        queue.agents.set(agents)
        queue.groups.set(groups)
        added, left_out = _add(queue, now=now, up_to=queue.live_after)
        if queue.live and (ended := _horizon()) is not None:  # its making is a live queue's first look
            CallQueue.objects.filter(pk=queue.pk).update(
                live_after=_visible_below(queue.live_after), live_seen=queue.live_after, live_seen_xmax=ended[1]
            )
    return Made(queue, added, left_out)


def add_new_matches(queue: CallQueue, *, now: datetime) -> int:
    """A live queue's new matches since it last looked (contacts made after it), put at its end. Returns how many.

    Ids are handed out as rows are written, not as their transactions commit: an import still writing holds ids
    lower than a contact typed in and committed meanwhile, and commits later. So a look does not take the highest id
    it saw (live_seen) as settled at once. It notes one past the newest transaction writing as it ends (live_seen_xmax:
    no transaction begun after that can hold an id up to live_seen); once every transaction begun before it has ended,
    every contact up to live_seen is visible, and a look moves live_after, below which nothing is looked at again,
    up to it, and notes itself as the next to settle. Until then the look to settle stays the same one, so that a
    stream of overlapping transactions cannot hold live_after back for ever. Each look reads the contacts above
    live_after: since the look before, or since the oldest transaction still writing began."""
    if not queue.live or queue.state == CallQueue.State.CLOSED:
        return 0
    with transaction.atomic():
        locked = CallQueue.objects.select_for_update().get(pk=queue.pk)
        last = Contact.objects.aggregate(last=Max("pk"))["last"] or 0
        horizon = _horizon()
        settles = horizon is None or horizon[0] >= locked.live_seen_xmax  # what the look before saw is all visible
        added = _add(locked, now=now, after=locked.live_after, up_to=last)[0] if last > locked.live_after else 0
        ended = _horizon()  # as this look ends: a transaction that took an id before `last` was read has an xid now
        if ended is None:
            CallQueue.objects.filter(pk=queue.pk).update(live_after=last, live_seen=last, live_seen_xmax=0)
        elif settles:
            CallQueue.objects.filter(pk=queue.pk).update(
                live_after=max(locked.live_after, locked.live_seen), live_seen=last, live_seen_xmax=ended[1]
            )
    return added


# How far apart the hosts' clocks (a contact's created_at) and PostgreSQL's (a transaction's start) may be.
CLOCKS = timedelta(minutes=1)


def _visible_below(last: int) -> int:
    """At a live queue's making, the id up to which every contact is visible for sure: `last` when no other
    transaction that has written anything is going on; else the highest id a contact made (created_at, set as its
    row is written) a while before the oldest of them began was given, since what that transaction writes, and
    commits later, has higher ids (they are handed out in order)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_stat_clear_snapshot(); SELECT min(xact_start) FROM pg_stat_activity "
            "WHERE datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
        )
        cursor.nextset()
        (began,) = cursor.fetchone()
    if began is None:
        return last
    before = Contact.objects.filter(created_at__lt=began - CLOCKS).order_by("-created_at", "-pk")
    return min(last, before.values_list("pk", flat=True).first() or 0)


def _horizon() -> tuple[int, int] | None:
    """This database's writing transactions now, as xid8 (which never wraps around): the oldest one other than this
    one, and one past the newest, this one included (the oldest is that when no other is writing); None on another
    database, where a look settles what it saw at once. Only this database's: contacts are written here, and a long
    transaction in another must not hold a queue back. Not a snapshot's xmax: that is one past the newest finished
    transaction, and one still running may have begun after it. Read from pg_stat_activity, afresh (PostgreSQL keeps
    what a transaction read of it until it ends), which shows other sessions' transactions to a session of the same
    role, as vccweb's processes are."""
    if connection.vendor != "postgresql":
        return None
    xid8 = "pg_current_xact_id()::text::bigint - age(backend_xid)"  # age is counted back from this transaction's
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT pg_stat_clear_snapshot(); SELECT min({xid8}) FILTER (WHERE pid <> pg_backend_pid()), "
            f"max({xid8}) + 1 FROM pg_stat_activity WHERE datname = current_database() AND backend_xid IS NOT NULL"
        )
        cursor.nextset()
        oldest, after_newest = cursor.fetchone()
    return (after_newest if oldest is None else oldest), after_newest


def matching(queue: CallQueue) -> Any:
    """The contacts a queue is made of (a queryset of Contact), before do-not-call is left out."""
    from calls.views.contacts import list_filters  # the contact list's filters, where the page keeps them

    if queue.source_import_id is not None:
        return Contact.objects.filter(
            pk__in=ImportedContact.objects.filter(contact_import_id=queue.source_import_id).values("contact_id")
        )
    filters = queue.source_filter or {}
    owner = queue.created_by
    contacts = Contact.objects.search(str(filters.get("q") or ""))
    if owner is None and filters.get("mine"):
        return Contact.objects.none()
    return list_filters(contacts, owner, filters)  # type: ignore[arg-type]  # owner is set when "mine" is


def _add(queue: CallQueue, *, now: datetime, up_to: int, after: int = 0) -> tuple[int, int]:
    """Insert the queue's callable matches not in it yet with ids in (after, up_to], positions after its last;
    returns (added, left out)."""
    candidates = matching(queue).filter(pk__gt=after, pk__lte=up_to).values("pk")
    sub_sql, params = candidates.query.sql_with_params()
    entries, contacts, phones = QueueEntry._meta.db_table, Contact._meta.db_table, ContactPhone._meta.db_table
    start = QueueEntry.objects.filter(queue=queue).aggregate(last=Max("position"))["last"] or 0
    order = _ORDER_SQL[CallQueue.Order(queue.sort)]
    callable_ = (
        f"NOT c.do_not_call AND EXISTS (SELECT 1 FROM {phones} p WHERE p.contact_id = c.id AND NOT p.do_not_call)"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {entries} (queue_id, contact_id, position, state, due_at, attempts, is_callback, "
            "last_outcome, skip_reason, time_zone) "
            f"SELECT %s, c.id, %s + row_number() OVER (ORDER BY {order}), %s, %s, 0, FALSE, '', '', '' "
            f"FROM {contacts} c WHERE c.id IN ({sub_sql}) AND {callable_} "
            f"AND NOT EXISTS (SELECT 1 FROM {entries} x WHERE x.queue_id = %s AND x.contact_id = c.id) "
            "ON CONFLICT (queue_id, contact_id) DO NOTHING",
            [queue.pk, start, QueueEntry.State.WAITING, connection.ops.adapt_datetimefield_value(now), *params]
            + [queue.pk],
        )
        added = cursor.rowcount
        cursor.execute(f"SELECT count(*) FROM {contacts} c WHERE c.id IN ({sub_sql}) AND NOT ({callable_})", [*params])
        left_out = cursor.fetchone()[0]
    return added, left_out
