"""The agent directory (agent_directory) and agent-to-agent calls (call_agent)."""

from __future__ import annotations

import uuid

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from calls import calling
from calls.models import Agent, AgentGroup, Call
from tests._sim import agent_user, assert_refused, call_agent, fresh_simulator, only_call, request_ids, shown

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


@pytest.fixture
def tom(other_agent_user) -> Agent:
    return other_agent_user.agent


def html(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


# --- The directory -------------------------------------------------------------------------------------


def test_it_lists_the_active_agents(agent_client, agent_user, tom, sales):
    Agent.objects.create(display_id="1005", name="Sam Rivera", is_active=False)

    page = html(agent_client.get("/agents/"))

    assert "Alex Morgan" in page
    assert "Tom Okafor" in page
    assert "Sam Rivera" not in page
    assert "<code>1003</code>" in page
    assert "Sales UK" in page
    assert '<span class="badge">you</span>' in page
    assert f'id="call-agent-{tom.pk}"' in page
    assert len(request_ids(page)) == 2


def test_a_user_without_an_agent_is_told_they_cannot_call(client, make_user, tom):
    client.force_login(make_user("noagent", "supervisor"))

    page = html(client.get("/agents/"))

    assert "You have no VCC agent, so you cannot call from here." in page
    assert "Ring your phone" not in page
    assert '<button type="button" disabled>Call</button>' in page


def test_the_directory_query_count_does_not_grow_with_agents(agent_client, tom, sales, django_assert_max_num_queries):
    with CaptureQueriesContext(connection) as few:
        agent_client.get("/agents/")
    for n in range(20):
        agent = Agent.objects.create(display_id=str(2000 + n), name=f"Agent {n}")
        AgentGroup.objects.create(display_id=f"G{n}", name=f"Group {n}").members.add(agent)

    with django_assert_max_num_queries(len(few)):
        response = agent_client.get("/agents/")

    assert "Agent 19" in html(response)


def test_the_directory_needs_login_and_get(client, agent_client):
    assert agent_client.post("/agents/").status_code == 405
    agent_client.logout()
    assert client.get("/agents/")["Location"].startswith("/login/?next=")


def test_the_directory_needs_the_view_agent_permission(client, make_user):
    client.force_login(make_user("norole"))

    assert client.get("/agents/").status_code == 403


# --- Calling another agent ----------------------------------------------------------------------------


def test_it_calls_another_agent(agent_client, tom, london, sim, settings):
    response = call_agent(agent_client, tom)

    call = only_call()
    assert call.state == Call.State.LIVE
    assert call.to_agent == tom
    assert call.to_number == ""
    assert call.contact is None
    assert call.regarding == f"http://testserver/agents/?call={calling.regarding_token(call)}"
    assert call.request_body == {
        "from": {"agentId": "1001", "presentedCLID": london.number},
        "to": {"agentId": "1003"},
        "regarding": {"reference": call.regarding},
        "application": settings.VCC_APPLICATION,
    }
    assert sim.calls_placed == 1
    assert sim.calls[call.vcc_call_id].dialled_agent_id == "1003"
    page = html(response)
    assert f'id="call-panel-{call.pk}"' in page
    assert 'data-call-state="live"' in page
    assert f'id="call-agent-{tom.pk}"' in page
    assert 'hx-swap-oob="true"' in page


def test_a_plain_form_post_redirects_to_the_directory_with_the_call(agent_client, tom, london):
    response = call_agent(agent_client, tom, htmx=False)

    call = only_call()
    assert response.status_code == 302
    assert response["Location"] == f"/agents/?call={calling.regarding_token(call)}"
    assert f'id="call-panel-{call.pk}"' in html(agent_client.get(response["Location"]))


def test_the_directory_link_shows_no_panel_for_someone_elses_call(agent_client, other_agent_user, tom, london):
    response = call_agent(agent_client, tom, htmx=False)
    call = only_call()
    agent_client.force_login(other_agent_user)

    assert f'id="call-panel-{call.pk}"' not in html(agent_client.get(response["Location"]))


def test_calling_yourself_is_refused(agent_client, agent_user, london, sim):
    assert_refused(call_agent(agent_client, agent_user.agent), sim, "That is you: pick another agent.")


@pytest.mark.parametrize(("display_id", "name"), [("1006", "Jordan Lee"), ("1005", "Sam Rivera")])
def test_a_busy_or_away_agent_shows_vccs_reason(agent_client, london, sim, display_id, name):
    dialled = Agent.objects.create(display_id=display_id, name=name)

    response = call_agent(agent_client, dialled)

    call = only_call()  # VCC was asked and refused: a failed call, with VCC's reason
    assert call.state == Call.State.FAILED
    assert shown(response, "The agent you are calling is not available right now")
    assert call.error_status == 400
    assert call.error_message == "Unable to place call - dialed Agent is not currently available"


def test_an_inactive_agent_cannot_be_called(agent_client, tom, london, sim):
    Agent.objects.filter(pk=tom.pk).update(is_active=False)

    assert_refused(call_agent(agent_client, tom), sim, "This agent is not active.")


def test_a_user_without_an_agent_cannot_call_an_agent(client, make_user, tom, london, sim):
    client.force_login(make_user("noagent", "supervisor"))

    assert_refused(call_agent(client, tom), sim, "You have no active VCC agent")


def test_a_busy_caller_sees_vccs_reason(client, make_user, tom, london, sim):
    client.force_login(agent_user(make_user, "jordan", "1006", "Jordan Lee"))

    response = call_agent(client, tom)

    call = only_call()
    assert shown(response, call.error_display)
    assert call.state == Call.State.FAILED
    assert call.error_message == "Unable to place call - Agent number busy"


def test_the_same_agent_click_twice_places_one_call(agent_client, tom, london, sim):
    request_id = str(uuid.uuid4())

    call_agent(agent_client, tom, request_id=request_id)
    response = call_agent(agent_client, tom, request_id=request_id)

    call = only_call()
    assert f'id="call-panel-{call.pk}"' in html(response)
    assert sim.calls_placed == 1


def test_someone_elses_agent_click_is_refused(agent_client, other_agent_user, supervisor_user, london, sim):
    request_id = str(uuid.uuid4())
    call_agent(agent_client, supervisor_user.agent, request_id=request_id)
    agent_client.force_login(other_agent_user)

    response = call_agent(agent_client, supervisor_user.agent, request_id=request_id)

    assert response.status_code < 500
    assert shown(response, "That click belongs to someone else")
    assert sim.calls_placed == 1


def test_calling_an_agent_needs_login_post_and_a_request_id(client, agent_client, tom, sim):
    assert agent_client.get(f"/agents/{tom.pk}/call/").status_code == 405
    assert agent_client.post(f"/agents/{tom.pk}/call/", {"request_id": "nope"}).status_code == 400
    assert agent_client.post("/agents/999999/call/", {"request_id": str(uuid.uuid4())}).status_code == 404
    agent_client.logout()
    assert call_agent(client, tom).status_code == 302
    assert not Call.objects.exists()
    assert sim.calls_placed == 0


def test_the_directory_shows_who_vcc_has_ready(agent_client, tom, sim):
    page = agent_client.get("/agents/")
    assert 'id="ready-1003"' in page.content.decode()
    response = agent_client.get("/agents/availability/", headers={"HX-Request": "true"})
    body = response.content.decode()
    assert 'id="ready-1003" hx-swap-oob="true" class="badge ok">ready<' in body
    sim.set_availability("1003", "away")
    cache.clear()
    body = agent_client.get("/agents/availability/", headers={"HX-Request": "true"}).content.decode()
    assert 'id="ready-1003" hx-swap-oob="true" class="badge">not ready<' in body


def test_the_directory_says_when_vcc_cannot_be_asked_who_is_ready(agent_client, tom, sim):
    sim.set_fault("agents", status=503)
    body = agent_client.get("/agents/availability/", headers={"HX-Request": "true"}).content.decode()
    assert ">unknown<" in body
    assert "Couldn't ask VCC who is ready: VCC is having a problem" in body
