"""The click on the contact page and contact list (call_contact), group availability, and the contact timeline."""

from __future__ import annotations

import asyncio
import html
import json
import re
import uuid
from datetime import timedelta

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.db import DatabaseError, IntegrityError, connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calls import calling, locks
from calls.models import Agent, AgentGroup, Call, CallbackNumber, Contact, ContactPhone
from calls.roles import SUPERVISOR
from tests._sim import (
    agent_user,
    assert_refused,
    click,
    fresh_simulator,
    only_call,
    primary,
    recorded,
    request_ids,
    shown,
)
from vccsim.transport import sandbox_transport

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


@pytest.fixture
def chicago(db) -> CallbackNumber:
    return CallbackNumber.objects.create(number="+13125550100", label="Chicago")


# --- Recording what is sent to VCC -------------------------------------------------------------------


class ExplodingTransport(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise RuntimeError("a bug below the VCC client")


def exploding_transport() -> ExplodingTransport:
    return ExplodingTransport()


@pytest.fixture
def sent(settings) -> list[httpx.Request]:
    return recorded(settings)


def sent_call_body(sent: list[httpx.Request]) -> dict:
    (request,) = [r for r in sent if r.method == "POST" and r.url.path.lower().endswith("/calls/")]
    return json.loads(request.content)


# --- Calling from my phone ------------------------------------------------------------------------------


def test_it_places_a_call_from_my_phone(agent_client, contact, london, sim, sent, settings):
    response = click(agent_client, primary(contact))

    assert response.status_code == 200
    call = only_call()
    assert call.state == Call.State.LIVE
    assert call.vcc_call_id in sim.calls
    assert sim.calls_placed == 1
    token = calling.regarding_token(call)
    assert call.regarding == f"http://testserver/contacts/{contact.pk}/?call={token}"
    assert call.request_body == {
        "from": {"agentId": "1001", "presentedCLID": "+442079460100", "consent": "OneParty"},
        "to": {"telephoneNumber": "+447400123456"},
        "regarding": {"reference": call.regarding},
        "application": settings.VCC_APPLICATION,
    }
    assert sent_call_body(sent) == call.request_body
    assert call.vcc_status == "Active"
    assert call.latency_ms is not None
    assert call.responded_at is not None
    html = response.content.decode()
    assert 'id="dialer"' not in html  # only the call slot: the page keeps the person's ticks and choices
    assert 'id="request-id"' in html and 'hx-swap-oob="true"' in html
    assert 'data-call-state="live"' in html
    assert f'hx-get="/calls/{call.pk}/panel/"' in html
    assert "calls-changed" in response.headers["HX-Trigger"]


def test_it_builds_the_regarding_link_from_site_url(agent_client, contact, london, settings):
    settings.SITE_URL = "https://crm.example.com/"

    click(agent_client, primary(contact))

    call = only_call()
    assert call.regarding.startswith(f"https://crm.example.com/contacts/{contact.pk}/?call=")
    assert call.request_body["regarding"]["reference"] == call.regarding


def test_a_plain_form_post_redirects_to_the_contact_page_with_the_call(agent_client, contact, london):
    response = click(agent_client, primary(contact), target=None)

    call = only_call()
    assert response.status_code == 302
    assert response["Location"] == f"/contacts/{contact.pk}/?call={calling.regarding_token(call)}"
    assert call.state == Call.State.LIVE


def test_the_regarding_link_opens_the_contact_page_with_the_calls_panel(agent_client, contact, london):
    click(agent_client, primary(contact))
    call = only_call()

    response = agent_client.get(call.regarding)

    assert response.status_code == 200
    assert f'id="call-panel-{call.pk}"' in response.content.decode()


def test_another_agent_opening_the_regarding_link_gets_no_panel(agent_client, other_agent_user, contact, london):
    click(agent_client, primary(contact))
    call = only_call()
    agent_client.force_login(other_agent_user)

    response = agent_client.get(call.regarding)

    assert response.status_code == 200
    assert f'id="call-panel-{call.pk}"' not in response.content.decode()
    assert shown(response, "That call link is not one you can open")


def test_a_damaged_regarding_link_gets_a_message(agent_client, contact):
    response = agent_client.get(f"/contacts/{contact.pk}/?call=12:forged")

    assert response.status_code == 200
    assert shown(response, "That call link is not one you can open")
    assert "call-panel-" not in response.content.decode()


# --- Calling via groups -----------------------------------------------------------------------------


@pytest.mark.parametrize("display_ids", [["030"], ["030", "200"]])
def test_it_places_a_group_call(supervisor_client, contact, london, sales, support, sim, display_ids):
    groups = [AgentGroup.objects.get(display_id=d) for d in display_ids]

    response = click(supervisor_client, primary(contact), via="group", groups=tuple(g.pk for g in groups))

    assert response.status_code == 200
    call = only_call()
    assert call.state == Call.State.LIVE
    assert call.from_agent is None
    assert set(call.from_groups.all()) == set(groups)
    assert call.request_body["from"] == {"groups": display_ids, "presentedCLID": london.number, "consent": "OneParty"}
    assert sim.calls_placed == 1
    assert sim.calls[call.vcc_call_id].agent_id == "1001"  # the first ready member of Sales UK
    assert 'data-call-state="live"' in response.content.decode()


def test_an_agent_may_not_call_via_groups(agent_client, contact, london, sales, sim):
    response = click(agent_client, primary(contact), via="group", groups=(sales.pk,))

    assert response.status_code == 403
    assert not Call.objects.exists()
    assert sim.calls_placed == 0


def test_a_group_call_without_a_ticked_group_is_refused(supervisor_client, contact, london, sales, sim):
    assert_refused(click(supervisor_client, primary(contact), via="group"), sim, "Tick at least one group")


def test_a_group_with_nobody_ready_shows_vccs_message(supervisor_client, contact, london, sim):
    out_of_hours = AgentGroup.objects.create(display_id="400", name="Out of hours")

    response = click(supervisor_client, primary(contact), via="group", groups=(out_of_hours.pk,))

    call = only_call()
    assert call.state == Call.State.FAILED
    assert call.error_message == "Unable to place call to Agent. Please try again"
    assert call.error_status == 400
    assert call.error_display == "VCC could not connect the call to an agent; try again in a moment."
    assert shown(response, call.error_display)
    assert shown(response, call.error_message)
    assert sim.calls_placed == 0


# --- Choosing the presented CLID ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent_default", "choose", "expected", "reason"),
    [
        (False, False, "+442079460100", "the account default"),
        (True, False, "+13125550100", "your default caller ID"),
        (False, True, "+13125550100", "you chose it for this call"),
    ],
)
def test_it_presents_the_most_specific_clid(
    agent_client, agent_user, contact, london, chicago, sim, agent_default, choose, expected, reason
):
    if agent_default:
        Agent.objects.filter(user=agent_user).update(default_callback_number=chicago)

    click(agent_client, primary(contact), clid=chicago.pk if choose else "")

    call = only_call()
    assert call.state == Call.State.LIVE
    assert call.presented_clid == expected
    assert call.callback_number.number == expected
    assert call.clid_reason == reason
    assert call.request_body["from"]["presentedCLID"] == expected
    assert sim.calls[call.vcc_call_id].from_party["presentedClid"] == expected


