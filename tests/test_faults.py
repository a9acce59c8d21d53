"""Faults survived: the click and the call panel against vccsim over a real socket, with each fault VCC can show.

Each click goes through the real view (POST /contacts/<pk>/call/ as htmx sends it) to the real VCC client and
vccsim's HTTP server. Whatever the fault, the click must end with a call row in a final state (failed, not
confirmed, or live when VCC placed it and named it) with the error stored, the person must read plain words (no
traceback, no raw JSON), no page may answer 500, and vccsim must show no call placed twice.

Nothing here waits on the wall clock beyond the short read timeout of the slow-reply test: the app's clock follows
vccsim's manual clock (tests/_sim.follow_sim_clock).
"""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.core.cache import cache

from calls import calling
from calls.models import Call
from calls.vcc.core import MAY_HAVE_PLACED
from tests._sim import HTMX, click, follow_sim_clock, only_call, poll, primary, shown
from vccsim import Clock, Simulator, load_account, start_server

pytestmark = pytest.mark.django_db

RAW_SIGNS = ("Traceback", '{"message"', "{&quot;message&quot;", "httpx.", "Exception", "Error:")


@pytest.fixture(scope="module")
def running_server():
    with start_server(Simulator(load_account(), clock=Clock(manual=True))) as running:
        yield running


def point_at(settings, url: str) -> None:
    """Talk to VCC at url over a socket, with the sample account's credentials, as a live install does."""
    settings.VCC_BASE_URL = settings.VCC_AUTH_URL = settings.VCC_GATEWAY_URL = url
    settings.VCC_TRANSPORT = ""
    settings.VCC_ACCOUNT_KEY = "sandbox01"
    settings.VCC_API_TOKEN = "sandbox-api-token"
    settings.VCC_API_VERSION = 6


@pytest.fixture
def sim(running_server, settings, monkeypatch) -> Simulator:
    sim = running_server.sim
    sim.reset()
    point_at(settings, running_server.base_url)
    follow_sim_clock(sim, monkeypatch)
    cache.clear()
    yield sim
    sim.reset()


