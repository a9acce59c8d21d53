"""Where a delivery connects (calls/webhooks/addresses.py): a host resolving to several checked addresses is tried at
the next when connecting to one fails, never after the request may have been sent, and never at an unchecked one."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from asgiref.sync import async_to_sync

from calls.models import WebhookAttempt, WebhookEndpoint
from calls.webhooks import addresses, delivery, outbox, safety, signing
from tests._receiver import Receiver, serve

pytestmark = pytest.mark.django_db

HOST = "hooks.example.com"


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    yield from serve(settings)


@pytest.fixture
def resolved(monkeypatch, settings) -> list[str]:
    """What HOST resolves to (the test fills it in); HOST is allowed, so loopback addresses are not refused."""
    settings.WEBHOOK_ALLOWED_HOSTS = [HOST]
    found: list[str] = []
    monkeypatch.setattr(safety, "resolve", lambda host, port: list(found))
    return found


def deliver_one(receiver: Receiver) -> WebhookEndpoint:
    hook = WebhookEndpoint.objects.create(
        url=f"http://{HOST}:{receiver.port}/hooks", event_types=["*"], secret=signing.new_secret()
    )
    outbox.emit("contact.updated", "contact:1", {"id": 1})
    delivery.dispatch_all()
    async_to_sync(delivery.deliver)(hook.pk)
    return hook


def test_an_unreachable_first_address_falls_back_to_the_next(receiver, resolved):
    """IPv6 first, as most resolvers answer, on a host whose receiver listens on IPv4 only: refused (or unreachable,
    on a network without IPv6), then the IPv4 address gets it."""
    resolved += ["::1", "127.0.0.1"]

    hook = deliver_one(receiver)

    (got,) = receiver.received
    assert got.headers["host"] == f"{HOST}:{receiver.port}"
    assert list(hook.deliveries.values_list("status", "attempts")) == [("delivered", 1)]
    assert WebhookAttempt.objects.get().error == ""


def test_when_no_address_is_reachable_the_error_names_each(receiver, resolved):
    resolved += ["::1", "127.0.0.2"]  # neither is where the receiver listens

    hook = deliver_one(receiver)

    assert receiver.received == []
    error = WebhookAttempt.objects.get().error
    assert error.startswith("ConnectError: no address could be reached (::1: ") and "; 127.0.0.2: " in error
    assert list(hook.deliveries.values_list("status", "attempts")) == [("pending", 1)]


def test_at_most_a_few_addresses_are_tried(receiver, resolved):
    resolved += ["127.0.0.2"] * addresses.MAX_TRIED + ["127.0.0.1"]

    deliver_one(receiver)

    assert receiver.received == []
    assert WebhookAttempt.objects.get().error.count("127.0.0.2: ") == addresses.MAX_TRIED


def test_a_request_that_may_have_been_received_is_not_sent_to_the_next_address(receiver, resolved):
    """The connection closed after the request was sent: the receiver may have acted on it; trying the next address
    (here the same receiver) would deliver it twice."""
    resolved += ["127.0.0.1", "127.0.0.1"]
    receiver.answers.append(lambda handler: setattr(handler, "close_connection", True))  # no answer, just hang up

    deliver_one(receiver)

    assert len(receiver.received) == 1
    assert "RemoteProtocolError" in WebhookAttempt.objects.get().error


def test_an_error_answer_is_not_sent_to_the_next_address(receiver, resolved):
    resolved += ["127.0.0.1", "127.0.0.1"]
    receiver.answers.append(500)

    deliver_one(receiver)

    assert len(receiver.received) == 1
    assert WebhookAttempt.objects.get().status_code == 500


def test_an_unsafe_address_anywhere_in_the_answer_refuses_the_host_before_any_connection(receiver, resolved):
    resolved += ["::1", "169.254.169.254", "127.0.0.1"]

    deliver_one(receiver)

    assert receiver.received == []
    assert "a cloud metadata address" in WebhookAttempt.objects.get().error


def test_a_connect_timeout_moves_on_sooner_and_the_address_reached_goes_first_for_the_rest_of_the_pass(resolved):
    """Connecting to an address with another left to try waits CONNECT_TIMEOUT, not the whole attempt's; once one
    is reached, the pass's next deliveries go to it first."""
    resolved += ["2001:db8::1", "192.0.2.1"]
    tried: list[tuple[str, float | None]] = []

    def receive(request: httpx.Request) -> httpx.Response:
        tried.append((request.url.host, request.extensions["timeout"]["connect"]))
        if request.url.host == "2001:db8::1":
            raise httpx.ConnectTimeout("timed out", request=request)
        return httpx.Response(204)

    hook = WebhookEndpoint.objects.create(url=f"https://{HOST}/hooks", event_types=["*"], secret=signing.new_secret())
    outbox.emit("contact.updated", "contact:1", {"id": 1})
    outbox.emit("contact.updated", "contact:1", {"id": 1, "name": "Ada"})
    delivery.dispatch_all()
    async_to_sync(delivery.deliver)(hook.pk, transport=httpx.MockTransport(receive))

    assert tried == [
        ("2001:db8::1", addresses.CONNECT_TIMEOUT),
        ("192.0.2.1", delivery.TIMEOUT),
        ("192.0.2.1", addresses.CONNECT_TIMEOUT),
    ]
    assert list(hook.deliveries.values_list("status", flat=True)) == ["delivered", "delivered"]
