"""Claiming a call queue's next contacts on PostgreSQL: agents of one process pulling "next" in the same queue at
the same moment are served together, in one claim statement for all of them, not one each.

Why: 200 agents pulling "next" at once each ran the claim (a `FOR UPDATE SKIP LOCKED` scan of the queue's first
entries), a look at what they hold or owe and a read of the contact: some 600 statements on two cores, with each
claim skipping the rows the others had just locked. The first agent to ask takes the desk and runs their own claim;
those who ask while it runs wait, and the next of them then claims for all of them in one statement: the entries in
the queue's order, the first to the first who asked (group commit, as databases write a log). An agent alone is
served at once, as before: nothing waits on a timer.

Within an open transaction (a test's, or a caller's), an agent is served alone, by their own connection, so that no
one's claim lives in another's transaction. Elsewhere than PostgreSQL, calls/queues/working.py claims with the ORM.
"""

from __future__ import annotations

import logging
import threading
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, connection, transaction

from calls.calling import hours as calling_hours
from calls.models import Agent, AgentGroup, Callback, CallQueue, Contact, ContactPhone, QueueAttempt, QueueEntry
from calls.models.common import from_row
from calls.models.contacts import phone_columns_sql, phone_from_row
from calls.queues import reports
from calls.queues.outcomes import CLAIM_IDLE

log = logging.getLogger("calls.queues")

MAX_ROUNDS = 50  # claims for one agent's "next" (each contact closed or gone is moved out of the way)
UNKNOWN_ZONE = ":"  # QueueEntry.time_zone once looked up and found unknown ("" is: not looked up yet)
OWES = "owes"  # the agent holds a contact or a callback, or a callback is due to them: working.take_next's long way


# --- The statements ------------------------------------------------------------------------------------------


def _owes_sql(user: str) -> str:
    """Whether the user (the SQL `user`) holds a contact in any queue (one held in another is given back on the
    long way) or a callback, or has a callback due (theirs or a group's that nobody holds). Parameters: the moments
    fresh, fresh, now, fresh."""
    entries, callbacks = QueueEntry._meta.db_table, Callback._meta.db_table
    members, agents = AgentGroup.members.through._meta.db_table, Agent._meta.db_table
    # `claimed_by_id IS NOT NULL`, implied by the equality, is written out for a plan that looks for all the batch's
    # users at once (a hashed subplan): it can then read the small indexes of claimed rows, not the whole queue.
    return (
        f"EXISTS (SELECT 1 FROM {entries} WHERE claimed_by_id = {user} AND claimed_by_id IS NOT NULL "
        "AND claimed_at > %s) "
        f"OR EXISTS (SELECT 1 FROM {callbacks} WHERE claimed_by_id = {user} AND claimed_by_id IS NOT NULL "
        "AND claimed_at > %s) "
        f"OR EXISTS (SELECT 1 FROM {callbacks} b WHERE b.state = '{Callback.State.OPEN}' AND b.due_at <= %s "
        f"AND (b.claimed_by_id IS NULL OR b.claimed_by_id = {user} OR b.claimed_at <= %s) "
        f"AND (b.assigned_to_id = {user} OR b.group_id IN (SELECT m.agentgroup_id FROM {members} m "
        f"JOIN {agents} a ON a.id = m.agent_id WHERE a.user_id = {user})))"
    )


_ENTRY_COLUMNS = len(QueueEntry._meta.concrete_fields)
_PHONE_COLUMNS = len(ContactPhone._meta.concrete_fields)
_ROW_COLUMNS = 1 + _ENTRY_COLUMNS + _PHONE_COLUMNS + 1 + len(Contact._meta.concrete_fields) + 1


