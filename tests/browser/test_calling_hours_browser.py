"""Calling hours in a real browser: outside a number's hours a supervisor's "Call anyway" needs a reason for each
override the number needs (do-not-call and the hours), checked before anything is sent; an agent's button is
disabled and says why."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from calls.models import Call, ContactPhone, Holiday
from tests.browser.conftest import log_in
from tests.browser.test_calling_browser import demo, first_contact_with, sim, vccsim_server  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.calling_hours]


@pytest.fixture
def holiday(db):
    """Today and the days either side are a holiday everywhere: every number is outside its calling hours."""
    today = timezone.now().date()
    for days in (-1, 0, 1):
        Holiday.objects.create(country="", date=today + timedelta(days=days), name="Test day")


def test_a_supervisor_gives_both_reasons_before_calling_anyway(demo, holiday, page, live_server, sim):  # noqa: F811
    phone = first_contact_with(is_primary=True, number__startswith="+44").phones.get(is_primary=True)
    ContactPhone.objects.filter(pk=phone.pk).update(do_not_call=True)
    log_in(page, live_server, "supervisor", "demo", at=f"/contacts/{phone.contact_id}/")
    sent = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" and r.url.endswith("/call/") else None)
    expect(page.locator("#dialer")).to_contain_text("a holiday there (Test day)")
    anyway = page.locator(f"button[value='me:{phone.pk}']")

    page.fill(f"#dnc_reason_{phone.pk}", "They asked us to call")
    anyway.click()

    hours_reason = page.locator(f"#hours_reason_{phone.pk}")
    expect(hours_reason).to_be_focused()
    assert "outside their calling hours" in hours_reason.evaluate("input => input.validationMessage")
    assert sent == []

    hours_reason.fill("They asked for today")
    anyway.click()

    expect(page.locator("#call-slot")).to_contain_text("Ringing")
    call = Call.objects.get()
    assert call.dnc_override_reason == "They asked us to call"
    assert call.hours_override_reason == "They asked for today"


def test_an_agents_call_button_is_disabled_and_says_why(demo, holiday, page, live_server, sim):  # noqa: F811
    contact = first_contact_with(is_primary=True, number__startswith="+44")
    log_in(page, live_server, "agent", "demo", at=f"/contacts/{contact.pk}/")

    button = page.locator("#dialer li.phone").first.locator("button", has_text="Call").first
    expect(button).to_be_disabled()
    expect(button).to_have_attribute("title", re.compile(r"a holiday there \(Test day\)"))
    expect(page.locator("#dialer")).to_contain_text("Only a supervisor can call it now.")
