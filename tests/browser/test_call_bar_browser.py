"""The call bar and refusals in a real browser, at 1280 and 375 px: a call followed from the contact page through the
call log to the agent directory and wrapped up from the bar; each refusal shown in place with DEBUG on and off."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import expect

from calls.models import Call, Callback, Contact, ContactPhone
from tests.browser.conftest import Held, log_in
from tests.browser.test_calling_browser import demo, first_contact_with, sim, vccsim_server  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TIMER = re.compile(r"^\d+:\d\d$")


@pytest.fixture(autouse=True)
def _uncaught_errors_count_too(page) -> None:
    """An uncaught script error (a CSP refusal of eval, say) fails the test like a console error."""
    page.on("pageerror", lambda error: page.console_errors.append(f"uncaught: {error}"))


def fits(page) -> bool:
    """The bar, and the page when the bar is all there is to it at the top, are no wider than the window."""
    return page.evaluate(
        "[...document.querySelectorAll('#call-bar, #call-bar *, header, #dialer')]"
        ".every(e => e.getBoundingClientRect().right <= window.innerWidth + 1)"
    )


def csp_errors(page) -> list[str]:
    return [m for m in page.console_errors if "Content Security Policy" in m or "Refused to" in m or "uncaught" in m]


def test_the_call_bar_follows_a_call_across_pages_and_wraps_it_up(demo, page, live_server, sim):  # noqa: F811
    """One call followed across three pages at desktop width, then on a phone from the agent directory on."""
    page.set_viewport_size({"width": 1280, "height": 900})
    Callback.objects.all().delete()  # the demo's callbacks due would show in the bar ("N callbacks due")
    contact = first_contact_with(is_primary=True, number__startswith="+44")
    sim.post("next-outcome", {"outcome": "answered", "talkSeconds": 600})
    log_in(page, live_server, "agent", "demo", at=f"/contacts/{contact.pk}/")
    expect(page.locator("#call-bar")).to_be_hidden()  # nothing going on
    page.click("button[data-shortcut=c]")

    bar = page.locator("#call-bar")
    expect(bar).to_contain_text(contact.name)
    expect(bar.locator(".bar-phase")).to_contain_text("Ringing your phone…")
    call_button = page.locator("button[data-shortcut=c]")
    expect(call_button).to_be_disabled()
    expect(call_button).to_have_attribute("title", f"You are on a call with {contact.name}.")
    sim.advance(9)  # the agent answers, then the contact
    expect(bar.locator(".bar-phase")).to_contain_text("Connected", timeout=10_000)
    expect(bar.locator("[data-talk-since]")).to_have_text(TIMER)
    assert fits(page)

    page.click("nav >> text=Calls")  # the call log
    expect(bar.locator(".bar-phase")).to_contain_text("Connected")
    expect(bar.locator("[data-talk-since]")).to_have_text(TIMER)
    link = bar.locator("a", has_text=contact.name)
    expect(link).to_have_attribute("href", re.compile(rf"/contacts/{contact.pk}/\?call="))
    assert fits(page)

    page.set_viewport_size({"width": 375, "height": 900})  # the rest on a phone
    page.click("nav >> text=Agents")  # the agent directory
    expect(bar.locator(".bar-phase")).to_contain_text("Connected")
    tom = page.locator("tr", has_text="Tom Okafor").locator("button", has_text="Call")
    expect(tom).to_be_disabled()
    expect(tom).to_have_attribute("title", f"You are on a call with {contact.name}.")
    sim.post("faults/recording", {"status": 503, "count": 1})  # VCC refuses the first change: the bar says so
    bar.locator("button", has_text="Pause recording").click()
    expect(page.locator("#flash")).to_contain_text("VCC is having a problem")
    for _ in range(2):  # the bar's next polls leave the message where it is
        with page.expect_response(lambda r: "/calls/bar/" in r.url):
            pass
        expect(page.locator("#flash")).to_be_visible()
    bar.locator("button", has_text="Pause recording").click()  # a poll in flight must not swallow the click
    expect(page.locator("#flash")).to_be_hidden()
    expect(bar.locator("button", has_text="Resume recording")).to_be_visible(timeout=10_000)
    page.reload()  # restored after a reload, recording state and all
    expect(bar.locator("button", has_text="Resume recording")).to_be_visible()
    assert fits(page)

    sim.advance(600)  # talked through; the call ends
    expect(bar.locator(".bar-phase")).to_contain_text("Call ended", timeout=10_000)
    expect(bar.locator("[data-talk-since]")).to_have_count(0)
    expect(tom).to_be_enabled()  # off the call: the Call buttons come back
    bar.locator("select[name=disposition]").select_option(label="Interested")
    bar.locator("input[name=notes]").fill("Wants a quote by Friday.")
    bar.locator("button", has_text="Save").click()
    expect(bar).to_be_hidden()

    call = Call.objects.get()
    assert (call.disposition_code, call.notes) == ("Interested", "Wants a quote by Friday.")
    page.goto(f"{live_server.url}/contacts/{contact.pk}/")  # the timeline agrees
    expect(page.locator("#timeline")).to_contain_text("Wants a quote by Friday.")
    expect(page.locator("#call-bar")).to_be_hidden()
    assert page.console_errors == []  # no CSP violation, nothing else either


def a_call_to_wrap_up_in_the_bar(page, live_server):
    """The agent's call that ended a moment ago, waiting for its wrap-up in the bar of the agent directory."""
    agent = User.objects.get(username="agent")
    contact = first_contact_with(is_primary=True)
    now = timezone.now()
    call = Call.objects.create(
        contact=contact, to_number=contact.phones.first().number, created_by=agent, from_agent=agent.agent,
        state=Call.State.ENDED, outcome=Call.Outcome.ANSWERED, connected_at=now, ended_at=now,
    )  # fmt: skip
    log_in(page, live_server, "agent", "demo", at="/agents/")
    bar = page.locator("#call-bar")
    expect(bar.locator(".bar-wrapup")).to_be_visible()
    return call, bar