def _claim_sql(most: int) -> str:
    """One statement for a batch of agents: those asked about (`check_owes`) who hold or owe something are left
    out and answered as such; each of the others gets one of the queue's first entries that may be offered, the
    first to the first who asked. The entries and their contacts are locked with SKIP LOCKED and claimed. A row
    for each agent who owes (with no entry), and for each entry claimed, once for each number of its contact
    (primary first; once with no number for a contact without one); the last column says which.

    Written by hand, in one statement (the ORM took three, and its states as parameters kept a prepared plan off
    the partial indexes `state = 'waiting'` and `'open'`); the states are literals. working._candidates says which
    entries may be offered through the ORM, for other databases.

    `most`, a literal, bounds the entries locked (claim_sql: the batch's size; only as many as there are agents
    free are claimed, so an entry for each agent who owes something is locked and let go when the statement ends).
    A bound the planner cannot read (the count of those free, as it was) it takes for a tenth of the queue: once
    PostgreSQL's statistics knew a queue of 100,000, the plan for 200 agents joined the claimed entries by hashing
    the whole queue and every contact's numbers (1.4 s, bench/README.md)."""
    entries, attempts, callbacks = QueueEntry._meta.db_table, QueueAttempt._meta.db_table, Callback._meta.db_table
    contacts = Contact._meta.db_table
    columns = ", ".join(f"e.{f.column}" for f in QueueEntry._meta.concrete_fields)
    phone_id = 2 + _ENTRY_COLUMNS  # positions in the result
    primary = phone_id + [f.name for f in ContactPhone._meta.concrete_fields].index("is_primary")
    nothing = ", ".join(["NULL"] * (_ROW_COLUMNS - 2))
    return (
        "WITH asking AS (SELECT a.user_id, a.check_owes, a.n "
        "FROM unnest(%s::bigint[], %s::boolean[]) WITH ORDINALITY AS a (user_id, check_owes, n)), "
        # Whoever holds a contact of this queue already is answered so too, checked or not: a second "next" of
        # theirs (a double press) may have claimed it since the first let go of the last (working.take_next).
        f"owe AS (SELECT u.user_id FROM asking u WHERE (u.check_owes AND ({_owes_sql('u.user_id')})) "
        f"OR EXISTS (SELECT 1 FROM {entries} h WHERE h.claimed_by_id = u.user_id AND h.queue_id = %s "
        "AND h.claimed_at > %s)), "
        "free AS (SELECT f.user_id, row_number() OVER (ORDER BY f.n) AS n FROM asking f "
        "WHERE NOT EXISTS (SELECT 1 FROM owe WHERE owe.user_id = f.user_id)), "
        f"pick AS (SELECT c.id, c.is_callback, c.position FROM {entries} c JOIN {contacts} k ON k.id = c.contact_id "
        f"WHERE c.queue_id = %s AND c.state = '{QueueEntry.State.WAITING}' AND c.due_at <= %s "
        "AND (c.claimed_by_id IS NULL OR c.claimed_at <= %s) AND c.time_zone <> ALL(%s::text[]) "
        f"AND NOT EXISTS (SELECT 1 FROM {attempts} a WHERE a.entry_id = c.id AND a.effect = '') "
        f"AND NOT EXISTS (SELECT 1 FROM {callbacks} b WHERE b.contact_id = c.contact_id "
        f"AND b.state = '{Callback.State.OPEN}') "
        # Nor a contact someone holds in another queue: one contact, one agent at a time, whatever the queue. The
        # contact is locked too, so that a claim of the same contact running in another queue skips it (each
        # claim would lock only its own queue's entry); TAKE_BACK_SQL deals with a claim committed meanwhile.
        f"AND NOT EXISTS (SELECT 1 FROM {entries} o WHERE o.contact_id = c.contact_id AND o.id <> c.id "
        "AND o.claimed_by_id IS NOT NULL AND o.claimed_at > %s) "
        f"ORDER BY c.is_callback DESC, c.position LIMIT {int(most)} "
        "FOR UPDATE OF c SKIP LOCKED FOR NO KEY UPDATE OF k SKIP LOCKED), "
        "numbered AS (SELECT id, row_number() OVER (ORDER BY is_callback DESC, position) AS n FROM pick), "
        f"claimed AS (UPDATE {entries} e SET claimed_by_id = free.user_id, claimed_at = %s, claimed_since = %s "
        "FROM numbered JOIN free ON free.n = numbered.n "
        f"WHERE e.id = numbered.id RETURNING free.user_id AS claimed_for, {columns}) "
        f"SELECT claimed.*, {phone_columns_sql()}, false FROM claimed "
        f"LEFT JOIN {ContactPhone._meta.db_table} p ON p.contact_id = claimed.contact_id "
        f"LEFT JOIN {Contact._meta.db_table} c ON c.id = p.contact_id "
        f"UNION ALL SELECT owe.user_id, {nothing}, true FROM owe "
        f"ORDER BY 1, {primary} DESC, {phone_id}"
    )