def test_a_group_call_presents_the_groups_default_clid(supervisor_client, contact, london, chicago, sales, sim):
    sales.default_callback_number = chicago
    sales.save()

    click(supervisor_client, primary(contact), via="group", groups=(sales.pk,))

    call = only_call()
    assert call.presented_clid == chicago.number
    assert call.clid_reason == "default of group Sales UK"
    assert call.request_body["from"]["presentedCLID"] == chicago.number


def test_it_refuses_a_restricted_clid_chosen_by_someone_outside_it(agent_client, contact, london, manchester, sim):
    assert_refused(
        click(agent_client, primary(contact), clid=manchester.pk),
        sim,
        "That caller ID is not one you may present",
    )


def test_the_contact_page_never_offers_a_restricted_clid(agent_client, contact, london, chicago, manchester):
    html = agent_client.get(f"/contacts/{contact.pk}/").content.decode()

    assert "Chicago" in html
    assert "Manchester support" not in html


# --- Recording consent ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "override", "consent", "reason"),
    [
        ("+447400123456", "TwoParty", "TwoParty", "set on this contact"),
        ("+447400123456", "", "OneParty", "default for GB numbers"),
        ("+13125550123", "", "TwoParty", "default for US numbers"),
        ("+81312345678", "", "Unknown", "no default for JP numbers"),
    ],
)
def test_it_sends_the_recording_consent(agent_client, london, sim, number, override, consent, reason):
    person = Contact.objects.create(name="Ada Lovelace", consent_override=override)
    phone = ContactPhone.objects.create(contact=person, number=number, is_primary=True)

    click(agent_client, phone)

    call = only_call()
    assert call.state == Call.State.LIVE
    assert call.consent == consent
    assert call.consent_reason == reason
    assert call.request_body["from"]["consent"] == consent
    assert sim.calls[call.vcc_call_id].from_party["consent"] == consent


