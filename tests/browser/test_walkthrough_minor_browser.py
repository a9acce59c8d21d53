"""The walkthrough's small defects seen in a real browser: contact rows on a phone, the admin's favicon."""

from __future__ import annotations

import pytest

from calls.models import Contact, ContactPhone
from tests.browser.conftest import log_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_contact_row_on_a_phone_is_dense_with_the_call_button_beside_the_name(browser, live_server, agent_user):
    for i in range(6):
        contact = Contact.objects.create(name=f"Person {i}", company=f"Co {i}", email=f"p{i}@example.com")
        ContactPhone.objects.create(contact=contact, number=f"+4474001234{i:02d}", is_primary=True)
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    page = context.new_page()
    log_in(page, live_server, "alex", PASSWORD)
    row = page.locator("#results tbody tr").first
    name = row.locator("td[data-label=Name]").bounding_box()
    button = row.locator("button").bounding_box()
    company = row.locator("td[data-label=Company]").bounding_box()
    number = row.locator("td[data-label=Number]").bounding_box()
    assert name and button and company and number
    assert button["y"] < name["y"] + name["height"]  # the Call button is beside the name, not on a line of its own
    assert abs(company["y"] - number["y"]) < 4  # company and number share a line
    assert row.bounding_box()["height"] < 80
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    context.close()


def test_the_admin_asks_for_no_favicon_that_is_not_there(page, live_server, admin_role_user):
    failed: list[str] = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    page.goto(f"{live_server.url}/admin/calls/callbacknumber/")
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert icon and page.request.get(f"{live_server.url}{icon}").status == 200
    assert failed == [] and page.console_errors == []