_CLAIM_SQL: dict[int, str] = {}


def claim_sql(agents: int) -> str:
    """The claim statement for a batch of this many agents (its bound: their number)."""
    if agents not in _CLAIM_SQL:
        _CLAIM_SQL[agents] = _claim_sql(agents)
    return _CLAIM_SQL[agents]


def is_claim(sql: str) -> bool:
    return sql in _CLAIM_SQL.values()


def claim_statement(
    queue: CallQueue, *, user_ids: list[int], now: datetime, closed: list[str], check_owes: list[bool] | None = None
) -> tuple[str, list[Any]]:
    """The claim statement and its parameters: an entry for each of these users (unless they owe something, for
    those checked), in the queue now (closed: the time zones closed now)."""
    fresh = now - CLAIM_IDLE
    checks = check_owes if check_owes is not None else [False] * len(user_ids)
    owes = [fresh, fresh, now, fresh, queue.pk, fresh]
    return claim_sql(len(user_ids)), [user_ids, checks, *owes, queue.pk, now, fresh, closed, fresh, now, now]


# The entries a claim statement just claimed (for these users, in this queue, at this moment) whose contact
# another agent holds in another queue, let go again. Run right after the claim, in its transaction: the claim
# skips a contact whose lock another claim holds, but a claim that has committed holds no lock any more, and the
# claim statement's snapshot, taken when it started, may not see it. This statement's own snapshot, taken once the
# claim holds its contacts' locks, does: of two claims of one contact, the second to lock it takes it back.
TAKE_BACK_SQL = (
    f"UPDATE {QueueEntry._meta.db_table} e SET claimed_by_id = NULL, claimed_at = NULL, claimed_since = NULL "
    "WHERE e.queue_id = %s AND e.claimed_by_id = ANY(%s::bigint[]) AND e.claimed_at = %s AND e.claimed_since = %s "
    f"AND EXISTS (SELECT 1 FROM {QueueEntry._meta.db_table} o WHERE o.contact_id = e.contact_id AND o.id <> e.id "
    "AND o.claimed_by_id IS NOT NULL AND o.claimed_at > %s) "
    "RETURNING e.id"
)


def take_back_statement(queue: CallQueue, *, user_ids: list[int], now: datetime) -> tuple[str, list[Any]]:
    """TAKE_BACK_SQL and its parameters, for a claim_statement with the same queue, users and moment."""
    return TAKE_BACK_SQL, [queue.pk, user_ids, now, now, now - CLAIM_IDLE]


# The lapsed claims of a claim statement's users in its queue (theirs still, though anyone may take them), let go
# first, in its transaction: an agent holds one entry of a queue at most (the unique queueentry_one_held), so the
# claim of another would fail on it. In the entries' order, so that two claims letting go at once cannot deadlock.
LET_GO_LAPSED_SQL = (
    f"UPDATE {QueueEntry._meta.db_table} SET claimed_by_id = NULL, claimed_at = NULL, claimed_since = NULL "
    f"WHERE id IN (SELECT id FROM {QueueEntry._meta.db_table} WHERE queue_id = %s "
    "AND claimed_by_id = ANY(%s::bigint[]) AND claimed_at <= %s ORDER BY id FOR UPDATE)"
)


def let_go_lapsed_statement(queue: CallQueue, *, user_ids: list[int], now: datetime) -> tuple[str, list[Any]]:
    """LET_GO_LAPSED_SQL and its parameters, for a claim_statement with the same queue, users and moment."""
    return LET_GO_LAPSED_SQL, [queue.pk, user_ids, now - CLAIM_IDLE]


