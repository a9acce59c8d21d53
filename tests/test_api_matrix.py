"""The API's permission matrix: every operation of its schema, for a token of each role with every scope, without
the scope the operation needs, and without a token. A token acts as its owner: what a role may do on the pages it
may do here, and nothing more."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field

import pytest
from django.db import transaction
from django.test import Client

from calls.api import api
from calls.models import ApiToken
from calls.models.api import SCOPES
from tests import _security

sim, world, world_rows = _security.sim, _security.world, _security.world_rows  # fixtures

ROLES = ("agent", "other agent", "supervisor", "admin")


@dataclass(frozen=True)
class Op:
    method: str
    path: str  # as the schema names it, {…} filled from the world's ids
    scope: str
    expected: tuple[int, int, int, int]  # agent, other agent, supervisor, admin (all scopes)
    body: dict = field(default_factory=dict)
    fill: dict = field(default_factory=dict)  # the schema's {name} -> a key of World.ids() or a value


def new_contact() -> dict:
    return {"name": f"Matrix {uuid.uuid4().hex[:6]}", "phones": [{"number": "020 7946 0999"}]}


OPS = [
    Op("GET", "/api/v1/contacts", "contacts:read", (200, 200, 200, 200)),
    Op("POST", "/api/v1/contacts", "contacts:write", (201, 201, 201, 201), body={"name": "Matrix Person"}),
    Op("GET", "/api/v1/contacts/{contact_id}", "contacts:read", (200, 200, 200, 200), fill={"contact_id": "contact"}),
    Op(
        "PATCH",
        "/api/v1/contacts/{contact_id}",
        "contacts:write",
        (200, 200, 200, 200),
        body={"company": "Matrix Ltd"},
        fill={"contact_id": "contact"},
    ),
    Op(
        "DELETE",
        "/api/v1/contacts/{contact_id}",
        "contacts:write",
        (403, 403, 204, 204),
        fill={"contact_id": "contact"},
    ),
    Op(
        "PUT",
        "/api/v1/contacts/by-external-id/{external_id}",
        "contacts:write",
        (201, 201, 201, 201),
        body={"name": "Matrix Upsert"},
        fill={"external_id": "=matrix-1"},
    ),
    Op("GET", "/api/v1/dispositions", "calls:read", (200, 200, 200, 200)),
    Op("GET", "/api/v1/agents", "calls:read", (200, 200, 200, 200)),
    Op("GET", "/api/v1/groups", "calls:read", (200, 200, 200, 200)),
    Op("GET", "/api/v1/callback-numbers", "calls:read", (200, 200, 200, 200)),
    Op("GET", "/api/v1/calls", "calls:read", (200, 200, 200, 200)),  # each sees the calls the call log shows them
    # The call is the agent's: another agent may not see it (404, as its page), supervisors and admins may.
    Op("GET", "/api/v1/calls/{call_id}", "calls:read", (200, 404, 200, 200), fill={"call_id": "call"}),
    # From one's own phone: the agent is on a live call (409, the page's sentence), the admin has no agent of
    # their own in VCC (422); the other agent and the supervisor place it.
    Op(
        "POST",
        "/api/v1/calls",
        "calls:write",
        (409, 201, 201, 422),
        body={"to": "{phone_number}", "contact": "{contact}"},
    ),
    # Via groups: supervisors and admins only (403 for agents), as the Call via group button.
    Op(
        "POST",
        "/api/v1/calls",
        "calls:write",
        (403, 403, 201, 201),
        body={"to": "{phone_number}", "contact": "{contact}", "via_groups": ["{group}"]},
    ),
    # Only the agent whose call it is wraps it up (404 for anyone else, as the wrap-up form's page).
    Op(
        "POST",
        "/api/v1/calls/{call_id}/wrap-up",
        "calls:write",
        (200, 404, 404, 404),
        body={"disposition": "{disposition_code}", "notes": "Matrix"},
        fill={"call_id": "call"},
    ),
]


def _path(op: Op, ids: dict[str, object]) -> str:
    def value(match: re.Match) -> str:
        name = op.fill.get(match.group(1), match.group(1))
        return name[1:] if name.startswith("=") else str(ids[name])

    return re.sub(r"\{(\w+)\}", value, op.path)


def _body(op: Op, world) -> str:
    """The operation's body, its "{name}" values filled from the world."""
    values = {
        "{phone_number}": world.contact.phones.exclude(pk=world.phone.pk).first().number,  # no live call to it
        "{contact}": world.contact.pk,
        "{disposition_code}": world.disposition.code,
        "{group}": world.group.pk,
    }

    def fill(value: object) -> object:
        if isinstance(value, list):
            return [fill(v) for v in value]
        return values.get(value, value) if isinstance(value, str) else value

    return json.dumps({key: fill(value) for key, value in op.body.items()}) if op.body else ""


def _send(client: Client, op: Op, path: str, token: str | None, body: str = "") -> int:
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    with transaction.atomic():  # each request finds the world as it was
        response = client.generic(op.method, path, body, content_type="application/json", headers=headers)
        transaction.set_rollback(True)
    if response.status_code >= 400:
        assert response["Content-Type"] == "application/problem+json", (op, response.status_code)
    return response.status_code


def test_every_operation_of_the_schema_is_in_the_matrix():
    schema = api.get_openapi_schema()
    documented = {(m.upper(), p) for p, ms in schema["paths"].items() for m in ms}
    listed = {(op.method, op.path) for op in OPS}
    assert documented == listed, {"not in the matrix": documented - listed, "not in the schema": listed - documented}


@pytest.mark.parametrize(
    "op", OPS, ids=lambda op: f"{op.method} {op.path}{' via groups' if 'via_groups' in op.body else ''}"
)
def test_each_role_gets_the_expected_answer_and_a_scope_or_token_less_nothing(op, world):
    ids = world.ids()
    path = _path(op, ids)
    client = Client()
    answers, without_scope = {}, {}
    for role in ROLES:
        user = world.users[role]
        every = ApiToken.issue(user, name="all", scopes=sorted(SCOPES))[1]
        others = sorted(set(SCOPES) - {op.scope})
        lacking = ApiToken.issue(user, name="lacking", scopes=others)[1]
        answers[role] = _send(client, op, path, every, _body(op, world))
        without_scope[role] = _send(client, op, path, lacking, _body(op, world))
    assert tuple(answers[r] for r in ROLES) == op.expected, answers
    assert set(without_scope.values()) == {403}, without_scope
    assert _send(client, op, path, None, _body(op, world)) == 401
