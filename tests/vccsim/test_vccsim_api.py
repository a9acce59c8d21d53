"""vccsim: tokens, agents, the gateway's User Admin API and routing."""

from __future__ import annotations

import json
from dataclasses import replace

import httpx
import pytest

from vccsim import Clock, Simulator, load_account
from vccsim.state import SAMPLE_ACCOUNT
from vccsim.transport import SimTransport

USER_ADMIN = {"Accept": "application/vnd.newvoicemedia.v4+json"}


@pytest.fixture
def client(sim: Simulator):
    with httpx.Client(transport=SimTransport(sim), base_url="http://vccsim.test") as client:
        yield client


def v0_token(client: httpx.Client, key: str = "sandbox01", secret: str = "sandbox-api-token") -> httpx.Response:
    return client.post("/v0/oauth2/token", data={"grant_type": "client_credentials"}, auth=(key, secret))


def bearer(token: httpx.Response) -> dict[str, str]:
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def gateway_token(client: httpx.Client, scope: str | None = "users:read") -> httpx.Response:
    form = {"grant_type": "client_credentials", "client_id": "sandbox-client", "client_secret": "sandbox-secret"}
    if scope is not None:
        form["scope"] = scope
    return client.post("/Auth/connect/token", data=form)


# V0 tokens ----------------------------------------------------------------------------------------------------------


def test_it_issues_a_v0_token_for_basic_credentials(client: httpx.Client):
    response = v0_token(client)

    assert response.status_code == 200
    assert response.json()["token_type"] == "bearer"
    assert response.json()["expires_in"] == 3600
    assert response.json()["access_token"]


def test_it_issues_a_v0_token_for_form_credentials(client: httpx.Client):
    form = {"grant_type": "client_credentials", "client_id": "sandbox01", "client_secret": "sandbox-api-token"}

    assert client.post("/v0/oauth2/token", data=form).status_code == 200


def test_it_refuses_wrong_v0_credentials_the_oauth_way(client: httpx.Client):
    response = v0_token(client, secret="wrong")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"


def test_it_refuses_other_grant_types(client: httpx.Client):
    response = client.post("/v0/oauth2/token", data={"grant_type": "password"}, auth=("sandbox01", "sandbox-api-token"))

    assert response.status_code == 400
    assert response.json() == {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}


def test_it_refuses_a_token_request_that_is_not_form_encoded(client: httpx.Client):
    response = client.post("/v0/oauth2/token", json={"grant_type": "client_credentials"})

    assert response.json()["error"] == "invalid_request"


def test_the_credentials_can_be_overridden_when_loading_an_account(clock: Clock):
    sim = Simulator(load_account(account_key="livekey42", api_token="s3cret"), clock=clock)
    with httpx.Client(transport=SimTransport(sim), base_url="http://x") as client:
        assert v0_token(client).status_code == 400
        token = v0_token(client, "livekey42", "s3cret")
        assert client.get("/v0/livekey42/agents/1001", headers=bearer(token)).status_code == 200


@pytest.mark.parametrize("authorization", [None, "Bearer nonsense", "Basic c2FuZGJveDAxOnNhbmRib3gtYXBpLXRva2Vu"])
def test_v0_endpoints_need_a_valid_bearer_token(client: httpx.Client, authorization):
    headers = {"Authorization": authorization} if authorization else {}

    response = client.get("/v0/sandbox01/agents/1001", headers=headers)

    assert response.status_code == 401
    assert response.json() == {"message": "The access token is invalid or has expired"}


def test_a_v0_token_expires_after_an_hour_of_clock_time(client: httpx.Client, clock: Clock):
    headers = bearer(v0_token(client))
    clock.advance(3599)
    still_valid = client.get("/v0/sandbox01/agents/1001", headers=headers)
    clock.advance(1)
    expired = client.get("/v0/sandbox01/agents/1001", headers=headers)

    assert still_valid.status_code == 200
    assert expired.status_code == 401
    assert expired.json()["message"] == "The access token is invalid or has expired"


def test_a_token_only_works_for_its_own_account_key(client: httpx.Client):
    response = client.get("/v0/otheraccount/agents/1001", headers=bearer(v0_token(client)))

    assert response.status_code == 403
    assert response.json() == {"message": "Authorization has been denied for this request."}