def _execute_claim(
    sql: str,
    params: list[Any],
    take_back: tuple[str, list[Any]],
    let_go: tuple[str, list[Any]] | None = None,
) -> tuple[list[tuple[Any, ...]], set[int]]:
    """The claim statement's rows, and the entries taken back after it (take_back_statement), the agents' lapsed
    claims let go first (let_go_lapsed_statement). IntegrityError when the claim would have given one of its agents
    a second entry of the queue (a claim for them committed while this one ran: the unique queueentry_one_held
    refused it); nothing of this claim is kept, and a claim again sees theirs.

    Planned for its values at each run (1.3 to 5 ms of PostgreSQL's), never on a generic plan: one made for any
    queue took the queue's size from the statistics, and once they knew a queue of 100,000 entries it sorted the
    whole queue for one agent (0.6 s a claim, bench/README.md). Without JIT: compiling the plan for 200 agents took
    60 to 100 ms, running it 12."""
    first = [let_go] if let_go is not None else []
    # One round trip, one transaction (the statements of one query string run in one). SET LOCAL: for this
    # transaction (in a caller's transaction, for the rest of it, where a savepoint keeps a refusal to this claim).
    text = "; ".join(["SET LOCAL jit = off", *(s for s, _ in first), sql, take_back[0]])
    values = [*(v for _, p in first for v in p), *params, *take_back[1]]
    with transaction.atomic() if connection.in_atomic_block else nullcontext(), connection.cursor() as cursor:
        cursor.execute(text, values)
        for _ in range(1 + len(first)):
            cursor.nextset()
        rows = cursor.fetchall()
        cursor.nextset()
        return rows, {row[0] for row in cursor.fetchall()}


def _read_claims(
    rows: list[tuple[Any, ...]],
) -> tuple[dict[int, QueueEntry], dict[int, list[ContactPhone]], set[int]]:
    """The claim statement's rows: each agent's entry and its contact's numbers (primary first), and who owes."""
    entries: dict[int, QueueEntry] = {}
    numbers: dict[int, list[ContactPhone]] = {}
    owe: set[int] = set()
    for row in rows:
        user_id = row[0]
        if row[-1]:
            owe.add(user_id)
            continue
        if user_id not in entries:
            entries[user_id] = from_row(QueueEntry, row[1 : 1 + _ENTRY_COLUMNS])
            numbers[user_id] = []
        if row[1 + _ENTRY_COLUMNS] is not None:  # the number's id: none for a contact without numbers
            numbers[user_id].append(phone_from_row(row[1 + _ENTRY_COLUMNS : -1]))
    return entries, numbers, owe


# --- The desk: agents asking together, served together --------------------------------------------------------


@dataclass
class _Ask:
    user_id: int
    now: datetime
    check_owes: bool
    done: threading.Event = field(default_factory=threading.Event)
    connected: bool = False  # its thread holds a database connection
    lead: bool = False  # woken to serve the asks waiting, this one included
    answer: Any = None  # (QueueEntry, Contact), None (nobody to call), or OWES
    error: BaseException | None = None