def test_a_wrap_up_from_the_bar_clears_it_even_when_the_bar_reloaded_meanwhile(demo, page, live_server):  # noqa: F811
    """The bar can reload (a poll, another panel's answer) while a wrap-up it sent is on the way: the form that
    sent it is then gone from the page, and the answer's word that the calls changed must still reach the page."""
    call, bar = a_call_to_wrap_up_in_the_bar(page, live_server)
    held = Held(page, f"**/calls/{call.pk}/wrapup/")  # held until the bar reloaded
    bar.locator("select[name=disposition]").select_option(label="Interested")
    bar.locator("button", has_text="Save").click()
    assert held.wait() == 1
    with page.expect_response(lambda r: "/calls/bar/" in r.url):
        page.evaluate("htmx.trigger(document.body, 'calls-changed')")
    expect(page.locator("#call-bar.htmx-request")).to_have_count(0)  # swapped in: the form that asked is gone
    held.release()

    expect(bar).to_be_hidden()  # the answer's calls-changed reached the page: the bar reloaded without the call
    assert Call.objects.get(pk=call.pk).disposition_code == "Interested"
    assert page.console_errors == []


def test_a_change_made_while_the_bar_reloads_reaches_the_bar(demo, page, live_server):  # noqa: F811
    """A reload asked for while the bar's last one is on the way waits behind it, and htmx drops it with the bar
    that answer replaces. The bar drawn from what was true before the change must not stay: it asks again."""
    call, bar = a_call_to_wrap_up_in_the_bar(page, live_server)
    before = Held(page, re.compile(r"/calls/bar/"), answered=True)
    page.evaluate("htmx.trigger(document.body, 'calls-changed')")
    assert before.wait() == 1  # answered by the app: the call still waits for its wrap-up
    Call.objects.filter(pk=call.pk).update(disposition_code="Interested", wrapped_up_at=timezone.now())
    page.evaluate("htmx.trigger(document.body, 'calls-changed')")  # while the first answer is on the way
    before.release()

    expect(bar.locator(".bar-wrapup")).to_have_count(0)  # the second reload came after all
    assert page.console_errors == []


def test_on_the_contact_page_of_a_call_to_wrap_up_the_bar_steps_aside_before_the_panel_comes(demo, page, live_server):  # noqa: F811
    """The page asks for the call's own panel once it has loaded; the bar's wrap-up, which the panel's replaces,
    steps aside from the start, not when the panel comes: the page would jump under a finger already on a button
    (the page head moved up by the form's height between a tap's press and its release, and the tap was lost)."""
    call, bar = a_call_to_wrap_up_in_the_bar(page, live_server)
    panel = Held(page, re.compile(rf"/calls/{call.pk}/panel/"))
    page.goto(f"{live_server.url}/contacts/{call.contact_id}/")
    assert panel.wait() == 1  # the page asked for the panel, which has not come
    expect(bar.locator(".bar-wrapup")).to_be_hidden()
    head = page.locator(".page-head").bounding_box()
    panel.release()
    expect(page.locator(f"#call-panel-{call.pk}")).to_be_visible()
    assert page.locator(".page-head").bounding_box() == head  # nothing above it moved
    expect(bar.locator(".bar-wrapup")).to_be_hidden()
    assert page.console_errors == []