def test_a_gateway_token_is_not_accepted_by_v0_endpoints(client: httpx.Client):
    response = client.get("/v0/sandbox01/agents/1001", headers=bearer(gateway_token(client)))

    assert response.status_code == 401


# Gateway tokens -----------------------------------------------------------------------------------------------------


def test_it_issues_a_gateway_token_by_form_or_basic(client: httpx.Client):
    by_form = gateway_token(client)
    by_basic = client.post(
        "/auth/connect/token",
        data={"grant_type": "client_credentials", "scope": "users:read stats"},
        auth=("sandbox-client", "sandbox-secret"),
    )

    assert by_form.status_code == 200
    assert by_form.json()["token_type"] == "Bearer"
    assert by_form.json()["expires_in"] == 7200
    assert by_basic.status_code == 200


@pytest.mark.parametrize(
    ("scope", "description"),
    [(None, "You must specify a scope"), ("users:read nope", '"nope" is an invalid scope')],
)
def test_it_refuses_gateway_tokens_without_a_valid_scope(client: httpx.Client, scope, description):
    response = gateway_token(client, scope)

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_scope", "error_description": description}


def test_a_gateway_token_expires_after_two_hours(client: httpx.Client, clock: Clock):
    headers = {**bearer(gateway_token(client)), **USER_ADMIN}
    clock.advance(7200)

    assert client.get("/useradmin/users", headers=headers).status_code == 401


# User Admin ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def admin(client: httpx.Client) -> httpx.Client:
    client.headers.update({**bearer(gateway_token(client)), **USER_ADMIN})
    return client


def test_it_lists_users_with_their_agent_display_ids(admin: httpx.Client):
    body = admin.get("/useradmin/users", params={"include": "All"}).json()

    assert body["meta"] == {"page": 1, "count": 6, "pageCount": 1, "totalCount": 6}
    first = body["users"][0]
    assert first["name"] == "Alex Morgan"
    assert first["userAccountConfiguration"]["agentConfiguration"]["agentDisplayId"] == "1001"
    assert first["userId"] == "1371fa0c-c639-5ec5-9fa2-cf765aab99de"


def test_it_pages_users(admin: httpx.Client):
    page_2 = admin.get("/useradmin/users", params={"limit": 4, "page": 2}).json()
    page_3 = admin.get("/useradmin/users", params={"limit": 4, "page": 3}).json()

    assert page_2["meta"] == {"page": 2, "count": 2, "pageCount": 2, "totalCount": 6}
    assert [user["name"] for user in page_2["users"]] == ["Sam Rivera", "Jordan Lee"]
    assert page_3["users"] == []


@pytest.mark.parametrize("params", [{"page": 0}, {"limit": 0}, {"limit": 5001}, {"page": "one"}])
def test_it_refuses_impossible_pages(admin: httpx.Client, params):
    assert admin.get("/useradmin/users", params=params).status_code == 400


def test_an_account_can_count_pages_from_zero_and_leave_meta_out_of_users(admin: httpx.Client, sim: Simulator):
    sim.account = replace(sim.account, first_page=0, users_meta=False)

    first = admin.get("/useradmin/users", params={"limit": 4}).json()
    page_0 = admin.get("/useradmin/users", params={"limit": 4, "page": 0}).json()
    page_1 = admin.get("/useradmin/users", params={"limit": 4, "page": 1}).json()
    groups = admin.get("/useradmin/groups", params={"limit": 2, "page": 1}).json()

    assert first == page_0 == {"users": first["users"]}
    assert [user["name"] for user in page_1["users"]] == ["Sam Rivera", "Jordan Lee"]
    assert groups["meta"] == {"page": 1, "count": 1, "pageCount": 2, "totalCount": 3}  # meta stays elsewhere
    assert admin.get("/useradmin/users", params={"page": -1}).status_code == 400


@pytest.mark.parametrize(
    ("gateway", "message"),
    [({"firstPage": 2}, "gateway.firstPage must be 0 or 1"), ({"usersMeta": "no"}, "gateway.usersMeta must be")],
)
def test_an_account_file_with_other_paging_is_refused(tmp_path, gateway, message):
    data = json.loads(SAMPLE_ACCOUNT.read_text(encoding="utf-8"))
    data["gateway"].update(gateway)
    path = tmp_path / "account.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_account(path)


