"""Accessibility in a real browser, where the HTML alone cannot tell (tests/test_accessibility.py has the rest): what a
screen reader's status region says, and where the keyboard's focus is as htmx swaps parts of the page."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from calls.models import Agent
from tests._calls import make_call
from tests.browser.conftest import log_in
from tests.browser.test_calling_browser import (  # noqa: F401
    demo,
    first_contact_with,
    sim,
    talking_on_a_contact_page,
    vccsim_server,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_call_from_the_list_says_its_phase_in_the_status_region(demo, page, live_server, sim):  # noqa: F811
    """The list's panel is polled in no live region: the page's status region says where the call is, as it changes."""
    log_in(page, live_server, "agent", "demo")
    page.locator("table.list button[name=call]:not([disabled])").first.click()
    expect(page.locator("#list-call .call-panel")).to_have_attribute("data-call-state", "live")
    expect(page.locator("#call-announcer")).to_have_text("Ringing your phone…")
    sim.advance(9)
    expect(page.locator("#call-announcer")).to_have_text("Connected", timeout=10_000)
    assert page.console_errors == []


def test_the_focus_stays_on_pause_recording_as_the_panel_and_the_bar_refresh(demo, page, live_server, sim):  # noqa: F811
    """The panel and the bar are swapped at each poll (every 250 ms here, 2 s in production): the focus stays on the
    button, and Enter on Pause recording leaves it on Resume recording."""
    panel = talking_on_a_contact_page(page, live_server, sim)
    for button in (page.locator("#call-bar button[name=recording]"), panel.locator("button[name=recording]")):
        button.focus()
        for _ in range(3):  # a few polls of each part, swapped in around the button
            for part in ("/panel/", "/calls/bar/"):
                with page.expect_response(lambda r, part=part: part in r.url):
                    pass
        expect(button).to_be_focused()
    page.keyboard.press("Enter")
    expect(panel).to_contain_text("Recording: paused")
    expect(panel.locator("button[name=recording]")).to_have_text("Resume recording")
    expect(panel.locator("button[name=recording]")).to_be_focused()


def test_a_search_says_what_it_found_in_a_few_words_not_the_whole_table(demo, page, live_server):  # noqa: F811
    """The results are in no live region (each keystroke would have the table read out); #results-status says how
    many were found, once a search has swapped them in."""
    contact = first_contact_with(is_primary=True)
    log_in(page, live_server, "agent", "demo", at="/contacts/")
    expect(page.locator("#results-status")).to_have_text("")  # the page's own list is not announced
    with page.expect_response(lambda r: "/contacts/" in r.url and "q=" in r.url):
        page.fill("#q", contact.name)
    expect(page.locator("#results-status")).to_have_text(re.compile(r"^[1-9][0-9]* contacts? shown"))
    with page.expect_response(lambda r: "/contacts/" in r.url and "q=" in r.url):
        page.fill("#q", "Zzyzx Nobody")
    expect(page.locator("#results-status")).to_have_text("No contact matches")
    assert page.locator("#results[aria-live]").count() == 0
    assert page.console_errors == []


def test_the_focus_goes_to_the_calls_phase_after_call_and_stays_as_it_polls(demo, page, live_server, sim):  # noqa: F811
    """Call, pressed with the keyboard, is disabled until the answer (a double click places one call) and stays so
    during the call: the focus it held goes to the new panel's phase, which keeps it as the panel polls."""
    contact = first_contact_with(is_primary=True, number__startswith="+44")
    log_in(page, live_server, "agent", "demo", at=f"/contacts/{contact.pk}/")
    page.focus("button[data-shortcut=c]")
    page.keyboard.press("Enter")
    phase = page.locator("#call-slot .call-panel .phase")
    expect(phase).to_be_focused()
    expect(page.locator("button[data-shortcut=c]")).to_be_disabled()  # on a call now: no second one
    for _ in range(3):  # a few polls of the panel, swapped in around the focus
        with page.expect_response(lambda r: "/panel/" in r.url):
            pass
    expect(phase).to_be_focused()
    assert page.console_errors == []


def test_the_focus_goes_back_to_call_when_the_click_is_refused(demo, page, live_server):  # noqa: F811
    """A click refused before VCC is asked brings no panel, only a message: Call, enabled again, has the focus."""
    contact = first_contact_with(is_primary=True)
    log_in(page, live_server, "agent", "demo", at=f"/contacts/{contact.pk}/")
    page.locator("#request-id").evaluate("input => { input.value = 'not-an-id'; }")
    page.focus("button[data-shortcut=c]")
    page.keyboard.press("Enter")
    expect(page.locator("#flash")).to_be_visible()
    expect(page.locator("button[data-shortcut=c]")).to_be_enabled()
    expect(page.locator("button[data-shortcut=c]")).to_be_focused()


def test_the_focus_stays_on_a_timeline_link_as_the_timeline_reloads(demo, page, live_server):  # noqa: F811
    """The timeline replaces itself when a call changes (calls-changed): the focus stays on the link it was on."""
    user = get_user_model().objects.get(username="agent")
    contact = first_contact_with(is_primary=True)
    call = make_call(user=user, agent=Agent.objects.get(user=user), contact=contact)
    log_in(page, live_server, "agent", "demo", at=f"/contacts/{contact.pk}/")
    details = f"#timeline .timeline-links a[href='/calls/{call.pk}/']"
    page.locator(details).focus()
    page.locator(details).evaluate("link => { link.dataset.before = 'reload'; }")  # the reload draws a new one
    with page.expect_response(lambda r: f"/contacts/{contact.pk}/" in r.url and r.request.method == "GET"):
        page.evaluate("htmx.trigger(document.body, 'calls-changed')")
    expect(page.locator(f"{details}:not([data-before])")).to_be_focused()
    expect(page.locator(details)).to_have_id(f"timeline-details-{call.pk}")
    assert page.console_errors == []
