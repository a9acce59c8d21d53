"""The REST API's frame (calls/api/): tokens as Bearer, scopes, errors as RFC 9457 problems, the schema and the
docs page. The endpoints' own tests are beside them (tests/test_api_*.py)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from openapi_spec_validator import validate

from calls.models import ApiToken, DispositionCode
from tests.conftest import create_user

pytestmark = pytest.mark.django_db

URL = "/api/v1/dispositions"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def agent():
    return create_user("api-agent", "agent")


def test_a_token_reads_with_its_scope_and_its_last_use_is_noted(agent):
    DispositionCode.objects.create(code="SALE", description="Sold", position=1)
    row, token = ApiToken.issue(agent, name="helpdesk", scopes=["calls:read"])

    response = Client().get(URL, headers=bearer(token))

    assert response.status_code == 200
    assert {"code": "SALE", "description": "Sold", "action": "", "active": True} in response.json()["items"]
    row.refresh_from_db()
    assert row.last_used_at is not None
    assert token.startswith(row.prefix + "_") and row.digest not in token  # only the hash is kept


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer vcc_nothing", "Basic dXNlcjpwYXNz", "Bearer " + "x" * 300, "Bearer vcc_\x00"],
    ids=["none", "empty", "unknown", "basic", "long", "nul"],
)
def test_without_a_valid_token_it_is_a_401_problem_that_says_what_to_send(header, caplog):
    headers = {"Authorization": header} if header else {}
    response = Client().get(URL, headers=headers)

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"].startswith("Bearer")
    body = response.json()
    assert body["status"] == 401 and "Authorization: Bearer <token>" in body["detail"]
    assert "dXNlcjpwYXNz" not in caplog.text  # a credential sent is never logged


def test_a_revoked_an_expired_and_a_deactivated_owners_token_are_refused(agent):
    revoked, revoked_token = ApiToken.issue(agent, name="old", scopes=["calls:read"])
    ApiToken.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    _, expired_token = ApiToken.issue(
        agent, name="short", scopes=["calls:read"], expires_at=timezone.now() - timedelta(seconds=1)
    )
    leaver = create_user("leaver", "agent")
    _, leaver_token = ApiToken.issue(leaver, name="theirs", scopes=["calls:read"])
    _, later_token = ApiToken.issue(
        agent, name="for an hour", scopes=["calls:read"], expires_at=timezone.now() + timedelta(hours=1)
    )
    assert Client().get(URL, headers=bearer(leaver_token)).status_code == 200  # the owner's row is now cached
    leaver.is_active = False
    leaver.save()

    for token in (revoked_token, expired_token, leaver_token):
        assert Client().get(URL, headers=bearer(token)).status_code == 401
    assert Client().get(URL, headers=bearer(later_token)).status_code == 200  # not expired yet


def test_a_token_without_the_scope_is_a_403_that_names_it(agent):
    _, token = ApiToken.issue(agent, name="contacts only", scopes=["contacts:read"])

    response = Client().get(URL, headers=bearer(token))

    assert response.status_code == 403 and response["Content-Type"] == "application/problem+json"
    assert "calls:read" in response.json()["detail"]


def test_a_session_cookie_is_not_a_token(agent, client):
    client.force_login(agent)
    assert client.get(URL).status_code == 401


def test_issuing_refuses_an_unknown_or_no_scope(agent):
    with pytest.raises(ValueError, match="contacts:everything"):
        ApiToken.issue(agent, name="x", scopes=["contacts:everything"])
    with pytest.raises(ValueError, match="scope"):
        ApiToken.issue(agent, name="x", scopes=[])


def test_the_schema_is_valid_openapi_and_lists_every_route():
    from calls.api import api

    response = Client().get("/api/v1/openapi.json")

    assert response.status_code == 200
    schema = response.json()
    validate(json.loads(json.dumps(schema)))
    assert schema["openapi"].startswith("3.1")
    routes = {
        f"/api/v1{router_prefix.rstrip('/')}{path}".replace("//", "/")
        for router_prefix, router in api._routers
        for path in router.path_operations
    }
    documented = {p.rstrip("/") or "/" for p in schema["paths"]}
    assert {r.rstrip("/") for r in routes if r.rstrip("/") != "/api/v1"} <= documented


def test_the_docs_page_uses_only_vccwebs_own_files(client):
    response = client.get("/api/v1/docs")

    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    assert "script-src 'self'" in response["Content-Security-Policy"]


@pytest.mark.parametrize("sandbox", [True, False])
def test_the_docs_page_says_sandbox_as_every_page_does(client, settings, sandbox):
    settings.VCC_SANDBOX = sandbox

    page = client.get("/api/v1/docs").content.decode()
    home = client.get("/login/").content.decode()

    marker = '<div class="sandbox" role="note"><strong>Sandbox</strong>'
    assert (marker in page) is sandbox and (marker in home) is sandbox
    assert "/static/css/api_docs.css" in page and 'id="swagger-ui"' in page


def test_a_token_over_its_rate_gets_a_429_until_the_next_minute(agent, settings, monkeypatch):
    from calls.api import limits

    settings.API_RATE_PER_MINUTE = 3
    now = [1_800_000_000.0 + 15]  # 15 s into a minute
    monkeypatch.setattr(limits, "clock", lambda: now[0])
    _, token = ApiToken.issue(agent, name="busy", scopes=["calls:read"])
    _, other = ApiToken.issue(agent, name="another", scopes=["calls:read"])

    answers = [Client().get(URL, headers=bearer(token)) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused["Content-Type"] == "application/problem+json" and refused["Retry-After"] == "45"
    assert "API_RATE_PER_MINUTE" in refused.json()["detail"]
    assert Client().get(URL, headers=bearer(other)).status_code == 200  # counted per token
    now[0] += 45
    assert Client().get(URL, headers=bearer(token)).status_code == 200


def test_a_method_a_route_does_not_take_and_an_unknown_path_are_problems_too(agent):
    _, token = ApiToken.issue(agent, name="x", scopes=["calls:read"])

    # With CSRF checks on, as a browser's request would be: the API takes no cookie, so it needs no CSRF token.
    wrong_method = Client(enforce_csrf_checks=True).post(
        URL, {}, content_type="application/json", headers=bearer(token)
    )
    nowhere = Client().get("/api/v1/nothing-here", headers=bearer(token))

    assert wrong_method.status_code == 405 and wrong_method["Content-Type"] == "application/problem+json"
    assert wrong_method["Allow"] == "GET" and "GET" in wrong_method.json()["detail"]
    assert nowhere.status_code == 404 and nowhere["Content-Type"] == "application/problem+json"


def test_a_body_that_is_not_json_is_a_400_that_says_so(agent):
    _, token = ApiToken.issue(agent, name="writer", scopes=["contacts:write"])
    response = Client().generic(
        "POST", "/api/v1/contacts", b'{"name": "Ada",', content_type="application/json", headers=bearer(token)
    )
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"
    assert "not valid JSON" in response.json()["detail"]


def test_a_body_over_1_mb_is_a_413_before_it_is_read(agent):
    _, token = ApiToken.issue(agent, name="big", scopes=["contacts:write"])
    response = Client().generic(
        "POST", "/api/v1/contacts", b"x" * (1024 * 1024 + 1), content_type="application/json", headers=bearer(token)
    )
    assert response.status_code == 413 and response["Content-Type"] == "application/problem+json"
    assert "1 MB" in response.json()["detail"]


def test_placing_calls_has_a_rate_of_its_own(settings, monkeypatch):
    """API_CALL_RATE_PER_MINUTE counts the requests to place a call, refused before anything is placed."""
    from calls.api import limits
    from tests.conftest import create_agent_user

    settings.API_CALL_RATE_PER_MINUTE = 2
    monkeypatch.setattr(limits, "clock", lambda: 1_800_000_000.0)
    agent = create_agent_user()
    _, token = ApiToken.issue(agent, name="dialler", scopes=["calls:write", "calls:read"])

    def place(key: str):
        headers = {**bearer(token), "Idempotency-Key": key}
        return Client().post("/api/v1/calls", {"to": "+0"}, content_type="application/json", headers=headers)

    answers = [place(f"key-{i}").status_code for i in range(3)]

    assert 429 not in answers[:2] and answers[2] == 429  # the first two were looked at (refused: no such number)
    assert Client().get(URL, headers=bearer(token)).status_code == 200  # reads still go through


def test_placing_a_call_counts_in_the_tokens_rate_too(settings, monkeypatch):
    from calls.api import limits
    from tests.conftest import create_agent_user

    settings.API_RATE_PER_MINUTE = 3
    monkeypatch.setattr(limits, "clock", lambda: 1_800_000_000.0)
    _, token = ApiToken.issue(create_agent_user(), name="dialler", scopes=["calls:write", "calls:read"])
    for key in ("one", "two"):
        headers = {**bearer(token), "Idempotency-Key": key}
        Client().post("/api/v1/calls", {"to": "+0"}, content_type="application/json", headers=headers)

    assert [Client().get(URL, headers=bearer(token)).status_code for _ in range(2)] == [200, 429]


async def test_a_chunked_body_over_1_mb_is_refused_under_asgi_before_django_reads_it():
    """No Content-Length to check: the ASGI handler counts the body as it arrives (calls/asgi.py), as for VCC's
    events, and answers the API's problem."""
    import httpx

    from calls.api.auth import MAX_BODY
    from calls.asgi import API_MAX_BODY, Handler

    assert API_MAX_BODY == MAX_BODY

    async def chunks():
        for _ in range(20):
            yield b"x" * 64 * 1024  # 1.25 MB in all, sent without a length

    transport = httpx.ASGITransport(app=Handler())
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
        response = await http.post(
            "/api/v1/contacts", content=chunks(), headers={**bearer("vcc_any"), "Content-Type": "application/json"}
        )
    assert response.status_code == 413 and response.headers["content-type"] == "application/problem+json"
    assert "1 MB" in response.json()["detail"]
