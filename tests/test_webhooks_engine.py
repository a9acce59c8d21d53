"""The delivery engine's shape (calls/webhooks/delivery.py, its jobs, its worker): a pass is bounded and written in a
few statements, an endpoint failing as a whole is sent probes only and gets its backlog at once when one succeeds, a
delivery its receiver always refuses neither blocks the endpoint nor loops, fan-out is one statement, order holds
within a subject while subjects go side by side, and webhook jobs have slots of their own. Injected clock, real
receiver over a real socket."""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from fnmatch import fnmatchcase

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test.utils import CaptureQueriesContext

from calls import tasks, worker
from calls.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from calls.webhooks import EVENT_TYPES, delivery, endpoints, outbox
from tests._jobs import queued
from tests._receiver import Receiver, serve
from tests.test_webhooks_delivery import Clock, emit, endpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    yield from serve(settings)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(delivery, "clock", clock)
    return clock


def one_pass(hook: WebhookEndpoint) -> delivery.Pass:
    delivery.dispatch_all()
    return async_to_sync(delivery.deliver_pass)(hook.pk)


def data_ids(receiver: Receiver, since: int = 0) -> list[object]:
    return [json.loads(r.body)["data"]["id"] for r in receiver.received[since:]]


def answer_by_body(receiver: Receiver, poison: int) -> None:
    """Make the receiver refuse the poison's payload alone, always."""

    def answer(handler) -> None:
        with receiver.lock:
            last = receiver.received[-1]
        code = 400 if json.loads(last.body)["data"]["id"] == poison else 204
        handler.send_response(code)
        handler.send_header("content-length", "0")
        handler.end_headers()

    receiver.otherwise = answer


# --- One pass, bounded and written in a few statements ------------------------------------------------------------


def test_a_pass_sends_at_most_a_batch_then_says_more_is_due(receiver, clock, monkeypatch):
    monkeypatch.setattr(delivery, "BATCH", 3)
    hook = endpoint(receiver.url)
    for n in range(5):
        emit(subject=f"contact:{n}", id=n)

    first = one_pass(hook)
    second = one_pass(hook)

    assert (first.attempts, first.more) == (3, True)
    assert (second.attempts, second.more) == (2, False)
    assert sorted(data_ids(receiver)) == [0, 1, 2, 3, 4]
    assert one_pass(hook) == delivery.Pass(attempts=0, more=False)


def test_a_full_pass_queues_the_next_and_a_last_one_does_not(receiver, clock, monkeypatch, jobs):
    monkeypatch.setattr(delivery, "BATCH", 2)
    hook = endpoint(receiver.url)
    for n in range(3):
        emit(subject=f"contact:{n}", id=n)
    delivery.dispatch_all()

    assert async_to_sync(tasks.deliver_webhooks.func)(endpoint_id=hook.pk) == 2
    assert [j["args"] for j in queued(jobs, "deliver_webhooks")] == [{"endpoint_id": hook.pk}]
    jobs.jobs.clear()
    assert async_to_sync(tasks.deliver_webhooks.func)(endpoint_id=hook.pk) == 1
    assert queued(jobs, "deliver_webhooks") == []


def test_a_pass_to_an_endpoint_that_takes_nothing_stops_starting_attempts(receiver, clock, monkeypatch):
    monkeypatch.setattr(delivery, "CONCURRENCY", 2)
    receiver.otherwise = 503
    hook = endpoint(receiver.url)
    for n in range(20):
        emit(subject=f"contact:{n}", id=n)

    done = one_pass(hook)

    assert 2 <= done.attempts <= 2 * delivery.CONCURRENCY and not done.more  # not 20
    hook.refresh_from_db()
    assert hook.failures == 1 and hook.retry_at == clock.now + delivery.PROBE_AFTER[0]


def test_a_pass_is_written_in_the_same_few_statements_whatever_its_size(receiver, clock):
    hook = endpoint(receiver.url)

    def statements(count: int, first: int) -> int:
        for n in range(first, first + count):
            emit(subject=f"contact:{n}", id=n)
        delivery.dispatch_all()
        with CaptureQueriesContext(connection) as queries:
            assert async_to_sync(delivery.deliver)(hook.pk) == count
        return len(queries)

    assert statements(2, 0) == statements(40, 100)
    assert WebhookAttempt.objects.count() == 42
    assert set(hook.deliveries.values_list("status", flat=True)) == {"delivered"}