class _Desk:
    """The asks waiting in one queue of this process, and whether someone is serving a batch."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # Told of each ask that waits (tests/test_queues_claims.py watches).
        self.arrived = threading.Condition(self.lock)
        self.waiting: list[_Ask] = []
        self.busy = False


_desks: dict[int, _Desk] = {}
_desks_lock = threading.Lock()


def _desk(queue_id: int) -> _Desk:
    with _desks_lock:
        return _desks.setdefault(queue_id, _Desk())


def take(
    user_id: int, queue: CallQueue, *, now: datetime, hours: calling_hours.Hours, check_owes: bool
) -> tuple[QueueEntry, Contact] | str | None:
    """The entry claimed for the user, with its contact; None when nobody may be called now; OWES when the user
    holds or owes something (when check_owes), or holds an entry of this queue already (whatever check_owes: a
    second "next" of theirs claimed it meanwhile), which working.take_next deals with."""
    ask = _Ask(user_id, now, check_owes)
    if connection.in_atomic_block or not connection.get_autocommit():
        _serve(queue, [ask], hours)  # alone: a claim for someone else must not live in this transaction
        return _answer(ask)
    # The one who serves uses their own connection. An ask waits without one when it comes from the pool
    # (_give_back_connection), so the next to serve borrows one again: it waits its turn in the pool like any
    # request, and the pool's timeout (DB_POOL_TIMEOUT) is then the whole batch's error. Without a pool, one that
    # holds a connection (a request does from its first query) is preferred to serve, so that the one serving never
    # waits for a connection that those waiting on it hold.
    pooled = getattr(connection, "pool", None) is not None  # PostgreSQL's backend only
    ask.connected = connection.connection is not None and not pooled
    desk = _desk(queue.pk)
    with desk.lock:
        desk.waiting.append(ask)
        lead, desk.busy = not desk.busy, True
    if not lead:
        if pooled:
            _give_back_connection()
        with desk.lock:
            desk.arrived.notify_all()  # an ask waiting, without its pooled connection
        ask.done.wait()
        if not ask.lead:
            return _answer(ask)
    # Serve those waiting (this ask among them), then hand the desk to the first who came meanwhile, if any.
    with desk.lock:
        batch, desk.waiting = desk.waiting, []
    try:
        _serve(queue, batch, hours)
    finally:
        with desk.lock:
            if desk.waiting:
                successor = next((a for a in desk.waiting if a.connected), desk.waiting[0])
                successor.lead = True
                successor.done.set()
            else:
                desk.busy = False
    return _answer(ask)


def _give_back_connection() -> None:
    """While an ask waits, its thread's pooled connection goes back to the pool (its request borrows one again with
    its next query; outside a transaction, as take() sees to). Held, no more agents could wait at the desk than the
    pool has connections (10 a process by default): 200 agents asking at once were served in some 40 batches of at
    most 9, not one or two of all those waiting. Without a pool (DB_POOL=false) the connection is kept: closing it
    would end it."""
    if connection.connection is not None:
        try:
            connection.close()
        except Exception:  # the ask is at the desk already: it waits all the same (Django forgets the connection)
            log.warning("could not give a connection back to the pool while waiting for a claim", exc_info=True)


def _answer(ask: _Ask) -> Any:
    if ask.error is not None:  # the same error in each waiting request: a view answers it as it would its own
        raise ask.error
    return ask.answer


def _serve(queue: CallQueue, batch: list[_Ask], hours: calling_hours.Hours) -> None:
    """Answer every ask of the batch, each ask's event set whatever happens (an error goes to each of them)."""
    served = False
    try:
        now = max(ask.now for ask in batch)
        # The same person twice at once (two tabs): one claim, both told it; what they owe is looked at only if
        # both asked for it (an ask on working.take_next's long way has dealt with it already).
        checks: dict[int, bool] = {}
        for ask in batch:
            checks[ask.user_id] = checks.get(ask.user_id, True) and ask.check_owes
        claimed, owe = _claim_for(queue, checks, now=now, hours=hours)
        for ask in batch:
            ask.answer = OWES if ask.user_id in owe else claimed.get(ask.user_id)
        served = True
    except Exception as error:
        for ask in batch:
            ask.error = error
        log.exception("queue %s: claiming for %s agents failed", queue.pk, len(batch))
    finally:
        for ask in batch:
            if not served and ask.error is None:  # interrupted by what is not an Exception: never "nobody"
                ask.error = RuntimeError("claiming the next contact was interrupted; ask again")
            if not ask.lead:
                ask.done.set()


def _claim_for(
    queue: CallQueue, checks: dict[int, bool], *, now: datetime, hours: calling_hours.Hours
) -> tuple[dict[int, tuple[QueueEntry, Contact]], set[int]]:
    """An entry for each user if there are enough, and who owes something (of those whose check is true): claimed
    in one statement a round. An entry whose contact cannot be called now is moved out of the way (taken out if
    do-not-call, put back for when their hours open), and its agent asks again in the next round."""
    closed = closed_zones(queue, now=now, hours=hours)
    found: dict[int, tuple[QueueEntry, Contact]] = {}
    owe: set[int] = set()
    for _ in range(MAX_ROUNDS):
        if not checks:
            break
        users = list(checks)
        statement = claim_statement(queue, user_ids=users, check_owes=list(checks.values()), now=now, closed=closed)
        let_go = let_go_lapsed_statement(queue, user_ids=users, now=now)
        try:
            rows, taken_back = _execute_claim(*statement, take_back_statement(queue, user_ids=users, now=now), let_go)
        except IntegrityError:
            log.info("queue %s: a claim for one of %s agents came first; claiming again", queue.pk, len(users))
            continue  # the same agents again: who has an entry of the queue now is told so (the owe check)
        entries, numbers, owing = _read_claims(rows)
        owe |= owing
        for user_id, entry in entries.items():
            if entry.pk in taken_back:
                continue  # another agent's claim of the contact came first: this agent asks again
            contact, phone = number_to_call(numbers[user_id])
            if offer(entry, contact, phone, hours=hours, now=now) and contact is not None:  # offered: it has one
                entry.contact = contact
                found[user_id] = (entry, contact)
        # Again for those whose entry could not be offered; none claimed for the others: nobody left for them.
        checks = {u: False for u in users if u in entries and u not in found}
    else:
        if checks:
            log.warning("queue %s: no contact found for %s agents in %s rounds", queue.pk, len(checks), MAX_ROUNDS)
    return found, owe