# --- Do not call ----------------------------------------------------------------------------------------


@pytest.fixture
def dnc_phone(contact) -> ContactPhone:
    phone = primary(contact)
    phone.do_not_call = True
    phone.save()
    return phone


def test_an_agent_cannot_call_a_do_not_call_number(agent_client, dnc_phone, london, sim):
    response = click(agent_client, dnc_phone, **{f"dnc_reason_{dnc_phone.pk}": "I really want to"})

    assert_refused(response, sim, "This number is marked do not call. Only a supervisor can call it")


def test_an_agent_cannot_call_a_do_not_call_contact(agent_client, contact, london, sim):
    Contact.objects.filter(pk=contact.pk).update(do_not_call=True)

    assert_refused(click(agent_client, primary(contact)), sim, "This contact is marked do not call.")


@pytest.mark.parametrize("reason", ["", "  no "])
def test_a_supervisor_must_say_why_to_call_a_do_not_call_number(supervisor_client, dnc_phone, london, sim, reason):
    response = click(supervisor_client, dnc_phone, **{f"dnc_reason_{dnc_phone.pk}": reason})

    assert_refused(response, sim, "To call anyway, say why")


def test_a_supervisor_may_call_a_do_not_call_number_giving_a_reason(supervisor_client, dnc_phone, london, sim):
    reason = "They asked us to call back about their complaint"

    click(supervisor_client, dnc_phone, **{f"dnc_reason_{dnc_phone.pk}": reason})

    call = only_call()
    assert call.state == Call.State.LIVE
    assert call.dnc_override_reason == reason
    assert call.request_body["from"]["agentId"] == "1002"
    assert sim.calls_placed == 1


# --- Who may click, and how --------------------------------------------------------------------------


def test_a_user_without_an_agent_is_told_why(client, make_user, contact, london, sim):
    client.force_login(make_user("noagent", SUPERVISOR))

    assert_refused(click(client, primary(contact)), sim, "You have no active VCC agent")


def test_an_inactive_agent_is_told_why(agent_client, agent_user, contact, london, sim):
    Agent.objects.filter(user=agent_user).update(is_active=False)

    assert_refused(click(agent_client, primary(contact)), sim, "You have no active VCC agent")


def test_it_sends_anonymous_users_to_login(client, contact, sim):
    response = click(client, primary(contact))

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")
    assert not Call.objects.exists()


def test_it_rejects_get(agent_client, contact):
    assert agent_client.get(f"/contacts/{contact.pk}/call/").status_code == 405


@pytest.mark.parametrize("request_id", ["", "not-a-uuid"])
def test_it_rejects_a_missing_or_invalid_request_id(agent_client, contact, sim, request_id):
    phone = primary(contact)
    response = agent_client.post(
        f"/contacts/{contact.pk}/call/",
        {"call": f"me:{phone.pk}", "request_id": request_id},
        headers={"HX-Request": "true", "HX-Target": "dialer"},
    )

    assert response.status_code == 400
    assert not Call.objects.exists()
    assert sim.calls_placed == 0


@pytest.mark.parametrize("choice", ["", "me:", "fax:1", "me:abc"])
def test_it_rejects_a_malformed_choice(agent_client, contact, choice):
    response = agent_client.post(f"/contacts/{contact.pk}/call/", {"call": choice, "request_id": str(uuid.uuid4())})

    assert response.status_code == 400
    assert not Call.objects.exists()


def test_it_rejects_another_contacts_number(agent_client, contact, sim):
    other = Contact.objects.create(name="Someone else")

    response = agent_client.post(
        f"/contacts/{other.pk}/call/",
        {"call": f"me:{primary(contact).pk}", "request_id": str(uuid.uuid4())},
    )

    assert response.status_code == 404
    assert not Call.objects.exists()


