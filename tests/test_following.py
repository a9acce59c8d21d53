"""Following calls nobody watches: the worker's follow_calls job, reconcile_calls, and the rules they share."""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from io import StringIO

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command

from calls import calling, health, tasks
from calls.models import MISSING_GRACE, MISSING_TRIES, Call
from tests._sim import fresh_simulator, place_call

pytestmark = pytest.mark.django_db

CALL_LENGTH = 68  # the default outcome: 3 s ringing the agent, 5 s the number, 60 s talking


@pytest.fixture(autouse=True)
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


def reconcile() -> str:
    """Run one round through the command; return its report ("asked VCC about 1, 1 ended")."""
    out = StringIO()
    call_command("reconcile_calls", stdout=out)
    return re.match(r"Reconciled calls: (asked VCC about \d+, \d+ ended)", out.getvalue()).group(1)


def test_it_ends_a_call_that_ended_while_nobody_watched(placed, sim):
    sim.clock.advance(CALL_LENGTH + 1)

    assert reconcile() == "asked VCC about 1, 1 ended"

    placed.refresh_from_db()
    assert placed.state == Call.State.ENDED
    assert placed.outcome == Call.Outcome.ANSWERED
    assert (placed.result_code, placed.result_reason) == ("Success", "Answered")
    assert placed.ended_at is not None
    assert placed.wrap_up_due
    assert placed in Call.objects.to_wrap_up()
    assert [what for _, what, _ in placed.history()] == [
        "Asked VCC to place the call",
        "VCC placed the call",
        "Ended: Answered",  # nobody saw it connect: VCC's detail names no connection time
        "Progress",  # what the look at VCC found, with its source
    ]
    assert placed.events.get().detail == "VCC: ended (poll)"


def test_it_leaves_a_live_call_live_and_notes_the_connection(placed, sim):
    sim.clock.advance(10)

    assert reconcile() == "asked VCC about 1, 0 ended"

    placed.refresh_from_db()
    assert placed.state == Call.State.LIVE
    assert placed.recording_status == "Started"
    assert placed.connected_at is not None


def test_it_does_not_ask_about_a_call_again_within_the_interval(placed, sim):
    sim.clock.advance(10)
    reconcile()
    sim.clock.advance(1)

    assert reconcile() == "asked VCC about 0, 0 ended"
    sim.clock.advance(1)
    assert reconcile() == "asked VCC about 1, 0 ended"


def test_one_404_does_not_end_a_live_call(placed, sim):
    sim.set_fault("get_call", status=404, count=1)

    reconcile()

    placed.refresh_from_db()
    assert placed.state == Call.State.LIVE
    assert placed.missing_since is not None


def test_a_call_that_keeps_answering_404_is_closed_as_gone_after_bounded_tries_and_time(placed, sim):
    sim.clock.advance(10)
    reconcile()  # VCC answers: the call is last seen now
    placed.refresh_from_db()
    seen = placed.last_seen_at
    sim.set_fault("get_call", status=404)
    for _ in range(MISSING_TRIES - 1):  # each 404 waits 10 s before the next look
        sim.clock.advance(10)
        reconcile()
        placed.refresh_from_db()
        assert placed.state == Call.State.LIVE

    sim.clock.advance(10)
    reconcile()

    placed.refresh_from_db()
    assert placed.state == Call.State.ENDED
    assert placed.outcome == Call.Outcome.GONE
    assert placed.get_outcome_display() == "VCC no longer knows this call"
    assert placed.result_reason == "VCC no longer knows this call"
    assert placed.last_seen_at == seen
    assert placed.missing_count == MISSING_TRIES
    assert placed.ended_at - placed.missing_since >= MISSING_GRACE
    assert f"last seen {seen.astimezone(UTC):%H:%M:%S} UTC" in placed.events.last().detail


def test_a_404_after_vcc_answered_again_starts_the_count_afresh(placed, sim):
    sim.set_fault("get_call", status=404, count=MISSING_TRIES - 1)
    for _ in range(MISSING_TRIES - 1):
        sim.clock.advance(10)
        reconcile()
    sim.clock.advance(10)
    reconcile()  # VCC knows the call again

    placed.refresh_from_db()
    assert placed.state == Call.State.LIVE
    assert (placed.missing_count, placed.missing_since) == (0, None)


def test_it_closes_a_call_older_than_vccs_24_hours_at_the_first_404(placed, sim):
    sim.clock.advance(CALL_LENGTH + 24 * 3600 + 1)  # past VCC's 24 hours; the cached token has expired too

    assert reconcile() == "asked VCC about 1, 1 ended"

    placed.refresh_from_db()
    assert placed.outcome == Call.Outcome.GONE


def test_it_leaves_a_call_as_it_was_when_vcc_fails_and_asks_later(placed, sim):
    sim.clock.advance(CALL_LENGTH + 1)
    sim.set_fault("get_call", status=503)

    assert reconcile() == "asked VCC about 1, 0 ended"

    placed.refresh_from_db()
    assert placed.state == Call.State.LIVE
    assert placed.next_check_at >= calling.common.wall_clock() + timedelta(seconds=8)  # backed off
    assert placed.events.filter(kind="error").exists()


