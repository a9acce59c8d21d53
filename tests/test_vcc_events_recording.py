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

    assert run_jobs(jobs) == ["process_vcc_events", "learn_recording"]

    placed.refresh_from_db()
    assert placed.state == Call.State.LIVE and placed.recording_status == "Started"
    for page in (f"/calls/{placed.pk}/panel/", "/calls/bar/"):
        assert "Pause recording" in agent_client.get(page, headers=HTMX).content.decode()
    stored("channel.connected.v1", placed, at=timezone.now(), party="external")  # another, the status known
    tasks.process_vcc_events.func()
    assert queued(jobs, "learn_recording") == []


def test_the_agents_own_phone_connecting_asks_nothing(sim, placed, jobs):
    stored("channel.connected.v1", placed, at=timezone.now(), party="agent")  # the agent's leg, not the contact's
    tasks.process_vcc_events.func()
    assert queued(jobs, "learn_recording") == []


def test_a_call_that_ended_before_the_job_ran_is_not_asked_about(sim, placed, jobs):
    stored("channel.connected.v1", placed, at=timezone.now(), party="external")
    tasks.process_vcc_events.func()
    Call.objects.filter(pk=placed.pk).update(state=Call.State.ENDED)

    assert run_jobs(jobs, "learn_recording") == ["learn_recording"]
    placed.refresh_from_db()
    assert placed.recording_status == "Stopped"  # as VCC said when it was placed: not asked again