def test_the_contact_page_and_the_bar_agree_when_the_call_ends(demo, page, live_server, sim):  # noqa: F811
    contact = first_contact_with(is_primary=True, number__startswith="+44")
    log_in(page, live_server, "agent", "demo", at=f"/contacts/{contact.pk}/")
    page.click("button[data-shortcut=c]")
    expect(page.locator("#call-bar .bar-phase")).to_contain_text("Ringing your phone…")
    page.goto(f"{live_server.url}/contacts/")  # leave during the call, then come back
    page.goto(f"{live_server.url}/contacts/{contact.pk}/")
    panel = page.locator("#call-slot .call-panel")
    expect(panel).to_have_attribute("data-call-state", "live")  # the panel is back
    expect(page.locator("#me-ready")).to_have_text(f"You are on a call with {contact.name}.")

    # The end is recorded elsewhere (a supervisor closes the call; the worker would do the same): this page's polls
    # only read it, and the timeline must still catch up with the panel and the bar.
    supervisor = User.objects.get(username="supervisor")
    Call.objects.get().record_closed(by=supervisor, reason="VCC support says it ended", now=timezone.now())
    expect(panel.locator(".phase")).to_contain_text("Ended: closed by a supervisor", timeout=10_000)
    expect(page.locator("#call-bar .bar-phase")).to_contain_text("Ended: closed by a supervisor", timeout=10_000)
    expect(page.locator("#timeline .timeline-item").first).not_to_contain_text("In progress", timeout=10_000)
    expect(page.locator("button[data-shortcut=c]")).to_be_enabled()
    expect(page.locator("#call-bar .bar-wrapup")).to_be_hidden()  # the panel's own wrap-up is on the page
    sim.advance(70)  # VCC takes a disposition once the call has ended there too
    panel.locator("select[name=disposition]").select_option(label="Interested")
    panel.locator("button", has_text="Save wrap-up").click()
    expect(panel).to_contain_text("Wrapped up: Interested")
    expect(page.locator("#call-bar")).to_be_hidden()  # the bar follows the panel
    assert page.console_errors == []


def test_a_call_to_a_colleague_shows_in_the_bar_at_once(demo, page, live_server, sim):  # noqa: F811
    log_in(page, live_server, "agent", "demo")
    page.click("nav >> text=Agents")
    tom = page.locator("tr", has_text="Tom Okafor").locator("button", has_text="Call")
    expect(page.locator("#ready-1003")).to_have_text("ready")

    tom.click()

    expect(page.locator("#call-bar")).to_contain_text("Tom Okafor")
    expect(tom).to_be_disabled()
    expect(tom).to_have_attribute("title", "You are on a call with Tom Okafor (1003).")
    assert page.console_errors == []


# --- Refusals in place, DEBUG on and off --------------------------------------------------------------------------


def still_there(page) -> None:
    expect(page.locator("nav[aria-label=Main]")).to_be_visible()
    expect(page.locator("#dialer")).to_be_visible()


# Each refusal is clicked with DEBUG on and off; two of them at phone width, two at desktop width (the page's layout
# does not change what a refusal does, and each case costs a fresh demo workspace).
@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request, settings) -> bool:
    settings.DEBUG = request.param
    return request.param


@pytest.mark.parametrize("width", [375])
def test_calling_while_on_a_call_is_refused_in_place(demo, page, live_server, sim, debug, width):  # noqa: F811
    page.set_viewport_size({"width": width, "height": 900})
    first = first_contact_with(is_primary=True)
    second = ContactPhone.objects.filter(do_not_call=False, contact__do_not_call=False).exclude(contact=first).first()
    log_in(page, live_server, "agent", "demo", at=f"/contacts/{first.pk}/")
    other = page.context.new_page()  # another tab places a call meanwhile
    other.goto(f"{live_server.url}/contacts/{second.contact_id}/")
    other.click("button[data-shortcut=c]")
    expect(other.locator("#call-bar .bar-phase")).to_contain_text("Ringing your phone…")

    page.click("button[data-shortcut=c]")  # this tab did not know yet

    expect(page.locator("#flash")).to_have_text("You are on a call now: finish it, then call again.")
    still_there(page)
    expect(page.locator("#call-bar")).to_contain_text(second.contact.name)  # the bar learns of the call
    expect(page.locator("button[data-shortcut=c]")).to_be_disabled()
    assert Call.objects.count() == 1
    assert csp_errors(page) == []


