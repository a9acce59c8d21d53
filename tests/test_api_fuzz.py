"""Every operation of the API, read from its own OpenAPI schema, fuzzed with hypothesis: bodies near the schema and
far from it, query parameters, path ids. Whatever is sent, the answer is never a 5xx, and every refusal is an RFC
9457 problem. New endpoints are fuzzed without a change here: the schema lists them."""

from __future__ import annotations

import json
import re

import pytest
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calls.api import api
from calls.api.errors import PROBLEM
from calls.models import ApiToken
from calls.models.api import SCOPES
from tests import _security
from tests.test_no_500s import HOSTILE, hostile_text

sim, world, world_rows = _security.sim, _security.world, _security.world_rows  # fixtures

fuzz = settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

SCHEMA = api.get_openapi_schema()
OPERATIONS = [
    (method.upper(), path, operation)
    for path, methods in SCHEMA["paths"].items()
    for method, operation in methods.items()
    if method in ("get", "post", "put", "patch", "delete")
]
WITH_BODY = [(m, p, o) for m, p, o in OPERATIONS if "requestBody" in o]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    hostile_text(),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def _properties(operation: dict) -> list[str]:
    content = operation["requestBody"]["content"]
    schema = next(iter(content.values()))["schema"]
    if "$ref" in schema:
        schema = SCHEMA["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return sorted(schema.get("properties", {}))


def _path(template: str, ids: list[object]) -> str:
    """The path with each {name} replaced by the next of ids (a real id, or anything at all)."""
    values = iter(ids)
    return re.sub(r"\{[^}]+\}", lambda _m: str(next(values, "1")), template)


def _answer(client: Client, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> None:
    with transaction.atomic():
        response = client.generic(method, path, body or b"", content_type="application/json", headers=headers)
        transaction.set_rollback(True)
    assert response.status_code < 500, f"{method} {path} {body[:300] if body else b''!r} -> {response.status_code}"
    if response.status_code >= 400:
        assert response["Content-Type"] == PROBLEM, (
            f"{method} {path} -> {response.status_code} {response['Content-Type']}"
        )
        assert response.json()["detail"], "a problem says what to fix"


@pytest.fixture
def token(world):
    return {
        role: ApiToken.issue(world.users[role], name="fuzz", scopes=sorted(SCOPES))[1]
        for role in ("agent", "supervisor", "admin")
    }


def test_the_schema_has_operations_to_fuzz():
    assert OPERATIONS, "the API has no operation"


@pytest.mark.parametrize(("method", "path", "operation"), WITH_BODY, ids=[f"{m} {p}" for m, p, _ in WITH_BODY])
@fuzz
@given(data=st.data())
def test_no_body_gets_a_5xx(world, token, method, path, operation, data):
    ids = world.ids()
    names = _properties(operation)
    near = st.fixed_dictionaries({}, optional=dict.fromkeys(names, json_values))
    body = data.draw(
        st.one_of(
            near.map(lambda d: json.dumps(d).encode()),
            json_values.map(lambda v: json.dumps(v).encode()),
            st.sampled_from(
                [b"", b"{", b"null", b"[]", b'{"a": 1}', b"\x00", "é".encode("latin-1"), b'{"x": "\\u0000"}']
            ),
        ),
        label="body",
    )
    path_ids = data.draw(
        st.lists(st.one_of(st.sampled_from(list(ids.values())), st.sampled_from(HOSTILE[:20])), min_size=2, max_size=2),
        label="path ids",
    )
    role = data.draw(st.sampled_from(sorted(token)), label="role")
    headers = {"Authorization": f"Bearer {token[role]}", "Idempotency-Key": data.draw(hostile_text(), label="key")}
    _answer(Client(), method, _path(path, path_ids), body, headers)


READS = [(m, p, o) for m, p, o in OPERATIONS if m == "GET"]


@pytest.mark.parametrize(("method", "path", "operation"), READS, ids=[f"{m} {p}" for m, p, _ in READS])
@fuzz
@given(data=st.data())
def test_no_query_gets_a_5xx(world, token, method, path, operation, data):
    ids = world.ids()
    names = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"] + ["after", "limit", "q"]
    query = data.draw(st.dictionaries(st.sampled_from(names), hostile_text(), max_size=4), label="query")
    path_ids = data.draw(
        st.lists(st.one_of(st.sampled_from(list(ids.values())), st.sampled_from(HOSTILE[:20])), min_size=2, max_size=2),
        label="path ids",
    )
    role = data.draw(st.sampled_from(sorted(token)), label="role")
    with transaction.atomic():
        response = Client().get(_path(path, path_ids), query, headers={"Authorization": f"Bearer {token[role]}"})
        transaction.set_rollback(True)
    assert response.status_code < 500, f"GET {path} {query!r} -> {response.status_code}"
    if response.status_code >= 400:
        assert response["Content-Type"] == PROBLEM
