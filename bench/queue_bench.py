"""Call queues at volume (issue 23): making a queue of 100,000 contacts out of a million, and 200 agents pulling
"next" at once, each timed, on PostgreSQL.

The database (--database; by default `hlbench_queue`, a copy of the `seed_volume` data: `createdb -T hlbench
hlbench_queue`) is changed: --size contacts get the company "Queue bench" (the filter the queue is made from), and
--agents bench agents are added once. Everything runs in this process through the app's own functions (the ones
the pages call): `calls.queues.building.make_queue` and, in one thread and one database connection per agent,
`calls.queues.working.take_next`, all agents released together by a barrier. Printed: the queue's making time, the
time zones' lookup (the minute job's, for a queue this size), and each round's p50, p95 and worst "next", with a
check that no two agents got the same contact. A benchmark, not a test: it prints figures, asserts nothing.

    createdb -h 127.0.0.1 -U postgres -T hlbench hlbench_queue
    .venv/bin/python bench/queue_bench.py [--database URL] [--size 100000] [--agents 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
COMPANY = "Queue bench"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/hlbench_queue")
    parser.add_argument("--size", type=int, default=100_000, help="contacts in the queue")
    parser.add_argument("--agents", type=int, default=200, help="agents pulling next at once")
    parser.add_argument("--rounds", type=int, default=5, help="times the agents pull next together")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="app processes the agents are spread over, each with its own pool and desk (make serve runs "
        "WEB_CONCURRENCY of them, one per core by default)",
    )
    parser.add_argument("--makes", type=int, default=3, help="queues made (each timed)")
    parser.add_argument(
        "--sql-agents", type=int, default=90, help="connections claiming at once with the SQL alone (max_connections)"
    )
    parser.add_argument(
        "--at",
        default="",
        help="the moment the agents work at, ISO 8601 (default: next Tuesday 11:00 UTC, inside everyone's calling "
        "hours in the UK; US numbers are closed then and wait)",
    )
    return parser.parse_args(argv)


def _next_tuesday_eleven() -> datetime:
    today = datetime.now(UTC).replace(hour=11, minute=0, second=0, microsecond=0)
    return today + timedelta(days=(1 - today.weekday()) % 7 or 7)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def pull_together(
    working: Any, queue: Any, users: list[Any], *, now: object, gate: Any = None
) -> tuple[list[float], list[int]]:
    """Each user's "next", all at once (a barrier), each timed from the barrier to its answer. `gate`: called once
    every thread waits, before they are released (other processes' agents are released with them)."""
    from django.db import connection

    barrier = threading.Barrier(len(users) + 1)
    latencies: list[float] = []
    taken: list[int] = []
    lock = threading.Lock()

    def pull(user: Any) -> None:
        try:
            barrier.wait()
            started = time.perf_counter()
            connection.ensure_connection()  # a request holds one from its first query (its session, its user)
            got = working.take_next(user=user, queue=queue, now=now)
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                if got.held is not None:
                    taken.append(got.held.contact.pk)
        finally:
            connection.close()  # back to the pool, as at the end of a request

    threads = [threading.Thread(target=pull, args=(u,)) for u in users]
    for t in threads:
        t.start()
    while barrier.n_waiting < len(users):  # every agent ready before they are released together
        time.sleep(0.001)
    if gate is not None:
        gate()
    barrier.wait()
    for t in threads:
        t.join()
    return latencies, taken


def agents_process(user_ids: list[int], queue_id: int, now: datetime, rounds: int, start: Any, results: Any) -> None:
    """One more app process (--processes): its agents pull "next" in each round, released with every other
    process's by `start` (a multiprocessing barrier); each round's times and contacts go back on `results`."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from calls.models import CallQueue
    from calls.queues import working

    users = list(get_user_model().objects.filter(pk__in=user_ids).order_by("username"))
    queue = CallQueue.objects.get(pk=queue_id)
    for _ in range(rounds):
        results.put(pull_together(working, queue, users, now=now, gate=start.wait))
        start.wait()  # the round's contacts are skipped by the first process before the next round


def claim_sql_together(dsn: str, statement: tuple[str, list[Any]], user_ids: list[int]) -> tuple[list[float], int]:
    """The claim statement alone, from one connection per user (psycopg, no Django), all at once: what PostgreSQL
    spends, without Python's share. Returns each one's time and how many different entries were claimed."""
    import psycopg

    sql, params = statement  # its first parameter: the users it claims for (here, one each)
    connections = [psycopg.connect(dsn, autocommit=True) for _ in user_ids]
    for conn in connections:
        conn.execute("SET jit = off")  # as the desk runs it (claims._execute_claim)
    barrier = threading.Barrier(len(user_ids))
    latencies: list[float] = []
    claimed: list[int] = []
    lock = threading.Lock()

    def claim(conn: Any, user_id: int) -> None:
        mine = [[user_id], *params[1:]]
        barrier.wait()
        started = time.perf_counter()
        row = conn.execute(sql, mine).fetchone()
        elapsed = (time.perf_counter() - started) * 1000
        with lock:
            latencies.append(elapsed)
            if row is not None:
                claimed.append(row[1])  # the entry (row[0] is the user)

    threads = [threading.Thread(target=claim, args=(c, u)) for c, u in zip(connections, user_ids, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for conn in connections:
        conn.close()
    return latencies, len(set(claimed))


def main() -> None:
    args = parse_args()
    # DEBUG off (no query log kept), as a server runs; the key is this run's own.
    os.environ.update(
        DATABASE_URL=args.database,
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="localhost",
        DJANGO_SETTINGS_MODULE="vccweb.settings",
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from calls.models import Agent, AgentGroup, Callback, CallQueue, Contact, QueueAttempt, QueueEntry
    from calls.queues import building, claims, working
    from calls.roles import AGENT, assign_role

    contacts = Contact.objects.count()
    tagged = Contact.objects.filter(company=COMPANY).count()
    if tagged != args.size:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("UPDATE calls_contact SET company = '' WHERE company = %s", [COMPANY])
            cursor.execute(
                "UPDATE calls_contact SET company = %s WHERE id IN "
                "(SELECT id FROM calls_contact WHERE NOT do_not_call ORDER BY id DESC LIMIT %s)",
                [COMPANY, args.size],
            )
            cursor.execute("ANALYZE calls_contact")
        print(f"tagged {args.size:,} of {contacts:,} contacts as {COMPANY!r} in {time.perf_counter() - started:.1f} s")
    group, _ = AgentGroup.objects.get_or_create(display_id="900", defaults={"name": "Queue bench"})
    users = get_user_model()
    for i in range(args.agents):
        user, made = users.objects.get_or_create(username=f"queue_bench_{i:03d}")
        if made:
            assign_role(user, AGENT)
            Agent.objects.create(display_id=f"9{i:04d}", name=f"Bench agent {i}", user=user)
    agent_users = list(users.objects.filter(username__startswith="queue_bench_").order_by("username")[: args.agents])
    group.members.set(Agent.objects.filter(user__in=agent_users))
    boss = users.objects.filter(is_superuser=True).first() or agent_users[0]
    print(f"{contacts:,} contacts; {len(agent_users)} agents; PostgreSQL {connection.pg_version}")

    at = datetime.fromisoformat(args.at) if args.at else _next_tuesday_eleven()
    print(f"working at {at:%a %Y-%m-%d %H:%M} UTC (an injected clock, as the tests' is)")
    # Making the queue: the contacts matching the filter, in its order, as the page makes it.
    timings = []
    queue = None
    for n in range(args.makes):
        CallQueue.objects.filter(name__startswith="Queue bench").delete()
        started = time.perf_counter()
        made = building.make_queue(
            user=boss,
            name=f"Queue bench {n}",
            now=at,
            source_filter={"company": COMPANY},
            groups=[group],
            sort=["oldest", "priority", "last_called"][n % 3],
        )
        timings.append(time.perf_counter() - started)
        queue = made.queue
        print(
            f"made a queue of {made.added:,} contacts ({made.left_out:,} left out) ordered by "
            f"{made.queue.sort}: {timings[-1]:.2f} s"
        )
    print(f"making {args.size:,}: best {min(timings):.2f} s, worst {max(timings):.2f} s (goal 5 s)")
    assert queue is not None
    started = time.perf_counter()
    filled = working.fill_zones(limit=args.size)
    print(f"time zones looked up for {filled:,} contacts (the minute job): {time.perf_counter() - started:.1f} s")
    # What autovacuum does on a server after the queues made and dropped above and the time zones written (this
    # machine's PostgreSQL runs with it off, /etc/postgresql/15/main/conf.d/90-ci.conf): without it the entries'
    # dead rows (3 million after a few runs) were read by every look at what an agent holds, 35 to 50 ms a claim.
    with connection.cursor() as cursor:
        for model in (QueueEntry, QueueAttempt, Callback):
            cursor.execute(f"VACUUM (ANALYZE) {model._meta.db_table}")

    # 200 agents pulling next at once: each in its own thread, released together, borrowing a connection from the
    # process's pool (DB_POOL_MAX_SIZE, 10 by default) as a request would: the time includes waiting for one.
    now = at
    alone = agent_users[:20]
    started = time.perf_counter()
    for user in alone:
        working.take_next(user=user, queue=queue, now=now)
        working.skip(user=user, queue=queue, reason="bench", now=now)
    one = (time.perf_counter() - started) * 1000 / len(alone)
    print(f"one agent at a time: next and skip {one:.1f} ms a contact")
    all_taken: list[int] = []
    # --processes: this process keeps its share of the agents, each other process (spawned: a fresh interpreter,
    # with its own pool and desk, as uvicorn's workers) takes one share.
    shares = [agent_users[i :: args.processes] for i in range(args.processes)]
    import multiprocessing

    spawn = multiprocessing.get_context("spawn")
    start, results = spawn.Barrier(args.processes), spawn.Queue()
    others = [
        spawn.Process(target=agents_process, args=([u.pk for u in share], queue.pk, now, args.rounds, start, results))
        for share in shares[1:]
    ]
    for process in others:
        process.start()
    if others:
        print(f"{args.processes} processes, {len(shares[0])} to {len(shares[-1])} agents each")
    for round_ in range(args.rounds):
        latencies, taken = pull_together(working, queue, shares[0], now=now, gate=start.wait)
        for _ in others:
            more_latencies, more_taken = results.get()
            latencies, taken = latencies + more_latencies, taken + more_taken
        all_taken += taken
        print(
            f"round {round_ + 1}: {len(taken)} of {len(agent_users)} got a contact, {len(set(taken))} different; "
            f"next p50 {statistics.median(latencies):.0f} ms, p95 {percentile(latencies, 95):.0f} ms, "
            f"worst {max(latencies):.0f} ms (goal p95 100 ms)"
        )
        for user in agent_users:
            working.skip(user=user, queue=queue, reason="bench", now=now)
        if others:
            start.wait()
    for process in others:
        process.join()
    print(f"over {args.rounds} rounds: {len(all_taken)} contacts handed out, {len(set(all_taken))} different")
    # PostgreSQL's share: the claim statement alone from --sql-agents connections at once.
    hours = working.calling_hours.load_hours()
    closed = claims.closed_zones(queue, now=now, hours=hours)
    statement = claims.claim_statement(queue, user_ids=[agent_users[0].pk], now=now, closed=closed)
    ids = [u.pk for u in agent_users[: args.sql_agents]]
    for round_ in range(args.rounds):
        latencies, different = claim_sql_together(args.database, statement, ids)
        print(
            f"claim SQL alone, {len(ids)} connections at once, round {round_ + 1}: {different} different entries; "
            f"p50 {statistics.median(latencies):.1f} ms, p95 {percentile(latencies, 95):.1f} ms, "
            f"worst {max(latencies):.1f} ms"
        )
        QueueEntry.objects.filter(queue=queue, claimed_by__in=agent_users).update(
            state="reached", claimed_by=None, claimed_at=None, claimed_since=None
        )
    # What a batch costs PostgreSQL: the one statement that claims for every agent who asked together.
    for size in sorted({min(10, len(agent_users)), len(agent_users)}):
        batch = [u.pk for u in agent_users[:size]]
        sql, params = claims.claim_statement(queue, user_ids=batch, check_owes=[True] * size, now=now, closed=closed)
        started = time.perf_counter()
        take_back = claims.take_back_statement(queue, user_ids=batch, now=now)
        let_go = claims.let_go_lapsed_statement(queue, user_ids=batch, now=now)
        rows, _ = claims._execute_claim(sql, params, take_back, let_go)  # as the desk runs it
        elapsed = (time.perf_counter() - started) * 1000
        print(f"one claim statement for {size} agents together: {len({r[0] for r in rows})} served in {elapsed:.1f} ms")
        QueueEntry.objects.filter(queue=queue, claimed_by__in=agent_users).update(
            state="reached", claimed_by=None, claimed_at=None, claimed_since=None
        )
    for user in agent_users:
        working.release(user)


if __name__ == "__main__":
    main()