@pytest.mark.parametrize("clid", ["12345", "+44", "Manchester"])
def test_an_account_file_with_a_callback_number_that_is_no_number_is_refused(tmp_path, clid):
    data = json.loads(SAMPLE_ACCOUNT.read_text(encoding="utf-8"))
    data["callbackNumbers"][0]["clid"] = clid
    path = tmp_path / "account.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="clid must be a valid number, E.164 or GB national"):
        load_account(path)


def test_it_lists_groups_with_display_ids_as_strings(admin: httpx.Client):
    body = admin.get("/useradmin/groups", params={"limit": 2}).json()

    assert body["meta"] == {"page": 1, "count": 2, "pageCount": 2, "totalCount": 3}
    assert [(group["groupDisplayId"], group["groupName"]) for group in body["groups"]] == [
        ("030", "Sales UK"),
        ("200", "Support"),
    ]


def test_it_lists_a_groups_members(admin: httpx.Client):
    body = admin.get("/useradmin/groups/3D8BACCC-F8E1-5537-81FB-59ED83CBBFAD/users").json()

    assert [user["agentDisplayId"] for user in body["users"]] == ["1001", "1003", "1004"]
    assert body["meta"]["totalCount"] == 3
    assert admin.get("/useradmin/groups/unknown/users").status_code == 404


def test_it_lists_the_callback_numbers_each_user_may_present(admin: httpx.Client):
    alex = admin.get("/useradmin/users/1371fa0c-c639-5ec5-9fa2-cf765aab99de/callbackNumbers").json()
    priya = admin.get("/useradmin/users/5b0abfa7-0d3e-597f-9c81-a364d56fb737/callbackNumbers").json()

    assert alex["agentDisplayId"] == "1001"
    assert [number["callbackNumberClid"] for number in alex["callbackNumbers"]] == ["+442079460100", "+13125550100"]
    assert [number["callbackNumberName"] for number in priya["callbackNumbers"]] == [
        "London main",
        "Manchester support",
        "Chicago",
    ]
    assert admin.get("/useradmin/users/nobody/callbackNumbers").status_code == 404


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json", "Version missing from Accept header!"),
        ("application/vnd.newvoicemedia.v3+json", "Invalid api-version! Valid values: 4"),
    ],
)
def test_user_admin_needs_version_4_in_accept(admin: httpx.Client, accept, expected):
    response = admin.get("/useradmin/users", headers={"Accept": accept})

    assert response.status_code == 400
    assert response.json() == {"statusCode": 400, "error": "Bad Request", "message": expected}


def test_user_admin_needs_a_gateway_token_with_users_scope(client: httpx.Client):
    v0 = client.get("/useradmin/users", headers={**bearer(v0_token(client)), **USER_ADMIN})
    stats_only = client.get("/useradmin/users", headers={**bearer(gateway_token(client, "stats")), **USER_ADMIN})

    assert v0.status_code == 401
    assert stats_only.status_code == 403


# V0 agents ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def vcc(client: httpx.Client) -> httpx.Client:
    client.headers.update(bearer(v0_token(client)))
    return client


def place(vcc: httpx.Client, agent_id: str = "1001") -> str:
    body = {"from": {"agentId": agent_id}, "to": {"telephoneNumber": "02072068888"}}
    response = vcc.post("/v0/sandbox01/calls/", json=body, headers={"Accept": "application/json;version=6"})
    assert response.status_code == 201
    return response.json()["id"]


def test_an_idle_agent_has_no_current_call(vcc: httpx.Client):
    body = vcc.get("/v0/sandbox01/agents/1001", headers={"Accept": "application/json"}).json()

    assert body == {
        "id": "1001",
        "links": [{"href": "http://vccsim.test/V0/sandbox01/Agents/1001", "rel": "_self"}],
        "currentCallGuid": None,
    }


def test_an_agent_on_a_call_links_to_it_and_keeps_its_guid_afterwards(vcc: httpx.Client, clock: Clock):
    call_id = place(vcc)
    during = vcc.get("/v0/sandbox01/agents/1001").json()
    clock.advance(600)
    after = vcc.get("/v0/sandbox01/agents/1001").json()

    assert during["currentCallGuid"] == call_id
    assert during["links"][1] == {"href": f"http://vccsim.test/V0/sandbox01/Calls/{call_id}", "rel": "currentCall"}
    assert after["currentCallGuid"] == call_id
    assert [link["rel"] for link in after["links"]] == ["_self"]


