"""The deployment's one budget of VCC requests (calls/vcc/budget.py): priorities, 429 back-offs, Redis shared by
every process, a process's own share while Redis is down, and the real client against the simulator."""

from __future__ import annotations

import bisect

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import ImproperlyConfigured

from calls import calling
from calls.cache import InProcessCache, TolerantRedisCache
from calls.models import Call, Contact, ContactPhone
from calls.vcc import VCCError, budget, core, get_client
from calls.vcc.budget import CLICK, FOLLOW, READINESS, RECORDING, SYNC, Budget, BudgetExhausted, Memory
from tests._redis import TEST_REDIS_URL
from tests._sim import click, fresh_simulator, only_call, primary
from tests.test_settings import load

START = 1_800_000_000.0  # the start of a minute (divisible by 60), so a test knows where the window stands


class Clock:
    """Seconds since the epoch that move only when the test says so."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def local_budget(clock: Clock, per_minute: int = 10) -> Budget:
    """A budget without Redis: one process, the whole budget."""
    return Budget(
        InProcessCache("budget-test", {}), per_minute=per_minute, account="acct", memory=Memory(), clock=clock
    )


def drawn(budget_: Budget, priority: budget.Priority) -> bool:
    try:
        budget_.draw(priority)
    except BudgetExhausted:
        return False
    return True


def test_polls_are_refused_once_their_share_is_used_while_a_click_still_goes():
    clock = Clock()
    b = local_budget(clock)

    assert [drawn(b, FOLLOW) for _ in range(8)] == [True] * 7 + [False]  # 70 % of 10

    assert drawn(b, CLICK)
    assert all(drawn(b, CLICK) for _ in range(5))  # past the budget too: VCC, not us, may refuse a click
    with pytest.raises(BudgetExhausted) as refused:
        b.draw(FOLLOW)
    assert refused.value.retryable and refused.value.retry_after > 0
    assert refused.value.status is None  # VCC was not asked


def test_each_priority_goes_while_the_minute_holds_less_than_its_share():
    clock = Clock()
    b = local_budget(clock)
    went = []
    for _ in range(10):
        went.append([p.name for p in (SYNC, READINESS, FOLLOW, RECORDING, CLICK) if drawn(local_peek(b), p)])
        b.draw(CLICK)  # one more request in the minute

    assert went[2] == ["SYNC", "READINESS", "FOLLOW", "RECORDING", "CLICK"]
    assert went[3] == ["READINESS", "FOLLOW", "RECORDING", "CLICK"]  # 3 of 10 used: sync's 30 % is gone
    assert went[5] == ["FOLLOW", "RECORDING", "CLICK"]
    assert went[7] == ["RECORDING", "CLICK"]
    assert went[9] == ["CLICK"]  # the last 10 % is the clicks'


def local_peek(b: Budget) -> Budget:
    """The same budget as seen by a throwaway copy of its process's counts: asking does not count."""
    copy = Memory(window=b.memory.window.copy())
    return Budget(b.cache, per_minute=b.per_minute, account="acct", memory=copy, clock=b.clock)


def test_a_refused_poll_is_told_when_there_is_room_again_and_the_window_slides():
    clock = Clock()
    b = local_budget(clock)
    for _ in range(7):
        b.draw(FOLLOW)
        clock.advance(5)  # one every 5 s, the last at START + 30
    with pytest.raises(BudgetExhausted) as refused:
        b.draw(FOLLOW)

    # Room comes when the first of the 7, sent at START, is 60 s old; then one every 5 s as the others leave.
    assert refused.value.retry_after == 25
    clock.advance(refused.value.retry_after - 1)
    assert not drawn(b, FOLLOW)
    clock.advance(1)
    assert drawn(b, FOLLOW)
    with pytest.raises(BudgetExhausted) as refused:
        b.draw(FOLLOW)
    assert refused.value.retry_after == 5


def burst_at_the_end_of_a_minute_then_steady_polls(b: Budget, clock: Clock) -> list[float]:
    """Polls as many as may go in the last half second of a minute (follow_calls asking for 50 claimed calls, or
    the end of a back-off), then one every 0.1 s for 80 s. Returns when each was sent."""
    sent = []
    clock.now = START + 59.5
    while drawn(b, FOLLOW):
        sent.append(clock.now)
    for tenth in range(1, 801):
        clock.now = START + 59.5 + tenth / 10
        if drawn(b, FOLLOW):
            sent.append(clock.now)
    return sent


