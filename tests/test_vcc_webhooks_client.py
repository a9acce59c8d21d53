"""The Webhooks API client (calls/vcc/webhooks.py) against httpx.MockTransport: the token's scopes, the gateway's
versioned Accept, and the answers' shapes it reads (INFERRED, so read leniently)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import httpx
import pytest

from calls.vcc.webhooks import WebhooksClient
from tests import _gateway

AUTH, GATEWAY = _gateway.AUTH, _gateway.GATEWAY
SECRET = "a2V5LW9mLXRoaXJ0eS10d28tYnl0ZXMtZm9yLXZjYy0hIQ=="  # 32 bytes


class FakeWebhooks:
    """Serves the token endpoint itself and everything else from `replies`, in order (the last one again)."""

    def __init__(self, *replies: httpx.Response) -> None:
        self.replies = list(replies)
        self.token_requests: list[httpx.Request] = []
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/Auth/connect/token":
            self.token_requests.append(request)
            return httpx.Response(200, json={"access_token": "gw-1", "expires_in": 7200, "token_type": "Bearer"})
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return httpx.Response(reply.status_code, headers=reply.headers, content=reply.content)


gateway_settings = _gateway.gateway_settings  # fixture (autouse)


def client_for(fake: FakeWebhooks) -> WebhooksClient:
    return WebhooksClient(transport=httpx.MockTransport(fake))


def test_it_asks_for_admin_read_and_write_and_sends_the_gateways_versioned_accept():
    fake = FakeWebhooks(httpx.Response(200, json={"subscriptions": []}))

    assert client_for(fake).subscriptions() == []

    (token_request,) = fake.token_requests
    assert parse_qs(token_request.content.decode())["scope"] == ["admin:read admin:write"]
    (request,) = fake.requests
    assert (request.method, str(request.url)) == ("GET", f"{GATEWAY}/webhooks/subscriptions")
    assert request.headers["Accept"] == "application/vnd.newvoicemedia.v1+json"
    assert request.headers["Authorization"] == "Bearer gw-1"


def test_the_webhooks_api_version_is_a_setting(settings):
    settings.VCC_WEBHOOKS_API_VERSION = 2
    fake = FakeWebhooks(httpx.Response(200, json={"eventTypes": []}))

    client_for(fake).event_types()

    assert fake.requests[0].headers["Accept"] == "application/vnd.newvoicemedia.v2+json"


@pytest.mark.parametrize(
    "body",
    [
        [{"id": "s-1", "url": "https://crm.example.com/vcc/events/"}],
        {"subscriptions": [{"id": "s-1", "url": "https://crm.example.com/vcc/events/"}]},
        {"items": [{"id": "s-1", "url": "https://crm.example.com/vcc/events/"}], "meta": {"page": 1}},
    ],
    ids=["array", "subscriptions", "items"],
)
def test_it_reads_the_subscriptions_as_an_array_or_under_subscriptions_or_items(body):
    fake = FakeWebhooks(httpx.Response(200, json=body))

    assert client_for(fake).subscriptions() == [{"id": "s-1", "url": "https://crm.example.com/vcc/events/"}]


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(201, headers={"Location": f"{GATEWAY}/webhooks/subscriptions/s-9"}),
        httpx.Response(202, content=b"accepted"),
        httpx.Response(204),
    ],
    ids=["201 with a Location", "202 not json", "204"],
)
def test_a_subscription_answered_2xx_without_a_json_body_is_made(reply):
    fake = FakeWebhooks(httpx.Response(200, json={"subscriptions": []}), reply)

    made, new, _ = client_for(fake).ensure_subscribed(
        name="vccweb", url="https://crm.example.com/vcc/events/", secret=SECRET
    )

    assert new is True
    assert made["url"] == "https://crm.example.com/vcc/events/" and "secret" not in made
    assert made["id"] == ("s-9" if "Location" in reply.headers else None)
    post = fake.requests[-1]
    assert (post.method, post.headers["Accept"]) == ("POST", "application/vnd.newvoicemedia.v1+json")


def test_it_subscribes_to_the_v1_events_only():
    fake = FakeWebhooks(httpx.Response(201, json={"id": "s-1"}))

    client_for(fake).subscribe(name="vccweb", url="https://crm.example.com/vcc/events/", secret=SECRET)

    # `channel.*` would match each type's v0 too (vcc-api.md §10.3: every type comes in v0 and v1).
    assert json.loads(fake.requests[0].content)["events"] == [
        "channel.alerted.v1",
        "channel.connected.v1",
        "channel.disconnected.v1",
        "channel.wrapstarted.v1",
        "agent.presencechanged.v1",
    ]
