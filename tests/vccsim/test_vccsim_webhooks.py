"""vccsim: the Webhooks API, signed CloudEvents delivered to a real HTTP receiver, and the faults deliveries suffer."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import socket
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest

from vccsim import Clock, Simulator, load_account, start_server
from vccsim.clock import isoformat_ms
from vccsim.delivery import MAX_ATTEMPTS, RETRY_DELAYS
from vccsim.transport import SimTransport

KEY = bytes(range(32))
SECRET = base64.b64encode(KEY).decode()
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


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


class Receiver:
    """A webhook receiver on a real socket: records every POST and answers the statuses it is told, then 200."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.statuses: deque[int] = deque()
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.changed:
                    receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                    status = receiver.statuses.popleft() if receiver.statuses else 200
                    receiver.changed.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/vcc/events"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def events(self) -> list[dict[str, Any]]:
        return [request.event() for request in self.requests]

    def types(self) -> list[str]:
        return [event["type"] for event in self.events()]

    def wait_for(self, count: int, deadline: float = 10.0) -> None:
        """Wait until ``count`` requests arrived, failing after ``deadline`` seconds."""
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.requests) >= count, timeout=deadline), self.requests

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.stop()


@contextlib.contextmanager
def gateway_client(sim: Simulator, scope: str) -> Iterator[httpx.Client]:
    """A client holding a gateway token with ``scope``."""
    with httpx.Client(transport=SimTransport(sim), base_url="http://vccsim.test") as client:
        answer = client.post(
            "/Auth/connect/token",
            data={"grant_type": "client_credentials", "scope": scope},
            auth=("sandbox-client", "sandbox-secret"),
        )
        client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        yield client


@pytest.fixture
def admin(sim: Simulator) -> Iterator[httpx.Client]:
    with gateway_client(sim, "admin:write") as client:
        yield client


def subscription(url: str, events: list[str] | None = None) -> dict[str, Any]:
    """A valid subscription body."""
    events = ["channel.*", "agent.*"] if events is None else events
    return {"name": "vccweb", "url": url, "events": events, "enabled": True, "secret": SECRET}


def verified(request: Received, key: bytes = KEY) -> dict[str, Any]:
    """The event, once its Vonage-Signature checks out the way VCC's sample receiver checks it."""
    scheme, _, token = request.headers["Vonage-Signature"].partition(" ")
    assert scheme == "Bearer"
    claims = jwt.decode(token, key, algorithms=["HS256"], options={"require": ["iat", "payload_hash"]})
    assert hmac.compare_digest(claims["payload_hash"], hashlib.sha256(request.body).hexdigest())
    return request.event()


def signature_problem(request: Received) -> str | None:
    try:
        verified(request)
    except (KeyError, AssertionError, jwt.PyJWTError) as error:
        return type(error).__name__
    return None


def place(vcc: httpx.Client, body: dict[str, Any] = CALL) -> str:
    response = vcc.post("/v0/sandbox01/calls/", json=body, headers=V6)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def live_through(sim: Simulator, clock: Clock, seconds: float) -> None:
    """Let the clock run a second at a time, delivering what falls due, as a served simulator would."""
    for _ in range(int(seconds)):
        clock.advance(1)
        sim.deliver_pending()


# The Webhooks API ------------------------------------------------------------------------------------------------


def test_it_lists_the_event_types_to_a_reader(sim: Simulator):
    with gateway_client(sim, "admin:read") as reader:
        response = reader.get("/webhooks/event-types")

    assert response.status_code == 200
    types = {item["name"]: item["versions"] for item in response.json()["eventTypes"]}
    assert types["agent.presencechanged"] == ["v0", "v1"]
    assert {"channel.alerted", "channel.connected", "channel.disconnected", "channel.wrapstarted"} <= set(types)


def test_it_subscribes_lists_shows_and_deletes(admin: httpx.Client, receiver: Receiver):
    created = admin.post("/webhooks/subscriptions", json=subscription(receiver.url, ["channel.connected.v1"]))

    assert created.status_code == 201
    body = created.json()
    assert body["url"] == receiver.url
    assert body["events"] == ["channel.connected.v1"]
    assert body["enabled"] is True
    assert "secret" not in body
    assert created.headers["Location"] == f"http://vccsim.test/webhooks/subscriptions/{body['id']}"
    assert admin.get("/webhooks/subscriptions").json() == {"subscriptions": [body]}
    assert admin.get(f"/webhooks/subscriptions/{body['id']}").json() == body

    assert admin.delete(f"/webhooks/subscriptions/{body['id']}").status_code == 204
    assert admin.get("/webhooks/subscriptions").json() == {"subscriptions": []}
    assert admin.delete(f"/webhooks/subscriptions/{body['id']}").status_code == 404


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"url": "http://hooks.example.com/vcc"}, "https"),
        ({"url": "ftp://127.0.0.1/vcc"}, "https"),
        ({"url": "/vcc/events"}, "absolute"),
        ({"url": None}, "url is required"),
        ({"name": "  "}, "name is required"),
        ({"events": []}, "events is required"),
        ({"events": "channel.*"}, "events is required"),
        ({"events": ["channel.connected"]}, "Unknown event type 'channel.connected'"),
        ({"events": ["call.started.v1"]}, "Unknown event type"),
        ({"enabled": "yes"}, "enabled must be true or false"),
        ({"secret": "not base64!"}, "not base64"),
        ({"secret": base64.b64encode(b"x" * 31).decode()}, "decodes to 31"),
        ({"secret": None}, "secret is required"),
    ],
)
def test_it_refuses_a_bad_subscription_saying_why(admin: httpx.Client, sim: Simulator, fields, says):
    response = admin.post("/webhooks/subscriptions", json=subscription("https://hooks.example.com/vcc") | fields)

    assert response.status_code == 400
    assert says in response.json()["message"]
    assert sim.subscriptions == {}


