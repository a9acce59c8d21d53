"""Every way VCC can fail a click, and the review fixes: group caller IDs, a browser leaving, a burst of clicks."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from django.db import connections

from calls import calling
from calls.models import Agent, Call, CallbackNumber
from tests import _click
from tests._sim import HTMX, agent_user, assert_refused, click, only_call, primary, shown
from vccsim.transport import sandbox_transport

pytestmark = pytest.mark.django_db

sim = _click.sim  # fixtures


class ExplodingTransport(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise RuntimeError("a bug below the VCC client")


def exploding_transport() -> ExplodingTransport:
    return ExplodingTransport()


# --- Every way VCC can fail -------------------------------------------------------------------------

MAY_HAVE_PLACED = "the call may have been placed"


@pytest.mark.parametrize(
    ("fault", "status", "message", "display", "placed"),
    [
        ({"status": 415}, 415, "Unsupported Media Type", "VCC refused the request format", 0),
        ({"status": 401}, 401, "Unauthorized", "VCC rejected vccweb's credentials", 0),
        ({"status": 429, "retry_after": 30}, 429, "Too Many Requests", "VCC is limiting requests", 0),
        ({"status": 500}, 500, "Internal Server Error", f"VCC had a problem (500), so {MAY_HAVE_PLACED}", 0),
        ({"status": 502}, 502, "Bad Gateway", f"VCC had a problem (502), so {MAY_HAVE_PLACED}", 0),
        ({"status": 503}, 503, "Service Unavailable", "VCC is having a problem; try again in a moment.", 0),
        ({"drop": "before"}, None, "Could not connect to VCC", "vccweb could not reach VCC; try again", 0),
        (
            {"drop": "after"},
            None,
            "The connection to VCC failed",
            f"The connection to VCC failed, so {MAY_HAVE_PLACED}",
            1,
        ),
    ],
    ids=["415", "401", "429", "500", "502", "503", "drop-before", "drop-after"],
)
def test_a_vcc_failure_ends_in_a_final_row_and_a_message(
    agent_client, contact, london, sim, fault, status, message, display, placed
):
    sim.set_fault("place_call", **fault)

    response = click(agent_client, primary(contact))

    assert response.status_code == 200
    call = only_call()
    # After a 5xx other than 503, or a connection dropped once VCC had the request, VCC may have placed the call:
    # that is "not confirmed", never "failed".
    may_have_placed = MAY_HAVE_PLACED in display
    assert call.state == (Call.State.UNCONFIRMED if may_have_placed else Call.State.FAILED)
    assert call.outcome == (Call.Outcome.NOT_CONFIRMED if may_have_placed else Call.Outcome.FAILED)
    assert call.error_status == status
    assert call.error_message.startswith(message)
    assert display in call.error_display
    assert call.responded_at is not None
    assert shown(response, call.error_display)
    assert f'data-call-state="{call.state}"' in response.content.decode()
    assert sim.calls_placed == placed


@pytest.mark.parametrize(
    ("body", "message"),
    [("truncated", "VCC answered 201 with malformed JSON"), ("empty", "VCC answered 201 without a body")],
)
def test_an_unreadable_201_is_followed_by_the_call_id_in_location(agent_client, contact, london, sim, body, message):
    sim.set_fault("place_call", body=body)

    response = click(agent_client, primary(contact))

    assert response.status_code == 200
    call = only_call()
    sim_call = sim.snapshot()["calls"][0]
    assert call.state == Call.State.LIVE
    assert call.vcc_call_id == sim_call["id"]
    assert call.error_status == 201
    assert call.error_message.startswith(message)
    assert "its reply could not be read; following it by its id" in call.error_display
    assert 'data-call-state="live"' in response.content.decode()
    assert sim.calls_placed == 1


def test_a_busy_agent_sees_vccs_reason(client, make_user, contact, london, sim):
    client.force_login(agent_user(make_user, "jordan", "1006", "Jordan Lee"))

    response = click(client, primary(contact))

    call = only_call()
    assert call.state == Call.State.FAILED
    assert call.error_status == 400
    assert call.error_message == "Unable to place call - Agent number busy"
    assert call.error_display == "Your phone is busy: finish your current call, then try again."
    assert shown(response, call.error_display)
    assert sim.calls_placed == 0


def test_a_401_is_tried_once_more_with_a_new_token_then_reported(agent_client, contact, london, sim):
    sim.set_fault("place_call", status=401)

    click(agent_client, primary(contact))

    assert len(sim.tokens) == 2
    assert only_call().error_status == 401
    assert sim.calls_placed == 0


def test_an_expired_token_is_refreshed_and_the_call_placed(agent_client, contact, london, sim):
    click(agent_client, primary(contact))  # caches a token
    sim.clock.advance(70)
    sim.set_fault("place_call", expire_tokens=True, count=1)

    click(agent_client, primary(contact))

    # The first call ended meanwhile: the second click asked VCC about it before ringing the same phone again.
    assert [c.state for c in Call.objects.order_by("pk")] == [Call.State.ENDED, Call.State.LIVE]
    assert sim.calls_placed == 2


def test_a_read_timeout_says_the_call_may_have_been_placed(agent_client, contact, london, sim, settings):
    settings.VCC_READ_TIMEOUT = 0.05
    sim.set_fault("place_call", latency_ms=2000)

    response = click(agent_client, primary(contact))

    call = only_call()
    assert call.state == Call.State.UNCONFIRMED
    assert call.outcome == Call.Outcome.NOT_CONFIRMED
    assert call.error_status is None
    assert call.error_message.startswith("VCC did not answer in time")
    assert shown(response, "Not confirmed: the call may have been placed")
    assert f"VCC did not answer in time, so {MAY_HAVE_PLACED}" in call.error_display
    assert shown(response, call.error_display)
    assert sim.calls_placed == 1  # VCC got it: which is why the message tells the person to check


def test_a_refused_connection_says_vcc_could_not_be_reached(agent_client, contact, london, sim, settings):
    settings.VCC_TRANSPORT = ""
    settings.VCC_BASE_URL = settings.VCC_AUTH_URL = "http://127.0.0.1:9"

    response = click(agent_client, primary(contact))

    call = only_call()
    assert call.state == Call.State.FAILED
    assert call.error_message.startswith("Could not connect to VCC")
    assert call.error_display == "vccweb could not reach VCC; try again in a moment."
    assert shown(response, call.error_display)


def test_an_unexpected_error_still_ends_in_a_failed_row(agent_client, contact, london, settings):
    settings.VCC_TRANSPORT = "tests.test_click_failures.exploding_transport"

    response = click(agent_client, primary(contact))

    call = only_call()
    assert response.status_code == 200
    assert call.state == Call.State.UNCONFIRMED  # we cannot tell whether it got as far as VCC
    assert call.error_message == "RuntimeError: a bug below the VCC client"
    assert call.error_display.startswith("Something went wrong on our side")
    assert shown(response, call.error_display)


def test_a_may_have_placed_error_says_so_once(agent_client, contact, london, sim):
    sim.set_fault("place_call", status=500)

    click(agent_client, primary(contact))

    assert only_call().error_display.count(MAY_HAVE_PLACED) == 1


# --- Review fixes ----------------------------------------------------------------------------------


def test_a_user_without_a_role_cannot_click_to_call(client, make_user, contact, london, sim):
    client.force_login(make_user("norole"))
    response = click(client, primary(contact))
    assert response.status_code == 403
    assert not Call.objects.exists()
    assert sim.calls_placed == 0


def test_a_group_call_refuses_a_caller_id_the_groups_may_not_present(supervisor_client, contact, london, sales, sim):
    chicago = CallbackNumber.objects.create(number="+13125550100", label="Chicago")
    chicago.allowed_agents.add(Agent.objects.get(display_id="1002"))  # the supervisor's own number only

    response = click(supervisor_client, primary(contact), via="group", groups=(sales.pk,), clid=chicago.pk)

    assert_refused(response, sim, "That caller ID is not one you may present")


def test_the_preview_says_a_group_call_refuses_a_caller_id_the_groups_may_not_present(
    supervisor_client, contact, london, sales, sim
):
    """The page's Caller ID menu lists the supervisor's own numbers; via groups the click refuses one of them that the
    groups may not present, and the preview says so rather than naming a caller ID the click will not send."""
    chicago = CallbackNumber.objects.create(number="+13125550100", label="Chicago")
    chicago.allowed_agents.add(Agent.objects.get(display_id="1002"))
    choices = {"groups": [sales.pk], "ticked": "on", "clid": chicago.pk}

    preview = supervisor_client.get(f"/contacts/{contact.pk}/dial-preview/", choices, headers=HTMX).content.decode()
    response = click(supervisor_client, primary(contact), via="group", groups=(sales.pk,), clid=chicago.pk)

    refused = "That caller ID is not one you may present via these groups: pick another, or Automatic."
    assert f"<strong>Call via group:</strong> {refused}" in preview
    assert "London main" not in preview.split("Call via group")[1]  # not the caller ID of a call that is not sent
    assert "Caller ID: <strong>Chicago</strong>" in preview  # from the supervisor's phone, it may be presented
    assert_refused(response, sim, refused)


def test_a_group_call_presents_the_caller_id_picked_for_it(supervisor_client, contact, london, sales, sim):
    chicago = CallbackNumber.objects.create(number="+13125550100", label="Chicago")

    click(supervisor_client, primary(contact), via="group", groups=(sales.pk,), clid=chicago.pk)

    call = only_call()
    assert call.presented_clid == chicago.number
    assert call.clid_reason == "you chose it for this call"


gate = asyncio.Event()  # a test holds VCC's answer back until it sets this
asked = asyncio.Event()


class HeldTransport(httpx.AsyncBaseTransport):
    """The sandbox, but a call request is answered only once the test opens the gate."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.lower().endswith("/calls/"):
            asked.set()
            await gate.wait()
        return await sandbox_transport().handle_async_request(request)


