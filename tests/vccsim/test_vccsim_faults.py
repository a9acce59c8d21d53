"""vccsim: fault injection, fair use, and the /_sim/ control endpoints."""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace

import httpx
import pytest

from tests.vccsim.conftest import log_in
from vccsim import Clock, Simulator, load_account
from vccsim.state import SAMPLE_ACCOUNT
from vccsim.transport import SimTransport
from vccsim.wire import SimError

CALL = {"from": {"agentId": "1001"}, "to": {"telephoneNumber": "02072068888"}}


def place(vcc: httpx.Client, agent_id: str = "1001") -> httpx.Response:
    body = {"from": {"agentId": agent_id}, "to": {"telephoneNumber": "02072068888"}}
    return vcc.post("/v0/sandbox01/calls/", json=body, headers={"Accept": "application/json;version=6"})


def test_latency_delays_the_answer(vcc: httpx.Client, sim: Simulator, waits: list[float]):
    sim.set_fault("agent", latency_ms=80)

    response = vcc.get("/v0/sandbox01/agents/1001")

    assert response.status_code == 200
    assert waits[-1] == 0.08


def test_latency_past_the_read_timeout_times_out_after_placing_the_call(vcc: httpx.Client, sim: Simulator):
    sim.set_fault("place_call", latency_ms=5000)

    with pytest.raises(httpx.ReadTimeout):
        vcc.post(
            "/v0/sandbox01/calls/",
            json=CALL,
            timeout=httpx.Timeout(1, read=0.05),
        )

    assert sim.calls_placed == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_an_error_status_replaces_the_answer_without_placing_a_call(vcc: httpx.Client, sim: Simulator, status):
    sim.set_fault("place_call", status=status)

    response = place(vcc)

    assert response.status_code == status
    assert "message" in response.json()
    assert sim.calls_placed == 0


def test_a_429_carries_retry_after(vcc: httpx.Client, sim: Simulator):
    sim.set_fault("get_call", status=429, retry_after=7)

    response = vcc.get("/v0/sandbox01/calls/94e5928c-7f7e-4645-ad72-61010f906449")

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"


def test_a_fault_with_a_count_wears_off(vcc: httpx.Client, sim: Simulator):
    sim.set_fault("place_call", status=503, count=2)

    statuses = [place(vcc, agent_id).status_code for agent_id in ("1001", "1002", "1003")]

    assert statuses == [503, 503, 201]
    assert sim.calls_placed == 1
    assert sim.faults.rules == {}


def test_a_connection_dropped_before_handling_places_nothing(vcc: httpx.Client, sim: Simulator):
    sim.set_fault("place_call", drop="before")

    with pytest.raises(httpx.ConnectError):
        place(vcc)

    assert sim.calls_placed == 0


def test_a_connection_dropped_after_handling_has_placed_the_call(vcc: httpx.Client, sim: Simulator):
    sim.set_fault("place_call", drop="after")

    with pytest.raises(httpx.RemoteProtocolError):
        place(vcc)

    assert sim.calls_placed == 1


@pytest.mark.parametrize("how", ["truncated", "empty"])
def test_a_malformed_body_still_places_the_call(vcc: httpx.Client, sim: Simulator, how):
    sim.set_fault("place_call", body=how, count=1)

    response = place(vcc)

    assert response.status_code == 201
    assert response.headers["Location"]
    with pytest.raises(ValueError):
        response.json()
    assert sim.calls_placed == 1


def test_expired_tokens_are_refused_until_a_new_token_is_fetched(vcc: httpx.Client, sim: Simulator):
    sim.set_fault("agent", expire_tokens=True, count=1)

    first = vcc.get("/v0/sandbox01/agents/1001")
    second = vcc.get("/v0/sandbox01/agents/1001")
    log_in(vcc)
    third = vcc.get("/v0/sandbox01/agents/1001")

    assert first.status_code == 401
    assert first.json() == {"message": "The access token is invalid or has expired"}
    assert second.status_code == 401
    assert third.status_code == 200


def test_a_fault_for_every_endpoint_yields_to_a_specific_one(vcc: httpx.Client, sim: Simulator):
    sim.set_fault("*", status=500)
    sim.set_fault("agent", status=502)

    assert vcc.get("/v0/sandbox01/agents/1001").status_code == 502
    assert place(vcc).status_code == 500


def test_control_endpoints_never_fail(vcc: httpx.Client, sim: Simulator):
    sim.set_fault("*", status=500)
    sim.set_fair_use(0)

    assert vcc.get("/_sim/state").status_code == 200


def test_unknown_endpoints_and_impossible_faults_are_refused(sim: Simulator):
    with pytest.raises(SimError, match="Unknown endpoint"):
        sim.set_fault("hang_up", status=500)
    with pytest.raises(SimError, match="status must be 400-599"):
        sim.set_fault("agent", status=200)


