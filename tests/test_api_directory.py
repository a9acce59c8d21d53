"""The API's directory reads (calls/api/directory.py): agents with their readiness, groups with ready counts, callback
numbers, dispositions; readiness is read as the pages read it, against the sandbox simulator at the transport."""

from __future__ import annotations

import httpx
import pytest
from django.core.cache import cache
from django.test import Client

from calls.models import Agent, AgentGroup, ApiToken, CallbackNumber, DispositionCode
from tests._sim import fresh_simulator, recorded

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


@pytest.fixture
def sent(settings) -> list[httpx.Request]:
    return recorded(settings)


def token_for(user, *scopes: str) -> str:
    return ApiToken.issue(user, name="test", scopes=list(scopes or ["calls:read"]))[1]


def get(token: str, path: str, params: dict | None = None):
    return Client().get(f"/api/v1/{path}", params or {}, headers={"Authorization": f"Bearer {token}"})


def ok(response) -> dict:
    assert response.status_code == 200, response.content
    return response.json()


# --- Agents ---------------------------------------------------------------------------------------------------


def test_agents_are_listed_with_who_vcc_has_ready(agent_user, other_agent_user, supervisor_user, sales, sim):
    sim.set_availability("1003", "away")

    body = ok(get(token_for(agent_user), "agents"))

    assert body["ready_error"] is None
    by_id = {a["display_id"]: a for a in body["items"]}
    assert set(by_id) == {"1001", "1002", "1003"}
    assert by_id["1001"] == {
        "id": agent_user.agent.pk,
        "display_id": "1001",
        "name": "Alex Morgan",
        "groups": [sales.pk],
        "ready": True,
    }
    assert by_id["1003"]["ready"] is False


def test_agents_say_when_vcc_cannot_be_asked(agent_user, sim):
    sim.set_fault("agents", status=503)

    body = ok(get(token_for(agent_user), "agents"))

    assert body["items"][0]["ready"] is None
    assert "VCC is having a problem" in body["ready_error"]


def test_reading_agents_again_soon_does_not_ask_vcc_again(agent_user, sent):
    token = token_for(agent_user)
    ok(get(token, "agents"))
    asked = len(sent)
    ok(get(token, "agents"))
    assert asked >= 1 and len(sent) == asked


def test_an_inactive_agent_is_not_listed(agent_user, other_agent_user):
    other_agent_user.agent.is_active = False
    other_agent_user.agent.save()

    assert [a["display_id"] for a in ok(get(token_for(agent_user), "agents"))["items"]] == ["1001"]


# --- Groups ---------------------------------------------------------------------------------------------------


def test_a_supervisor_sees_each_groups_ready_count(supervisor_user, sales, support, london, sim):
    sales.default_callback_number = london
    sales.save()

    body = ok(get(token_for(supervisor_user), "groups"))

    by_id = {g["display_id"]: g for g in body["items"]}
    assert by_id["030"] == {
        "id": sales.pk,
        "display_id": "030",
        "name": "Sales UK",
        "members": ["1001", "1003"],
        "default_caller_id": london.number,
        "ready": 3,  # VCC's own count: Sales UK has 1001, 1003 and 1004 ready
    }
    assert by_id["200"]["ready"] == 1 and by_id["200"]["default_caller_id"] is None
    assert body["ready_error"] is None


def test_a_group_vcc_no_longer_has_is_not_listed(supervisor_user, sales, support, sim):
    AgentGroup.objects.filter(pk=support.pk).update(is_active=False)  # as the sync leaves it

    body = ok(get(token_for(supervisor_user), "groups"))

    assert [g["display_id"] for g in body["items"]] == ["030"]


def test_an_agent_sees_the_groups_without_counts_as_on_the_contact_page(agent_user, sales, sent):
    body = ok(get(token_for(agent_user), "groups"))

    assert [(g["name"], g["ready"]) for g in body["items"]] == [("Sales UK", None)]
    assert sent == []  # nothing asked of VCC for counts nobody shows them


