"""Clicks VCC refuses (an agent not ready or busy): past REFUSED_CLICKS_PER_MINUTE of one person's in a clock minute,
vccweb refuses their next clicks itself until the minute ends (calls/calling/placing.py `_throttled`). A click goes
to VCC whatever the request budget, and one VCC refuses holds no phone: without this, one person clicking again and
again, or a script, could spend the account's whole fair use of VCC."""

from __future__ import annotations

import pytest

from calls.calling.placing import REFUSED_CLICKS_PER_MINUTE
from calls.models import Call
from tests import _api_calls
from tests._api_calls import post, problem, token_for
from tests._sim import click, primary

pytestmark = pytest.mark.django_db

sim = _api_calls.sim  # fixtures


def test_clicks_vcc_keeps_refusing_are_refused_here_until_the_minute_ends(agent_client, agent_user, contact, sim):
    sim.set_availability("1001", "busy")  # VCC refuses: "Unable to place call - Agent number busy"
    sim.clock.advance(60 - sim.clock.now() % 60)  # the start of a clock minute: the clicks all fall in it
    for _ in range(REFUSED_CLICKS_PER_MINUTE):
        assert click(agent_client, primary(contact)).status_code == 200
    assert Call.objects.filter(state=Call.State.FAILED).count() == REFUSED_CLICKS_PER_MINUTE  # each was sent

    refused = click(agent_client, primary(contact))

    assert refused.status_code == 400
    assert f"VCC refused or failed {REFUSED_CLICKS_PER_MINUTE} of your calls this minute" in refused.content.decode()
    assert "The call log says why for each one" in refused.content.decode()
    assert Call.objects.count() == REFUSED_CLICKS_PER_MINUTE  # not sent, no row
    sim.set_availability("1001", "ready")
    sim.clock.advance(60)
    assert click(agent_client, primary(contact)).status_code == 200
    assert Call.objects.filter(state=Call.State.LIVE).count() == 1  # the next minute, it goes


def test_another_persons_clicks_and_calls_vcc_places_are_not_held_back(
    agent_client, other_agent_user, agent_user, contact, sim
):
    from django.test import Client

    tom = Client()
    tom.force_login(other_agent_user)
    sim.set_availability("1001", "busy")
    sim.clock.advance(60 - sim.clock.now() % 60)
    for _ in range(REFUSED_CLICKS_PER_MINUTE):
        click(agent_client, primary(contact))

    assert click(tom, primary(contact)).status_code == 200
    assert Call.objects.filter(state=Call.State.LIVE).count() == 1  # Tom's is placed


def test_the_api_answers_429_with_retry_after(agent_client, agent_user, contact, sim):
    sim.set_availability("1001", "busy")
    sim.clock.advance(60 - sim.clock.now() % 60 + 15)  # 15 s into a minute
    for _ in range(REFUSED_CLICKS_PER_MINUTE):
        click(agent_client, primary(contact))

    body = problem(post(token_for(agent_user), {"to": primary(contact).number}, key="k-throttled"), 429)

    assert body["detail"].startswith(f"VCC refused or failed {REFUSED_CLICKS_PER_MINUTE} of your calls this minute")
    assert body["retry_after"] == 45


@pytest.mark.parametrize("status", [429, 503])
def test_while_vcc_limits_the_account_or_fails_a_persons_clicks_wait_too(
    agent_client, agent_user, contact, sim, status
):
    """A click goes whatever the budget's back-off: one person clicking again and again while VCC limits the
    account would keep it limited for everyone."""
    sim.set_fault("place_call", status=status, retry_after=1 if status == 429 else None)
    sim.clock.advance(60 - sim.clock.now() % 60)
    for _ in range(REFUSED_CLICKS_PER_MINUTE):
        click(agent_client, primary(contact))

    refused = click(agent_client, primary(contact))

    assert refused.status_code == 400 and "VCC limiting requests or failing" in refused.content.decode()
    assert Call.objects.count() == REFUSED_CLICKS_PER_MINUTE  # the sixth was not sent