def test_a_call_gone_24_hours_after_it_ended_is_no_agents_call_any_more(vcc: httpx.Client, clock: Clock):
    body = {"from": {"agentId": "1001"}, "to": {"agentId": "1002"}}  # both phones are in it
    call_id = vcc.post("/v0/sandbox01/calls/", json=body, headers={"Accept": "application/json;version=6"}).json()["id"]
    clock.advance(10)
    later = place(vcc, agent_id="1003")  # ends 10 s later, and is forgotten 10 s later
    clock.advance(3 + 5 + 60 + 24 * 3600 - 10 - 1)  # a second before the first call is forgotten
    vcc.headers.update(bearer(v0_token(vcc)))
    kept = [vcc.get(f"/v0/sandbox01/agents/{agent}").json()["currentCallGuid"] for agent in ("1001", "1002", "1003")]
    clock.advance(2)
    vcc.headers.update(bearer(v0_token(vcc)))
    gone = [vcc.get(f"/v0/sandbox01/agents/{agent}").json()["currentCallGuid"] for agent in ("1001", "1002", "1003")]

    assert kept == [call_id, call_id, later]
    assert gone == [None, None, later]
    assert vcc.get(f"/v0/sandbox01/calls/{call_id}").status_code == 404


def test_an_unknown_agent_is_not_found(vcc: httpx.Client):
    response = vcc.get("/v0/sandbox01/agents/9999")

    assert response.status_code == 404
    assert response.json() == {"message": "The requested resource was not found."}


def ready(vcc: httpx.Client, **params: str) -> dict:
    return vcc.get("/v0/sandbox01/agents/", params={"availability": "readyForPhoneCall", **params}).json()


def test_it_lists_agents_ready_for_a_phone_call(vcc: httpx.Client):
    assert ready(vcc) == {
        "count": 4,
        "agents": [{"id": agent_id, "links": []} for agent_id in ("1001", "1002", "1003", "1004")],
    }


@pytest.mark.parametrize(
    ("groups", "count"), [("030", 3), ("200", 1), ("400", 0), ("030,200", 4), ("200,400", 1), ("999", 0)]
)
def test_it_counts_ready_agents_in_groups(vcc: httpx.Client, groups, count):
    assert ready(vcc, groups=groups, fields="count") == {"count": count}


def test_agents_on_calls_or_set_away_are_not_ready(vcc: httpx.Client, sim: Simulator):
    place(vcc, "1001")
    sim.set_availability("1003", "away")
    sim.set_availability("1005", "ready")

    assert ready(vcc, groups="030", fields="count") == {"count": 1}
    assert ready(vcc, groups="400", fields="count") == {"count": 1}


def test_the_availability_parameter_is_required(vcc: httpx.Client):
    assert vcc.get("/v0/sandbox01/agents/").status_code == 400


# Routing ------------------------------------------------------------------------------------------------------------


def test_routes_ignore_case_so_vccs_own_links_work(vcc: httpx.Client):
    call_id = place(vcc)
    link = vcc.get(f"/v0/sandbox01/calls/{call_id}").json()["links"][0]["href"]

    response = vcc.get(link)
    shouting = vcc.get(f"/V0/SANDBOX01/CALLS/{call_id.upper()}")

    assert response.status_code == 200
    assert response.json()["id"] == call_id
    assert shouting.status_code == 200


def test_it_answers_405_to_a_wrong_method_and_404_to_an_unknown_path(vcc: httpx.Client):
    wrong_method = vcc.get("/v0/sandbox01/calls/")
    unknown = vcc.get("/v0/sandbox01/nothing")

    assert wrong_method.status_code == 405
    assert wrong_method.headers["Allow"] == "POST"
    assert unknown.status_code == 404
    assert unknown.json() == {"message": "The requested resource was not found."}


def test_the_host_does_not_matter(sim: Simulator):
    with httpx.Client(transport=SimTransport(sim), base_url="https://emea.cc.vonage.com") as client:
        client.headers.update(bearer(v0_token(client)))
        call_id = place(client)
        body = client.get(f"/v0/sandbox01/calls/{call_id}").json()

    assert body["links"][0]["href"].startswith("https://emea.cc.vonage.com/V0/sandbox01/Calls/")
