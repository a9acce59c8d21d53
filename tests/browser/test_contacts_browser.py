from __future__ import annotations

import io
import itertools
import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from calls.models import Agent, Call, Contact, ContactPhone
from tests._calls import make_call
from tests.browser.conftest import log_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def people(db):
    for i, (name, number) in enumerate([("Grace Hopper", "+442079460123"), ("Alan Turing", "+447400123456")]):
        contact = Contact.objects.create(name=name, company=f"Company {i}")
        ContactPhone.objects.create(contact=contact, number=number, is_primary=True)


def test_an_agent_logs_in_and_finds_a_contact_by_typing_a_number(page, live_server, agent_user, people):
    log_in(page, live_server, "alex", PASSWORD, via_form=True)
    expect(page.locator("h1")).to_have_text("Today")  # an agent lands on their callbacks and queues
    expect(page.locator("text=Sandbox").first).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Contacts").click()
    expect(page.locator("#results tbody tr")).to_have_count(2)
    page.fill("#q", "020 7946 0123")
    expect(page.locator("#results tbody tr")).to_have_count(1)
    assert "q=020" in page.url  # the search is in the address bar, so it can be shared and reloaded
    assert page.locator("#results").inner_text().count("Grace Hopper") == 1
    page.click("text=Grace Hopper")
    expect(page.locator("h1")).to_have_text(re.compile(r"^Grace Hopper"))
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
        expect(page.get_by_text("checking…")).to_have_count(0)  # readiness filled in: the page at its widest
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
    expect(page.locator("text=is not a valid phone number")).to_be_visible()  # waits for the answer to the POST
    assert page.input_value("#id_name") == "Ada Lovelace"
    page.fill("#id_phones-0-number", "020 7946 0999")
    page.click("button:has-text('Save')")
    page.wait_for_url(re.compile(r"/contacts/\d+/$"))
    expect(page.locator(".number")).to_have_text("020 7946 0999")


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
    log_in(page, live_server, "alex", PASSWORD, at=f"/contacts/{grace.pk}/")
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


# Each email cell of the list as rendered: its address, its lines (characters grouped by where they are drawn), and
# whether it had to wrap: wider, on one line in its own font, than the cell.
_EMAIL_LINES = """() => [...document.querySelectorAll('#results td[data-label="Email"]')].map(td => {
  const range = document.createRange(), walker = document.createTreeWalker(td, NodeFilter.SHOW_TEXT), lines = [];
  let top = null;
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (let i = 0; i < node.length; i++) {
      range.setStart(node, i); range.setEnd(node, i + 1);
      const y = Math.round(range.getClientRects()[0].top);
      if (y !== top) { lines.push(''); top = y; }
      lines[lines.length - 1] += node.data[i];
    }
  }
  const style = getComputedStyle(td), canvas = document.createElement('canvas').getContext('2d');
  canvas.font = style.font;
  const room = td.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const selection = getSelection();
  selection.selectAllChildren(td);
  const copied = selection.toString();
  selection.removeAllRanges();
  return {email: td.textContent, lines, mustWrap: canvas.measureText(td.textContent).width > room, copied};
})"""

# Whatever sits in a cell of the list and reaches past its edge (over the next column or off the page).
_SPILLS = """() => [...document.querySelectorAll('#results td')].flatMap(td => {
  const cell = td.getBoundingClientRect();
  return [...td.querySelectorAll('*')].filter(el => el.getBoundingClientRect().right > cell.right + 0.5)
    .map(el => el.textContent);
})"""


@pytest.mark.parametrize("width", [1280, 1440])
def test_on_a_desktop_emails_wrap_only_after_the_at_or_before_a_dot(browser, live_server, width):
    call_command("seed_demo", stdout=io.StringIO())  # real data: addresses of 25 to 33 characters
    longest = [
        "grace.hopper@brightwater-energy.co.uk",
        "maximilian.featherstonehaugh@cholmondeley-marjoribanks.example.org",
    ]
    for i, email in enumerate(longest):
        contact = Contact.objects.create(name=f"Aaron Long {i}", company="Brightwater Energy", email=email)  # page 1
        ContactPhone.objects.create(contact=contact, number=f"+1212555018{i}", is_primary=True)
        call = Call.objects.create(
            to_number="+12125550180", contact=contact, state=Call.State.ENDED, outcome=Call.Outcome.NOT_CONFIRMED
        )
        Contact.objects.note_call(call)  # the longest outcome: "Not confirmed: may have been placed"
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    log_in(page, live_server, "supervisor", "demo")

    cells = page.evaluate(_EMAIL_LINES)
    assert len(cells) == 25
    assert {cell["email"] for cell in cells} >= set(longest)
    for cell in cells:
        email, lines = cell["email"], cell["lines"]
        assert "".join(lines) == email and cell["copied"] == email  # nothing added, nothing lost
        assert len(lines) == 1 or cell["mustWrap"], f"{email} wraps though it fits: {lines}"
        for line, after in itertools.pairwise(lines):
            assert line.endswith("@") or after.startswith("."), f"{email} breaks inside a word: {lines}"
    assert any(len(cell["lines"]) > 1 for cell in cells)  # the test saw addresses wrap
    assert page.evaluate(_SPILLS) == []
    overflow = page.evaluate("document.documentElement.scrollWidth") - width
    assert overflow <= 0, f"the contact list scrolls sideways by {overflow}px"
    context.close()


def test_a_timeline_number_stays_on_one_line_on_a_phone(page, live_server, agent_user):
    contact = Contact.objects.create(name="Grace Hopper")
    phone = ContactPhone.objects.create(contact=contact, number="+447400123456", is_primary=True)
    # Callers' names of every length, so that for some the line ends where the number is.
    for n in range(1, 25):
        agent = Agent.objects.create(display_id=f"2{n:03d}", name="Callum " + "W" * n)
        make_call(user=None, agent=agent, contact=contact, phone=phone, duration_seconds=n)
    page.set_viewport_size({"width": 375, "height": 800})
    log_in(page, live_server, "alex", PASSWORD, at=f"/contacts/{contact.pk}/")

    numbers = page.locator("#timeline .timeline-number")
    expect(numbers).to_have_count(24)
    line = page.evaluate("parseFloat(getComputedStyle(document.querySelector('#timeline .muted')).lineHeight)")
    heights = [box["height"] for box in (numbers.nth(i).bounding_box() for i in range(24))]
    assert all(height <= line + 1 for height in heights), (line, heights)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
