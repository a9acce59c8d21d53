"""/audit/ on a phone: an admin reads an entry's before and after without sideways scrolling of the page, and
filters by person (strict CSP: no inline style or script on the way)."""

from __future__ import annotations

import pytest
from django.db import connection

from calls import audit
from calls.roles import ADMIN
from tests.browser.conftest import log_in
from tests.conftest import PASSWORD, create_contact, create_user

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the audit trail's triggers are PostgreSQL's"),
]


def test_on_a_phone_an_admin_reads_a_change_and_filters_by_person(page, live_server):
    create_user("ada", ADMIN)
    alex = create_user("alex", "agent")
    contact = create_contact()
    with audit.acting(user_id=alex.pk, request_id="req-browser-0001"):
        contact.notes = "Prefers mornings; " + "a long note that must wrap rather than widen the page " * 4
        contact.save()

    page.set_viewport_size({"width": 375, "height": 800})
    log_in(page, live_server, "ada", PASSWORD, at="/audit/")
    row = page.locator("tr", has_text="contact.update")
    row.wait_for()
    assert "alex" in row.inner_text() and "Prefers mornings" in row.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # the page itself never scrolls sideways

    page.locator("summary", has_text="Filters").click()
    page.fill("#id_person", "ada")
    page.locator("button", has_text="Show entries").click()
    page.wait_for_url("**/audit/?person=ada*")
    page.locator("#results", has_text="login").wait_for()
    assert "contact.update" not in page.locator("#results").inner_text()
    assert page.console_errors == []  # a CSP violation is reported as a console error


def test_on_a_phone_an_imports_entry_named_by_its_long_id_wraps_rather_than_widening_the_page(page, live_server):
    from calls.models import AuditEntry

    create_user("ada", ADMIN)
    import_id = "0d4767a3-9dbe-42b0-92a4-b8647b2dae39"  # an import is named by its UUID
    AuditEntry.objects.create(
        actor_name="ada", request_id=f"import:{import_id}", kind="import", object_type="import", object_id=import_id
    )

    page.set_viewport_size({"width": 375, "height": 800})
    log_in(page, live_server, "ada", PASSWORD, at="/audit/")
    page.locator("td", has_text=f"import {import_id}").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # the page itself never scrolls sideways
    assert page.console_errors == []
