"""The agent setup page asks VCC whether the display ID exists before saving (GET agents/{id}), or warns when
VCC cannot be asked."""

from __future__ import annotations

import pytest

from calls.models import Agent
from tests._sim import fresh_simulator

pytestmark = pytest.mark.django_db

ADD = "/admin/calls/agent/add/"


@pytest.fixture
def sim():
    yield from fresh_simulator()


def form(display_id: str, **values: object) -> dict[str, object]:
    return {"display_id": display_id, "name": "Sam Lee", "is_active": "on", "role": "", **values}


def test_an_id_vcc_knows_is_saved_without_a_warning(admin_client, sim):
    response = admin_client.post(ADD, form("1004"), follow=True)
    assert Agent.objects.filter(display_id="1004").exists()
    assert "could not be asked" not in response.content.decode()


def test_an_id_vcc_does_not_know_is_a_form_error_that_says_what_to_fix(admin_client, sim):
    response = admin_client.post(ADD, form("9999"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "VCC has no agent with the display ID “9999”" in page
    assert "Agent ID" in page and "save again" in page
    assert not Agent.objects.exists()


def test_when_vcc_cannot_be_asked_the_agent_is_saved_with_a_clear_warning(admin_client, sim):
    sim.set_fault("agent", status=503)
    response = admin_client.post(ADD, form("9999"), follow=True)
    assert Agent.objects.filter(display_id="9999").exists()
    page = response.content.decode()
    assert "Saved, but VCC could not be asked whether agent “9999” exists" in page
    assert "Check the display ID in VCC" in page


def test_an_edit_that_keeps_the_id_does_not_ask_vcc(admin_client, agent_user, sim):
    agent = agent_user.agent
    sim.set_fault("agent", status=503)
    data = form(agent.display_id, name="Renamed", user=agent_user.pk, role="agent")
    response = admin_client.post(f"/admin/calls/agent/{agent.pk}/change/", data, follow=True)
    agent.refresh_from_db()
    assert agent.name == "Renamed"
    assert "could not be asked" not in response.content.decode()


def test_a_changed_id_is_checked_too(admin_client, agent_user, sim):
    agent = agent_user.agent
    data = form("8888", user=agent_user.pk, role="agent")
    response = admin_client.post(f"/admin/calls/agent/{agent.pk}/change/", data)
    assert "VCC has no agent with the display ID “8888”" in response.content.decode()
    agent.refresh_from_db()
    assert agent.display_id != "8888"