def closed_port_url() -> str:
    """A loopback URL nothing listens on: connecting is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def assert_plain_words(response) -> None:
    """What the person reads is a sentence: no traceback, no exception name, no VCC JSON."""
    text = response.content.decode()
    for sign in RAW_SIGNS:
        assert sign not in text, f"{sign!r} shown to the person"


def assert_pages_answer(client, call: Call) -> None:
    """The contact page, the call panel (asking VCC again) and the call log still answer, without a 500."""
    for response in (
        client.get(f"/contacts/{call.contact_id}/"),
        poll(client, call),
        client.get(f"/calls/{call.pk}/panel/", headers=HTMX),
        client.get("/contacts/"),
    ):
        assert response.status_code == 200, response.content.decode()[:500]
        assert_plain_words(response)


def assert_final(call: Call, response) -> None:
    assert call.state in {Call.State.FAILED, Call.State.UNCONFIRMED, Call.State.LIVE}
    assert call.responded_at is not None
    assert f'data-call-state="{call.state}"' in response.content.decode()


# --- The click --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "state", "status", "message", "display", "placed"),
    [
        (
            {"status": 500},
            Call.State.UNCONFIRMED,
            500,
            "Internal Server Error",
            f"VCC had a problem (500), {MAY_HAVE_PLACED}",
            0,
        ),
        ({"status": 502}, Call.State.UNCONFIRMED, 502, "Bad Gateway", f"VCC had a problem (502), {MAY_HAVE_PLACED}", 0),
        (
            {"status": 503},
            Call.State.FAILED,
            503,
            "Service Unavailable",
            "VCC is having a problem; try again in a moment.",
            0,
        ),
        (
            {"status": 429, "retry_after": 30},
            Call.State.FAILED,
            429,
            "Too Many Requests",
            "VCC is limiting requests; try again in a moment.",
            0,
        ),
        (
            {"drop": "after"},
            Call.State.UNCONFIRMED,
            None,
            "The connection to VCC failed: RemoteProtocolError",
            f"The connection to VCC failed, {MAY_HAVE_PLACED}",
            1,
        ),
        (
            # Over a socket a connection closed before handling looks the same as after: the request was sent.
            {"drop": "before"},
            Call.State.UNCONFIRMED,
            None,
            "The connection to VCC failed: RemoteProtocolError",
            f"The connection to VCC failed, {MAY_HAVE_PLACED}",
            0,
        ),
    ],
    ids=["500", "502", "503", "429-retry-after", "dropped-after-placing", "dropped-before-handling"],
)
def test_a_vcc_fault_on_placing_ends_in_a_final_row_and_plain_words(
    agent_client, contact, london, sim, fault, state, status, message, display, placed
):
    sim.set_fault("place_call", **fault)

    response = click(agent_client, primary(contact))

    assert response.status_code == 200
    call = only_call()
    assert_final(call, response)
    assert call.state == state
    assert call.error_status == status
    assert call.error_message.startswith(message)
    assert call.error_display == display
    assert shown(response, display)
    assert_plain_words(response)
    assert sim.calls_placed == placed
    sim.clear_faults()
    assert_pages_answer(agent_client, call)
    assert sim.calls_placed == placed  # following never places anything


def test_the_fair_use_limit_fails_the_click_with_plain_words(agent_client, contact, london, sim):
    sim.set_fair_use(0)  # every request answers 429 with Retry-After, the token request first

    response = click(agent_client, primary(contact))

    call = only_call()
    assert_final(call, response)
    assert call.state == Call.State.FAILED
    assert call.error_status == 429
    assert shown(response, call.error_display)
    assert_plain_words(response)
    assert sim.calls_placed == 0
    sim.set_fair_use(None)
    assert_pages_answer(agent_client, call)


def test_a_refused_connection_fails_the_click(agent_client, contact, london, sim, settings):
    point_at(settings, closed_port_url())

    response = click(agent_client, primary(contact))

    assert response.status_code == 200
    call = only_call()
    assert_final(call, response)
    assert call.state == Call.State.FAILED
    assert call.error_message.startswith("Could not connect to VCC: ConnectError")
    assert call.error_display == "vccweb could not reach VCC; try again in a moment."
    assert shown(response, call.error_display)
    assert_plain_words(response)
    assert_pages_answer(agent_client, call)
    assert sim.calls_placed == 0


def test_a_reply_slower_than_the_timeout_is_not_confirmed(agent_client, contact, london, sim, settings):
    settings.VCC_READ_TIMEOUT = 0.2  # the only wall-clock wait in this file
    sim.set_fault("place_call", latency_ms=1000, count=1)

    response = click(agent_client, primary(contact))

    assert response.status_code == 200
    call = only_call()
    assert_final(call, response)
    assert call.state == Call.State.UNCONFIRMED
    assert call.error_message.startswith("VCC did not answer in time (ReadTimeout)")
    assert call.error_display == f"VCC did not answer in time, {MAY_HAVE_PLACED}"
    assert shown(response, call.error_display)
    assert_plain_words(response)
    assert sim.calls_placed == 1  # VCC got it and placed it: never sent again
    assert_pages_answer(agent_client, call)
    assert sim.calls_placed == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [("truncated", "VCC answered 201 with malformed JSON"), ("empty", "VCC answered 201 without a body")],
    ids=["malformed-json", "201-without-body"],
)
def test_an_unreadable_201_is_live_by_the_id_in_location(agent_client, contact, london, sim, body, message):
    sim.set_fault("place_call", body=body, count=1)

    response = click(agent_client, primary(contact))

    assert response.status_code == 200
    call = only_call()
    assert_final(call, response)
    assert call.state == Call.State.LIVE
    assert call.vcc_call_id == next(iter(sim.calls))
    assert call.error_status == 201
    assert call.error_message.startswith(message)
    assert_plain_words(response)
    assert sim.calls_placed == 1
    # Followed by that id: the panel learns the call's progress from VCC.
    sim.clock.advance(10)
    assert_pages_answer(agent_client, call)
    call.refresh_from_db()
    assert call.connected_at is not None
    assert sim.calls_placed == 1


def test_a_token_that_expires_mid_use_is_fetched_again_and_the_call_placed_once(agent_client, contact, london, sim):
    click(agent_client, primary(contact))  # fetches and caches a token
    sim.clock.advance(70)  # that call has ended
    sim.set_fault("place_call", expire_tokens=True, count=1)  # VCC forgets the token just before the next click

    response = click(agent_client, primary(contact))

    assert response.status_code == 200
    first, second = Call.objects.order_by("pk")
    assert_final(second, response)
    assert second.state == Call.State.LIVE
    assert second.vcc_call_id
    assert sim.calls_placed == 2  # one per click: the 401 was refused by VCC, so sending again was safe
    assert sum(t.kind == "v0" for t in sim.tokens.values()) == 2
    assert_pages_answer(agent_client, second)


def test_a_token_that_expires_while_following_is_fetched_again(agent_client, contact, london, sim):
    click(agent_client, primary(contact))
    call = only_call()
    sim.clock.advance(10)
    sim.set_fault("get_call", expire_tokens=True, count=1)

    response = poll(agent_client, call)

    assert response.status_code == 200
    call.refresh_from_db()
    assert call.state == Call.State.LIVE and call.connected_at is not None
    assert "Couldn&#x27;t get the latest status" not in response.content.decode()
    assert sim.calls_placed == 1


@pytest.mark.parametrize(
    ("fault", "status", "display"),
    [
        ({"status": 500}, 500, "VCC is having a problem; try again in a moment."),
        ({"status": 503}, 503, "VCC is having a problem; try again in a moment."),
        (
            {"status": 400},
            400,
            "VCC rejected vccweb's credentials; ask an admin to check the VCC API settings.",
        ),
        ({"drop": "before"}, None, "The connection to VCC failed; try again in a moment."),
        ({"body": "truncated"}, 200, "VCC sent a reply vccweb could not read; try again in a moment."),
    ],
    ids=["500", "503", "400-credentials", "dropped", "malformed-json"],
)
def test_a_failing_token_endpoint_fails_the_click_before_anything_is_placed(
    agent_client, contact, london, sim, fault, status, display
):
    sim.set_fault("v0_token", **fault)

    response = click(agent_client, primary(contact))

    assert response.status_code == 200
    call = only_call()
    assert_final(call, response)
    assert call.state == Call.State.FAILED  # no call request was sent without a token
    assert call.error_status == status
    assert call.error_display == display
    assert shown(response, display)
    assert_plain_words(response)
    assert sim.calls_placed == 0
    assert_pages_answer(agent_client, call)


def test_every_fault_in_turn_never_places_a_call_twice(agent_client, contact, london, sim):
    """One click per fault on the same number, each after the last call's end: one VCC call at most per click."""
    faults = [
        {"status": 500},
        {"status": 502},
        {"status": 503},
        {"status": 429, "retry_after": 30},
        {"drop": "after"},
        {"body": "truncated"},
        {"body": "empty"},
        {"expire_tokens": True},
        {},
    ]
    for fault in faults:
        if fault:
            sim.set_fault("place_call", count=1, **fault)
        response = click(agent_client, primary(contact))
        assert response.status_code == 200
        assert_plain_words(response)
        sim.clock.advance(100)  # the call, if placed, has ended and the agent is free; the token still holds
    calls = list(Call.objects.order_by("pk"))
    assert len(calls) == len(faults)
    assert all(c.responded_at is not None for c in calls)
    assert sim.calls_placed == 5  # drop-after, the two unreadable 201s, the new token, no fault
    assert len({c.vcc_call_id for c in calls if c.vcc_call_id}) == 4  # all but the dropped one are known by id