def most_in_any_60_seconds(sent: list[float]) -> int:
    return max(bisect.bisect_left(sent, at + 60) - i for i, at in enumerate(sent))


def test_a_burst_at_the_end_of_a_minute_does_not_let_the_next_minute_send_its_share_again():
    clock = Clock()
    b = local_budget(clock, per_minute=150)

    sent = burst_at_the_end_of_a_minute_then_steady_polls(b, clock)

    assert len([at for at in sent if at == START + 59.5]) == 105  # the whole share at once: nothing else was sent
    assert most_in_any_60_seconds(sent) == 105  # not 105 again while the burst is still in the last 60 s
    assert sent[105] == START + 59.5 + 60  # room again once the burst has left the window


def test_a_429_holds_back_everything_but_clicks_for_its_retry_after():
    clock = Clock()
    b = local_budget(clock, per_minute=150)

    b.limited(20)

    for priority in (RECORDING, FOLLOW, READINESS):
        with pytest.raises(BudgetExhausted) as refused:
            b.draw(priority)
        assert refused.value.retry_after == 20
    assert drawn(b, CLICK)
    clock.advance(19)
    assert not drawn(b, FOLLOW)
    clock.advance(1)
    assert drawn(b, FOLLOW)


@pytest.mark.parametrize(("retry_after", "held"), [(None, 10), (86400, 300)])
def test_a_429_without_a_usable_retry_after_holds_back_10_seconds_and_never_more_than_5_minutes(retry_after, held):
    clock = Clock()
    b = local_budget(clock, per_minute=150)

    assert b.limited(retry_after) == held
    clock.advance(held - 1)
    assert not drawn(b, FOLLOW)
    clock.advance(1)
    assert drawn(b, FOLLOW)


def test_the_snapshot_counts_this_minute_by_priority_and_the_429s_of_the_last_hour():
    clock = Clock()
    b = local_budget(clock)
    for priority in (SYNC, SYNC, SYNC):
        b.draw(priority)
    assert not drawn(b, SYNC)
    for priority in (CLICK, CLICK, FOLLOW):
        b.draw(priority)
    b.limited(10)
    clock.advance(3600 - 1)
    b.limited(10)  # an hour after the first: only this one is within the last hour

    clock.now = START + 5  # back into the first minute to read it
    shown = b.snapshot()
    assert shown.per_minute == 10
    assert shown.this_minute == {"CLICK": 2, "RECORDING": 0, "FOLLOW": 1, "READINESS": 0, "SYNC": 3}
    assert shown.refused_this_minute["SYNC"] == 1
    assert shown.limits == {"CLICK": 10, "RECORDING": 9, "FOLLOW": 7, "READINESS": 5, "SYNC": 3}
    assert shown.used == 6
    assert shown.limited_last_hour == 1
    assert not shown.shared
    clock.now = START + 3600 - 1 + 5
    assert b.snapshot().limited_last_hour == 1
    assert b.snapshot().backing_off_for == 5


# --- Several processes, one Redis ----------------------------------------------------------------------------


@pytest.fixture
def redis_location(redis_cache) -> str:
    """This worker's own Redis database, emptied (redis_cache), for caches made by the test."""
    return TEST_REDIS_URL


def shared_cache(location: str) -> TolerantRedisCache:
    return TolerantRedisCache(location, {"KEY_PREFIX": "vccweb-test"})


def process(location: str, clock: Clock, per_minute: int = 10) -> Budget:
    """The budget as one app process sees it: its own memory, Redis shared with the others."""
    return Budget(shared_cache(location), per_minute=per_minute, account="acct", memory=Memory(), clock=clock)


def test_every_process_draws_from_one_budget_in_redis(redis_location):
    clock = Clock()
    web, worker = process(redis_location, clock), process(redis_location, clock)

    for _ in range(4):
        web.draw(FOLLOW)
    for _ in range(3):
        worker.draw(FOLLOW)

    assert not drawn(web, FOLLOW)
    assert not drawn(worker, FOLLOW)
    assert drawn(worker, CLICK)
    shown = web.snapshot()
    assert shown.shared
    assert shown.this_minute["FOLLOW"] == 7 and shown.this_minute["CLICK"] == 1
    assert shown.refused_this_minute["FOLLOW"] == 2