def test_it_ignores_calls_that_are_not_live(agent_user, contact, sim):
    for state in (Call.State.FAILED, Call.State.ENDED, Call.State.UNCONFIRMED):
        Call.objects.create(created_by=agent_user, contact=contact, to_number="+447400123456", state=state)
    Call.objects.create(created_by=agent_user, to_number="+447400123456", state=Call.State.LIVE)  # no VCC id

    assert reconcile() == "asked VCC about 0, 0 ended"


def test_a_click_that_never_got_vccs_answer_is_closed_as_not_confirmed(agent_user, contact, sim):
    now = calling.common.wall_clock()
    lost = Call.objects.create(
        created_by=agent_user, contact=contact, to_number="+447400123456", requested_at=now - timedelta(minutes=6)
    )
    recent = Call.objects.create(created_by=agent_user, contact=contact, to_number="+447400123456", requested_at=now)

    reconcile()

    lost.refresh_from_db()
    recent.refresh_from_db()
    assert lost.state == Call.State.UNCONFIRMED
    assert lost.outcome == Call.Outcome.NOT_CONFIRMED
    assert "the call may have been placed" in lost.error_display
    assert recent.state == Call.State.REQUESTED


def test_two_workers_never_take_the_same_call(agent_client, contact, london, sim):
    place_call(agent_client, contact)
    sim.clock.advance(10)
    now = calling.common.wall_clock()

    first, _flowing = calling.following._claim_due(now=now, limit=10)
    second, _flowing = calling.following._claim_due(now=now, limit=10)

    assert len(first) == 1
    assert second == []


# --- The worker -------------------------------------------------------------------------------------------


def ticks(count: int, sim=None) -> list[dict[str, int]]:
    """Run the worker's follow_calls job as its schedule does, once a second (the simulator's clock moving on a
    second between ticks when given); return what each tick did."""
    done = []
    for i in range(count):
        if i and sim is not None:
            sim.clock.advance(1)
        done.append(async_to_sync(tasks.follow_calls.func)(timestamp=i))
    return done


def test_the_worker_records_a_call_that_ends_while_nobody_watches(placed, sim):
    sim.clock.advance(CALL_LENGTH + 1)

    [tick] = ticks(1)

    assert tick == {"asked": 1, "ended": 1, "errors": 0}
    placed.refresh_from_db()
    assert placed.state == Call.State.ENDED


def test_the_worker_backs_off_while_vcc_limits_it(placed, sim):
    sim.set_fault("get_call", status=429, retry_after=7)

    done = ticks(10, sim)  # ten seconds of ticks

    # Asked at the start and once more after Retry-After: never more often than VCC allows, whatever the ticks.
    assert [tick["asked"] for tick in done].count(1) == 2
    assert done[0]["asked"] == 1 and not any(tick["asked"] for tick in done[1:7])
    assert placed.events.filter(kind="error").count() == 2
    placed.refresh_from_db()
    assert placed.state == Call.State.LIVE


def test_a_tick_with_nothing_due_asks_vcc_nothing(agent_user, sim):
    assert ticks(2, sim) == [{"asked": 0, "ended": 0, "errors": 0}] * 2


def test_the_worker_notes_that_it_ran(sim):
    ticks(1)

    assert health.last_heartbeat("follow_calls") == calling.common.wall_clock()


def test_a_tick_ends_and_notes_that_it_ran_however_many_calls_keep_coming_due(sim, monkeypatch):
    """With a budget raised above VCC's and hundreds of live calls, full batches could come due for ever."""
    from calls.calling import following

    batches = []

    async def always_a_full_batch(**kwargs):
        batches.append(kwargs["limit"])
        return following.Round(asked=kwargs["limit"] if len(batches) <= 100 else 0)  # 100: the test ends, whatever

    monkeypatch.setattr(calling, "follow_due", always_a_full_batch)

    [tick] = ticks(1)

    assert len(batches) == tasks.FOLLOW_BATCHES_PER_TICK
    assert tick == {"asked": tasks.FOLLOW_BATCH * tasks.FOLLOW_BATCHES_PER_TICK, "ended": 0, "errors": 0}
    assert health.last_heartbeat("follow_calls") == calling.common.wall_clock()


def test_the_worker_keeps_the_reports_roll_up_current(sim):
    from calls.models import CallRollupState

    tasks.rollup_calls.func(timestamp=0)

    assert CallRollupState.objects.get().built_at is not None


def test_the_worker_closes_abandoned_clicks_in_a_job_of_their_own(agent_user, sim):
    from django.utils import timezone

    stuck = Call.objects.create(created_by=agent_user, from_agent=agent_user.agent, to_number="+447400123456")
    Call.objects.filter(pk=stuck.pk).update(requested_at=timezone.now() - calling.ABANDONED_AFTER * 2)

    ticks(1)  # following live calls leaves it
    assert Call.objects.get(pk=stuck.pk).state == Call.State.REQUESTED
    assert tasks.close_abandoned_clicks.func(timestamp=0) == 1
    assert Call.objects.get(pk=stuck.pk).state == Call.State.UNCONFIRMED