def test_fair_use_limits_requests_across_endpoints_until_the_window_resets(
    vcc: httpx.Client, sim: Simulator, clock: Clock
):
    sim.set_fair_use(2, window_seconds=60)
    clock.advance(1)

    statuses = [
        vcc.get("/v0/sandbox01/agents/1001").status_code,
        place(vcc).status_code,
        vcc.get("/v0/sandbox01/agents/1002").status_code,
    ]
    limited = vcc.get("/v0/sandbox01/agents/1002")
    clock.advance(60)
    later = vcc.get("/v0/sandbox01/agents/1002")

    assert statuses == [200, 201, 429]
    assert limited.headers["Retry-After"] == "60"
    assert limited.json() == {"message": "Too Many Requests"}
    assert later.status_code == 200


def test_fair_use_zero_refuses_everything_including_tokens(vcc: httpx.Client, sim: Simulator):
    sim.set_fair_use(0)

    assert vcc.post("/v0/oauth2/token", data={"grant_type": "client_credentials"}).status_code == 429
    sim.set_fair_use(None)
    assert vcc.get("/v0/sandbox01/agents/1001").status_code == 200


def test_the_sample_account_limits_requests_as_vcc_does(vcc: httpx.Client, sim: Simulator, clock: Clock):
    # About 160 requests a minute for everything the account asks (vcc-api.md §3.3); the token fetched is one.
    statuses = [vcc.get("/v0/sandbox01/agents/1001").status_code for _ in range(160)]
    clock.advance(60)
    later = vcc.get("/v0/sandbox01/agents/1001")

    assert statuses.count(200) == 159
    assert statuses[-1] == 429
    assert later.status_code == 200


def test_a_fast_clock_does_not_widen_the_fair_use_limit():
    # VCC counts what an account asks in a real minute: at 60 times real speed, a clock minute is a real second.
    real = [0.0]
    sim = Simulator(load_account(), clock=Clock(speed=60, real=lambda: real[0]))
    with httpx.Client(transport=SimTransport(sim), base_url="http://vccsim.test") as client:
        token = {"grant_type": "client_credentials"}
        auth = ("sandbox01", "sandbox-api-token")
        first = [client.post("/v0/oauth2/token", data=token, auth=auth).status_code for _ in range(161)]
        real[0] = 2.0  # two clock minutes later
        still = client.post("/v0/oauth2/token", data=token, auth=auth)
        real[0] = 60.0
        later = client.post("/v0/oauth2/token", data=token, auth=auth)

    assert first.count(200) == 160 and first[-1] == 429
    assert still.status_code == 429
    assert still.headers["Retry-After"] == "58"  # real seconds
    assert later.status_code == 200


@pytest.mark.parametrize(("written", "limit"), [(None, None), (40, 40), ("absent", 160)])
def test_an_account_file_sets_the_fair_use_limit_or_gets_vccs(tmp_path, clock: Clock, written, limit):
    data = json.loads(SAMPLE_ACCOUNT.read_text(encoding="utf-8"))
    if written == "absent":
        del data["fairUseLimit"]
    else:
        data["fairUseLimit"] = written
    path = tmp_path / "account.json"
    path.write_text(json.dumps(data), encoding="utf-8")

    assert Simulator(load_account(path), clock=clock).faults.fair_use_limit == limit


@pytest.mark.parametrize("written", [-1, "lots", 1.5, True])
def test_an_account_file_with_an_impossible_fair_use_limit_is_refused(tmp_path, written):
    data = json.loads(SAMPLE_ACCOUNT.read_text(encoding="utf-8"))
    data["fairUseLimit"] = written
    path = tmp_path / "account.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="fairUseLimit must be"):
        load_account(path)


def test_faults_from_the_account_file_apply_from_start_up_and_after_a_reset(clock: Clock):
    account = replace(load_account(), faults={"place_call": {"status": 503, "retryAfter": 2}}, fair_use_limit=100)
    sim = Simulator(account, clock=clock)
    sim.clear_faults()
    sim.reset()

    assert sim.faults.rules["place_call"].status == 503
    assert sim.faults.rules["place_call"].retry_after == 2
    assert sim.faults.fair_use_limit == 100


# Control endpoints --------------------------------------------------------------------------------------------------