def test_it_refuses_someone_elses_request_id(agent_client, other_agent_user, contact, london, sim):
    request_id = str(uuid.uuid4())
    click(agent_client, primary(contact), request_id=request_id)
    agent_client.force_login(other_agent_user)

    response = click(agent_client, primary(contact), request_id=request_id)

    assert response.status_code < 500
    assert shown(response, "That click belongs to someone else")
    assert Call.objects.get().created_by.username == "alex"
    assert sim.calls_placed == 1


# --- Double submission and numbers already on a call -----------------------------------------------


@pytest.mark.parametrize("target", ["dialer", "list-call", None])
def test_the_same_click_twice_places_one_call(agent_client, contact, london, sim, target):
    request_id = str(uuid.uuid4())

    first = click(agent_client, primary(contact), request_id=request_id, target=target)
    second = click(agent_client, primary(contact), request_id=request_id, target=target)

    call = only_call()
    assert call.state == Call.State.LIVE
    assert sim.calls_placed == 1
    assert first.status_code == second.status_code
    if target:
        assert f'id="call-panel-{call.pk}"' in second.content.decode()
        assert 'data-call-state="live"' in second.content.decode()


def test_a_conflict_on_writing_the_row_that_is_not_the_same_click_again_is_raised_not_hidden(
    agent_client, contact, london, sim, monkeypatch
):
    def conflict(self):
        raise IntegrityError("insert or update on table violates a foreign key constraint")

    monkeypatch.setattr(Call, "insert", conflict)

    with pytest.raises(IntegrityError):
        click(agent_client, primary(contact))

    assert not Call.objects.exists()
    assert sim.calls_placed == 0


def test_a_second_person_cannot_call_a_number_on_a_live_call(agent_client, other_agent_user, contact, london, sim):
    click(agent_client, primary(contact))
    agent_client.force_login(other_agent_user)

    response = click(agent_client, primary(contact))

    assert response.status_code == 400
    assert response.content.decode() == "Alex Morgan is on a call with this number now. Try again when it ends."
    assert not Call.objects.filter(created_by=other_agent_user).exists()
    assert sim.calls_placed == 1


def test_a_second_person_can_call_once_the_first_call_has_ended(
    agent_client, agent_user, other_agent_user, contact, london, sim
):
    click(agent_client, primary(contact))
    agent_client.force_login(other_agent_user)
    sim.clock.advance(70)  # 3 s ringing the agent, 5 s the number, 60 s talking

    click(agent_client, primary(contact))

    assert Call.objects.get(created_by=agent_user).state == Call.State.ENDED
    second = Call.objects.get(created_by=other_agent_user)
    assert second.state == Call.State.LIVE
    assert second.request_body["from"]["agentId"] == "1003"
    assert sim.calls_placed == 2


def test_a_live_call_whose_caller_was_deleted_still_holds_the_number(
    agent_client, agent_user, other_agent_user, contact, london, sim
):
    click(agent_client, primary(contact))
    agent_user.delete()
    agent_client.force_login(other_agent_user)

    response = click(agent_client, primary(contact))

    assert response.status_code == 400
    assert response.content.decode() == "Someone is on a call with this number now. Try again when it ends."
    assert not Call.objects.filter(created_by=other_agent_user).exists()
    assert sim.calls_placed == 1


def test_a_number_being_dialled_by_another_click_is_refused(agent_client, contact, london, sim):
    locks.acquire_dial_lock(primary(contact).number, owner=str(uuid.uuid4()))  # another click is asking VCC now

    assert_refused(click(agent_client, primary(contact)), sim, "Someone else is dialling this number right now")


def test_the_number_is_free_again_after_a_click(agent_client, contact, london, sim):
    click(agent_client, primary(contact))

    assert cache.get(f"dialling:{primary(contact).number}") is None


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
    settings.VCC_TRANSPORT = "tests.test_click.exploding_transport"

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


# --- Group availability ---------------------------------------------------------------------------