def held_transport() -> HeldTransport:
    return HeldTransport()


@pytest.mark.django_db(transaction=True)
async def test_a_browser_leaving_mid_click_still_gets_the_call_recorded(agent_user, contact, london, sim, settings):
    """The view is cancelled (tab closed) while VCC answers: VCC's call id must still reach the row."""
    from asgiref.sync import sync_to_async

    settings.VCC_TRANSPORT = "tests.test_click_failures.held_transport"
    asked.clear()

    phone = await sync_to_async(primary)(contact)
    gate.clear()
    view = asyncio.ensure_future(
        calling.place_number_call(
            user=agent_user,
            request_id=str(uuid.uuid4()),
            base_url="http://testserver/",
            contact_pk=contact.pk,
            phone_pk=phone.pk,
        )
    )
    await asked.wait()  # VCC has the request in hand
    view.cancel()
    with pytest.raises(asyncio.CancelledError):
        await view
    gate.set()  # VCC answers after the browser has gone
    await calling.finish_in_flight()  # the shielded request goes on and records VCC's answer
    call = await Call.objects.aget()
    # The ORM ran in asgiref's executor thread, whose connection would keep the test database from being dropped.
    await sync_to_async(connections.close_all)()
    assert call.state == Call.State.LIVE
    assert call.vcc_call_id
    assert sim.calls_placed == 1