# --- One claimed entry ----------------------------------------------------------------------------------------


def number_to_call(numbers: list[ContactPhone]) -> tuple[Contact | None, ContactPhone | None]:
    """The contact and the number a queue calls, from the contact's numbers (primary first, as
    ContactPhone.objects.of_contact reads them): the primary one unless it is do-not-call, here or on any contact;
    (None, None) for a contact gone or without numbers."""
    if not numbers:
        return None, None
    contact = numbers[0].contact
    if contact.do_not_call:
        return contact, None
    return contact, next((p for p in numbers if not p.do_not_call and not p.blocked_elsewhere), None)


def offer(
    entry: QueueEntry, contact: Contact | None, phone: ContactPhone | None, *, hours: calling_hours.Hours, now: datetime
) -> bool:
    """Whether a claimed entry may be offered now. If not, it is moved out of the way: taken out when its contact
    may not be called at all, put back for when their calling hours open otherwise. Its time zone is noted.

    The zone is worked out again from the contact as they are now (their zone or number may have changed since the
    entry's was noted: it is only "next"'s filter in SQL), as the click will (zone_key is cheap)."""
    if contact is None or phone is None:
        finish(entry.pk, QueueEntry.State.DO_NOT_CALL, now=now)
        return False
    zone = entry.time_zone
    key = calling_hours.zone_key(phone.number, contact.time_zone) or UNKNOWN_ZONE
    local = hours.check("" if key == UNKNOWN_ZONE else key, now)
    if not local.open:
        opens = local.opens_at or now + timedelta(hours=1)
        QueueEntry.objects.filter(pk=entry.pk).update(
            due_at=opens, time_zone=key, claimed_by=None, claimed_at=None, claimed_since=None
        )
        return False
    if key != zone:
        QueueEntry.objects.filter(pk=entry.pk).update(time_zone=key)
        entry.time_zone = key
    return True


def finish(entry_id: int, state: str, *, now: datetime) -> None:
    """Take a contact out without a call (do-not-call since the queue was made, or no number left), and say so in
    the queue's outcomes."""
    entry = QueueEntry.objects.filter(pk=entry_id).first()
    if entry is None:
        return
    with transaction.atomic():
        QueueEntry.objects.filter(pk=entry_id).update(
            state=state,
            finished_at=now,
            claimed_by=None,
            claimed_at=None,
            claimed_since=None,
            last_outcome="Do not call",
        )
        QueueAttempt.objects.create(
            queue_id=entry.queue_id, entry=entry, at=now, outcome="Do not call", effect=QueueAttempt.Effect.DO_NOT_CALL
        )
    reports.forget_progress(entry.queue_id)


def closed_zones(queue: CallQueue, *, now: datetime, hours: calling_hours.Hours) -> list[str]:
    """The time zones (QueueEntry.time_zone keys) of the queue's waiting contacts that are outside calling hours
    now. The zones a queue holds are read at most once a minute (they change only as zones are looked up)."""
    cache_key = f"calls:queue:{queue.pk}:zones"
    zones = cache.get(cache_key)
    if zones is None:
        zones = list(
            QueueEntry.objects.filter(queue=queue, state=QueueEntry.State.WAITING)
            .exclude(time_zone__in=["", UNKNOWN_ZONE])
            .order_by()
            .values_list("time_zone", flat=True)
            .distinct()
        )
        cache.set(cache_key, zones, 60)
    return [key for key in zones if not hours.check(key, now).open]