def test_it_counts_ready_agents_per_group(supervisor_client, sales, sim):
    out_of_hours = AgentGroup.objects.create(display_id="400", name="Out of hours")

    response = supervisor_client.get(f"/readiness/?ticked=on&groups={sales.pk}", headers={"HX-Request": "true"})

    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="ready-group-{sales.pk}" hx-swap-oob="true" class="badge ok">3 ready' in html  # 1001, 1003, 1004
    assert f'id="ready-group-{out_of_hours.pk}" hx-swap-oob="true" class="badge danger">nobody ready' in html
    assert "Nobody is ready in the ticked groups" not in html


def test_it_reuses_the_counts_for_a_few_seconds(supervisor_client, sales, sim):
    supervisor_client.get("/readiness/")
    sim.set_availability("1004", "away")

    assert "3 ready" in supervisor_client.get("/readiness/").content.decode()
    cache.delete(f"calls:ready:{sales.display_id}")
    assert "2 ready" in supervisor_client.get("/readiness/").content.decode()


def test_it_warns_before_the_click_when_nobody_is_ready_in_the_ticked_groups(supervisor_client, sim):
    out_of_hours = AgentGroup.objects.create(display_id="400", name="Out of hours")

    html = supervisor_client.get(f"/readiness/?ticked=on&groups={out_of_hours.pk}").content.decode()

    assert "Nobody is ready in the ticked groups right now" in html


def test_it_warns_before_the_click_when_my_agent_is_not_ready(agent_client, contact, sim):
    sim.set_availability("1001", "away")

    html = agent_client.get("/readiness/").content.decode()

    assert "VCC does not have you ready for a phone call right now" in html
    assert "You can still call." in html


def test_the_contact_list_asks_for_the_callers_readiness_alone(supervisor_client, contact, london, sales, sim):
    page = supervisor_client.get("/contacts/").content.decode()
    assert 'hx-get="/readiness/?only_me=1"' in page
    html = supervisor_client.get("/readiness/", {"only_me": "1"}).content.decode()
    assert 'id="me-ready"' in html
    assert "ready-group-" not in html and "groups-ready" not in html  # the list has no group badges


def test_a_ready_agent_gets_no_warning(agent_client, contact, sim):
    assert "does not have you ready" not in agent_client.get("/readiness/").content.decode()


@pytest.mark.parametrize("query", ["groups=%C2%B2", "groups=1&groups=x", "clid=%C2%B2"])
def test_readiness_and_preview_answer_400_to_malformed_choices(supervisor_client, contact, query):
    assert supervisor_client.get(f"/readiness/?{query}").status_code == 400
    assert supervisor_client.get(f"/contacts/{contact.pk}/dial-preview/?{query}").status_code == 400


def test_availability_says_when_vcc_cannot_be_asked(supervisor_client, sales, sim):
    sim.set_fault("agents", status=503)

    response = supervisor_client.get("/readiness/")

    assert response.status_code == 200
    assert "ask VCC who is ready: VCC is having a problem" in response.content.decode()
    assert "unknown" in response.content.decode()


def test_an_agent_is_not_told_group_counts(agent_client, sales, sim):
    html = agent_client.get("/readiness/").content.decode()

    assert "Sales UK" not in html


def test_readiness_needs_login_and_get(client, supervisor_client, sales):
    assert supervisor_client.post("/readiness/").status_code == 405
    supervisor_client.logout()
    assert client.get("/readiness/")["Location"].startswith("/login/?next=")


# --- The contact list's call button --------------------------------------------------------------


def test_the_list_call_button_shows_the_panel_and_a_fresh_button(agent_client, contact, london, sim):
    request_id = str(uuid.uuid4())

    response = click(agent_client, primary(contact), request_id=request_id, target="list-call")

    call = only_call()
    assert call.state == Call.State.LIVE
    html = response.content.decode()
    assert 'id="dialer"' not in html
    assert f'id="call-panel-{call.pk}"' in html
    assert f'id="call-button-{contact.pk}"' in html
    assert 'hx-swap-oob="true"' in html
    assert f"?call={calling.regarding_token(call)}" in html
    assert 'form="list-call-form"' in html  # the fresh button sends the page's one form, with an id made per click
    assert request_ids(html) == []


