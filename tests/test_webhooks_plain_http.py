"""An http endpoint saved while DEBUG was on (the page allows it then) is checked again at each delivery: once DEBUG
is off it is not sent in clear, the attempt says to use https, the endpoint's page shows it, and it is disabled by the
usual rules."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from calls.models import WebhookAttempt, WebhookEndpoint
from calls.webhooks import delivery, outbox, safety
from tests._receiver import Receiver, serve

pytestmark = pytest.mark.django_db

USE_HTTPS = "Use an https:// URL"


@pytest.fixture
def receiver(settings, monkeypatch) -> Iterator[Receiver]:
    """The receiver stands for a public host: hooks.example.com resolves to it, and its address is not refused (so
    only the scheme can stop a delivery); the host is not in WEBHOOK_ALLOWED_HOSTS."""
    for receiver in serve(settings):
        settings.WEBHOOK_ALLOWED_HOSTS = []
        monkeypatch.setattr(safety, "resolve", lambda host, port: ["127.0.0.1"])
        monkeypatch.setattr(safety, "refusal", lambda address, allowed: "")
        yield receiver


def test_an_http_endpoint_saved_with_debug_on_is_refused_at_delivery_once_debug_is_off(
    admin_role_client, receiver, settings, monkeypatch
):
    now = timezone.now()
    monkeypatch.setattr(delivery, "clock", lambda: now)
    settings.DEBUG = True
    url = f"http://hooks.example.com:{receiver.port}/in"
    admin_role_client.post("/integrations/webhooks/new/", {"url": url, "event_types": ["contact.*"]})
    hook = WebhookEndpoint.objects.get()
    outbox.emit("contact.updated", "contact:1", {"id": 1})
    delivery.dispatch_all()
    async_to_sync(delivery.deliver)(hook.pk)
    assert len(receiver.received) == 1  # with DEBUG on, as the page allowed

    settings.DEBUG = False
    outbox.emit("contact.updated", "contact:1", {"id": 1, "name": "Ada"})
    delivery.dispatch_all()
    async_to_sync(delivery.deliver)(hook.pk)

    assert len(receiver.received) == 1  # nothing more sent in clear
    refused = WebhookAttempt.objects.latest("id")
    assert refused.status_code is None and refused.error.startswith(USE_HTTPS)
    page = admin_role_client.get(f"/integrations/webhooks/{hook.pk}/").content.decode()
    assert USE_HTTPS in page

    now += timedelta(hours=25)  # failing for a day: disabled, as any endpoint failing is, saying why
    async_to_sync(delivery.deliver)(hook.pk)
    hook.refresh_from_db()
    assert not hook.enabled and USE_HTTPS in hook.disabled_reason
    assert len(receiver.received) == 1
