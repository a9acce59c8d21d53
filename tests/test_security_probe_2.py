"""Security probes: what a logged-in agent can make vccweb ask of VCC, spending the account's shared request
budget (calls/vcc/budget.py), beyond what the pages themselves need; what the call log's filters tell an agent."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.utils import timezone

from calls.models import ApiToken, Call, DispositionCode
from calls.queues import building
from calls.vcc import budget
from tests._sim import HTMX, fresh_simulator, poll

pytestmark = pytest.mark.django_db

CONNECTED = 9
ENDED = 70


@pytest.fixture(autouse=True)
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


def _sent(priority: str) -> int:
    return budget.snapshot().this_minute[priority]


def test_an_agent_cannot_spend_the_vcc_budget_by_pausing_and_resuming_a_recording_again_and_again(
    agent_client, placed, sim
):
    sim.clock.advance(CONNECTED)
    poll(agent_client, placed)
    before = _sent("RECORDING")
    for i in range(60):
        agent_client.post(
            f"/calls/{placed.pk}/recording/", {"recording": "Paused" if i % 2 == 0 else "Started"}, headers=HTMX
        )
    assert _sent("RECORDING") - before <= 20


def test_an_agent_cannot_spend_the_vcc_budget_by_wrapping_up_a_call_again_and_again(agent_client, placed, sim):
    sim.clock.advance(ENDED)
    poll(agent_client, placed)
    placed.refresh_from_db()
    assert placed.state == Call.State.ENDED
    code = DispositionCode.objects.filter(is_active=True, action="").first()
    before = _sent("RECORDING")
    for i in range(60):
        response = agent_client.post(
            f"/calls/{placed.pk}/wrapup/", {"disposition": code.pk, "notes": f"try {i}"}, headers=HTMX
        )
    assert _sent("RECORDING") - before <= 20
    # Past the limit the person is told it is their own limit and how long to wait, and nothing typed is lost.
    assert "You sent 20 recording changes or wrap-ups this minute: wait " in response.content.decode()
    placed.refresh_from_db()
    assert placed.notes == "try 59"
    # The API says it as a limit to wait out (429, Retry-After), not as VCC refusing (502).
    token = ApiToken.issue(placed.created_by, name="script", scopes=["calls:read", "calls:write"])[1]
    answer = Client().post(
        f"/api/v1/calls/{placed.pk}/wrap-up",
        json.dumps({"disposition": code.code, "notes": "from the API"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 429, answer.content
    assert 1 <= int(answer["Retry-After"]) <= 60 and answer.json()["detail"].startswith("You sent 20 recording")
    placed.refresh_from_db()
    assert placed.notes == "from the API"


# --- The call log's queue filter -----------------------------------------------------------------------------


def test_the_call_log_does_not_name_a_queue_the_agent_is_not_given(agent_client, supervisor_user, agent_user):
    hidden = building.make_queue(user=supervisor_user, name="Hidden queue", now=timezone.now(), source_filter={})
    given = building.make_queue(user=supervisor_user, name="Given queue", now=timezone.now(), source_filter={})
    given.queue.agents.add(agent_user.agent)

    assert agent_client.get(f"/queues/{hidden.queue.pk}/").status_code == 404  # its own page is not theirs
    assert "Hidden queue" not in agent_client.get(f"/calls/?queue={hidden.queue.pk}").content.decode()
    assert "Given queue" in agent_client.get(f"/calls/?queue={given.queue.pk}").content.decode()


def test_the_call_log_names_any_queue_to_those_who_run_queues(supervisor_client, supervisor_user):
    queue = building.make_queue(user=supervisor_user, name="Any queue", now=timezone.now(), source_filter={})

    assert "Any queue" in supervisor_client.get(f"/calls/?queue={queue.queue.pk}").content.decode()
