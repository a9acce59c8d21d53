"""vccsim: the Webhooks API, subscribing and listing, and who may change or look at subscriptions."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.vccsim import _webhooks
from tests.vccsim._webhooks import Receiver, gateway_client, subscription
from vccsim import Simulator
from vccsim.transport import SimTransport

admin, receiver = _webhooks.admin, _webhooks.receiver  # fixtures


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


@pytest.mark.parametrize(
    ("accept", "says"),
    [
        (None, "Version missing from Accept header!"),
        ("application/json", "Version missing from Accept header!"),
        ("application/vnd.newvoicemedia.v4+json", "Invalid api-version! Valid values: 1"),
    ],
)
def test_it_wants_the_gateways_versioned_accept_as_user_admin_does(admin: httpx.Client, accept, says):
    headers = {"Accept": accept} if accept else {}
    if accept is None:
        del admin.headers["Accept"]
    body = subscription("https://hooks.example.com/vcc")

    for response in (
        admin.get("/webhooks/event-types", headers=headers),
        admin.get("/webhooks/subscriptions", headers=headers),
        admin.post("/webhooks/subscriptions", json=body, headers=headers),
        admin.delete("/webhooks/subscriptions/nothing", headers=headers),
    ):
        assert response.status_code == 400
        assert response.json() == {"statusCode": 400, "error": "Bad Request", "message": says}