# --- Fan-out ------------------------------------------------------------------------------------------------------


def test_the_fan_out_is_one_statement_and_matches_as_the_patterns_say(clock, django_assert_num_queries):
    patterns = [["*"], ["call.*"], ["contact.do_not_call_changed"], ["contact.*", "call.ended"], ["call.placed"]]
    hooks = [endpoint(f"https://hooks.example.com/{n}", tuple(p)) for n, p in enumerate(patterns)]
    for n, type in enumerate(EVENT_TYPES * 2):
        outbox.emit(type, f"call:{n % 3}", {"id": n})

    # The statement, in a savepoint of the test's transaction; off PostgreSQL (a quick look) the ORM's few.
    counted = django_assert_num_queries(3) if connection.vendor == "postgresql" else contextlib.nullcontext()
    with counted:
        count, given = delivery.dispatch()

    assert count == 2 * len(EVENT_TYPES)
    expected = sorted(
        (hook.pk, event.pk)
        for event in WebhookEvent.objects.all()
        for hook in hooks
        if any(fnmatchcase(event.type, p) for p in hook.event_types)
    )
    assert sorted(WebhookDelivery.objects.values_list("endpoint_id", "event_id")) == expected
    assert given == {hook.pk for hook in hooks}
    for hook in hooks:  # a subject's deliveries are made in the order of its events (ids order them)
        events = list(hook.deliveries.order_by("id").values_list("event_id", flat=True))
        assert events == sorted(events)
    assert not WebhookEvent.objects.filter(dispatched_at__isnull=True).exists()
    assert delivery.dispatch() == (0, set())


# --- Order within a subject, subjects side by side ----------------------------------------------------------------