@pytest.mark.parametrize("width", [1280])
def test_call_anyway_needs_a_reason_before_sending(demo, page, live_server, sim, debug, width):  # noqa: F811
    page.set_viewport_size({"width": width, "height": 900})
    phone = ContactPhone.objects.filter(do_not_call=False, contact__do_not_call=False, is_primary=True).first()
    ContactPhone.objects.filter(pk=phone.pk).update(do_not_call=True)
    log_in(page, live_server, "supervisor", "demo", at=f"/contacts/{phone.contact_id}/")
    sent = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" and r.url.endswith("/call/") else None)
    anyway = page.locator("button", has_text="Call anyway")
    expect(anyway).to_have_class("secondary")
    reason = page.locator(f"#dnc_reason_{phone.pk}")
    assert fits(page)

    anyway.click()

    expect(reason).to_be_focused()
    assert "Say why" in reason.evaluate("input => input.validationMessage")
    assert sent == []  # checked before sending
    still_there(page)

    # The server checks it too: with the browser's check taken away, the refusal shows in place.
    anyway.evaluate("button => button.removeAttribute('data-needs-reason')")
    reason.evaluate("input => input.removeAttribute('minlength')")
    reason.fill("abc")
    anyway.click()
    expect(page.locator("#flash")).to_contain_text("To call anyway, say why (at least 5 characters).")
    still_there(page)
    assert len(sent) == 1
    assert not Call.objects.exists()
    assert csp_errors(page) == []


@pytest.mark.parametrize("width", [375])
def test_call_via_group_needs_a_ticked_group_before_sending(demo, page, live_server, sim, debug, width):  # noqa: F811
    page.set_viewport_size({"width": width, "height": 900})
    contact = first_contact_with(is_primary=True)
    log_in(page, live_server, "supervisor", "demo", at=f"/contacts/{contact.pk}/")
    expect(page.locator("#group-choices")).to_contain_text("ready")
    for box in page.locator("#group-choices input").all():
        box.uncheck()
    expect(page.locator("#dial-preview")).to_contain_text("Tick at least one group.")
    expect(page.locator("#dial-preview")).not_to_contain_text("rings any ready agent")
    sent = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" and r.url.endswith("/call/") else None)

    page.click("button[data-shortcut=g]")

    first_box = page.locator("#group-choices input").first
    assert first_box.evaluate("box => box.validationMessage") == "Tick at least one group to call via."
    assert sent == []
    # Calling from one's own phone is not held back by the group check.
    page.locator("button[data-shortcut=g]").evaluate("button => button.removeAttribute('data-needs-group')")
    page.click("button[data-shortcut=g]")
    expect(page.locator("#flash")).to_have_text("Tick at least one group to call via.")
    still_there(page)
    assert not Call.objects.exists()
    assert csp_errors(page) == []


@pytest.mark.parametrize("width", [1280])
def test_calling_while_vcc_is_unreachable_says_so_in_place(demo, page, live_server, sim, debug, settings, width):  # noqa: F811
    page.set_viewport_size({"width": width, "height": 900})
    contact = first_contact_with(is_primary=True)
    log_in(page, live_server, "agent", "demo", at=f"/contacts/{contact.pk}/")
    settings.VCC_BASE_URL = settings.VCC_AUTH_URL = settings.VCC_GATEWAY_URL = "http://127.0.0.1:9"  # nothing listens

    page.click("button[data-shortcut=c]")

    said = page.locator("#call-slot, #flash").filter(has_text="could not reach VCC")
    expect(said.first).to_be_visible(timeout=15_000)
    still_there(page)
    expect(page.locator("button[data-shortcut=c]")).to_be_enabled()  # no call going on
    assert csp_errors(page) == []


def test_slash_jumps_to_contact_search_from_any_page(demo, page, live_server):  # noqa: F811
    log_in(page, live_server, "agent", "demo", at="/calls/")

    page.keyboard.press("/")

    page.wait_for_url(f"{live_server.url}/contacts/#search")
    expect(page.locator("input[type=search]")).to_be_focused()
    assert Contact.objects.exists()