def test_a_click_whose_answer_was_never_recorded_is_closed_as_not_confirmed(agent_user, supervisor_client):
    from django.utils import timezone

    now = timezone.now()
    stuck, recent = (
        Call.objects.create(created_by=agent_user, from_agent=agent_user.agent, to_number="+447400123456")
        for _ in range(2)
    )
    Call.objects.filter(pk=stuck.pk).update(requested_at=now - calling.ABANDONED_AFTER - timedelta(seconds=1))

    assert calling.close_abandoned_clicks(now=now) == 1

    stuck.refresh_from_db()
    recent.refresh_from_db()
    assert (stuck.state, stuck.outcome) == (Call.State.UNCONFIRMED, Call.Outcome.NOT_CONFIRMED)
    assert "may have been placed" in stuck.error_display
    assert recent.state == Call.State.REQUESTED  # its process may still be asking VCC
    # It is a call with an error in the log's filter, as its error shows in the export.
    log = supervisor_client.get("/calls/", {"has_error": "yes"}).content.decode()
    assert f'href="/calls/{stuck.pk}/"' in log


@pytest.mark.django_db(transaction=True)
def test_a_click_whose_answer_is_being_written_is_not_closed_over_it(agent_user):
    """Its row is locked by whoever writes VCC's answer (placing._record_answer) or by another run: left to them."""
    import threading

    from django.db import connection, transaction
    from django.utils import timezone

    if connection.vendor != "postgresql":
        pytest.skip("two transactions at once: PostgreSQL")
    now = timezone.now()
    click = Call.objects.create(created_by=agent_user, from_agent=agent_user.agent, to_number="+447400123456")
    Call.objects.filter(pk=click.pk).update(requested_at=now - calling.ABANDONED_AFTER - timedelta(seconds=1))
    held, done = threading.Event(), threading.Event()

    def write_the_answer() -> None:
        try:
            with transaction.atomic():
                list(Call.objects.select_for_update().filter(pk=click.pk))
                held.set()
                done.wait(30)  # a guard, not a wait for time: the test sets it
        finally:
            connection.close()

    thread = threading.Thread(target=write_the_answer)
    thread.start()
    assert held.wait(30)
    try:
        assert calling.close_abandoned_clicks(now=now) == 0
    finally:
        done.set()
        thread.join(30)
    click.refresh_from_db()
    assert click.state == Call.State.REQUESTED
    assert calling.close_abandoned_clicks(now=now) == 1  # once nobody holds it


def test_a_call_whose_answer_cannot_be_recorded_does_not_lose_the_rest_of_the_round(
    placed, other_agent_user, sim, monkeypatch, caplog
):
    from django.db import DataError
    from django.test import Client

    from calls.models import Contact, ContactPhone
    from tests._sim import click, primary

    other = Contact.objects.create(name="Ada Lovelace")
    ContactPhone.objects.create(contact=other, label="mobile", number="+447400123457", is_primary=True)
    tom = Client()
    tom.force_login(other_agent_user)
    click(tom, primary(other))
    odd = Call.objects.get(contact=other)
    record_detail = Call.record_detail

    def refused(call: Call, **kwargs) -> bool:  # the database refuses what VCC said of this one call
        if call.pk == odd.pk:
            raise DataError("value too long for type character varying(64)")
        return record_detail(call, **kwargs)

    monkeypatch.setattr(Call, "record_detail", refused)
    sim.clock.advance(CALL_LENGTH + 1)

    [tick] = ticks(1)

    placed.refresh_from_db()
    assert placed.state == Call.State.ENDED  # its look was recorded all the same
    assert tick == {"asked": 2, "ended": 1, "errors": 1}
    odd.refresh_from_db()
    assert odd.state == Call.State.LIVE  # as it was: asked again at its next look, after the longest back-off
    assert odd.next_check_at >= calling.common.wall_clock() + calling.following.FOLLOW_BACKOFF_MAX
    assert f"call {odd.pk}: recording VCC's answer failed" in caplog.text


def test_words_of_vcc_longer_than_their_columns_are_cut_and_the_call_still_ends(placed, sim):
    """VCC's lists of result codes, parties, reasons and recording statuses are not documented: a long one must not
    make the write fail (the call would stay live, asked every 2 s, for ever)."""
    from django.utils import timezone

    long_reason = "CalledPartyUnreachableAfterRepeatedAttemptsOnEveryRoute" * 3
    placed.record_detail(
        live=False,
        recording_status="RecordingStoppedByTheSystemAfterTimeout",
        result=("FailureOfAKindNobodyDocumentedYet", "DestinationOrSomeThirdParty", long_reason),
        connected=False,
        disposition_code="",
        now=timezone.now(),
        next_check_at=None,
    )

    placed.refresh_from_db()
    assert placed.state == Call.State.ENDED
    assert placed.result_reason == long_reason[:64]
    assert placed.result_code == "FailureOfAKindNobodyDocumentedYe"  # 32 characters
    assert placed.recording_status == "RecordingStoppedByTheSystemAfter"