# --- Following ---------------------------------------------------------------------------------------------


@pytest.fixture
def live_call(agent_client, contact, london, sim) -> Call:
    click(agent_client, primary(contact))
    call = only_call()
    assert call.state == Call.State.LIVE
    return call


@pytest.mark.parametrize(
    ("fault", "backoff"),
    [
        ({"status": 500}, calling.FOLLOW_INTERVAL * 4),
        ({"status": 503}, calling.FOLLOW_INTERVAL * 4),
        ({"status": 429, "retry_after": 30}, timedelta(seconds=30)),
        ({"drop": "after"}, calling.FOLLOW_INTERVAL * 4),
        ({"body": "truncated"}, calling.FOLLOW_INTERVAL * 4),
    ],
    ids=["500", "503", "429-retry-after", "dropped", "malformed-json"],
)
def test_the_panel_keeps_a_call_live_and_backs_off_when_vcc_fails(agent_client, live_call, sim, fault, backoff):
    sim.set_fault("get_call", **fault)
    before = calling.common.wall_clock()

    response = poll(agent_client, live_call)

    assert response.status_code == 200
    assert_plain_words(response)
    assert shown(response, "Couldn't get the latest status from VCC")
    live_call.refresh_from_db()
    assert live_call.state == Call.State.LIVE
    assert live_call.next_check_at >= before + backoff
    # Polled again before that: VCC is not asked.
    asked = len(sim.calls)
    response = agent_client.get(f"/calls/{live_call.pk}/panel/", headers=HTMX)
    assert response.status_code == 200
    assert_pages_answer(agent_client, live_call)
    assert sim.calls_placed == 1 == asked