def test_order_within_a_subject_holds_with_subjects_sent_side_by_side(receiver, clock):
    hook = endpoint(receiver.url)
    for round in range(4):
        for subject in range(8):
            emit(subject=f"call:{subject}", id=subject * 10 + round)
    refused = 3 * 10 + 1  # call:3's second event is refused once: its third and fourth wait behind it
    together = threading.Barrier(3, timeout=10)  # call:0, call:1 and call:2's first events meet: sent side by side
    refusals: list[int] = []

    def answer(handler) -> None:
        with receiver.lock:
            got = json.loads(receiver.received[-1].body)["data"]["id"]
        code = 204
        if got in (0, 10, 20):
            try:
                together.wait()
            except threading.BrokenBarrierError:
                code = 599  # sent one after the other: the test fails below
        elif got == refused and not refusals:
            refusals.append(got)
            code = 500
        handler.send_response(code)
        handler.send_header("content-length", "0")
        handler.end_headers()

    receiver.otherwise = answer

    assert one_pass(hook).attempts == 30  # 29 delivered, one refused, the two behind it left for later
    got = data_ids(receiver)
    assert got.count(refused) == 1 and 32 not in got and 33 not in got
    for subject in range(8):
        mine = [n for n in got if n // 10 == subject]
        assert mine == sorted(mine), f"call:{subject} out of order: {mine}"
    assert WebhookAttempt.objects.filter(status_code=599).count() == 0

    clock.advance(timedelta(seconds=5))
    one_pass(hook)
    assert data_ids(receiver, 30) == [31, 32, 33]
    assert set(hook.deliveries.values_list("status", flat=True)) == {"delivered"}


# --- An endpoint failing as a whole: probes only, then the backlog at once -----------------------------------------


def test_while_an_endpoint_fails_only_a_probe_is_tried_on_its_schedule(receiver, clock):
    receiver.otherwise = 503
    hook = endpoint(receiver.url)
    for n in range(3):
        emit(subject=f"contact:{n}", id=n)
    assert one_pass(hook).attempts == 3  # every one fails: the endpoint is failing as a whole
    hook.refresh_from_db()
    assert (hook.failures, hook.retry_at, hook.failing_since) == (1, clock.now + timedelta(seconds=5), clock.now)

    waits = []
    for step in range(len(delivery.PROBE_AFTER) + 1):
        emit(subject=f"contact:{10 + step}", id=10 + step)  # new events keep coming: they wait too
        hook.refresh_from_db()
        wait = hook.retry_at - clock.now
        clock.advance(wait - timedelta(seconds=1))
        assert one_pass(hook).attempts == 0
        assert delivery.endpoints_due(now=clock.now) == []
        clock.advance(timedelta(seconds=1))
        assert delivery.endpoints_due(now=clock.now) == [hook.pk]
        assert one_pass(hook).attempts == 1  # the probe, and nothing else
        waits.append(wait)

    assert waits == [*delivery.PROBE_AFTER, delivery.PROBE_AFTER[-1]]
    assert len(receiver.received) == 3 + len(waits)
    # Each probe was a delivery never tried before (the fewest attempts), so none ran up its own back-off.
    assert set(hook.deliveries.values_list("attempts", flat=True)) == {1}
    assert hook.deliveries.filter(status="pending").count() == 3 + len(waits)


def down_with_a_backlog(receiver: Receiver) -> WebhookEndpoint:
    """An endpoint whose receiver answers 503, after a first pass over three changes: call:1's first and call:2's
    fail, call:1's second waits behind its first."""
    receiver.otherwise = 503
    hook = endpoint(receiver.url)
    emit(subject="call:1", id=1)
    emit(subject="call:1", id=2)
    emit(subject="call:2", id=3)
    one_pass(hook)
    return hook


def test_a_probe_that_succeeds_makes_the_whole_backlog_due_at_once(receiver, clock):
    hook = down_with_a_backlog(receiver)
    for _ in range(4):  # no new event: the probes come back to the same deliveries, whose own back-off grows
        clock.advance(delivery.PROBE_AFTER[-1])
        assert one_pass(hook).attempts == 1
    for n in range(4, 40):
        emit(subject=f"contact:{n}", id=n)
    delivery.dispatch_all()
    assert hook.deliveries.filter(next_attempt_at__gt=clock.now).exists()  # without the release, some would wait

    receiver.otherwise = 204
    clock.advance(delivery.PROBE_AFTER[-1])
    probe = one_pass(hook)
    backlog = one_pass(hook)

    assert (probe.attempts, probe.more) == (1, True)  # the job queues the next pass at once
    assert backlog.attempts == 38 and not backlog.more
    assert set(hook.deliveries.values_list("status", flat=True)) == {"delivered"}
    hook.refresh_from_db()
    assert (hook.failures, hook.retry_at, hook.failing_since) == (0, None, None)
    got = data_ids(receiver)
    assert [n for n in got if n in (1, 2)][-2:] == [1, 2]  # call:1 in order


def test_a_receiver_down_through_a_quiet_night_is_probed_on_schedule_and_gets_its_backlog_when_back(receiver, clock):
    hook = down_with_a_backlog(receiver)  # then no new event all night
    started = clock.now
    while clock.now - started < timedelta(hours=12):
        hook.refresh_from_db()
        clock.advance(hook.retry_at - clock.now)
        assert delivery.endpoints_due(now=clock.now) == [hook.pk]
        # A probe at each step of PROBE_AFTER, though each delivery's own back-off has grown to hours.
        assert one_pass(hook).attempts == 1
    assert hook.deliveries.filter(next_attempt_at__gt=clock.now + delivery.PROBE_AFTER[-1]).exists()

    receiver.otherwise = 204  # the receiver is back: its backlog comes with the next probe, within 5 minutes
    clock.advance(delivery.PROBE_AFTER[-1])
    probe = one_pass(hook)
    assert probe.attempts == 1 and probe.more
    one_pass(hook)
    assert set(hook.deliveries.values_list("status", flat=True)) == {"delivered"}
    got = data_ids(receiver)
    assert [n for n in got if n in (1, 2)][-2:] == [1, 2]  # call:1 in order


def test_a_receiver_down_for_a_day_disables_the_endpoint_and_resume_sends_every_change_in_order(receiver, clock):
    hook = down_with_a_backlog(receiver)
    hook.refresh_from_db()
    while hook.enabled:  # a probe at each step, for a day
        clock.advance(hook.retry_at - clock.now)
        assert one_pass(hook).attempts == 1
        hook.refresh_from_db()

    assert hook.disabled_reason == "failed for 24 hours: HTTP 503"
    # Nothing was given up for the receiver being down: every change waits for Resume.
    assert set(hook.deliveries.values_list("status", flat=True)) == {"pending"}
    receiver.otherwise = 204
    endpoints.resume(hook, by="ada", now=clock.now)
    before = len(receiver.received)
    one_pass(hook)
    one_pass(hook)
    assert set(hook.deliveries.values_list("status", flat=True)) == {"delivered"}
    assert sorted(data_ids(receiver, before)) == [1, 2, 3]
    got = data_ids(receiver, before)
    assert got.index(1) < got.index(2)  # call:1 in order


def test_a_delivery_refused_while_nothing_else_waits_is_given_up_at_24_hours_naming_it(receiver, clock):
    # The only pending delivery, always refused (its subject's next waiting behind it): kept, it disabled the endpoint
    # after 24 hours without naming it, and Resume tried it alone again, day after day, the subject held for ever.
    answer_by_body(receiver, poison=1)
    hook = endpoint(receiver.url)
    emit("contact.updated", "contact:1", id=1)
    emit("contact.updated", "contact:1", id=11)
    one_pass(hook)
    hook.refresh_from_db()
    while hook.enabled:
        clock.advance(hook.retry_at - clock.now)
        one_pass(hook)
        hook.refresh_from_db()

    poison = hook.deliveries.get(event__payload__data__id=1)
    assert poison.status == "failed"
    assert hook.disabled_reason.startswith("contact.updated of contact:1 (msg_")
    assert hook.disabled_reason.endswith("failed for 24 hours: HTTP 400")
    endpoints.resume(hook, by="ada", now=clock.now)
    one_pass(hook)
    assert hook.deliveries.get(event__payload__data__id=11).status == "delivered"  # its subject goes on


# --- A delivery the receiver always refuses ("poison") ------------------------------------------------------------


def test_a_refused_delivery_keeps_its_own_back_off_while_the_rest_flows(receiver, clock):
    answer_by_body(receiver, poison=1)
    hook = endpoint(receiver.url)
    emit(subject="contact:1", id=1)
    emit(subject="contact:1", id=11)  # waits behind the refused one (its subject's order)
    emit(subject="contact:2", id=2)

    one_pass(hook)
    hook.refresh_from_db()
    assert hook.failing_since is None and hook.retry_at is None  # the endpoint answers: not failing as a whole

    emit(subject="contact:3", id=3)
    assert one_pass(hook).attempts == 1  # at once: nothing waits for the refused one but its own subject
    assert sorted(data_ids(receiver)) == [1, 2, 3]
    poison = hook.deliveries.get(event__payload__data__id=1)
    assert (poison.status, poison.attempts, poison.next_attempt_at) == ("pending", 1, clock.now + timedelta(seconds=5))


def test_a_refused_delivery_tried_alone_costs_one_probe_wait_and_keeps_its_back_off(receiver, clock):
    answer_by_body(receiver, poison=1)
    hook = endpoint(receiver.url)
    emit(subject="contact:1", id=1)
    emit(subject="contact:2", id=2)
    one_pass(hook)  # 1 refused, 2 delivered
    clock.advance(timedelta(seconds=5))
    assert one_pass(hook).attempts == 1  # 1 alone, refused again: the pass failed as a whole
    hook.refresh_from_db()
    assert hook.retry_at == clock.now + timedelta(seconds=5)

    emit(subject="contact:3", id=3)
    clock.advance(timedelta(seconds=4))
    assert one_pass(hook).attempts == 0  # waits for the probe's time
    clock.advance(timedelta(seconds=1))
    probe = one_pass(hook)  # the probe is 3 (never tried), not the refused one (tried twice)

    assert (probe.attempts, data_ids(receiver)[-1]) == (1, 3)
    hook.refresh_from_db()
    assert hook.retry_at is None and hook.failing_since is None
    poison = hook.deliveries.get(event__payload__data__id=1)
    assert poison.attempts == 2
    assert poison.next_attempt_at == poison.last_attempt_at + delivery.RETRY_AFTER[1]  # not released
    assert one_pass(hook).attempts == 0  # nothing loops on it


def test_a_refused_delivery_is_given_up_after_24_hours_and_the_endpoint_disabled_saying_why(receiver, clock):
    answer_by_body(receiver, poison=1)
    hook = endpoint(receiver.url)
    emit("contact.updated", "contact:1", id=1)
    emit("contact.updated", "contact:1", id=11)
    first = clock.now
    tries = []
    n = 100
    while clock.now - first < timedelta(hours=28):  # other contacts change every 10 minutes, for 28 hours
        emit(subject=f"contact:{n}", id=n)
        n += 1
        before = len(receiver.received)
        while one_pass(hook).more:
            pass
        tries += [clock.now for got in data_ids(receiver, before) if got == 1]
        hook.refresh_from_db()
        if not hook.enabled:
            break
        clock.advance(timedelta(minutes=10))

    assert len(tries) == delivery.MAX_ATTEMPTS  # its own schedule, on the 10-minute grid; never hot
    gaps = [later - earlier for earlier, later in zip(tries, tries[1:], strict=False)]
    assert all(gap >= wait for gap, wait in zip(gaps, delivery.RETRY_AFTER, strict=True))
    assert hook.deliveries.get(event__payload__data__id=1).status == "failed"
    assert not hook.enabled
    assert hook.disabled_reason.startswith("contact.updated of contact:1 (msg_")
    assert hook.disabled_reason.endswith("failed for 24 hours: HTTP 400")
    others = hook.deliveries.exclude(subject="contact:1")
    assert set(others.values_list("status", flat=True)) == {"delivered"}  # none waited on it meanwhile
    assert hook.deliveries.get(event__payload__data__id=11).status == "pending"  # its subject's next: it waits


def test_a_failing_endpoints_page_says_when_its_probe_goes(admin_client, receiver, clock):
    receiver.otherwise = 503
    hook = endpoint(receiver.url)
    emit()
    one_pass(hook)
    hook.refresh_from_db()

    page = admin_client.get(f"/integrations/webhooks/{hook.pk}/").content.decode()

    assert "failing" in page
    assert f'deliveries wait for a probe at <time datetime="{hook.retry_at.isoformat()}">' in page


# --- Queues and workers -------------------------------------------------------------------------------------------


class Watch:
    """The watching fan-out's clock and pause: each pause moves the clock on, and runs what the test planned for it
    (a change committed meanwhile)."""

    def __init__(self, during: dict[int, Callable[[], object]] | None = None) -> None:
        self.now = 1000.0
        self.pauses: list[float] = []
        self.during = during or {}

    def clock(self) -> float:
        return self.now

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds
        if action := self.during.get(len(self.pauses)):
            action()


def test_the_fan_out_watches_for_new_events_until_its_time_is_up(receiver, jobs, monkeypatch):
    monkeypatch.setattr(tasks, "WATCH_PAUSE", 0.25)  # a whole number of pauses in a second, exactly
    hook = endpoint(receiver.url)
    emit(subject="contact:1", id=1)
    # A change commits during the third pause: the same job fans it out, with nothing queued by the change.
    watch = Watch({3: lambda: emit(subject="contact:2", id=2)})

    given = tasks.watch_events(1.0, clock=watch.clock, pause=watch.pause)

    assert given == 1
    assert watch.pauses == [0.25] * 4  # five passes: at 0, 0.25, 0.5, 0.75 and 1 s
    assert sorted(hook.deliveries.values_list("subject", flat=True)) == ["contact:1", "contact:2"]
    assert not WebhookEvent.objects.filter(dispatched_at__isnull=True).exists()
    # Each pass that made deliveries queued the endpoint's delivery job; the queueing lock keeps one waiting.
    assert [j["args"] for j in queued(jobs, "deliver_webhooks")] == [{"endpoint_id": hook.pk}]


def test_the_fan_out_does_not_watch_without_an_endpoint_nor_when_asked_by_hand(jobs, monkeypatch):
    watch = Watch()
    assert tasks.watch_events(tasks.WATCH_SECONDS, clock=watch.clock, pause=watch.pause) == 0
    assert watch.pauses == []  # nothing is written to wait for

    seconds: list[float] = []
    monkeypatch.setattr(tasks, "watch_events", lambda s: seconds.append(s) or 0)
    tasks.dispatch_webhooks(timestamp=1_700_000_000)  # the periodic tick
    tasks.dispatch_webhooks()  # deferred by hand: one pass
    assert seconds == [tasks.WATCH_SECONDS, 0.0]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the lock is PostgreSQL's; no worker runs on SQLite")
def test_one_fan_out_runs_at_a_time_and_a_dead_workers_lock_goes_with_its_connection(receiver, jobs):
    import psycopg

    from tests._workers import database_url

    hook = endpoint(receiver.url)
    emit(subject="contact:1", id=1)
    watch = Watch()
    other = psycopg.connect(database_url(connection.settings_dict), autocommit=True)  # another worker's fan-out
    with other:
        other.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [tasks.FANOUT_LOCK])
        # It waits its turn (here 50 ms, as lock_timeout, PostgreSQL's clock), then leaves the fan-out to the other.
        assert tasks.watch_events(1.0, clock=watch.clock, pause=watch.pause, lock_wait_ms=50) == 0
        assert tasks.watch_events(1.0, clock=watch.clock, pause=watch.pause, lock_wait_ms=0) == 0
        assert watch.pauses == [] and not hook.deliveries.exists()
    # The other worker's connection is gone (it died): the next job takes over at once.
    assert tasks.watch_events(0.0, clock=watch.clock, pause=watch.pause) == 1
    assert hook.deliveries.count() == 1
    with connection.cursor() as cursor:  # and lets go of the lock when it ends
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        assert cursor.fetchone()[0] == 0