async def test_a_burst_of_clicks_takes_turns_for_the_database(monkeypatch, settings):
    """At most CLICKS_STARTING_AT_ONCE clicks of a process do their work before VCC at once; the rest queue."""
    settings.CLICKS_STARTING_AT_ONCE = 2
    working: list[int] = []
    finish = asyncio.Event()

    def held(fn):
        async def run(**kwargs):
            working.append(len(working))
            await finish.wait()
            raise calling.Refused("stopped by the test")

        return run

    monkeypatch.setattr(calling.placing, "_db", held)
    clicks = [
        asyncio.ensure_future(
            calling.place_agent_call(user=None, request_id=str(uuid.uuid4()), base_url="http://t/", to_agent_pk=1)
        )
        for _ in range(5)
    ]
    for _ in range(10):  # let every click run as far as it can
        await asyncio.sleep(0)

    assert len(working) == 2  # two at work, three waiting their turn
    finish.set()
    outcomes = await asyncio.gather(*clicks, return_exceptions=True)
    assert len(working) == 5
    assert all(isinstance(o, calling.Refused) for o in outcomes)


def test_an_older_api_version_gets_only_the_fields_it_knows(agent_client, contact, london, sim, settings):
    settings.VCC_API_VERSION = 3
    response = click(agent_client, primary(contact))
    call = only_call()
    assert response.status_code == 200
    assert call.state == Call.State.LIVE
    assert set(call.request_body) == {"from", "to"}
    assert "consent" not in call.request_body["from"]
    # Kept as it was sent (none), not as the country's rule would have it, on the row and on the contact's page:
    not_sent = "not sent: VCC takes it from API version 6, VCC_API_VERSION is 3"
    assert (call.consent, call.consent_reason) == ("", not_sent)
    assert f"recording consent {not_sent}" in agent_client.get(f"/contacts/{contact.pk}/").content.decode()