def test_a_burst_at_the_end_of_a_minute_does_not_let_the_next_minute_send_its_share_again_in_redis(redis_location):
    clock = Clock()
    web, worker = process(redis_location, clock, per_minute=150), process(redis_location, clock, per_minute=150)

    sent = burst_at_the_end_of_a_minute_then_steady_polls(web, clock)

    assert most_in_any_60_seconds(sent) == 105
    assert sent[105] == START + 59.5 + 60
    assert web.snapshot().used == 105  # the last 60 s, not two clock minutes
    with pytest.raises(BudgetExhausted) as refused:
        worker.draw(FOLLOW)  # the other process counts the same window
    assert refused.value.retry_after == 40  # the oldest request in it, sent at START + 119.5, leaves at START + 179.5


def test_a_429_seen_by_one_process_holds_back_every_process(redis_location):
    clock = Clock()
    web, worker = process(redis_location, clock, per_minute=150), process(redis_location, clock, per_minute=150)

    web.limited(15)

    with pytest.raises(BudgetExhausted) as refused:
        worker.draw(FOLLOW)
    assert refused.value.retry_after == 15
    assert drawn(worker, CLICK)
    assert worker.snapshot().limited_last_hour == 1
    assert worker.snapshot().backing_off_for == 15
    clock.advance(15)
    assert drawn(worker, FOLLOW)


def test_with_redis_down_each_process_goes_on_with_its_share(redis_location):
    clock = Clock()
    processes = [process(redis_location, clock, per_minute=40) for _ in range(4)]
    for each in processes:
        each.draw(CLICK)  # every process draws once while Redis answers: the last one sees four
    last = processes[-1]

    down = Budget(shared_cache("redis://127.0.0.1:1/0"), per_minute=40, account="acct", memory=last.memory, clock=clock)
    # 40 / 4 processes = 10 each; polls may use 70 % of it, and this process already sent one request.
    assert [drawn(down, FOLLOW) for _ in range(7)] == [True] * 6 + [False]
    assert drawn(down, CLICK)
    assert not down.snapshot().shared


def test_a_process_that_never_saw_redis_answer_assumes_two_processes():
    clock = Clock()
    down = Budget(shared_cache("redis://127.0.0.1:1/0"), per_minute=40, account="acct", memory=Memory(), clock=clock)

    assert [drawn(down, FOLLOW) for _ in range(15)] == [True] * 14 + [False]  # 70 % of 40 / 2


# --- Through the real client, against the simulator ----------------------------------------------------------


@pytest.fixture
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


@pytest.fixture
def frozen_budget_clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(budget, "wall_clock", clock)
    return clock


@pytest.mark.django_db
def test_follow_polls_are_throttled_while_a_click_gets_through(
    settings, sim, frozen_budget_clock, agent_client, supervisor_client, contact, london
):
    settings.VCC_REQUESTS_PER_MINUTE = 10
    click(agent_client, primary(contact))  # a token and the call: 2 of the 7 that polls may use
    call = only_call()
    assert call.state == Call.State.LIVE

    answers = [async_to_sync(calling.follow)(call=call, force=True) for _ in range(6)]

    assert [a.retry_after is not None for a in answers] == [False] * 5 + [True]  # the sixth was not sent
    assert not any(a.error for a in answers)  # VCC was not asked: nothing to say "couldn't get the status" about
    call.refresh_from_db()
    assert call.next_check_at is not None  # looked at again once there is room
    assert call.lost_contact_since is None and not call.events.filter(kind="error").exists()  # not "lost contact"

    other = Contact.objects.create(name="Ada Lovelace")  # not Grace: she is on a call
    click(supervisor_client, ContactPhone.objects.create(contact=other, number="+447911123456", is_primary=True))
    assert sim.calls_placed == 2  # the click went, past the polls' share
    assert Call.objects.filter(state=Call.State.LIVE).count() == 2

    with budget.priority(FOLLOW), get_client() as client, pytest.raises(BudgetExhausted):
        client.get_call(call.vcc_call_id)
    shown = budget.snapshot()
    assert shown.this_minute["CLICK"] >= 1 and shown.this_minute["FOLLOW"] == 5
    assert shown.refused_this_minute["FOLLOW"] == 2


