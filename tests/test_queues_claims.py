"""Call queues' claims (calls/queues/claims.py) when agents ask at once, each in a thread: the desk serving them."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection

from calls.models import Agent, Callback, CallQueue, QueueEntry
from calls.queues import building, claims, working
from tests import _queues
from tests._queues import NOW, _contact

needs_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="the desk claims on PostgreSQL only")

leads, queue = _queues.leads, _queues.queue  # fixtures


def _agents_and_queue(*, agents: int, leads: int) -> tuple[list, CallQueue]:
    """Agents (each a person of their own) and a queue of leads given to them, for tests with a thread each."""
    from tests.conftest import create_person, create_user

    boss = create_user("boss", "supervisor")
    users = [create_person(f"agent{i}", "agent", f"Agent {i}", f"{2000 + i}") for i in range(agents)]
    for i in range(leads):
        _contact(f"Lead {i:02d}", f"+4474001230{i:02d}", company="Acme")
    made = building.make_queue(
        user=boss, name="Race", now=NOW, source_filter={"company": "Acme"}, agents=Agent.objects.all()
    )
    return users, made.queue


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="threads writing at once: SQLite's in-memory test database refuses them"
)
@pytest.mark.django_db(transaction=True)
def test_agents_pulling_next_at_once_never_get_the_same_contact():
    """Eight agents, each in their own thread and database connection, pull "next" together, twice: sixteen
    different contacts (the claims are taken with FOR UPDATE SKIP LOCKED and re-checked on the locked rows)."""
    users, queue = _agents_and_queue(agents=8, leads=20)
    barrier = threading.Barrier(len(users))
    got: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def pull(user) -> None:
        try:
            barrier.wait()
            first = working.take_next(user=user, queue=queue, now=NOW).held
            working.skip(user=user, queue=queue, reason="next one", now=NOW)
            second = working.take_next(user=user, queue=queue, now=NOW).held
            got[user.username] = [first.contact.pk, second.contact.pk]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=pull, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    taken = [pk for pair in got.values() for pk in pair]
    assert len(taken) == 16 and len(set(taken)) == 16


@needs_postgres
def test_one_person_asking_twice_at_once_the_long_way_and_the_short_gets_one_contact_for_both(queue, agent_user):
    """Two tabs: one ask through take_next (what they owe is looked at), one from its long way (dealt with already).
    Served in one batch, both get the same contact: the unchecked ask is never told "owes"."""
    outside = _contact("Out", "+447400555000")
    Callback.objects.create(contact=outside, due_at=NOW - timedelta(minutes=5), assigned_to=agent_user)  # owed
    hours = claims.calling_hours.load_hours()
    asks = [claims._Ask(agent_user.pk, NOW, check_owes=True), claims._Ask(agent_user.pk, NOW, check_owes=False)]
    claims._serve(queue, asks, hours)
    assert [a.error for a in asks] == [None, None]
    assert asks[0].answer == asks[1].answer and asks[0].answer[1].name == "Ada"
    alone = [claims._Ask(agent_user.pk, NOW, check_owes=True)]  # asked alone, the short way: told what they owe
    claims._serve(queue, alone, hours)
    assert alone[0].answer == claims.OWES


def _hold_up_the_first_batch(monkeypatch) -> tuple[threading.Event, threading.Event, list[list[int]]]:
    """The desk's first batch waits, once it is in, until `release` is set (`first_in` says it is in); `batches`
    gets each batch's users as it is served."""
    first_in, release = threading.Event(), threading.Event()
    batches: list[list[int]] = []
    serve = claims._serve

    def held_up_serve(queue, batch, hours):
        batches.append([ask.user_id for ask in batch])
        if len(batches) == 1:
            first_in.set()
            assert release.wait(timeout=60)
        serve(queue, batch, hours)

    monkeypatch.setattr(claims, "_serve", held_up_serve)
    return first_in, release, batches


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_agents_asking_while_a_claim_runs_are_served_together_in_the_queues_order(monkeypatch):
    """The first agent's claim is held up while five more ask: the next of them then claims for all five in one
    statement, the queue's next contacts to them in the order they asked (calls/queues/claims.py)."""
    users, queue = _agents_and_queue(agents=6, leads=10)
    desk = claims._desk(queue.pk)
    first_in, release, batches = _hold_up_the_first_batch(monkeypatch)
    statements: list[list[int]] = []
    execute = claims._execute_claim

    def counted(sql, params, take_back, let_go=None):
        assert claims.is_claim(sql)
        statements.append(params[0])  # the users it claims for
        return execute(sql, params, take_back, let_go)

    monkeypatch.setattr(claims, "_execute_claim", counted)
    got: dict[int, int] = {}
    errors: list[BaseException] = []

    def pull(user) -> None:
        try:
            got[user.pk] = working.take_next(user=user, queue=queue, now=NOW).held.entry.position
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=pull, args=(users[0],))]
    threads[0].start()
    assert first_in.wait(timeout=60)
    for waiting, user in enumerate(users[1:], start=1):  # one at a time, so that they wait in this order
        threads.append(threading.Thread(target=pull, args=(user,)))
        threads[-1].start()
        with desk.arrived:
            assert desk.arrived.wait_for(lambda waiting=waiting: len(desk.waiting) == waiting, timeout=60)
    release.set()
    for t in threads:
        t.join()
    assert not errors
    assert batches == [[users[0].pk], [u.pk for u in users[1:]]]
    assert statements == batches  # one claim statement for each batch, for all its agents
    positions = sorted(queue.entries.values_list("position", flat=True))
    assert [got[u.pk] for u in users] == positions[:6]  # first come, first served, in the queue's order
    claimed = dict(queue.entries.filter(claimed_by__isnull=False).values_list("claimed_by_id", "position"))
    assert claimed == {u.pk: got[u.pk] for u in users}
    assert desk.waiting == [] and desk.busy is False


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_more_agents_than_the_pool_has_connections_wait_together_without_holding_one(monkeypatch):
    """Each agent's thread borrows a connection first, as a request does with its first query. While the first claim
    is held up, more agents than the pool has connections ask: each gives its connection back while it waits, so
    all of them reach the desk (holding them, the pool ran out at its size and the rest waited for a connection)
    and the next claim serves them all, each a different contact."""
    pool = connection.pool
    assert pool is not None  # the tests run with the pool, as vccweb does by default
    waiters = pool.max_size + 5
    users, queue = _agents_and_queue(agents=waiters + 1, leads=waiters + 1)
    desk = claims._desk(queue.pk)
    first_in, release, batches = _hold_up_the_first_batch(monkeypatch)
    got: dict[int, int] = {}
    errors: list[BaseException] = []

    def pull(user) -> None:
        try:
            connection.ensure_connection()
            got[user.pk] = working.take_next(user=user, queue=queue, now=NOW).held.contact.pk
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    lent, lending = [0], threading.Lock()  # connections the pool lent the threads below and has not had back
    getconn, putconn = pool.getconn, pool.putconn

    def counted_getconn(*args, **kwargs):
        conn = getconn(*args, **kwargs)
        with lending:
            lent[0] += 1
        return conn

    def counted_putconn(conn):
        with lending:
            lent[0] -= 1
        putconn(conn)

    monkeypatch.setattr(pool, "getconn", counted_getconn)
    monkeypatch.setattr(pool, "putconn", counted_putconn)
    threads = [threading.Thread(target=pull, args=(user,)) for user in users]
    threads[0].start()
    assert first_in.wait(timeout=60)
    for t in threads[1:]:
        t.start()

    # Each waiting ask is announced once its connection is back: then, of the threads', only the claim held up has
    # one. (Counted as the pool lends and takes back: its stats count a connection it is still opening, to grow, as
    # lent, and nothing announces when that one is ready; waiting on them hung this test now and then.)
    with desk.arrived:
        assert desk.arrived.wait_for(lambda: len(desk.waiting) == waiters, timeout=60), len(desk.waiting)
        assert lent == [1]
    release.set()
    for t in threads:
        t.join()
    assert not errors
    assert len(batches) == 2 and sorted(batches[1]) == sorted(u.pk for u in users[1:])
    assert len(got) == len(users) and len(set(got.values())) == len(users)


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_claim_that_fails_fails_for_every_agent_waiting_on_it_and_frees_the_desk(monkeypatch):
    users, queue = _agents_and_queue(agents=3, leads=5)
    desk = claims._desk(queue.pk)
    first_in, release = threading.Event(), threading.Event()
    claim_for = claims._claim_for
    calls = []

    def failing_claim_for(queue, user_ids, **kwargs):
        calls.append(user_ids)
        if len(calls) == 1:
            first_in.set()
            assert release.wait(timeout=60)
            return claim_for(queue, user_ids, **kwargs)
        raise RuntimeError("the database went away")

    monkeypatch.setattr(claims, "_claim_for", failing_claim_for)
    outcome: dict[int, str] = {}

    def pull(user) -> None:
        try:
            working.take_next(user=user, queue=queue, now=NOW)
            outcome[user.pk] = "served"
        except RuntimeError as exc:
            outcome[user.pk] = str(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=pull, args=(users[0],))]
    threads[0].start()
    assert first_in.wait(timeout=60)
    for user in users[1:]:
        threads.append(threading.Thread(target=pull, args=(user,)))
        threads[-1].start()
    with desk.arrived:
        assert desk.arrived.wait_for(lambda: len(desk.waiting) == 2, timeout=60)
    release.set()
    for t in threads:
        t.join()
    failed = "the database went away"
    assert outcome == {users[0].pk: "served", users[1].pk: failed, users[2].pk: failed}
    assert desk.busy is False
    monkeypatch.setattr(claims, "_claim_for", claim_for)
    assert working.take_next(user=users[1], queue=queue, now=NOW).held is not None  # the desk works again


