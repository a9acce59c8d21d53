"""Accessibility in a real browser, where the HTML alone cannot tell (tests/test_accessibility.py has the rest): what a
screen reader's status region says, and where the keyboard's focus is as htmx swaps parts of the page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.browser.test_calling_browser import demo, sim, vccsim_server  # noqa: F401

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