def test_control_endpoints_set_and_clear_faults(vcc: httpx.Client, sim: Simulator):
    set_response = vcc.post("/_sim/faults/place_call", json={"status": 503, "retryAfter": 5, "count": 1})
    refused = place(vcc)
    vcc.post("/_sim/faults/agent", json={"latencyMs": 10})
    vcc.delete("/_sim/faults/agent")

    assert set_response.json()["endpoints"]["place_call"]["retryAfter"] == 5
    assert (refused.status_code, refused.headers["Retry-After"]) == (503, "5")
    assert vcc.get("/_sim/faults").json()["endpoints"] == {}
    vcc.post("/_sim/faults/*", json={"status": 500})
    assert vcc.delete("/_sim/faults").json()["endpoints"] == {}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/_sim/faults/nowhere", {"status": 500}),
        ("/_sim/faults/agent", {"status": 200}),
        ("/_sim/faults/agent", {"colour": "red"}),
        ("/_sim/faults/agent", {"drop": "sideways"}),
        ("/_sim/fair-use", {"limit": "lots"}),
        ("/_sim/agents/1001/availability", {"availability": "asleep"}),
        ("/_sim/next-outcome", {"outcome": "explodes"}),
        ("/_sim/next-outcome", {"outcome": "busy", "talkSeconds": 10}),
        ("/_sim/clock/advance", {"seconds": -1}),
    ],
)
def test_control_endpoints_refuse_nonsense(vcc: httpx.Client, path, body):
    response = vcc.post(path, json=body)

    assert response.status_code == 400
    assert response.json()["message"]


def test_control_endpoints_show_state_and_reset_it(vcc: httpx.Client, sim: Simulator):
    call_id = place(vcc).json()["id"]

    state = vcc.get("/_sim/state").json()
    reset = vcc.post("/_sim/reset").json()

    assert state["callsPlaced"] == 1
    assert [call["id"] for call in state["calls"]] == [call_id]
    alex = {"category": "Ready", "description": "Ready"}  # on a call: busy, yet present and Ready
    assert {"agentId": "1001", "name": "Alex Morgan", "availability": "busy", "presence": alex} in state["agents"]
    assert reset["callsPlaced"] == 0
    assert reset["calls"] == []
    assert sim.calls_placed == 0


def test_control_endpoints_set_availability_outcomes_and_the_clock(vcc: httpx.Client, sim: Simulator):
    availability = vcc.post("/_sim/agents/1005/availability", json={"availability": "ready"})
    missing = vcc.post("/_sim/agents/9999/availability", json={"availability": "ready"})
    outcome = vcc.post("/_sim/next-outcome", json={"outcome": "no_answer"})
    call_id = place(vcc, "1005").json()["id"]
    vcc.post("/_sim/clock/advance", json={"seconds": 33})

    assert availability.json() == {"agentId": "1005", "availability": "ready"}
    assert missing.status_code == 404
    assert outcome.json() == {"nextOutcomes": ["no_answer"]}
    assert vcc.get(f"/v0/sandbox01/calls/{call_id}").json()["result"]["reason"] == "NoAnswer"


def test_a_fault_on_the_token_endpoint_lets_other_endpoints_through(vcc: httpx.Client, sim: Simulator):
    sim.set_fault("v0_token", status=503)

    assert vcc.post("/v0/oauth2/token", data={"grant_type": "client_credentials"}).status_code == 503
    assert place(vcc).status_code == 201


@pytest.mark.parametrize("status", [520, 599, 499])
def test_a_non_standard_error_status_is_served_not_crashed_on(vcc: httpx.Client, sim: Simulator, status):
    sim.set_fault("agent", status=status)
    response = vcc.get("/v0/sandbox01/agents/1001")
    assert response.status_code == status
    assert response.json() == {"message": "Error"}


@pytest.mark.parametrize("fault", [{"status": 503}, {"drop": "before"}, {}])
def test_expiring_tokens_applies_whatever_else_the_fault_does(vcc: httpx.Client, sim: Simulator, fault):
    sim.set_fault("agent", expire_tokens=True, count=1, **fault)
    with contextlib.suppress(httpx.TransportError):  # the dropped connection itself
        vcc.get("/v0/sandbox01/agents/1001")
    after = vcc.get("/v0/sandbox01/agents/1001")
    assert after.status_code == 401
    assert after.json() == {"message": "The access token is invalid or has expired"}


def test_a_fast_clock_advertises_token_lifetimes_in_real_seconds():
    fast = Simulator(load_account(), clock=Clock(speed=3600))
    with httpx.Client(transport=SimTransport(fast), base_url="http://vccsim.test") as client:
        answer = client.post(
            "/v0/oauth2/token", data={"grant_type": "client_credentials"}, auth=("sandbox01", "sandbox-api-token")
        )
    assert answer.json()["expires_in"] == 1  # an hour of clock time is a second of real time


def test_a_manual_clock_advertises_token_lifetimes_as_they_are(vcc: httpx.Client, sim: Simulator):
    answer = vcc.post(
        "/v0/oauth2/token", data={"grant_type": "client_credentials"}, auth=("sandbox01", "sandbox-api-token")
    )
    assert answer.json()["expires_in"] == 3600
