from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from calls.models import Call, Contact, ContactPhone
from tests.browser.conftest import log_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def people(db):
    for i, (name, number) in enumerate([("Grace Hopper", "+442079460123"), ("Alan Turing", "+447400123456")]):
        contact = Contact.objects.create(name=name, company=f"Company {i}")
        ContactPhone.objects.create(contact=contact, number=number, is_primary=True)


def test_an_agent_logs_in_and_finds_a_contact_by_typing_a_number(page, live_server, agent_user, people):
    log_in(page, live_server, "alex", PASSWORD)
    assert page.locator("text=Sandbox").first.is_visible()
    assert page.locator("#results tbody tr").count() == 2
    page.fill("#q", "020 7946 0123")
    expect(page.locator("#results tbody tr")).to_have_count(1)
    assert "q=020" in page.url  # the search is in the address bar, so it can be shared and reloaded
    assert page.locator("#results").inner_text().count("Grace Hopper") == 1
    page.click("text=Grace Hopper")
    assert page.locator("h1").inner_text().startswith("Grace Hopper")
    assert page.console_errors == []  # includes CSP violations: htmx and app.js run under the strict policy


def test_pages_fit_a_phone_sized_screen(browser, live_server):
    call_command("seed_demo", stdout=io.StringIO())  # real data: long emails, several numbers, groups
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    page = context.new_page()
    log_in(page, live_server, "supervisor", "demo")  # sees the most: group choices, delete buttons
    longest = max(Contact.objects.exclude(email=""), key=lambda c: len(c.email) + 10 * c.phones.count())
    for path in [
        "/contacts/",
        f"/contacts/{longest.pk}/",
        "/contacts/new/",
        f"/contacts/{longest.pk}/edit/",
        "/agents/",
    ]:
        page.goto(live_server.url + path)
        # Against the screen, not innerWidth: mobile Chrome widens its layout viewport to fit what overflows.
        overflow = page.evaluate("document.documentElement.scrollWidth") - 375
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px on a phone"
    context.close()


def test_creating_a_contact_with_a_bad_number_keeps_what_was_typed(page, live_server, agent_user):
    log_in(page, live_server, "alex", PASSWORD)
    page.click("text=New contact")
    page.fill("#id_name", "Ada Lovelace")
    page.fill("#id_phones-0-number", "020 7946")
    page.click("button:has-text('Save')")
    assert page.locator("text=is not a valid phone number").is_visible()
    assert page.input_value("#id_name") == "Ada Lovelace"
    page.fill("#id_phones-0-number", "020 7946 0999")
    page.click("button:has-text('Save')")
    page.wait_for_url("**/contacts/*/")
    assert page.locator(".number").inner_text() == "020 7946 0999"


def test_the_timeline_colours_calls_by_outcome_and_shows_older_ones(page, live_server, agent_user, people, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from calls.views import contacts

    monkeypatch.setattr(contacts, "TIMELINE_LENGTH", 2)  # the live server runs in this process
    grace = Contact.objects.get(name="Grace Hopper")
    outcomes = [Call.Outcome.BUSY, Call.Outcome.ANSWERED, Call.Outcome.NO_ANSWER]
    for minutes, outcome in enumerate(outcomes):
        call = Call.objects.create(
            contact=grace, to_number="+442079460123", created_by=agent_user, from_agent=agent_user.agent,
            state=Call.State.ENDED, outcome=outcome,
        )  # fmt: skip
        Call.objects.filter(pk=call.pk).update(requested_at=timezone.now() - timedelta(minutes=minutes + 1))
    log_in(page, live_server, "alex", PASSWORD)
    page.goto(f"{live_server.url}/contacts/{grace.pk}/")
    items = page.locator(".timeline-item")
    expect(items).to_have_count(2)

    page.click("text=Show older calls")
    expect(items).to_have_count(3)
    expect(page.locator("#timeline-more")).to_have_count(0)  # nothing older
    colours = items.evaluate_all("items => items.map(i => getComputedStyle(i).borderLeftColor)")
    green = "rgb(27, 127, 59)"  # --ok
    assert [c == green for c in colours] == [False, True, False]  # only the answered call looks answered
    assert colours[0] == colours[2]  # busy and not answered alike
    assert page.console_errors == []