def _two_queues_of_the_same_leads(leads: int) -> tuple[list, CallQueue, CallQueue]:
    """Two agents, and two queues of the same leads given to both."""
    users, first = _agents_and_queue(agents=2, leads=leads)
    boss = first.created_by
    second = building.make_queue(
        user=boss, name="Again", now=NOW, source_filter={"company": "Acme"}, agents=Agent.objects.all()
    ).queue
    return users, first, second


def _own_connection():
    """A connection of its own to the test database (psycopg, outside Django), its transaction left open."""
    import psycopg

    params = connection.get_connection_params()
    return psycopg.connect(**{k: v for k, v in params.items() if k not in ("cursor_factory", "context")})


def _claim(conn, queue: CallQueue, user) -> tuple[list[int], set[int]]:
    """What the desk runs, on `conn` (transaction left open): the contacts claimed, and the entries taken back."""
    sql, params = claims.claim_statement(queue, user_ids=[user.pk], now=NOW, closed=[])
    rows = conn.execute(sql, params).fetchall()
    take_back, take_back_params = claims.take_back_statement(queue, user_ids=[user.pk], now=NOW)
    taken_back = {row[0] for row in conn.execute(take_back, take_back_params).fetchall()}
    return [row[3] for row in rows], taken_back  # row[3]: the entry's contact_id