def test_without_javascript_a_list_call_button_sends_the_pages_one_form(contact, agent_user, london, sim):
    other = Contact.objects.create(name="Ada Lovelace")
    ContactPhone.objects.create(contact=other, number="+447911123456", is_primary=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent_user)
    page = client.get("/contacts/").content.decode()
    (form,) = re.findall(r'<form id="list-call-form" method="post" hidden data-id-per-click>.*?</form>', page)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    assert not request_ids(form) and page.count('name="csrfmiddlewaretoken"') == 2  # the menu's log-out, and this

    def button(of):
        found = re.search(
            rf'<button form="list-call-form" formaction="([^"]+)"[^>]* value="(me:{primary(of).pk})"', page
        )
        return html.unescape(found.group(1)), {"csrfmiddlewaretoken": token, "call": found.group(2)}

    address, sent = button(contact)
    response = client.post(address, sent)

    assert response.status_code == 302 and response["Location"].startswith(f"/contacts/{contact.pk}/?call=")
    assert str(only_call().request_id) == address.split("request_id=")[1]  # the button's own id
    client.post(address, sent)  # the same button sent again (reloaded, or a double click): one call
    assert Call.objects.count() == 1
    # Back to the same page (the browser's copy), and another contact's button: another call, not the first again.
    Call.objects.update(state=Call.State.ENDED, ended_at=timezone.now())
    address, sent = button(other)
    response = client.post(address, sent)
    assert response["Location"].startswith(f"/contacts/{other.pk}/?call=") and Call.objects.count() == 2


def test_the_list_call_button_shows_a_refusal(agent_client, contact, london, sim):
    Contact.objects.filter(pk=contact.pk).update(do_not_call=True)

    response = click(agent_client, primary(contact), target="list-call")

    assert_refused(response, sim, "This contact is marked do not call")


# --- The contact timeline -------------------------------------------------------------------------


def logged_call(contact: Contact, user, *, minutes_ago: int, **fields) -> Call:
    call = Call.objects.create(
        contact=contact,
        phone=primary(contact),
        to_number=primary(contact).number,
        created_by=user,
        from_agent=user.agent,
        **fields,
    )
    Call.objects.filter(pk=call.pk).update(requested_at=timezone.now() - timedelta(minutes=minutes_ago))
    return call


def timeline(client, contact) -> str:
    response = client.get(f"/contacts/{contact.pk}/", headers={"HX-Request": "true", "HX-Target": "timeline"})
    assert response.status_code == 200
    return response.content.decode()


def test_the_timeline_lists_calls_newest_first_with_outcome_and_notes(supervisor_client, agent_user, contact):
    logged_call(
        contact,
        agent_user,
        minutes_ago=30,
        state=Call.State.ENDED,
        result_code="Success",
        duration_seconds=42,
        disposition_code="Interested",
        notes="Wants a quote for six chairs",
    )
    logged_call(
        contact,
        agent_user,
        minutes_ago=5,
        state=Call.State.FAILED,
        error_display="Your phone is busy: finish your current call, then try again.",
    )

    html = timeline(supervisor_client, contact)

    assert html.lstrip().startswith('<section class="card" id="timeline"')
    assert html.index("Your phone is busy") < html.index("Wants a quote for six chairs")
    assert "Alex Morgan" in html
    assert "from agent 1001" in html
    assert "Interested" in html
    assert "42 s" in html
    assert html.count('class="timeline-item') == 2


def test_the_timeline_shows_group_calls_and_do_not_call_reasons(supervisor_client, supervisor_user, sales, contact):
    call = Call.objects.create(
        contact=contact,
        to_number=primary(contact).number,
        created_by=supervisor_user,
        state=Call.State.LIVE,
        dnc_override_reason="Asked us to call back",
    )
    call.from_groups.set([sales])

    html = timeline(supervisor_client, contact)

    assert "via Sales UK" in html
    assert "Called despite do-not-call: Asked us to call back" in html


def test_the_timeline_says_a_call_may_have_been_placed(supervisor_client, agent_user, contact):
    logged_call(contact, agent_user, minutes_ago=1, state=Call.State.UNCONFIRMED, outcome=Call.Outcome.NOT_CONFIRMED)
    html = timeline(supervisor_client, contact)
    assert "Not confirmed: may have been placed" in html
    assert 'class="badge outcome warn"' in html  # not the red of a failed call


