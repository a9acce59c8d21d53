"""VCC's events never say whether a call records: a call they say connected is asked about once (the
`learn_recording` job), so that the call panel and bar offer Pause and Resume as they do for a polled call."""

from __future__ import annotations

import pytest
from django.utils import timezone

from calls import tasks
from calls.models import Call
from tests import _vcc_events
from tests._jobs import queued, run_jobs
from tests._sim import HTMX
from tests._vcc_events import stored

pytestmark = pytest.mark.django_db

secrets, sim = _vcc_events.secrets, _vcc_events.sim  # fixtures (secrets: autouse)


def test_a_call_events_say_connected_is_asked_once_whether_it_records_and_offers_pause(
    sim, placed, jobs, agent_client
):  # sim first: it resets vccsim, which must then hold the placed call
    sim.clock.advance(10)  # vccsim's call is talking now: 3 s ringing the agent, 5 s the number
    stored("channel.connected.v1", placed, at=timezone.now(), party="external")
    tasks.enqueue_event_processing()

    assert run_jobs(jobs, "process_vcc_events") == ["process_vcc_events"]
    placed.refresh_from_db()
    next_look = placed.next_check_at  # as the events set it: asked only once they fall silent

    assert run_jobs(jobs) == ["learn_recording"]

    placed.refresh_from_db()
    assert placed.state == Call.State.LIVE and placed.recording_status == "Started"
    assert placed.next_check_at == next_look  # the look learnt the recording; it brought no look sooner
    for page in (f"/calls/{placed.pk}/panel/", "/calls/bar/"):
        assert "Pause recording" in agent_client.get(page, headers=HTMX).content.decode()
    stored("channel.connected.v1", placed, at=timezone.now(), party="external")  # another, the status known
    tasks.process_vcc_events.func()
    assert queued(jobs, "learn_recording") == []


def test_the_agents_own_phone_connecting_asks_nothing(sim, placed, jobs):
    stored("channel.connected.v1", placed, at=timezone.now(), party="agent")  # the agent's leg, not the contact's
    tasks.process_vcc_events.func()
    assert queued(jobs, "learn_recording") == []


def test_a_call_that_ended_before_the_job_ran_is_not_asked_about(sim, placed, jobs, monkeypatch):
    from calls import calling

    stored("channel.connected.v1", placed, at=timezone.now(), party="external")
    tasks.process_vcc_events.func()
    Call.objects.filter(pk=placed.pk).update(state=Call.State.ENDED)
    asked = []
    monkeypatch.setattr(calling, "follow", lambda **kwargs: asked.append(kwargs))

    assert run_jobs(jobs, "learn_recording") == ["learn_recording"]
    assert asked == []


def test_vcc_limiting_us_has_the_job_tried_again_later_then_left_to_the_calls_next_look(sim, placed, jobs):
    sim.clock.advance(10)
    stored("channel.connected.v1", placed, at=timezone.now(), party="external")
    tasks.process_vcc_events.func()
    sim.set_fault("get_call", status=429, retry_after=20)
    [job] = queued(jobs, "learn_recording")

    with pytest.raises(tasks.TransientVCCFailure):
        run_jobs(jobs, "learn_recording")
    job.update(status="todo", attempts=tasks.LEARN_TRIES - 1)  # its last try

    assert run_jobs(jobs, "learn_recording") == ["learn_recording"]  # not a failed job
    placed.refresh_from_db()
    assert placed.state == Call.State.LIVE and placed.recording_status == "Stopped"


def test_an_event_applied_while_it_asks_keeps_the_next_look_it_set(sim, placed, jobs, monkeypatch):
    """A hang-up without a result, applied meanwhile, wants VCC asked at once: the job does not put its look back."""
    from datetime import timedelta

    from calls import calling

    sim.clock.advance(10)
    stored("channel.connected.v1", placed, at=timezone.now(), party="external")
    tasks.process_vcc_events.func()
    follow, soon = calling.follow, timezone.now() - timedelta(seconds=5)

    async def an_event_meanwhile(**kwargs):
        followed = await follow(**kwargs)
        await Call.objects.filter(pk=placed.pk).aupdate(last_event_at=None, next_check_at=soon)  # events.py's ask_how
        return followed

    monkeypatch.setattr(calling, "follow", an_event_meanwhile)
    run_jobs(jobs, "learn_recording")

    placed.refresh_from_db()
    assert placed.next_check_at == soon
