"""Polling VCC steps aside while its events flow, and comes back when they stop."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from calls.calling import events as applying
from calls.models import Call, VccEvent
from tests import _vcc_events
from tests._vcc_events import stored

pytestmark = pytest.mark.django_db

secrets, sim = _vcc_events.secrets, _vcc_events.sim  # fixtures (secrets: autouse)


# --- Polling steps aside while events flow -------------------------------------------------------------------------


def test_while_events_flow_a_call_with_events_is_not_polled_and_polling_resumes_when_they_stop(sim, placed):
    from asgiref.sync import async_to_sync

    from calls import calling

    stored("channel.connected.v1", placed, at=timezone.now(), party="external")
    applying.process_pending()
    start = timezone.now()

    def follow_at(seconds: float, *, flowing: bool = True) -> int:
        at = start + timedelta(seconds=seconds)
        VccEvent.objects.filter(event_id="flow").delete()
        if flowing:  # events keep arriving (about other calls) and are applied
            VccEvent.objects.create(
                event_id="flow", type="agent.presencechanged.v1", source="s", data={}, received_at=at, processed_at=at
            )
        VccEvent.objects.exclude(event_id="flow").update(received_at=at - timedelta(minutes=5))
        return async_to_sync(calling.follow_due)(clock=lambda: at).asked

    Call.objects.filter(pk=placed.pk).update(next_check_at=start)  # due, were it polled
    assert follow_at(30) == 0  # its own events are recent: VCC is not asked
    sim.clock.advance(90)  # the call ended in VCC, and its hang-up event was lost
    assert follow_at(90) == 1  # silent for over EVENT_SILENCE_SECONDS: asked once
    placed.refresh_from_db()
    assert placed.state == Call.State.ENDED  # not live for ever


def test_a_silent_call_events_follow_is_asked_about_ever_less_often(sim, placed):
    from calls.calling.following import SILENT_LOOK_MAX, next_look

    now = timezone.now()
    VccEvent.objects.create(event_id="f", type="t", source="s", data={}, received_at=now, processed_at=now)
    placed.last_event_at = now - timedelta(seconds=90)
    assert next_look(placed, now=now) == now + timedelta(seconds=180)  # twice its silence
    placed.last_event_at = now - timedelta(seconds=10)
    assert next_look(placed, now=now) == now + timedelta(seconds=60)  # at least EVENT_SILENCE_SECONDS
    placed.last_event_at = now - timedelta(hours=1)
    assert next_look(placed, now=now) == now + SILENT_LOOK_MAX
    VccEvent.objects.all().delete()  # events stopped: every 2 s, as before events
    assert next_look(placed, now=now) == now + timedelta(seconds=2)


def test_events_stopping_brings_polling_back_for_every_call(sim, placed):
    from asgiref.sync import async_to_sync

    from calls import calling

    stored("channel.connected.v1", placed, at=timezone.now(), party="external")
    applying.process_pending()
    later = timezone.now() + timedelta(seconds=61)
    VccEvent.objects.update(received_at=later - timedelta(seconds=120))  # nothing within EVENT_SILENCE_SECONDS
    placed.refresh_from_db()
    assert placed.next_check_at > later  # its next look was set for a flow that stopped
    assert async_to_sync(calling.follow_due)(clock=lambda: later).asked == 1  # asked at once all the same
    placed.refresh_from_db()
    assert placed.last_event_at is None  # back to plain polling: every 2 s, not every round
    assert async_to_sync(calling.follow_due)(clock=lambda: later).asked == 0


def _asked(at: datetime, *, flow_at: datetime | None = None) -> int:
    """How many calls a round of the follower at `at` asks VCC about, while events flow: an event about something
    else arrived at `flow_at` (default `at`) and was applied."""
    from asgiref.sync import async_to_sync

    from calls import calling

    flow = flow_at or at
    VccEvent.objects.filter(event_id="flow").delete()
    VccEvent.objects.create(
        event_id="flow", type="agent.presencechanged.v1", source="s", data={}, received_at=flow, processed_at=flow
    )
    return async_to_sync(calling.follow_due)(clock=lambda: at).asked


def test_a_call_no_event_told_of_is_polled_while_events_flow_once_its_events_had_time_to_come(sim, placed):
    now = timezone.now()
    Call.objects.filter(pk=placed.pk).update(next_check_at=now, last_event_at=None)
    assert _asked(now + timedelta(seconds=1)) == 0  # its own events may be on their way
    assert _asked(now + timedelta(seconds=2)) == 1  # none came within FOLLOW_INTERVAL: VCC is asked, as before
    placed.refresh_from_db()
    assert placed.next_check_at == now + timedelta(seconds=2)  # the look's time: `polled` adds the 2 s
    assert _asked(now + timedelta(seconds=3)) == 0
    assert _asked(now + timedelta(seconds=4)) == 1  # every 2 s, as before events, while none comes


def test_a_worker_behind_on_applying_events_does_not_ask_vcc_about_the_calls_they_may_be_about(sim, placed):
    now = timezone.now()
    Call.objects.filter(pk=placed.pk).update(next_check_at=now, last_event_at=None)
    behind = VccEvent.objects.create(  # arrived after the call's look fell due; not applied yet
        event_id="behind", type="channel.alerted.v1", source="s", data={}, received_at=now + timedelta(seconds=1)
    )
    at = now + timedelta(seconds=20)
    assert _asked(at, flow_at=now) == 0  # it may be this call's: wait until it is applied
    VccEvent.objects.filter(pk=behind.pk).update(received_at=now + timedelta(seconds=3))
    assert _asked(at, flow_at=now) == 1  # the events that came within 2 s of the look are applied: none was its

    Call.objects.filter(pk=placed.pk).update(next_check_at=now, last_event_at=None)
    VccEvent.objects.filter(pk=behind.pk).update(received_at=now + timedelta(seconds=1), not_before=at)
    assert _asked(at - timedelta(seconds=1), flow_at=now) == 1  # an event waiting for its own call holds nothing

    Call.objects.filter(pk=placed.pk).update(next_check_at=now, last_event_at=None)
    VccEvent.objects.filter(pk=behind.pk).update(not_before=None)  # an event the worker cannot get past
    assert _asked(now + timedelta(seconds=61), flow_at=now + timedelta(seconds=30)) == 0
    # Held back EVENT_SILENCE_SECONDS at most, from the look's time and its FOLLOW_INTERVAL.
    assert _asked(now + timedelta(seconds=62), flow_at=now + timedelta(seconds=30)) == 1


def test_whether_events_flow_is_read_from_the_oldest_event_of_the_window(settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from calls.calling.following import events_flowing

    now = timezone.now()
    for n in range(3):  # applied, then a backlog not applied yet
        at = now - timedelta(seconds=50 - n)
        VccEvent.objects.create(
            event_id=f"e{n}", type="t", source="s", data={}, received_at=at, processed_at=at if n == 0 else None
        )
    assert events_flowing(now=now)
    VccEvent.objects.filter(event_id="e0").update(result="failed: no such call")
    assert not events_flowing(now=now)  # a failed one is not a flow
    VccEvent.objects.filter(event_id="e0").update(result="version v0: vccweb applies v1 events only")
    assert not events_flowing(now=now)  # nor one of a version vccweb does not apply
    with CaptureQueriesContext(connection) as queries:
        events_flowing(now=now)
    assert "ORDER BY" in queries[0]["sql"] and '"received_at" ASC' in queries[0]["sql"]
