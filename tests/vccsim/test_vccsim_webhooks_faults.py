"""vccsim: the faults webhook deliveries suffer (delays, duplicates, reordering, drops, bad signatures) and retries."""

from __future__ import annotations

import socket

import httpx
import jwt
import pytest

from tests.vccsim import _webhooks
from tests.vccsim._webhooks import SECRET, Received, Receiver, verified
from vccsim import Clock, Simulator
from vccsim.delivery import MAX_ATTEMPTS, RETRY_DELAYS

admin, receiver = _webhooks.admin, _webhooks.receiver  # fixtures


def signature_problem(request: Received) -> str | None:
    try:
        verified(request)
    except (KeyError, AssertionError, jwt.PyJWTError) as error:
        return type(error).__name__
    return None


# Faults ----------------------------------------------------------------------------------------------------------


def test_a_delay_holds_deliveries_on_the_clock(admin: httpx.Client, sim: Simulator, clock: Clock, receiver: Receiver):
    sim.subscribe(receiver.url, ["agent.*.v1"], SECRET)
    admin.post("/_sim/webhooks/fault", json={"delaySeconds": 30, "count": 1})

    sim.set_presence("1001", "Away")
    clock.advance(29)
    sim.deliver_pending()
    assert receiver.requests == []

    clock.advance(1)
    sim.deliver_pending()
    assert receiver.types() == ["agent.presencechanged.v1"]


def test_a_duplicate_sends_the_same_event_twice(sim: Simulator, receiver: Receiver):
    sim.subscribe(receiver.url, ["agent.*.v1"], SECRET)
    sim.set_webhook_fault(duplicate=True)

    sim.set_presence("1001", "Away")
    sim.deliver_pending()

    first, second = receiver.requests
    assert first.body == second.body
    assert verified(first)["id"] == verified(second)["id"]


def test_a_reorder_releases_the_held_events_last_first(sim: Simulator, receiver: Receiver):
    sim.subscribe(receiver.url, ["agent.*.v1"], SECRET)
    sim.set_webhook_fault(reorder=True, count=3)

    for agent_id in ("1001", "1002", "1003"):
        sim.set_presence(agent_id, "Away")
        sim.deliver_pending()
    sim.set_presence("1004", "Away")
    sim.deliver_pending()

    assert [event["data"]["agentDisplayId"] for event in receiver.events()] == ["1003", "1002", "1001", "1004"]


def test_a_reorder_without_a_count_holds_until_cleared(sim: Simulator, receiver: Receiver):
    sim.subscribe(receiver.url, ["agent.*.v1"], SECRET)
    sim.set_webhook_fault(reorder=True)
    sim.set_presence("1001", "Away")
    sim.set_presence("1002", "Away")
    sim.deliver_pending()
    assert receiver.requests == []

    sim.clear_webhook_fault()
    sim.deliver_pending()

    assert [event["data"]["agentDisplayId"] for event in receiver.events()] == ["1002", "1001"]


def test_a_drop_loses_the_event(sim: Simulator, receiver: Receiver):
    sim.subscribe(receiver.url, ["agent.*.v1"], SECRET)
    sim.set_webhook_fault(drop=True, count=1)

    sim.set_presence("1001", "Away")
    sim.set_presence("1002", "Away")
    sim.deliver_pending()

    assert [event["data"]["agentDisplayId"] for event in receiver.events()] == ["1002"]
    assert sim.webhook_state()["attempts"][0]["outcome"] == "dropped"


@pytest.mark.parametrize(
    ("how", "problem"),
    [
        ("wrong-key", "InvalidSignatureError"),
        ("undecoded-key", "InvalidSignatureError"),
        ("alg-none", "InvalidAlgorithmError"),
        ("wrong-hash", "AssertionError"),
        ("missing", "KeyError"),
    ],
)
def test_a_bad_signature_fails_verification(admin: httpx.Client, sim: Simulator, receiver: Receiver, how, problem):
    sim.subscribe(receiver.url, ["agent.*.v1"], SECRET)
    admin.post("/_sim/webhooks/fault", json={"signature": how, "count": 1})

    sim.set_presence("1001", "Away")
    sim.set_presence("1002", "Away")
    sim.deliver_pending()

    assert [signature_problem(request) for request in receiver.requests] == [problem, None]


def test_the_control_api_refuses_a_bad_webhook_fault(admin: httpx.Client, sim: Simulator):
    for body in ({"signature": "scribbled"}, {"delaySeconds": -1}, {"count": 0}, {"sometimes": True}):
        response = admin.post("/_sim/webhooks/fault", json=body)
        assert response.status_code == 400, body
        assert response.json()["message"]
    assert admin.delete("/_sim/webhooks/fault").json()["fault"] is None


def test_a_receiver_that_fails_first_gets_the_event_again_after_a_back_off(
    sim: Simulator, clock: Clock, receiver: Receiver
):
    sim.subscribe(receiver.url, ["agent.*.v1"], SECRET)
    receiver.statuses.extend([503, 500])

    sim.set_presence("1001", "Away")
    first = sim.deliver_pending()
    clock.advance(0.9)
    early = sim.deliver_pending()
    clock.advance(0.1)
    second = sim.deliver_pending()
    clock.advance(2)
    third = sim.deliver_pending()

    assert [(item["status"], item["outcome"]) for item in first + early + second + third] == [
        (503, "retrying"),
        (500, "retrying"),
        (200, "delivered"),
    ]
    assert len({request.body for request in receiver.requests}) == 1
    assert all(signature_problem(request) is None for request in receiver.requests)


def test_a_receiver_that_is_down_is_retried_then_given_up(sim: Simulator, clock: Clock):
    with socket.socket() as closed:  # a port nobody listens on: connections are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    sim.subscribe(f"http://127.0.0.1:{port}/vcc/events", ["agent.*.v1"], SECRET)
    sim.set_presence("1001", "Away")

    attempts = sim.deliver_pending()
    for delay in RETRY_DELAYS:
        clock.advance(delay)
        attempts += sim.deliver_pending()
    clock.advance(3600)

    assert sim.deliver_pending() == []
    assert [item["attempt"] for item in attempts] == list(range(1, MAX_ATTEMPTS + 1))
    assert [item["outcome"] for item in attempts] == ["retrying"] * (MAX_ATTEMPTS - 1) + ["gave up"]
    assert all(item["status"] is None and "ConnectError" in item["error"] for item in attempts)