@pytest.mark.parametrize("url", ["https://hooks.example.com/vcc", "http://localhost:8000/vcc", "http://[::1]:81/"])
def test_it_accepts_https_and_loopback_http(admin: httpx.Client, url):
    assert admin.post("/webhooks/subscriptions", json=subscription(url)).status_code == 201


def test_it_wants_admin_write_to_change_and_admin_read_to_look(sim: Simulator, vcc: httpx.Client):
    body = subscription("https://hooks.example.com/vcc")
    with gateway_client(sim, "admin:read") as reader, gateway_client(sim, "users:read") as users:
        assert reader.get("/webhooks/subscriptions").status_code == 200
        refused = reader.post("/webhooks/subscriptions", json=body)
        assert refused.status_code == 403
        assert "admin:write" in refused.json()["message"]
        assert users.get("/webhooks/subscriptions").status_code == 403
    assert vcc.get("/webhooks/subscriptions").status_code == 401  # a V0 token is not a gateway token
    assert httpx.Client(transport=SimTransport(sim)).get("http://vccsim.test/webhooks/event-types").status_code == 401


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
    sim.subscribe(receiver.url, ["channel.*"], SECRET)
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

    assert receiver.types() == ["channel.disconnected.v1", "channel.disconnected.v1"]  # v0 is never emitted
    assert {request.path for request in receiver.requests} == {"/vcc/events"}


def test_it_sends_nothing_that_happened_before_the_subscription(
    vcc: httpx.Client, sim: Simulator, clock: Clock, receiver: Receiver
):
    place(vcc)
    clock.advance(4)  # the agent has answered; the destination rings
    sim.subscribe(receiver.url, ["channel.*"], SECRET)

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
    sim.subscribe(receiver.url, ["channel.*"], SECRET)

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


# Faults ----------------------------------------------------------------------------------------------------------


def test_a_delay_holds_deliveries_on_the_clock(admin: httpx.Client, sim: Simulator, clock: Clock, receiver: Receiver):
    sim.subscribe(receiver.url, ["agent.*"], SECRET)
    admin.post("/_sim/webhooks/fault", json={"delaySeconds": 30, "count": 1})

    sim.set_presence("1001", "Away")
    clock.advance(29)
    sim.deliver_pending()
    assert receiver.requests == []

    clock.advance(1)
    sim.deliver_pending()
    assert receiver.types() == ["agent.presencechanged.v1"]


def test_a_duplicate_sends_the_same_event_twice(sim: Simulator, receiver: Receiver):
    sim.subscribe(receiver.url, ["agent.*"], SECRET)
    sim.set_webhook_fault(duplicate=True)

    sim.set_presence("1001", "Away")
    sim.deliver_pending()

    first, second = receiver.requests
    assert first.body == second.body
    assert verified(first)["id"] == verified(second)["id"]


def test_a_reorder_releases_the_held_events_last_first(sim: Simulator, receiver: Receiver):
    sim.subscribe(receiver.url, ["agent.*"], SECRET)
    sim.set_webhook_fault(reorder=True, count=3)

    for agent_id in ("1001", "1002", "1003"):
        sim.set_presence(agent_id, "Away")
        sim.deliver_pending()
    sim.set_presence("1004", "Away")
    sim.deliver_pending()

    assert [event["data"]["agentDisplayId"] for event in receiver.events()] == ["1003", "1002", "1001", "1004"]


def test_a_reorder_without_a_count_holds_until_cleared(sim: Simulator, receiver: Receiver):
    sim.subscribe(receiver.url, ["agent.*"], SECRET)
    sim.set_webhook_fault(reorder=True)
    sim.set_presence("1001", "Away")
    sim.set_presence("1002", "Away")
    sim.deliver_pending()
    assert receiver.requests == []

    sim.clear_webhook_fault()
    sim.deliver_pending()

    assert [event["data"]["agentDisplayId"] for event in receiver.events()] == ["1002", "1001"]


def test_a_drop_loses_the_event(sim: Simulator, receiver: Receiver):
    sim.subscribe(receiver.url, ["agent.*"], SECRET)
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
    sim.subscribe(receiver.url, ["agent.*"], SECRET)
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
    sim.subscribe(receiver.url, ["agent.*"], SECRET)
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
    sim.subscribe(f"http://127.0.0.1:{port}/vcc/events", ["agent.*"], SECRET)
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


def test_deleting_a_subscription_drops_what_was_queued_for_it(admin: httpx.Client, sim: Simulator, receiver: Receiver):
    subscribed = sim.subscribe(receiver.url, ["agent.*"], SECRET)
    sim.set_presence("1001", "Away")

    admin.delete(f"/webhooks/subscriptions/{subscribed.id}")

    assert sim.deliver_pending() == []
    assert receiver.requests == []


def test_a_served_simulator_delivers_on_its_own(receiver: Receiver):
    sim = Simulator(load_account(), clock=Clock(speed=60))
    sim.subscribe(receiver.url, ["channel.*"], SECRET)
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
    sim.subscribe(receiver.url, ["channel.*"], SECRET)
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
    sim.subscribe("https://crm.example.com/vcc/events", ["agent.*"], SECRET)

    sim.set_presence("1001", "LoggedOut")
    attempts = sim.deliver_pending()

    assert [str(request.url) for request in seen] == ["https://crm.example.com/vcc/events"]
    signed = {"Vonage-Signature": seen[0].headers["Vonage-Signature"]}
    assert verified(Received("/vcc/events", signed, seen[0].content))["data"]["presence"] == {
        "category": "LoggedOut",
        "description": "Logged Out",
    }
    assert [item["outcome"] for item in attempts] == ["delivered"]
