"""Privacy's pages on a phone: a supervisor reads a contact's data, then erases them from the contact page; an admin
sets the retention days. No page scrolls sideways, and the strict CSP reports nothing."""

from __future__ import annotations

import pytest
from django.db import connection

from calls.models import Contact, ContactPhone, RetentionPolicy
from calls.roles import ADMIN, SUPERVISOR
from tests._calls import make_call
from tests.browser.conftest import log_in
from tests.conftest import PASSWORD, create_contact, create_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 375, "height": 800}


def fits(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], page.url


def test_on_a_phone_a_supervisor_reads_a_contacts_data_then_erases_them(page, live_server):
    priya = create_user("priya", SUPERVISOR)
    contact = create_contact()  # Grace Hopper, +447400123456 and +442079460123
    ContactPhone.objects.filter(contact=contact, label="work").update(do_not_call=True)
    call = make_call(user=priya, contact=contact, to_number="+442079460123", notes="Grace asked for the invoice")

    page.set_viewport_size(PHONE)
    log_in(page, live_server, "priya", PASSWORD, at=f"/contacts/{contact.pk}/")
    page.locator("a", has_text="Their data").click()
    page.wait_for_url(f"**/contacts/{contact.pk}/data/")
    body = page.locator("main").inner_text()
    assert "Grace Hopper" in body and "Grace asked for the invoice" in body
    fits(page)

    page.goto(f"{live_server.url}/contacts/{contact.pk}/")
    page.locator("a", has_text="Erase").click()
    page.wait_for_url(f"**/contacts/{contact.pk}/erase/")
    confirm = page.locator("main").inner_text()
    assert "What goes" in confirm and "What stays" in confirm and "do-not-call number stays blocked" in confirm
    fits(page)
    page.locator("button", has_text="Erase Grace Hopper").click()
    page.wait_for_url("**/contacts/")
    assert "erased" in page.locator("main").inner_text()
    assert not Contact.objects.filter(pk=contact.pk).exists()

    page.goto(f"{live_server.url}/calls/{call.pk}/")
    shown = page.locator("main").inner_text()
    assert "Erased contact" in shown and "+442079460123" not in shown and "7946 0123" not in shown
    call.refresh_from_db()
    if connection.vendor == "postgresql":
        assert call.to_number == "+44 20 •••• •123" and call.notes == ""
    assert page.console_errors == []  # a CSP violation is reported as a console error


def test_on_a_phone_an_admin_sets_the_retention_days(page, live_server):
    create_user("ada", ADMIN)
    page.set_viewport_size(PHONE)
    log_in(page, live_server, "ada", PASSWORD, at="/privacy/retention/")
    fits(page)
    page.fill("#id_notes_days", "90")
    page.fill("#id_mask_days", "365")
    page.locator("button", has_text="Save").click()
    page.locator("main", has_text="saved").wait_for()
    policy = RetentionPolicy.current()
    assert (policy.notes_days, policy.mask_days, policy.audit_days) == (90, 365, None)
    assert page.console_errors == []
