"""End to end over real sockets: vccsim (its own process) subscribed by `manage.py vcc_webhooks subscribe` delivers
signed CloudEvents to the running app (pytest-django's live server), and the events alone follow a click to its end;
no one asks VCC about the call."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from calls import tasks
from calls.models import Call, Contact, VccEvent
from tests._sim import click
from tests._vccsim_process import Sim, start_vccsim

pytestmark = pytest.mark.django_db(transaction=True)

KEY = b"e2e-webhook-secret-of-32-bytes!!"


def until(condition: Callable[[], object], what: str, deadline: float = 15.0) -> None:
    """Wait for something another process does (vccsim delivering), up to a deadline; never a fixed sleep."""
    give_up = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def vccsim_server() -> Iterator[str]:
    """A vccsim process of this test's own: its deliveries keep a connection open to the live server, which would
    hold up the browser tests' wait for the live server's threads after each test (tests/browser/conftest.py)."""
    yield from start_vccsim()


@pytest.fixture
def sim(vccsim_server, settings) -> Sim:
    settings.VCC_SANDBOX = False
    settings.VCC_TRANSPORT = ""
    settings.VCC_BASE_URL = settings.VCC_AUTH_URL = settings.VCC_GATEWAY_URL = vccsim_server
    settings.VCC_ACCOUNT_KEY = "sandbox01"
    settings.VCC_API_TOKEN = "sandbox-api-token"
    settings.VCC_CLIENT_ID, settings.VCC_CLIENT_SECRET, settings.VCC_SYNC_ENABLED = (
        "sandbox-client",
        "sandbox-secret",
        True,
    )
    settings.VCC_WEBHOOK_SECRETS = [base64.b64encode(KEY).decode()]
    settings.VCC_WEBHOOK_KEYS = [KEY]
    simulator = Sim(vccsim_server)
    simulator.post("reset")
    return simulator


@pytest.fixture
def demo(transactional_db):
    call_command("seed_demo", stdout=StringIO())  # the simulator's sample account (before leaving sandbox mode)


def test_vccsim_delivers_signed_events_to_the_running_app_and_they_follow_a_click(demo, sim, live_server, jobs):
    out = StringIO()
    call_command("vcc_webhooks", "subscribe", url=f"{live_server.url}/vcc/events/", stdout=out)
    assert "Subscribed" in out.getvalue()
    listed = StringIO()
    call_command("vcc_webhooks", "list", stdout=listed)
    assert f"{live_server.url}/vcc/events/" in listed.getvalue() and "1 subscription." in listed.getvalue()

    sim.post("next-outcome", {"outcome": "answered", "talkSeconds": 60})
    agent = Client()
    agent.login(username="agent", password="demo")
    phone = Contact.objects.filter(do_not_call=False, phones__is_primary=True).first().phones.get(is_primary=True)
    assert click(agent, phone).status_code == 200
    call = Call.objects.get()
    assert call.state == Call.State.LIVE

    until(lambda: VccEvent.objects.filter(type="channel.alerted.v1").exists(), "the agent's phone ringing")
    sim.advance(9)  # the agent answers, then the contact
    until(lambda: VccEvent.objects.filter(type="channel.connected.v1").count() >= 2, "both legs connected")
    tasks.process_vcc_events.func()  # as the worker's tick, every second
    call.refresh_from_db()
    assert call.connected_at is not None and call.last_event_at is not None

    sim.advance(61)  # they talk, then hang up
    # The hang-up, then the agent's wrap-up: vccsim sends each as a delivery of its own, in that order.
    until(lambda: VccEvent.objects.filter(type="channel.disconnected.v1").exists(), "the hang-up")
    until(lambda: VccEvent.objects.filter(type="channel.wrapstarted.v1").exists(), "the agent's wrap-up")
    tasks.process_vcc_events.func()  # as the worker's tick, every second

    call.refresh_from_db()
    assert call.state == Call.State.ENDED and call.outcome == Call.Outcome.ANSWERED
    assert call.events.filter(detail__endswith="(webhook)").count() >= 4
    assert not VccEvent.objects.filter(processed_at__isnull=True).exists()
    assert set(VccEvent.objects.values_list("call", flat=True)) == {call.pk}
    # vccsim sends v0 copies to a subscription that matches them (channel.*): vccweb asked for v1 alone.
    assert not VccEvent.objects.exclude(type__endswith=".v1").exists()
