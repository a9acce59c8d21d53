"""In a real browser: import a small file with a bad row and a duplicate, fix them in the preview, find the
contacts; the contact form adds number rows without a save; long names do not widen a phone's screen."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from calls.models import Contact, ContactPhone
from tests.browser.conftest import log_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CSV = """Full name,Organisation,E-mail,Mobile phone
Ada Lovelace,Analytical Engines,ada@example.com,07400 555001
Charles Babbage,Analytical Engines,charles@example.com,0740 bad
Grace H.,Cobalt Dental,grace.new@example.com,020 7946 0123
"""


@pytest.fixture(autouse=True)
def _inline_jobs(settings):
    settings.CONTACT_IMPORT_BACKGROUND = False


@pytest.fixture
def grace(db) -> Contact:
    contact = Contact.objects.create(name="Grace Hopper", company="Cobalt Dental")
    ContactPhone.objects.create(contact=contact, number="+442079460123", is_primary=True)
    return contact


def test_an_import_with_a_bad_row_and_a_duplicate_is_fixed_in_the_preview(
    page, live_server, agent_user, grace, tmp_path
):
    log_in(page, live_server, "alex", PASSWORD)
    page.click("text=Import")
    upload = tmp_path / "people.csv"
    upload.write_text(CSV)
    page.set_input_files("#id_file", str(upload))
    page.click("text=Check the file")

    # The preview: one row ready, row 3 has a bad number, row 4 is Grace Hopper's number.
    expect(page.locator(".summary")).to_contain_text("1 ready to add")
    expect(page.locator("#row-3")).to_contain_text("0740 bad")
    expect(page.locator("#dup-4")).to_contain_text("Grace Hopper")
    assert Contact.objects.count() == 1  # nothing written yet

    # Fix row 3 where it is shown.
    page.locator("#row-3 input[name='r3-c3']").fill("07400 555002")
    page.click("text=Correct row 3")
    expect(page.locator(".summary")).to_contain_text("2 ready to add")
    expect(page.locator("#row-3")).to_have_count(0)

    # Row 4 updates Grace Hopper instead of being skipped.
    page.locator("#dup-4").get_by_label("Update the existing contact").check()
    page.click("button:has-text('Import 2 contacts')")
    expect(page.locator(".import-done")).to_contain_text("2 contacts added, 1 updated")

    page.click("text=See the contacts")
    page.fill("#q", "Analytical")
    expect(page.locator("#results tbody tr")).to_have_count(2)
    page.fill("#q", "555002")
    expect(page.locator("#results tbody tr")).to_have_count(1)
    expect(page.locator("#results")).to_contain_text("Charles Babbage")
    page.fill("#q", "grace.new")
    expect(page.locator("#results")).to_contain_text("Grace H.")
    assert page.console_errors == []


def test_the_contact_form_adds_number_rows_without_a_save(page, live_server, agent_user):
    log_in(page, live_server, "alex", PASSWORD)
    page.click("text=New contact")
    page.fill("#id_name", "Three Numbers")
    page.fill("#id_phones-0-number", "07400 555101")
    page.click("text=Add another number")
    page.fill("#id_phones-1-number", "020 7946 0301")
    page.click("text=Add another number")
    page.fill("#id_phones-2-number", "020 7946 0302")
    page.click("button:has-text('Save')")
    expect(page.locator("h1")).to_contain_text("Three Numbers")
    assert Contact.objects.get(name="Three Numbers").phones.count() == 3
    assert page.console_errors == []


def test_a_long_name_and_email_fit_a_phone_and_the_email_column_hides(browser, live_server, agent_user):
    contact = Contact.objects.create(name="N" * 162, company="C" * 120, email=("e" * 60) + "@example.com")
    ContactPhone.objects.create(contact=contact, number="+442079460111", is_primary=True)
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    page = context.new_page()
    log_in(page, live_server, "alex", PASSWORD, at=None)
    for path in ["/contacts/", f"/contacts/{contact.pk}/", f"/contacts/{contact.pk}/edit/", "/contacts/import/"]:
        page.goto(live_server.url + path)
        overflow = page.evaluate("document.documentElement.scrollWidth") - 375
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px on a phone"
    page.goto(live_server.url + "/contacts/")
    assert not page.locator("td.hide-sm").first.is_visible()
    # The placeholder fits its box.
    fits = page.evaluate(
        """() => { const q = document.getElementById('q'); const c = document.createElement('canvas').getContext('2d');
        c.font = getComputedStyle(q).font; return c.measureText(q.placeholder).width <= q.clientWidth; }"""
    )
    assert fits
    context.close()