def test_an_agent_sees_every_call_to_the_contact_but_opens_only_their_own(
    agent_client, agent_user, other_agent_user, contact
):
    mine = logged_call(contact, agent_user, minutes_ago=1, notes="mine", state=Call.State.ENDED)
    theirs = logged_call(contact, other_agent_user, minutes_ago=2, notes="Tom called yesterday", state=Call.State.ENDED)

    html = timeline(agent_client, contact)

    assert "mine" in html
    assert "Tom called yesterday" in html  # so two agents do not call the same person twice
    assert f"?call={calling.regarding_token(mine)}" in html
    assert f"?call={calling.regarding_token(theirs)}" not in html


def test_older_calls_are_a_click_away_page_after_page(agent_client, agent_user, other_agent_user, contact, monkeypatch):
    from calls.views import contacts

    monkeypatch.setattr(contacts, "TIMELINE_LENGTH", 3)
    calls = [logged_call(contact, other_agent_user, minutes_ago=m, notes=f"call {m}") for m in range(7)]
    seen: list[str] = []

    html = timeline(agent_client, contact)
    while True:
        seen += re.findall(r"call (\d)", html)
        more = re.search(r'hx-get="([^"]+)" hx-target="#timeline-more"', html)
        if more is None:
            break
        link = more.group(1).replace("&amp;", "&")
        html = agent_client.get(link, headers={"HX-Request": "true", "HX-Target": "timeline-more"}).content.decode()
        assert not html.lstrip().startswith("<section")  # the next items only, in place of the link

    assert seen == [str(m) for m in range(7)]  # every call, newest first, each once
    assert len(calls) == 7


def test_a_damaged_older_link_is_a_400_showing_the_newest_calls(agent_client, agent_user, contact):
    logged_call(contact, agent_user, minutes_ago=1, notes="the newest")
    response = agent_client.get(f"/contacts/{contact.pk}/", {"older": "not-a-cursor"})
    assert response.status_code == 400
    assert "the newest" in response.content.decode()


@pytest.mark.parametrize(("who", "words"), [("agent", "Your calls to"), ("supervisor", "These calls in the call log")])
def test_the_timeline_links_to_the_call_log_filtered_to_the_contact(
    agent_client, supervisor_client, agent_user, contact, who, words
):
    logged_call(contact, agent_user, minutes_ago=1)
    client = agent_client if who == "agent" else supervisor_client
    html = timeline(client, contact)
    assert f'href="/calls/?contact={contact.pk}"' in html
    assert words in html

    log = client.get("/calls/", {"contact": contact.pk}).content.decode()
    assert f'Calls to <a href="{contact.get_absolute_url()}">' in log
    assert 'href="/calls/">every contact</a>' in log  # no filter left: the bare address


def test_the_contact_page_query_count_does_not_grow_with_calls(
    supervisor_client, agent_user, other_agent_user, sales, contact, london, django_assert_max_num_queries
):
    logged_call(contact, agent_user, minutes_ago=1)
    with CaptureQueriesContext(connection) as few:
        supervisor_client.get(f"/contacts/{contact.pk}/")
    for minute in range(20):
        call = logged_call(contact, agent_user if minute % 2 else other_agent_user, minutes_ago=minute + 2)
        call.from_groups.set([sales])

    with django_assert_max_num_queries(len(few)):
        response = supervisor_client.get(f"/contacts/{contact.pk}/")

    assert response.content.decode().count('class="timeline-item') == 21


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

    settings.VCC_TRANSPORT = "tests.test_click.held_transport"
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


# --- Malformed clicks answer 400 with a sentence, never 500 ------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("call", "me:²", "Pick a number to call."),
        ("groups", "²", "Pick from the list"),
        ("clid", "²", "Pick a caller ID from the list."),
        ("request_id", "not-a-uuid", "This page is out of date"),
        ("dnc_reason_{phone}", "because\x00", "Null characters are not allowed."),
    ],
)
def test_a_malformed_click_is_a_400_with_a_sentence(supervisor_client, contact, london, sim, field, value, words):
    phone = primary(contact)
    via = "group" if field == "groups" else "me"
    data = {
        "call": f"{via}:{phone.pk}",
        "groups": [],
        "request_id": str(uuid.uuid4()),
        field.format(phone=phone.pk): value,
    }

    response = supervisor_client.post(f"/contacts/{contact.pk}/call/", data, headers={"HX-Request": "true"})

    assert response.status_code == 400
    assert words in response.content.decode()
    assert not Call.objects.exists()
    assert sim.calls_placed == 0


