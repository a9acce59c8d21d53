"""Placing a call with the click: from my phone, via groups, caller ID, recording consent, do not call, the list."""

from __future__ import annotations

import html
import json
import re
import uuid

import httpx
import pytest
from django.test import Client
from django.utils import timezone

from calls import calling
from calls.models import Agent, AgentGroup, Call, CallbackNumber, CallingHours, Contact, ContactPhone
from tests import _click
from tests._sim import assert_refused, click, only_call, primary, recorded, request_ids, shown

pytestmark = pytest.mark.django_db

sim = _click.sim  # fixtures


@pytest.fixture
def chicago(db) -> CallbackNumber:
    return CallbackNumber.objects.create(number="+13125550100", label="Chicago")


# --- Recording what is sent to VCC -------------------------------------------------------------------


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


@pytest.mark.parametrize(
    ("vcc_clid", "sent_as"),
    [("02079460100", "02079460100"), ("+44 20 7946 0100", "+44 20 7946 0100"), ("", "+442079460100")],
)
def test_it_presents_the_callback_number_as_vcc_lists_it(agent_client, contact, london, sim, sent, vcc_clid, sent_as):
    """VCC may compare presentedCLID as the string it holds: the form the sync read is sent, else (a number an
    admin typed, never synced) E.164. The call log keeps the E.164 number either way."""
    london.vcc_clid = vcc_clid
    london.save()

    click(agent_client, primary(contact))

    call = only_call()
    assert call.state == Call.State.LIVE
    assert call.request_body["from"]["presentedCLID"] == sent_as
    assert sent_call_body(sent)["from"]["presentedCLID"] == sent_as
    assert call.presented_clid == "+442079460100"
    assert call.callback_number == london


def test_the_preview_names_the_caller_id_each_number_would_present(supervisor_client, london, sales, sim):
    """A contact with a UK and a US number, and a local-presence Chicago number: the preview names the first
    number's caller ID, and the US number's own, which its click presents, from the phone and via groups."""
    CallbackNumber.objects.create(number="+13125550100", label="Chicago", local_presence=True)
    person = Contact.objects.create(name="Ada Lovelace")
    ContactPhone.objects.create(contact=person, number="+447400123456", is_primary=True)
    us = ContactPhone.objects.create(contact=person, number="+13125550123")
    chicago = "To +1 312-555-0123: <strong>Chicago</strong> +1 312-555-0100 — local presence: a US number for a US"

    page = supervisor_client.get(f"/contacts/{person.pk}/").content.decode()
    preview = f"/contacts/{person.pk}/dial-preview/"
    ticked = supervisor_client.get(preview, {"groups": sales.pk, "ticked": "on"}).content.decode()
    chosen = supervisor_client.get(preview, {"groups": sales.pk, "ticked": "on", "clid": london.pk}).content.decode()
    click(supervisor_client, us, via="group", groups=(sales.pk,))

    mine = page.split('id="dial-preview"')[1].split("Call via group")[0]
    via_groups = ticked.split("Call via group")[1]
    assert "Caller ID: <strong>London main</strong>" in mine and chicago in mine
    assert "Caller ID: <strong>London main</strong>" in via_groups and chicago in via_groups
    assert "To +1 312" not in chosen  # a caller ID picked goes to every number
    assert only_call().presented_clid == "+13125550100"


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


# --- Numbers nobody may dial -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "why"),
    [
        ("+449098790000", "This is a premium-rate number, which vccweb does not call"),  # UK 09 premium rate
        ("+19005550100", "This is a premium-rate number, which vccweb does not call"),  # US 900
        ("+4412345678", "This is not a valid phone number, so VCC cannot call it"),  # stored before any check
    ],
)
def test_a_premium_rate_or_invalid_number_is_refused_with_words_for_everyone(
    supervisor_client, london, sales, sim, number, why
):
    person = Contact.objects.create(name="Ada Lovelace")
    phone = ContactPhone.objects.create(contact=person, number=number, is_primary=True, do_not_call=True)
    CallingHours.objects.bulk_create([CallingHours(country=country, days="") for country in ("GB", "US")])  # closed

    page = supervisor_client.get(f"/contacts/{person.pk}/").content.decode()
    mine = click(supervisor_client, phone, **{f"hours_reason_{phone.pk}": "they asked", f"dnc_reason_{phone.pk}": "ok"})
    assert_refused(mine, sim, why)
    assert_refused(click(supervisor_client, phone, via="group", groups=(sales.pk,)), sim, why)

    assert f'<p class="blocked-reason">{html.escape(why)}' in page
    assert f'<button type="button" disabled title="{html.escape(why)}' in page  # Call, and Call via group
    assert f'value="me:{phone.pk}"' not in page and f'value="group:{phone.pk}"' not in page
    assert "Reason to call" not in page  # no reason lets anyone call it


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