def _holders() -> dict[int, list[str]]:
    """Who holds each contact, in which queue."""
    held: dict[int, list[str]] = {}
    for queue, contact, user in QueueEntry.objects.filter(claimed_by__isnull=False).values_list(
        "queue__name", "contact_id", "claimed_by__username"
    ):
        held.setdefault(contact, []).append(f"{user} in {queue}")
    return held


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_claims_at_once_in_two_queues_of_the_same_contacts_hand_each_contact_to_one_agent():
    """Each claim locks its own queue's entry: the first contact's lock makes the second claim skip them, although
    its entry in the other queue is free and the first claim is not committed yet."""
    (first_agent, second_agent), first, second = _two_queues_of_the_same_leads(3)
    c1, c2 = _own_connection(), _own_connection()
    try:
        got_first, _ = _claim(c1, first, first_agent)  # running: its transaction is open
        got_second, taken_back = _claim(c2, second, second_agent)
        c2.commit()
        c1.commit()
    finally:
        c1.close()
        c2.close()
    assert len(got_first) == len(got_second) == 1 and got_first != got_second and not taken_back
    assert all(len(holders) == 1 for holders in _holders().values())


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_claim_committed_after_another_claim_started_is_seen_and_the_later_claim_takes_its_contact_back():
    """The claim statement's snapshot is taken when it starts: a claim of the same contact committed before it locks
    the contact (its lock gone with its commit) is not in it. The take-back statement that follows, in the same
    transaction, sees it and lets the contact go. Here the first claim commits between the two statements."""
    (first_agent, second_agent), first, second = _two_queues_of_the_same_leads(3)
    lead = first.entries.order_by("position").first()
    c1, c2 = _own_connection(), _own_connection()
    try:
        # The first agent's claim of the first lead, not committed yet, the contact's lock already let go.
        c1.execute(
            f"UPDATE {QueueEntry._meta.db_table} SET claimed_by_id = %s, claimed_at = %s, claimed_since = %s "
            "WHERE id = %s",
            [first_agent.pk, NOW, NOW, lead.pk],
        )
        sql, params = claims.claim_statement(second, user_ids=[second_agent.pk], now=NOW, closed=[])
        got = [row[3] for row in c2.execute(sql, params).fetchall()]
        assert got == [lead.contact_id]  # the first claim is not in its snapshot
        c1.commit()
        take_back, take_back_params = claims.take_back_statement(second, user_ids=[second_agent.pk], now=NOW)
        taken_back = [row[0] for row in c2.execute(take_back, take_back_params).fetchall()]
        c2.commit()
    finally:
        c1.close()
        c2.close()
    assert taken_back == [second.entries.get(contact_id=lead.contact_id).pk]
    assert _holders() == {lead.contact_id: [f"{first_agent.username} in {first.name}"]}
    # The second agent, asking again, gets the next lead.
    got_next = working.take_next(user=second_agent, queue=second, now=NOW).held
    assert got_next.contact.pk != lead.contact_id


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="threads writing at once: SQLite's in-memory test database refuses them"
)
@pytest.mark.django_db(transaction=True)
def test_agents_pulling_next_at_once_in_two_queues_of_the_same_contacts_never_get_the_same_contact():
    users, first = _agents_and_queue(agents=8, leads=20)
    second = building.make_queue(
        user=first.created_by, name="Again", now=NOW, source_filter={"company": "Acme"}, agents=Agent.objects.all()
    ).queue
    barrier = threading.Barrier(len(users))
    got: dict[str, int] = {}
    errors: list[BaseException] = []

    def pull(user, queue) -> None:
        try:
            barrier.wait()
            got[user.username] = working.take_next(user=user, queue=queue, now=NOW).held.contact.pk
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=pull, args=(u, (first, second)[i % 2])) for i, u in enumerate(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(got) == 8 and len(set(got.values())) == 8
