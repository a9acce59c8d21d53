"""Click-to-call in a real browser: the app on a real port, vccsim as its own server, the simulator's clock
moved through its control API so each phase of a call is seen."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from playwright.sync_api import expect

from calls.models import Agent, Call, Contact, ContactPhone
from calls.roles import AGENT, assign_role
from tests._vccsim_process import Sim, vccsim_server  # noqa: F401  (the fixture, for this module and others)
from tests.browser.conftest import Held, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sim(vccsim_server, settings) -> Sim:  # noqa: F811  (the fixture imported above)
    """The app talks to the standalone simulator over a real socket, exactly as it would to VCC."""
    settings.VCC_SANDBOX = False
    settings.VCC_TRANSPORT = ""
    settings.VCC_BASE_URL = settings.VCC_AUTH_URL = settings.VCC_GATEWAY_URL = vccsim_server
    settings.VCC_ACCOUNT_KEY = "sandbox01"
    settings.VCC_API_TOKEN = "sandbox-api-token"
    simulator = Sim(vccsim_server)
    simulator.post("reset")
    return simulator


@pytest.fixture
def demo(db):
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115


def first_contact_with(**phone_filter) -> Contact:
    phone = ContactPhone.objects.filter(contact__do_not_call=False, do_not_call=False, **phone_filter).first()
    return phone.contact


def talking_on_a_contact_page(page, live_server, sim: Sim):
    """The agent on a contact's page, called with the keyboard ("c"), the call connected for ten minutes of talk;
    returns its panel."""
    contact = first_contact_with(is_primary=True, number__startswith="+44")
    sim.post("next-outcome", {"outcome": "answered", "talkSeconds": 600})
    log_in(page, live_server, "agent", "demo", at=f"/contacts/{contact.pk}/")
    page.keyboard.press("c")
    panel = page.locator(".call-panel")
    sim.advance(9)
    expect(panel.locator(".phase")).to_contain_text("Connected", timeout=10_000)
    return panel


def test_an_agent_calls_a_contact_and_wraps_up(demo, page, live_server, sim):
    contact = first_contact_with(is_primary=True, number__startswith="+44")
    sim.post("next-outcome", {"outcome": "answered", "talkSeconds": 600})
    log_in(page, live_server, "agent", "demo", at=f"/contacts/{contact.pk}/")
    expect(page.locator(".dial-preview")).to_contain_text("Caller ID: London main")
    page.keyboard.press("c")  # the shortcut for the primary number's Call button

    panel = page.locator(".call-panel")
    expect(panel).to_have_attribute("data-call-state", "live")
    expect(panel.locator(".phase")).to_contain_text("Ringing your phone")
    sim.advance(9)  # the agent answers, then the contact
    expect(panel.locator(".phase")).to_contain_text("Connected", timeout=10_000)
    expect(page.locator("#call-announcer")).to_have_text("Connected")

    panel.locator("button", has_text="Pause recording").click()
    expect(panel).to_contain_text("Recording: paused")
    panel.locator("button", has_text="Resume recording").click()
    expect(panel).to_contain_text("Recording: started")

    sim.advance(600)
    expect(panel.locator(".phase")).to_have_text("Call ended", timeout=10_000)
    page.keyboard.press("w")
    expect(page.locator(".wrapup select[name=disposition]")).to_be_focused()
    page.fill(".wrapup textarea", "Wants a quote by Friday.")
    # A form the server cannot read (a disposition gone from the menu meanwhile) answers 400 with the panel again.
    page.locator(".wrapup select[name=disposition] option").nth(1).evaluate("option => { option.value = '999999'; }")
    page.select_option(".wrapup select[name=disposition]", index=1)
    page.click("button:has-text('Save wrap-up')")
    expect(panel.locator(".error, [role=alert]").first).to_contain_text("Choose how the call went.")
    expect(page.locator(".wrapup textarea")).to_have_value("Wants a quote by Friday.")  # nothing typed is lost
    page.select_option(".wrapup select[name=disposition]", label="Interested")
    page.click("button:has-text('Save wrap-up')")
    expect(panel).to_contain_text("Wrapped up: Interested")
    expect(page.locator("#timeline")).to_contain_text("Wants a quote by Friday.")

    call = Call.objects.get()
    assert call.state == Call.State.ENDED
    assert call.disposition_code == "Interested"
    # Talk time is what vccweb saw, from the first look that found it connected to the one that found it ended.
    assert call.duration_seconds is not None and call.connected_at <= call.ended_at
    sim_call = sim.state()["calls"][0]
    assert sim_call["dispositionCode"] == "Interested"
    assert sim_call["regarding"]["reference"].startswith(f"{live_server.url}/contacts/{contact.pk}/?call=")
    # The browser notes the deliberate 400 above; nothing else went wrong.
    assert page.console_errors == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"]


def test_a_busy_agent_sees_vccs_reason(demo, page, live_server, sim):
    user = get_user_model().objects.create_user("jordan", password="jordan-pass-1")
    assign_role(user, AGENT)
    Agent.objects.filter(display_id="1006").update(user=user)  # 1006 is on a call in the simulator
    contact = first_contact_with(is_primary=True)
    log_in(page, live_server, "jordan", "jordan-pass-1", at=f"/contacts/{contact.pk}/")
    page.click("button[data-shortcut=c]")
    panel = page.locator(".call-panel")
    expect(panel).to_have_attribute("data-call-state", "failed")
    expect(panel).to_contain_text("Your phone is busy")
    expect(panel).to_contain_text("Unable to place call - Agent number busy")
    assert Call.objects.get().error_message == "Unable to place call - Agent number busy"


def test_a_do_not_call_number_cannot_be_clicked(demo, page, live_server, sim):
    contact = Contact.objects.filter(do_not_call=True).first()
    log_in(page, live_server, "agent", "demo", at=f"/contacts/{contact.pk}/")
    expect(page.locator(".phone.blocked").first).to_contain_text("This contact is marked do not call.")
    assert page.locator("button[name=call]").count() == 0
    expect(page.locator(".call-buttons button").first).to_be_disabled()
    assert sim.state()["callsPlaced"] == 0


def test_a_fast_double_click_places_one_call(demo, page, live_server, sim):
    contact = first_contact_with(is_primary=True)
    log_in(page, live_server, "agent", "demo", at=f"/contacts/{contact.pk}/")
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and r.url.endswith("/call/") else None)
    held = Held(page, f"**/contacts/{contact.pk}/call/")  # the first click's answer waits for the second click
    page.dblclick("button[data-shortcut=c]")
    assert held.wait() == 1
    held.release()
    expect(page.locator(".call-panel")).to_have_attribute("data-call-state", "live")
    assert len(posts) == 1
    assert sim.state()["callsPlaced"] == 1
    assert Call.objects.count() == 1


def test_a_poll_answered_while_a_button_of_the_panel_is_pressed_does_not_swallow_the_click(
    demo, page, live_server, sim
):
    """The panel polls while the call goes on, and each answer replaces it. One that came between a press on Pause
    recording and its release replaced the button under the finger: the release landed on the new one, and the click
    on neither. The panel is not replaced while a press is going on inside it."""
    panel = talking_on_a_contact_page(page, live_server, sim)
    button = panel.locator("button", has_text="Pause recording")
    poll = Held(page, re.compile(r"/calls/\d+/panel/"), answered=True)
    assert poll.wait() == 1  # the next poll, answered by the app and held: the panel stays as it is meanwhile
    expect(button).to_be_visible()
    box = button.bounding_box()
    page.evaluate(
        "document.body.addEventListener('htmx:beforeSwap', (event) => {"
        " if (event.detail.target.classList.contains('call-panel'))"
        " setTimeout(() => { document.body.dataset.polled = '1'; }, 0); })"
    )
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    poll.release()
    expect(page.locator("body")).to_have_attribute("data-polled", "1")  # its answer came while the button is pressed
    page.mouse.up()
    expect(panel).to_contain_text("Recording: paused")
    assert page.console_errors == []


def test_the_call_buttons_stay_disabled_while_a_click_is_on_its_way_whatever_reloads_meanwhile(
    demo, page, live_server, sim
):
    """htmx disables the Call buttons while the click is on its way (hx-disabled-elt). The bar reloads every 2 s
    and as other answers come: its reload, settled before the click's answer, must not enable them, or a second
    click would be queued behind the first and sent once it is answered."""
    contact = first_contact_with(is_primary=True)
    log_in(page, live_server, "agent", "demo", at=f"/contacts/{contact.pk}/")
    button = page.locator("button[data-shortcut=c]")
    click = Held(page, f"**/contacts/{contact.pk}/call/")
    button.click()
    assert click.wait() == 1
    expect(button).to_be_disabled()
    with page.expect_response(re.compile(r"/calls/bar/")):
        page.evaluate("htmx.trigger(document.body, 'calls-changed')")
    expect(page.locator("#call-bar.htmx-request")).to_have_count(0)  # the bar's answer has settled
    page.evaluate("0")  # and the page has run what its settling set off
    expect(button).to_be_disabled()
    click.release()
    expect(page.locator(".call-panel")).to_have_attribute("data-call-state", "live")
    assert Call.objects.count() == 1
    assert page.console_errors == []


def test_the_call_buttons_stay_disabled_from_the_click_s_answer_on(demo, page, live_server, sim):
    """htmx enables a Call button again as the click's answer comes. The bar, which says whether the person is on a
    call, reloads only after it: meanwhile the answer itself keeps the buttons disabled, so that the second click of
    a double click that came after the answer is not sent (it would be refused, and logged, as a call of its own)."""
    contact = first_contact_with(is_primary=True)
    log_in(page, live_server, "agent", "demo", at=f"/contacts/{contact.pk}/")
    button = page.locator("button[data-shortcut=c]")
    bar = Held(page, re.compile(r"/calls/bar/"))
    button.click()
    expect(page.locator(".call-panel")).to_have_attribute("data-call-state", "live")
    assert bar.wait() == 1  # the answer asked for the bar, which has not answered yet
    expect(button).to_be_disabled()
    expect(button).to_have_attribute("title", re.compile("^You are on a call with "))
    bar.release()
    expect(page.locator("#call-bar")).to_have_attribute("data-on-call", re.compile("^You are on a call with "))
    expect(page.locator("[data-on-call-after-click]")).to_have_count(0)  # the bar says it from now on
    expect(button).to_be_disabled()
    assert Call.objects.count() == 1
    assert page.console_errors == []


def test_a_supervisor_calls_via_a_group(demo, page, live_server, sim):
    contact = first_contact_with(is_primary=True)
    log_in(page, live_server, "supervisor", "demo", at=f"/contacts/{contact.pk}/")
    choices = page.locator("#group-choices")
    expect(choices).to_contain_text("3 ready")  # Sales UK, from VCC's availability query
    expect(choices).to_contain_text("nobody ready")  # Out of hours
    page.locator("label.group-choice", has_text="Support").locator("input").uncheck()
    page.locator("label.group-choice", has_text="Sales UK").locator("input").check()
    page.click("button[data-shortcut=g]")
    expect(page.locator(".call-panel")).to_have_attribute("data-call-state", "live")
    sent = Call.objects.get().request_body
    assert sent["from"]["groups"] == ["030"]
    assert "agentId" not in sent["from"]


def test_a_request_that_fails_says_so_instead_of_doing_nothing(demo, page, live_server, sim):
    contact = first_contact_with(is_primary=True)
    log_in(page, live_server, "agent", "demo", at=f"/contacts/{contact.pk}/")
    Contact.objects.filter(pk=contact.pk).delete()  # someone else deletes the contact meanwhile
    page.click("button[data-shortcut=c]")
    expect(page.locator("#flash")).to_have_text("That is no longer there: reload the page.")
    assert sim.state()["callsPlaced"] == 0


def test_an_agent_calls_a_colleague_from_the_directory(demo, page, live_server, sim):
    log_in(page, live_server, "agent", "demo")
    page.click("nav >> text=Agents")
    tom = page.locator("tr", has_text="Tom Okafor")
    expect(tom.locator("#ready-1003")).to_have_text("ready")
    expect(page.locator("#ready-1005")).to_have_text("not ready")  # Sam is away in the simulator
    tom.locator("button", has_text="Call").click()
    panel = page.locator("#agent-call .call-panel")
    expect(panel).to_have_attribute("data-call-state", "live")
    expect(panel).to_contain_text("To Tom Okafor (1003)")
    assert Call.objects.get().request_body["to"] == {"agentId": "1003"}
    # The button got a fresh click id: a second click is a new call, not a repeat of the first.
    first_panel = panel.get_attribute("id")
    sim.advance(100)
    # As a person would: wait for the first call to end (the Call buttons are held while it is live).
    expect(panel).to_have_attribute("data-call-state", "ended")
    expect(tom.locator("button", has_text="Call")).to_be_enabled()
    tom.locator("button", has_text="Call").click()
    expect(page.locator("#agent-call .call-panel")).not_to_have_attribute("id", first_panel)
    expect(page.locator("#agent-call .call-panel")).to_have_attribute("data-call-state", "live")
    assert Call.objects.count() == 2
    assert page.console_errors == []


def test_the_preview_follows_the_choices_and_a_click_keeps_them(demo, page, live_server, sim):
    contact = first_contact_with(is_primary=True, number__startswith="+44")
    log_in(page, live_server, "supervisor", "demo", at=f"/contacts/{contact.pk}/")
    preview = page.locator("#dial-preview")
    expect(page.locator("#group-choices")).to_contain_text("ready")  # readiness has loaded
    sales = page.locator("label.group-choice", has_text="Sales UK").locator("input")
    support = page.locator("label.group-choice", has_text="Support").locator("input")

    # Ticking groups changes what a group call presents: Support's default is Manchester support.
    sales.uncheck()
    support.check()
    expect(preview).to_contain_text("rings any ready agent in Support")
    expect(preview).to_contain_text("Manchester support")
    sales.check()  # groups go to VCC in the page's order; Support is the first ticked with a default of its own
    expect(preview).to_contain_text("rings any ready agent in Sales UK, Support")
    expect(preview).to_contain_text("Manchester support 0161 496 0200 — default of group Support")
    # Picking a caller ID changes the line for Call too.
    page.select_option("#clid", label="Chicago — +1 312-555-0100")
    expect(preview).to_contain_text("Caller ID: Chicago")
    expect(preview).to_contain_text("you chose it for this call")

    page.click("button[data-shortcut=c]")

    expect(page.locator(".call-panel")).to_have_attribute("data-call-state", "live")
    assert Call.objects.get().presented_clid == "+13125550100"
    # The choices are as the person left them, and the next click has a fresh id.
    expect(page.locator("#clid")).to_have_value(str(Call.objects.get().callback_number_id))
    expect(sales).to_be_checked()
    expect(support).to_be_checked()
    expect(page.locator("#request-id")).not_to_have_value(str(Call.objects.get().request_id))


def test_an_agent_is_warned_before_calling_when_vcc_does_not_have_them_ready(demo, page, live_server, sim):
    contact = first_contact_with(is_primary=True)
    sim.post("agents/1001/availability", {"availability": "away"})
    log_in(page, live_server, "agent", "demo", at=f"/contacts/{contact.pk}/")

    expect(page.locator("#me-ready")).to_contain_text("VCC does not have you ready for a phone call right now")
    expect(page.locator("button[data-shortcut=c]")).to_be_enabled()  # still possible

    page.goto(f"{live_server.url}/contacts/")  # the list's Call buttons say so too
    expect(page.locator("#me-ready")).to_contain_text("VCC does not have you ready for a phone call right now")
    expect(page.locator("#results button[name=call]").first).to_be_enabled()
    assert page.console_errors == []  # no group badges sent to a page that has none


def test_a_supervisor_is_warned_when_nobody_is_ready_in_the_ticked_groups(demo, page, live_server, sim):
    contact = first_contact_with(is_primary=True)
    log_in(page, live_server, "supervisor", "demo", at=f"/contacts/{contact.pk}/")
    expect(page.locator("#group-choices")).to_contain_text("nobody ready")
    for label in page.locator("label.group-choice").all():
        label.locator("input").uncheck()

    page.locator("label.group-choice", has_text="Out of hours").locator("input").check()

    expect(page.locator("#groups-ready")).to_contain_text("Nobody is ready in the ticked groups right now")


def test_a_click_in_the_list_sends_an_id_of_its_own_and_the_pages_one_form(demo, page, live_server, sim):
    """The list's Call buttons share one form (its CSRF token); each click makes its id, not the button's own (the
    id in its address, for a browser without JavaScript)."""
    log_in(page, live_server, "agent", "demo")
    button = page.locator("table.list button[name=call]:not([disabled])").first
    page_id = (button.get_attribute("formaction") or "").split("request_id=")[1]
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/call/")) as sent:
        button.click()
    expect(page.locator("#list-call .call-panel")).to_have_attribute("data-call-state", "live")

    call = Call.objects.get()
    body = sent.value.post_data or ""
    assert f"request_id={call.request_id}" in body and "csrfmiddlewaretoken=" in body
    assert str(call.request_id) != page_id and call.request_id.version == 4
    assert page.console_errors == []


def test_a_call_placed_from_the_list_is_followed_while_nobody_watches_then_wrapped_up(demo, page, live_server, sim):
    """An agent calls from the contact list and leaves; the worker follows the call to its end; later the agent
    finds it ended on the call log and wraps it up from the call's page."""
    import asyncio
    import threading

    from django.db import connections

    from calls import calling

    def worker_round() -> None:
        # Playwright keeps an event loop in this thread: the worker's round runs in a thread of its own.
        asyncio.run(calling.follow_due())
        connections.close_all()

    log_in(page, live_server, "agent", "demo")
    page.locator("table.list button[name=call]:not([disabled])").first.click()
    expect(page.locator("#list-call .call-panel")).to_have_attribute("data-call-state", "live")
    page.goto("about:blank")  # the agent leaves: no page (nor its call bar) watches the call any more
    call = Call.objects.get()

    sim.advance(70)  # the call is answered, talked through and ends
    for _ in range(3):
        # Due a look: the call bar looked just now, which holds the next look off for a couple of seconds (and a
        # poll the page sent before it went away may still be answered, setting the next look again: a busy
        # machine answers it late, so a round can find nothing due; the next round then follows the call).
        Call.objects.filter(pk=call.pk).update(next_check_at=call.requested_at)
        round_ = threading.Thread(target=worker_round)  # one round of the follow_calls worker
        round_.start()
        round_.join(timeout=30)
        call.refresh_from_db()
        if call.state == Call.State.ENDED:
            break
    assert call.state == Call.State.ENDED

    page.goto(f"{live_server.url}/calls/")
    wrap_up = page.locator(".wrap-up-list")
    expect(wrap_up).to_contain_text("Answered")
    wrap_up.locator("a").first.click()
    page.select_option(f"#disposition-{call.pk}", label="Interested")
    page.fill(f"#notes-{call.pk}", "Wants a quote")
    page.click("#wrapup button[type=submit]")
    expect(page.locator(".call-panel")).to_contain_text("Wrapped up: Interested")
    call.refresh_from_db()
    assert (call.disposition_code, call.notes) == ("Interested", "Wants a quote")
    assert sim.state()["calls"][0]["dispositionCode"] == "Interested"
