"""Helpers for the click-to-call view tests: the sandbox simulator on a manual clock, and request shortcuts."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta

import httpx
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from calls import calling
from calls.models import Agent, Call, Contact, ContactPhone
from calls.roles import AGENT
from calls.vcc import budget
from vccsim import Clock, Simulator
from vccsim.transport import sandbox_transport

HTMX = {"HX-Request": "true"}


def fresh_simulator(monkeypatch=None) -> Iterator[Simulator]:
    """The process-wide sandbox simulator, reset and on a clock that moves only when a test says so.

    With monkeypatch, the app's clock moves with it (see follow_sim_clock)."""
    transport = sandbox_transport()
    sim, real = transport.sim, (transport.sim.clock, transport.sleep, transport.asleep)
    sim.clock = Clock(manual=True)
    sim.waits = []  # the latencies the transport would have waited out: noted, not waited for
    transport.sleep = sim.waits.append

    async def no_wait(seconds: float) -> None:
        sim.waits.append(seconds)

    transport.asleep = no_wait
    sim.reset()
    if monkeypatch is not None:
        follow_sim_clock(sim, monkeypatch)
    yield sim
    sim.reset()
    sim.clock, transport.sleep, transport.asleep = real


def click(
    client: Client,
    phone: ContactPhone,
    *,
    via: str = "me",
    groups: tuple[int, ...] = (),
    clid: str | int = "",
    request_id: str | None = None,
    target: str | None = "dialer",
    **extra: str,
):
    """POST a call button of the contact page (target "dialer"), the contact list ("list-call") or no htmx (None)."""
    data = {
        "call": f"{via}:{phone.pk}",
        "groups": [str(pk) for pk in groups],
        "clid": str(clid),
        "request_id": request_id or str(uuid.uuid4()),
        **extra,
    }
    headers = {**HTMX, "HX-Target": target} if target else {}
    return client.post(f"/contacts/{phone.contact_id}/call/", data, headers=headers)


def call_agent(client: Client, agent: Agent, *, request_id: str | None = None, htmx: bool = True):
    data = {"request_id": request_id or str(uuid.uuid4())}
    return client.post(f"/agents/{agent.pk}/call/", data, headers={**HTMX, "HX-Target": "agent-call"} if htmx else {})


def follow_sim_clock(sim: Simulator, monkeypatch) -> None:
    """Move the app's clock with the simulator's: advancing one advances the other (the VCC request budget's too:
    a 429's back-off ends when the simulator's time says so)."""
    app_start, sim_start = timezone.now(), sim.clock.now()
    monkeypatch.setattr(
        calling.common, "wall_clock", lambda: app_start + timedelta(seconds=sim.clock.now() - sim_start)
    )
    budget_start = budget.wall_clock()
    monkeypatch.setattr(budget, "wall_clock", lambda: budget_start + sim.clock.now() - sim_start)


def poll(client: Client, call: Call):
    """GET the live panel as htmx does, due a look at VCC (as it is every couple of seconds)."""
    Call.objects.filter(pk=call.pk).update(next_check_at=None)
    return client.get(f"/calls/{call.pk}/panel/", headers={**HTMX, "HX-Target": f"call-panel-{call.pk}"})


def primary(contact: Contact) -> ContactPhone:
    return contact.phones.get(is_primary=True)


def place_call(client: Client, contact: Contact) -> Call:
    """Click Call on the contact's primary number and return the call, checked as placed."""
    click(client, primary(contact))
    call = Call.objects.get()
    assert call.state == Call.State.LIVE
    return call


def only_call() -> Call:
    """The one Call row the test made (fails loudly if there are more)."""
    return Call.objects.get()


def agent_user(make_user, username: str, display_id: str, name: str, role: str = AGENT):
    """A user with their own VCC agent; display_id must be one of the simulator account's agents."""
    first, last = name.split(" ", 1)
    user = make_user(username, role, first_name=first, last_name=last)
    Agent.objects.create(display_id=display_id, name=name, user=user)
    return user


def request_ids(html: str) -> list[str]:
    return re.findall(r'name="request_id" value="([0-9a-f-]{36})"', html)


def shown(response, text: str) -> bool:
    """Whether text appears in the response as a person reads it (templates escape quotes and ampersands)."""
    return escape(text) in response.content.decode()


def assert_refused(response, sim: Simulator, display: str) -> None:
    """The click was refused before VCC was asked: a 400 whose plain sentence says why, and no call row."""
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert display in response.content.decode()
    assert not Call.objects.exists()
    assert sim.calls_placed == 0


# --- Recording what is sent to VCC -------------------------------------------------------------------

SENT: list[httpx.Request] = []


class RecordingTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The sandbox transport, keeping every request so a test can read the exact bytes sent."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        SENT.append(request)
        return sandbox_transport().handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        SENT.append(request)
        return await sandbox_transport().handle_async_request(request)


def recording_transport() -> RecordingTransport:
    return RecordingTransport()


def recorded(settings) -> list[httpx.Request]:
    """Send VCC's requests through the recording transport from now on; the list they are kept in, emptied."""
    SENT.clear()
    settings.VCC_TRANSPORT = "tests._sim.recording_transport"
    return SENT