@pytest.mark.django_db
def test_a_click_asks_about_the_callers_last_call_even_when_the_polls_share_is_used(
    settings, sim, frozen_budget_clock, agent_client, contact, london
):
    """An agent's last call is still live in the log but over at VCC (nobody followed it since): their next click
    asks VCC before refusing. That look is the click's own, so it goes when the polls' share is used up, as a click
    does, and the click is placed, not refused "You are on a call now"."""
    settings.VCC_REQUESTS_PER_MINUTE = 10
    click(agent_client, primary(contact))  # a token and the call: 2 of the 7 that polls may use
    first = only_call()
    for _ in range(5):  # the other 5
        assert async_to_sync(calling.follow)(call=first, force=True).retry_after is None
    sim.clock.advance(70)  # over at VCC: 3 s ringing the agent, 5 s the number, 60 s talking

    response = click(agent_client, contact.phones.get(label="work"))

    assert response.status_code == 200, response.content.decode()
    first.refresh_from_db()
    assert first.state == Call.State.ENDED
    assert sim.calls_placed == 2
    assert Call.objects.get(state=Call.State.LIVE).to_number == contact.phones.get(label="work").number


@pytest.mark.django_db
def test_a_429_from_vcc_holds_back_polls_for_its_retry_after(settings, sim, frozen_budget_clock):
    sim.set_fault("agent", status=429, retry_after=12, count=1)

    with budget.priority(READINESS), get_client() as client:
        with pytest.raises(VCCError) as first:
            client.get_agent("1001")
        assert first.value.status == 429  # VCC's own answer
        with pytest.raises(BudgetExhausted) as held:
            client.get_agent("1001")  # not sent: the budget holds back everything but clicks
    assert held.value.retry_after == 12
    assert budget.snapshot().limited_last_hour == 1
    frozen_budget_clock.advance(12)
    with budget.priority(READINESS), get_client() as client:
        assert client.get_agent("1001").agent_id == "1001"


def test_a_request_with_no_priority_counts_as_readiness():
    assert budget.current() == READINESS
    with budget.priority(CLICK):
        assert budget.current() == CLICK
    assert budget.current() == READINESS


@pytest.mark.parametrize(
    ("value", "message"),
    [("5", "VCC_REQUESTS_PER_MINUTE must be at least 10"), ("lots", "VCC_REQUESTS_PER_MINUTE must be a whole number")],
)
def test_it_refuses_a_budget_it_cannot_share_out_naming_the_variable(monkeypatch, value, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        load(monkeypatch, DEBUG="true", VCC_REQUESTS_PER_MINUTE=value)


def test_the_budget_is_150_a_minute_unless_set(monkeypatch):
    monkeypatch.delenv("VCC_REQUESTS_PER_MINUTE", raising=False)
    assert load(monkeypatch, DEBUG="true")["VCC_REQUESTS_PER_MINUTE"] == 150
    assert load(monkeypatch, DEBUG="true", VCC_REQUESTS_PER_MINUTE="400")["VCC_REQUESTS_PER_MINUTE"] == 400


def test_a_sync_request_waits_for_room_and_others_are_refused_at_once():
    """The core's draw, effect by effect: the sync sleeps until the budget has room (at most SYNC_WAIT)."""
    full = BudgetExhausted("full", retry_after=25)

    flow = core._draw(SYNC)
    assert next(flow) == core.Draw(SYNC)
    assert flow.throw(full) == core.Sleep(25)
    assert flow.send(None) == core.Draw(SYNC)
    with pytest.raises(StopIteration):
        flow.send(None)  # room now: the request goes

    flow = core._draw(SYNC)
    next(flow)
    waits = []
    with pytest.raises(BudgetExhausted):
        while True:
            effect = flow.throw(full)
            waits.append(effect.seconds)
            next(flow)
    assert sum(waits) == budget.SYNC_WAIT

    flow = core._draw(FOLLOW)
    next(flow)
    with pytest.raises(BudgetExhausted):
        flow.throw(full)