def test_a_click_takes_the_number_while_vcc_is_asked(agent_client, contact, london, sim, settings):
    """The dialling lock is held during the request to VCC: another click on the number would be refused."""
    probes: list[bool] = []
    number = primary(contact).number

    class ProbingTransport(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST" and request.url.path.lower().endswith("/calls/"):
                probes.append(await sync_to_async(locks.acquire_dial_lock)(number, owner="probe"))
            return await sandbox_transport().handle_async_request(request)

    settings.VCC_TRANSPORT = "tests.test_click.probing_transport"
    global _probing
    _probing = ProbingTransport()

    click(agent_client, primary(contact))

    assert probes == [False]  # taken by the click
    assert locks.acquire_dial_lock(number, owner="after")  # and freed once VCC answered


_probing = None


def probing_transport():
    return _probing


def test_vccs_answer_is_logged_then_written_again_when_the_database_fails(
    agent_client, contact, london, sim, monkeypatch, caplog
):
    """If the database goes away after VCC placed the call, the id is in the log with our click id, and kept."""
    sleeps: list[float] = []

    async def no_wait(seconds: float) -> None:
        sleeps.append(seconds)

    monkeypatch.setattr(calling.placing, "_sleep", no_wait)
    real = Call.record_placed
    failures = [DatabaseError("server closed the connection unexpectedly")] * 2

    def flaky(self, **kwargs):
        if failures:
            raise failures.pop()
        return real(self, **kwargs)

    monkeypatch.setattr(Call, "record_placed", flaky)

    with caplog.at_level("INFO", logger="calls.calling"):
        click(agent_client, primary(contact))

    call = only_call()
    assert call.state == Call.State.LIVE
    assert call.vcc_call_id in sim.calls
    assert len(sleeps) == 2
    logged = [r.getMessage() for r in caplog.records if "VCC placed call" in r.getMessage()]
    assert logged == [f"click {call.request_id} (call {call.pk}): VCC placed call {call.vcc_call_id}"]


def test_vccs_call_id_is_logged_before_any_write_so_a_database_gone_for_good_loses_nothing(
    agent_client, contact, london, sim, monkeypatch, caplog
):
    async def no_wait(seconds: float) -> None:
        pass

    monkeypatch.setattr(calling.placing, "_sleep", no_wait)

    def gone(self, **kwargs):
        raise DatabaseError("server closed the connection unexpectedly")

    monkeypatch.setattr(Call, "record_placed", gone)

    with caplog.at_level("INFO", logger="calls.calling"), pytest.raises(DatabaseError):
        click(agent_client, primary(contact))

    (placed,) = sim.calls
    messages = [r.getMessage() for r in caplog.records if r.name == "calls.calling"]
    first_write = next(i for i, m in enumerate(messages) if "writing VCC's answer failed" in m)
    said = [i for i, m in enumerate(messages) if m.endswith(f"VCC placed call {placed}")]
    assert said and said[0] < first_write  # in the log with our click id before the database was asked
    assert str(only_call().request_id) in messages[said[0]]


def test_the_click_costs_at_most_twelve_queries(agent_client, contact, london, sim):
    agent_client.get(f"/contacts/{contact.pk}/")  # the session is cached, as in production
    phone = primary(contact)

    with CaptureQueriesContext(connection) as queries:
        response = click(agent_client, phone)

    # The test's own transaction turns the click's transaction into a savepoint: those statements are not the click's.
    sql = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
    assert len(sql) <= 12, "\n".join(sql)
    assert 'data-call-state="live"' in response.content.decode()


def test_a_click_notes_the_contacts_last_call(agent_client, contact, london, sim):
    click(agent_client, primary(contact))

    contact.refresh_from_db()
    call = only_call()
    assert contact.last_call_id == call.pk
    assert contact.last_called_at == call.requested_at


def test_a_click_while_my_own_phone_is_on_a_call_is_refused_with_no_row(agent_client, agent_user, contact, sim):
    first = click(agent_client, primary(contact))
    assert first.status_code == 200
    other = Contact.objects.create(name="Someone Else")
    phone = ContactPhone.objects.create(contact=other, number="+442079460999", is_primary=True)

    response = click(agent_client, phone)

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert "You are on a call now" in response.content.decode()
    assert Call.objects.count() == 1  # only the first click's row: a refusal is not a failed call
    assert sim.calls_placed == 1