def test_the_panel_keeps_a_call_live_after_one_404(agent_client, live_call, sim):
    sim.set_fault("get_call", status=404, count=1)

    response = poll(agent_client, live_call)

    assert response.status_code == 200
    assert_plain_words(response)
    live_call.refresh_from_db()
    assert live_call.state == Call.State.LIVE
    assert live_call.missing_since is not None
    assert live_call.next_check_at > calling.common.wall_clock()
    assert_pages_answer(agent_client, live_call)


@pytest.mark.parametrize(
    ("fault", "retry_after"),
    [({"status": 500}, 2.0), ({"status": 429, "retry_after": 30}, 30.0), ({"status": 404}, None)],
    ids=["500", "429-retry-after", "404"],
)
def test_the_worker_keeps_calls_live_and_backs_off_when_vcc_fails(live_call, sim, fault, retry_after):
    sim.set_fault("get_call", **fault)
    Call.objects.filter(pk=live_call.pk).update(next_check_at=calling.common.wall_clock())

    result = async_to_sync(calling.follow_due)()

    assert result.asked == 1
    assert result.retry_after == retry_after
    live_call.refresh_from_db()
    assert live_call.state == Call.State.LIVE
    assert live_call.next_check_at > calling.common.wall_clock()
    # Not due again at once: the next round does not ask VCC.
    assert async_to_sync(calling.follow_due)().asked == 0
    assert sim.calls_placed == 1


def test_the_worker_ends_the_call_once_vcc_answers_again(live_call, sim):
    sim.set_fault("get_call", status=503, count=1)
    Call.objects.filter(pk=live_call.pk).update(next_check_at=calling.common.wall_clock())
    async_to_sync(calling.follow_due)()

    sim.clock.advance(3600)
    result = async_to_sync(calling.follow_due)()

    assert (result.asked, result.ended, result.errors) == (1, 1, 0)
    live_call.refresh_from_db()
    assert live_call.state == Call.State.ENDED
    assert sim.calls_placed == 1


# --- Races between two requests ------------------------------------------------------------------------------


def test_a_forced_look_at_a_call_another_request_just_ended_sees_it_ended(live_call, sim):
    """Two clicks (a double click sent to two processes) both find the agent's last call live; the first ends it.

    The second's forced look then cannot claim the call (it is no longer live) and must not report the stale,
    live copy it holds: the click would be refused with "You are on a call now" for a call that has ended.
    """
    stale = Call.objects.get(pk=live_call.pk)
    sim.clock.advance(3600)
    async_to_sync(calling.follow)(call=Call.objects.get(pk=live_call.pk), force=True)  # the first request
    assert Call.objects.get(pk=live_call.pk).state == Call.State.ENDED

    followed = async_to_sync(calling.follow)(call=stale, force=True)  # the second, holding the row it read before

    assert followed.call.state == Call.State.ENDED


def test_a_click_racing_another_that_ends_the_agents_last_call_is_not_refused(
    agent_client, live_call, contact, sim, monkeypatch
):
    """The agent's last call ends in VCC; another request records that while this click is looking at it."""
    sim.clock.advance(3600)
    real_claim = calling.following._claim

    def claim_after_the_other_request(call, *, now, force, flowing=None):
        Call.objects.filter(pk=call.pk).update(state=Call.State.ENDED)  # the other request got there first
        return real_claim(call, now=now, force=force, flowing=flowing)

    monkeypatch.setattr(calling.following, "_claim", claim_after_the_other_request)

    response = click(agent_client, primary(contact))

    assert response.status_code == 200, response.content.decode()
    assert Call.objects.count() == 2
    assert sim.calls_placed == 2