def test_reading_groups_again_soon_does_not_ask_vcc_again(supervisor_user, sales, support, sent):
    token = token_for(supervisor_user)
    ok(get(token, "groups"))
    asked = len(sent)
    ok(get(token, "groups"))
    assert asked >= 1 and len(sent) == asked


def test_group_counts_say_when_vcc_cannot_be_asked(supervisor_user, sales, sim):
    sim.set_fault("agents", status=503)
    cache.clear()

    body = ok(get(token_for(supervisor_user), "groups"))

    assert body["items"][0]["ready"] is None and "VCC" in body["ready_error"]


# --- Callback numbers -------------------------------------------------------------------------------------------


def test_callback_numbers_say_which_the_owner_may_present(agent_user, supervisor_user, london, manchester):
    CallbackNumber.objects.create(number="+13125550100", label="Old Chicago", is_active=False)

    mine = ok(get(token_for(agent_user), "callback-numbers"))["items"]

    assert [n["number"] for n in mine] == ["+442079460100", "+441614960200"]  # by label; inactive ones left out
    assert mine[0] == {
        "id": london.pk,
        "number": "+442079460100",
        "label": "London main",
        "is_default": True,
        "local_presence": False,
        "may_present": True,
    }
    assert mine[1]["may_present"] is False  # restricted to Support
    supervisor_user.agent.groups.add(manchester.allowed_groups.get())
    assert [n["may_present"] for n in ok(get(token_for(supervisor_user), "callback-numbers"))["items"]] == [True, True]


def test_a_person_without_an_agent_may_present_none(make_user, london):
    token = token_for(make_user("noagent", "supervisor"))
    assert [n["may_present"] for n in ok(get(token, "callback-numbers"))["items"]] == [False]


# --- Scopes and roles -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["agents", "groups", "callback-numbers", "dispositions"])
def test_every_read_needs_calls_read(agent_user, path):
    response = get(token_for(agent_user, "contacts:read", "calls:write"), path)

    assert response.status_code == 403 and "calls:read" in response.json()["detail"]


@pytest.mark.parametrize("path", ["agents", "groups", "callback-numbers"])
def test_every_read_needs_the_role_the_page_needs(make_user, path):
    response = get(token_for(make_user("nobody")), path)

    assert response.status_code == 403 and "role" in response.json()["detail"]


@pytest.mark.parametrize("path", ["agents", "groups", "callback-numbers", "dispositions"])
def test_every_read_needs_a_token(path):
    assert Client().get(f"/api/v1/{path}").status_code == 401


def test_dispositions_are_still_read(agent_user):
    DispositionCode.objects.create(code="CALLBACK", description="Call back later", position=99)

    codes = [d["code"] for d in ok(get(token_for(agent_user), "dispositions"))["items"]]

    assert "CALLBACK" in codes


@pytest.mark.parametrize("path", ["agents", "groups", "callback-numbers", "dispositions"])
def test_every_directory_list_pages_by_cursor(agent_user, path, sales):
    """limit and after as the other lists: each row once, in order, and a damaged cursor or limit a 400."""
    for i in range(4):
        DispositionCode.objects.create(code=f"CODE{i}", position=i)
        AgentGroup.objects.create(display_id=f"7{i}", name=f"Group {i}")
        Agent.objects.create(display_id=f"80{i}", name=f"Agent {i}")
        CallbackNumber.objects.create(number=f"+44207946055{i}", label=f"Line {i}")
    token, key = token_for(agent_user), "code" if path == "dispositions" else "id"
    whole = ok(get(token, path, {"limit": 200}))["items"]
    seen, params = [], {"limit": 3}
    while True:
        page = ok(get(token, path, params))
        seen += [row[key] for row in page["items"]]
        if not page["next"]:
            break
        params = {"limit": 3, "after": page["next"].split("after=")[1].split("&")[0]}

    assert len(whole) > 3 and seen == [row[key] for row in whole]  # more than one page, each row once
    for bad in ({"after": "bm9wZQ"}, {"after": "WzEsIDJd"}, {"limit": "0"}, {"limit": "201"}):
        response = get(token, path, bad)
        assert response.status_code == 400 and response["Content-Type"] == "application/problem+json", bad
