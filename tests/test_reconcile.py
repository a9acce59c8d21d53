"""The reconcile_calls command: following placed calls nobody is watching."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from calls.models import Call
from tests._sim import fresh_simulator, place_call

pytestmark = pytest.mark.django_db

CALL_LENGTH = 68  # the default outcome: 3 s ringing the agent, 5 s the number, 60 s talking


@pytest.fixture(autouse=True)
def sim():
    yield from fresh_simulator()


@pytest.fixture
def placed(agent_client, contact, london) -> Call:
    call = place_call(agent_client, contact)
    # Placed two minutes ago by our clock, so the command's default --older-than 60 picks it up.
    Call.objects.filter(pk=call.pk).update(requested_at=timezone.now() - timedelta(minutes=2))
    return call


def reconcile(*args: str) -> str:
    """Run the command; return its report of placed calls ("1 ended, 0 still live")."""
    out = StringIO()
    call_command("reconcile_calls", *args, stdout=out)
    report = out.getvalue()
    assert report.startswith("Reconciled calls: ")
    return re.match(r"Reconciled calls: (\d+ ended, \d+ still live)", report).group(1)


def test_it_ends_a_call_that_vcc_has_ended(placed, sim):
    sim.clock.advance(CALL_LENGTH + 1)

    assert reconcile() == "1 ended, 0 still live"

    placed.refresh_from_db()
    assert placed.state == Call.State.ENDED
    assert (placed.result_code, placed.result_reason) == ("Success", "Answered")
    assert placed.ended_at is not None


def test_it_leaves_a_live_call_live(placed, sim):
    sim.clock.advance(10)

    assert reconcile() == "0 ended, 1 still live"

    placed.refresh_from_db()
    assert placed.state == Call.State.LIVE
    assert placed.recording_status == "Started"
    assert placed.connected_at is not None


def test_it_closes_a_call_vcc_no_longer_knows(placed, sim):
    sim.clock.advance(CALL_LENGTH + 24 * 3600 + 1)  # past VCC's 24 hours; the cached token has expired too

    assert reconcile() == "1 ended, 0 still live"

    placed.refresh_from_db()
    assert placed.state == Call.State.ENDED
    assert placed.result_reason == "Unknown: VCC no longer has this call"
    assert placed.ended_at is not None


def test_it_leaves_a_call_as_it_was_when_vcc_fails(placed, sim):
    sim.clock.advance(CALL_LENGTH + 1)
    sim.set_fault("get_call", status=503)

    assert reconcile() == "0 ended, 1 still live"

    placed.refresh_from_db()
    assert placed.state == Call.State.LIVE


def test_it_skips_calls_placed_too_recently(placed, sim):
    sim.clock.advance(CALL_LENGTH + 1)

    assert reconcile("--older-than", "600") == "0 ended, 0 still live"

    placed.refresh_from_db()
    assert placed.state == Call.State.LIVE


def test_it_ignores_calls_that_are_not_placed(agent_user, contact, sim):
    for state in (Call.State.FAILED, Call.State.ENDED):
        Call.objects.create(created_by=agent_user, contact=contact, to_number="+447400123456", state=state)
    Call.objects.create(created_by=agent_user, to_number="+447400123456", state=Call.State.LIVE)  # no VCC id
    Call.objects.update(requested_at=timezone.now() - timedelta(hours=1))

    assert reconcile() == "0 ended, 0 still live"

    assert list(Call.objects.order_by("pk").values_list("state", flat=True)) == [
        Call.State.FAILED,
        Call.State.ENDED,
        Call.State.LIVE,
    ]


def test_it_fails_clicks_that_never_got_vccs_answer(agent_user, contact, sim):
    lost, recent = (
        Call.objects.create(created_by=agent_user, contact=contact, to_number="+447400123456") for _ in range(2)
    )
    Call.objects.filter(pk=lost.pk).update(requested_at=timezone.now() - timedelta(minutes=6))

    reconcile()

    lost.refresh_from_db()
    recent.refresh_from_db()
    assert lost.state == Call.State.FAILED
    assert "the call may or may not have been placed" in lost.error_display
    assert recent.state == Call.State.REQUESTED