def test_webhook_jobs_have_their_queue_and_a_worker_of_their_own(settings):
    settings.WEBHOOK_WORKER_CONCURRENCY = 5
    webhook_jobs = (tasks.dispatch_webhooks, tasks.deliver_webhooks, tasks.retry_webhooks)
    assert {job.queue for job in webhook_jobs} == {"webhooks"}
    assert tasks.follow_calls.queue == "calls"
    assert tasks.dispatch_webhooks.priority > tasks.deliver_webhooks.priority  # a fan-out goes first

    everything = worker.workers(None, None)
    assert [(w["queues"], w["concurrency"]) for w in everything] == [
        ([q for q in tasks.QUEUES if q != "webhooks"], None),  # WORKER_CONCURRENCY
        (["webhooks"], 5),
    ]
    assert [(w["queues"], w["concurrency"]) for w in worker.workers(["calls", "webhooks"], 3)] == [
        (["calls"], 3),
        (["webhooks"], 5),
    ]
    assert [(w["queues"], w["concurrency"]) for w in worker.workers(["webhooks"], 3)] == [(["webhooks"], 3)]
    assert [(w["queues"], w["concurrency"]) for w in worker.workers(["imports"], None)] == [(["imports"], None)]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans")
@pytest.mark.parametrize("probing", [True, False])
def test_a_pass_reads_which_deliveries_may_go_in_one_scan_whatever_the_plan(clock, probing):
    """Which deliveries a pass may send (the first of each subject, or none behind one waiting its back-off) is read
    in one scan of the endpoint's backlog, even with the planner pushed to nested loops, as a stale estimate of one
    row does: a correlated NOT EXISTS read the whole backlog for each delivery, and a receiver's probe after 8 minutes
    down (34,000 waiting) ran for minutes (bench/README.md, "Outgoing webhooks")."""
    from django.db import transaction

    hook = endpoint("https://hooks.example.com/in", retry_at=clock.now if probing else None)
    for n in range(6):
        emit(subject=f"call:{n // 2}", id=n)
    delivery.dispatch_all()
    first, second = hook.deliveries.filter(subject="call:1").order_by("id")
    WebhookDelivery.objects.filter(pk=first.pk).update(attempts=1, next_attempt_at=clock.now + timedelta(minutes=5))
    with CaptureQueriesContext(connection) as queries:
        found, due = delivery._due(hook.pk, clock.now, delivery.BATCH)
    # Probing: the first of a subject, never tried; otherwise all but call:1's, behind the one waiting its back-off.
    assert [(one.subject, one.attempts) for one in due] == (
        [("call:0", 0)] if probing else [("call:0", 0), ("call:0", 0), ("call:2", 0), ("call:2", 0)]
    )
    (sql,) = [q["sql"] for q in queries.captured_queries if "row_number()" in q["sql"]]

    with transaction.atomic(), connection.cursor() as cursor:
        for setting in ("enable_seqscan", "enable_hashjoin", "enable_mergejoin", "enable_bitmapscan"):
            cursor.execute(f"SET LOCAL {setting} = off")  # the nested loops a stale estimate of one row chooses
        cursor.execute(f"EXPLAIN {sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Join" not in plan and "Nested Loop" not in plan and "SubPlan" not in plan, plan
    assert len(re.findall(r"Scan using \w+ on calls_webhookdelivery", plan)) == 1, plan
