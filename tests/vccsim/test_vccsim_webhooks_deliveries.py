"""vccsim: signed CloudEvents delivered to a real HTTP receiver, for calls placed, calls not, and presence changes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.vccsim import _webhooks
from tests.vccsim._webhooks import SECRET, Received, Receiver, subscription, verified
from vccsim import Clock, Simulator, load_account, start_server
from vccsim.clock import isoformat_ms

CALL = {"from": {"agentId": "1001"}, "to": {"telephoneNumber": "02072068888"}}
V6 = {"Accept": "application/json;version=6"}
# An answered call (the default outcome): agent rings 3 s, destination 5 s, talk 60 s.
ANSWERED_CALL = [
    ("channel.alerted.v1", "Agent"),
    ("channel.connected.v1", "Agent"),
    ("channel.alerted.v1", "Customer"),
    ("channel.connected.v1", "Customer"),
    ("channel.disconnected.v1", "Customer"),
    ("channel.disconnected.v1", "Agent"),
    ("channel.wrapstarted.v1", "Agent"),
]

admin, receiver = _webhooks.admin, _webhooks.receiver  # fixtures


def place(vcc: httpx.Client, body: dict[str, Any] = CALL) -> str:
    response = vcc.post("/v0/sandbox01/calls/", json=body, headers=V6)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def live_through(sim: Simulator, clock: Clock, seconds: float) -> None:
    """Let the clock run a second at a time, delivering what falls due, as a served simulator would."""
    for _ in range(int(seconds)):
        clock.advance(1)
        sim.deliver_pending()


# Deliveries ------------------------------------------------------------------------------------------------------


def test_a_placed_call_sends_its_events_in_order_signed(
    vcc: httpx.Client, admin: httpx.Client, sim: Simulator, clock: Clock, receiver: Receiver
):
    admin.post("/webhooks/subscriptions", json=subscription(receiver.url))
    placed_at = clock.now()
    call_id = place(vcc)

    live_through(sim, clock, 70)

    assert [(request.path, request.headers["Content-Type"]) for request in receiver.requests] == [
        ("/vcc/events", "application/cloudevents+json")
    ] * len(ANSWERED_CALL)
    events = [verified(request) for request in receiver.requests]
    assert [(event["type"], event["data"]["party"]["role"]) for event in events] == ANSWERED_CALL
    assert len({event["id"] for event in events}) == len(events)
    assert {event["specversion"] for event in events} == {"1.0"}
    assert {(event["subject"], event["data"]["callGuid"], event["data"]["interactionId"]) for event in events} == {
        (call_id, call_id, call_id)
    }
    agent_channel = {event["data"]["channelId"] for event in events if event["data"]["party"]["role"] == "Agent"}
    assert len(agent_channel) == 1
    first, customer_answers, hang_up = events[0], events[3], events[5]
    assert first["time"] == isoformat_ms(placed_at)  # the simulator's clock, to the millisecond
    assert first["data"]["direction"] == "Outbound"
    assert first["data"]["origin"] == "CallsApi"
    assert first["data"]["from"] == {"agentDisplayId": "1001", "telephoneNumber": "+442079460100"}
    assert first["data"]["to"] == {"agentDisplayId": None, "telephoneNumber": "+442072068888"}
    assert first["data"]["party"]["agentDisplayId"] == "1001"
    assert customer_answers["data"]["party"]["telephoneNumber"] == "+442072068888"
    assert customer_answers["data"]["result"] is None
    detail = vcc.get(f"/v0/sandbox01/calls/{call_id}").json()
    assert (
        hang_up["data"]["result"]
        == detail["result"]
        == {"code": "Success", "party": "Destination", "reason": "Answered"}
    )
    assert hang_up["data"]["disconnectedBy"] == "Agent"
    assert hang_up["data"]["connectedAt"] < hang_up["data"]["disconnectedAt"] == hang_up["time"]


def test_a_call_the_agent_does_not_answer_ends_on_the_agent_channel(
    vcc: httpx.Client, sim: Simulator, clock: Clock, receiver: Receiver
):
    sim.subscribe(receiver.url, ["channel.*.v1"], SECRET)
    place(vcc, {"from": {"agentId": "1001"}, "to": {"telephoneNumber": "02072068891"}})

    live_through(sim, clock, 31)

    events = [verified(request) for request in receiver.requests]
    assert [event["type"] for event in events] == ["channel.alerted.v1", "channel.disconnected.v1"]
    assert events[1]["data"]["result"] == {"code": "Failure", "party": "Originator", "reason": "NoAnswer"}
    assert events[1]["data"]["disconnectedBy"] == "System"
    assert events[1]["data"]["connectedAt"] is None


def test_it_sends_only_the_types_subscribed_to_and_nothing_to_a_disabled_subscription(
    vcc: httpx.Client, sim: Simulator, clock: Clock, receiver: Receiver
):
    sim.subscribe(receiver.url, ["channel.disconnected.v1", "channel.wrapstarted.v0"], SECRET)
    sim.subscribe(receiver.url + "/off", ["*"], SECRET, enabled=False)
    place(vcc)

    live_through(sim, clock, 70)

    assert receiver.types() == ["channel.disconnected.v1", "channel.disconnected.v1", "channel.wrapstarted.v0"]
    assert {request.path for request in receiver.requests} == {"/vcc/events"}


def test_a_wildcard_without_a_version_gets_a_v0_copy_of_each_event_with_its_own_id_and_shape(
    vcc: httpx.Client, sim: Simulator, clock: Clock, receiver: Receiver
):
    sim.subscribe(receiver.url, ["channel.*", "agent.presencechanged.v0"], SECRET)
    call_id = place(vcc, {"from": {"agentId": "1001"}, "to": {"telephoneNumber": "02072068891"}})  # not answered
    sim.set_presence("1002", "Away")

    live_through(sim, clock, 31)

    events = [verified(request) for request in receiver.requests]
    assert [event["type"] for event in events] == [
        "channel.alerted.v0",
        "channel.alerted.v1",
        "agent.presencechanged.v0",
        "channel.disconnected.v0",
        "channel.disconnected.v1",
    ]
    assert len({event["id"] for event in events}) == 5
    hang_up_v0, hang_up_v1 = events[3], events[4]
    assert hang_up_v0["subject"] == hang_up_v1["subject"] == call_id
    assert hang_up_v0["time"] == hang_up_v1["time"]
    assert hang_up_v0["data"] == {  # v0's shape is the simulator's invention: no party, no result
        "interactionId": call_id,
        "channelId": hang_up_v1["data"]["channelId"],
        "direction": "Outbound",
        "agentDisplayId": "1001",
        "state": "disconnected",
    }
    assert events[2]["data"] == {
        "userId": sim.account.agents["1002"].user_id,
        "agentDisplayId": "1002",
        "state": "Away",
    }


def test_it_sends_nothing_that_happened_before_the_subscription(
    vcc: httpx.Client, sim: Simulator, clock: Clock, receiver: Receiver
):
    place(vcc)
    clock.advance(4)  # the agent has answered; the destination rings
    sim.subscribe(receiver.url, ["channel.*.v1"], SECRET)

    live_through(sim, clock, 70)

    assert [(event["type"], event["data"]["party"]["role"]) for event in receiver.events()] == ANSWERED_CALL[3:]


def test_presence_changes_are_sent(admin: httpx.Client, sim: Simulator, receiver: Receiver):
    sim.subscribe(receiver.url, ["agent.presencechanged.v1"], SECRET)

    changed = admin.post("/_sim/agents/1002/presence", json={"category": "ExtendedAway", "description": "Lunch"})
    admin.post("/_sim/agents/1002/availability", json={"availability": "ready"})
    admin.post("/_sim/agents/1002/availability", json={"availability": "ready"})  # no change, no event
    sim.deliver_pending()

    assert changed.json() == {
        "agentId": "1002",
        "presence": {"category": "ExtendedAway", "description": "Lunch"},
        "availability": "away",
    }
    lunch, back = (verified(request) for request in receiver.requests)
    assert lunch["type"] == "agent.presencechanged.v1"
    assert lunch["subject"] == lunch["data"]["userId"] == sim.account.agents["1002"].user_id
    assert lunch["data"]["agentDisplayId"] == "1002"
    assert lunch["data"]["presence"] == {"category": "ExtendedAway", "description": "Lunch"}
    assert lunch["data"]["previousPresence"] == {"category": "Ready", "description": "Ready"}
    assert back["data"]["presence"] == {"category": "Ready", "description": "Ready"}


def test_it_refuses_an_unknown_presence(admin: httpx.Client):
    response = admin.post("/_sim/agents/1002/presence", json={"category": "Asleep"})

    assert response.status_code == 400
    assert "Ready" in response.json()["message"]


def test_calls_vccweb_did_not_place_are_sent_too(
    admin: httpx.Client, vcc: httpx.Client, sim: Simulator, clock: Clock, receiver: Receiver
):
    sim.subscribe(receiver.url, ["channel.*.v1"], SECRET)

    dialled = admin.post("/_sim/calls", json={"agentId": "1003", "telephoneNumber": "+441614960321"})
    rung = admin.post(
        "/_sim/calls",
        json={"direction": "Inbound", "agentId": "1004", "telephoneNumber": "01614960555", "talkSeconds": 5},
    )
    live_through(sim, clock, 70)

    assert (dialled.status_code, rung.status_code) == (201, 201)
    assert sim.calls_placed == 0
    assert vcc.get(f"/v0/sandbox01/calls/{rung.json()['id']}").json()["result"]["reason"] == "Answered"
    by_call: dict[str, list[dict[str, Any]]] = {}
    for request in receiver.requests:
        event = verified(request)
        by_call.setdefault(event["data"]["callGuid"], []).append(event)
    outbound, inbound = by_call[dialled.json()["id"]], by_call[rung.json()["id"]]
    assert [(event["type"], event["data"]["party"]["role"]) for event in outbound] == ANSWERED_CALL
    assert outbound[0]["data"]["origin"] == "AgentPhone"
    assert outbound[0]["data"]["to"]["telephoneNumber"] == "+441614960321"
    assert [(event["type"], event["data"]["party"]["role"]) for event in inbound] == [
        ("channel.connected.v1", "Customer"),
        ("channel.alerted.v1", "Agent"),
        ("channel.connected.v1", "Agent"),
        ("channel.disconnected.v1", "Customer"),
        ("channel.disconnected.v1", "Agent"),
        ("channel.wrapstarted.v1", "Agent"),
    ]
    assert inbound[0]["data"]["direction"] == "Inbound"
    assert inbound[0]["data"]["origin"] == "Caller"
    assert inbound[0]["data"]["from"] == {"agentDisplayId": None, "telephoneNumber": "+441614960555"}
    assert inbound[0]["data"]["to"] == {"agentDisplayId": "1004", "telephoneNumber": "+442079460100"}
    assert inbound[-2]["data"]["disconnectedBy"] == "Customer"


@pytest.mark.parametrize(
    "body",
    [
        {"agentId": "9999", "telephoneNumber": "02072068888"},
        {"agentId": "1006", "telephoneNumber": "02072068888"},  # busy
        {"agentId": "1001", "telephoneNumber": "12"},
        {"agentId": "1001", "telephoneNumber": "02072068888", "direction": "Sideways"},
        {"agentId": "1001", "telephoneNumber": "02072068888", "direction": "Inbound", "outcome": "busy"},
        {"agentId": 1001, "telephoneNumber": "02072068888"},
    ],
)
def test_it_refuses_a_call_it_cannot_start(admin: httpx.Client, sim: Simulator, body):
    response = admin.post("/_sim/calls", json=body)

    assert response.status_code == 400
    assert response.json()["message"]
    assert sim.calls == {}


def test_deleting_a_subscription_drops_what_was_queued_for_it(admin: httpx.Client, sim: Simulator, receiver: Receiver):
    subscribed = sim.subscribe(receiver.url, ["agent.*.v1"], SECRET)
    sim.set_presence("1001", "Away")

    admin.delete(f"/webhooks/subscriptions/{subscribed.id}")

    assert sim.deliver_pending() == []
    assert receiver.requests == []


def test_a_served_simulator_delivers_on_its_own(receiver: Receiver):
    sim = Simulator(load_account(), clock=Clock(speed=60))
    sim.subscribe(receiver.url, ["channel.*.v1"], SECRET)
    with start_server(sim) as server, httpx.Client(base_url=server.base_url) as client:
        token = client.post(
            "/v0/oauth2/token", data={"grant_type": "client_credentials"}, auth=("sandbox01", "sandbox-api-token")
        ).json()["access_token"]
        client.post("/v0/sandbox01/calls/", json=CALL, headers={**V6, "Authorization": f"Bearer {token}"})

        receiver.wait_for(len(ANSWERED_CALL))  # 68 clock seconds: about 1.1 real seconds at speed 60

    assert [(event["type"], event["data"]["party"]["role"]) for event in map(verified, receiver.requests)] == (
        ANSWERED_CALL
    )


def test_a_call_to_another_agent_has_two_agent_channels_that_both_wrap_up(
    vcc: httpx.Client, sim: Simulator, clock: Clock, receiver: Receiver
):
    sim.subscribe(receiver.url, ["channel.*.v1"], SECRET)
    place(vcc, {"from": {"agentId": "1001"}, "to": {"agentId": "1002"}})

    live_through(sim, clock, 70)

    events = [verified(request) for request in receiver.requests]
    assert [(event["type"], event["data"]["party"]["agentDisplayId"]) for event in events] == [
        ("channel.alerted.v1", "1001"),
        ("channel.connected.v1", "1001"),
        ("channel.alerted.v1", "1002"),
        ("channel.connected.v1", "1002"),
        ("channel.disconnected.v1", "1002"),
        ("channel.disconnected.v1", "1001"),
        ("channel.wrapstarted.v1", "1001"),
        ("channel.wrapstarted.v1", "1002"),
    ]
    assert events[0]["data"]["to"] == {"agentDisplayId": "1002", "telephoneNumber": None}
    assert len({event["data"]["channelId"] for event in events}) == 2


def test_a_group_call_names_the_member_who_took_it(vcc: httpx.Client, sim: Simulator, receiver: Receiver):
    sim.subscribe(receiver.url, ["channel.alerted.v1"], SECRET)
    place(vcc, {"from": {"groups": ["030"]}, "to": {"telephoneNumber": "02072068888"}})

    sim.deliver_pending()

    (event,) = (verified(request) for request in receiver.requests)
    assert event["data"]["agentDisplayId"] == event["data"]["party"]["agentDisplayId"] == "1001"
    assert event["data"]["groups"] == ["030"]


def test_deliveries_can_go_through_an_in_process_transport(sim: Simulator):
    seen: list[httpx.Request] = []
    sim.webhook_transport = httpx.MockTransport(lambda request: seen.append(request) or httpx.Response(204))
    sim.subscribe("https://crm.example.com/vcc/events", ["agent.*.v1"], SECRET)

    sim.set_presence("1001", "LoggedOut")
    attempts = sim.deliver_pending()

    assert [str(request.url) for request in seen] == ["https://crm.example.com/vcc/events"]
    signed = {"Vonage-Signature": seen[0].headers["Vonage-Signature"]}
    assert verified(Received("/vcc/events", signed, seen[0].content))["data"]["presence"] == {
        "category": "LoggedOut",
        "description": "Logged Out",
    }
    assert [item["outcome"] for item in attempts] == ["delivered"]
