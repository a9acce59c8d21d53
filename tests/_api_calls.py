"""What the API's calls tests share: the simulator, tokens, requests to /api/v1/calls and their problems, a call log."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from calls.models import ApiToken
from tests._calls import make_call
from tests._sim import fresh_simulator

URL = "/api/v1/calls"
CALL_KEYS = {
    "id", "state", "outcome", "to", "to_agent", "contact", "agent", "answered_by", "via_groups", "caller_id",
    "placed_by", "requested_at", "connected_at", "ended_at", "duration_seconds", "disposition", "notes",
    "wrapped_up_at", "error", "vcc_call_id", "url",
}  # fmt: skip


@pytest.fixture(autouse=True)
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


def token_for(user, *scopes: str) -> str:
    return ApiToken.issue(user, name="test", scopes=list(scopes or ["calls:read", "calls:write"]))[1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post(token: str, body: object, *, key: str | None = "key-1", raw: str | None = None):
    headers = bearer(token) | ({"Idempotency-Key": key} if key is not None else {})
    data = raw if raw is not None else json.dumps(body)
    return Client().post(URL, data, content_type="application/json", headers=headers)


def get(token: str, path: str = "", params: dict | None = None):
    return Client().get(URL + path, params or {}, headers=bearer(token))


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    return body


@pytest.fixture
def alex(agent_user) -> str:
    return token_for(agent_user)


@pytest.fixture
def priya(supervisor_user) -> str:
    return token_for(supervisor_user)


@pytest.fixture
def log_calls(agent_user, other_agent_user, sales):
    """Alex's calls an hour apart (newest first), one via Sales, and one of Tom's."""
    now = timezone.now()
    mine = [
        make_call(user=agent_user, agent=agent_user.agent, at=now - timedelta(hours=h), outcome=o)
        for h, o in [(1, "answered"), (2, "busy"), (3, "answered"), (4, "no_answer"), (5, "answered")]
    ]
    group = make_call(user=agent_user, groups=[sales], at=now - timedelta(hours=6), outcome="busy")
    theirs = make_call(user=other_agent_user, agent=other_agent_user.agent, at=now - timedelta(minutes=30))
    return mine, group, theirs
