"""The API tokens page on a phone: make a token, see it once, copy it with the Copy button, revoke it after
confirming; under the strict CSP (no inline script or style), with no console error."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from calls.models import ApiToken
from calls.models.api import digest
from calls.roles import AGENT
from tests.browser.conftest import log_in
from tests.conftest import PASSWORD, create_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_on_a_phone_a_person_makes_copies_and_revokes_a_token(page, live_server):
    create_user("alex", AGENT)
    page.set_viewport_size({"width": 375, "height": 800})
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    log_in(page, live_server, "alex", PASSWORD)

    page.click("header >> text=API tokens")
    page.wait_for_url(f"{live_server.url}/profile/tokens/")
    assert page.locator(".empty").inner_text() == "You have no API tokens yet."
    page.fill("#id_name", "Helpdesk")
    page.check("input[value='calls:read']")
    page.fill("#id_expires_in_days", "30")
    page.click("button:has-text('Make a token')")

    box = page.locator("#new-token")
    token = box.input_value()
    row = ApiToken.objects.get(name="Helpdesk")
    assert row.digest == digest(token) and row.scopes == ["calls:read"]
    assert "only time it is shown" in page.locator(".new-token").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # the page never scrolls sideways

    copy = page.locator("button[data-copy]")
    assert copy.inner_text() == "Copy"
    copy.click()
    # A locator's wait, not wait_for_function: a string predicate polled again is eval'd, which the CSP refuses.
    page.locator("button[data-copy]", has_text=re.compile(r"^Copied$")).wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == token
    assert Client().get("/api/v1/dispositions", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    page.goto(f"{live_server.url}/profile/tokens/")  # shown once: not on the page again
    assert page.locator("#new-token").count() == 0 and token not in page.content()
    listed = page.locator(f"#token-{row.pk}")
    assert row.prefix in listed.inner_text() and "active" in listed.inner_text()
    revoke_now = listed.locator("button[type=submit]")
    assert not revoke_now.is_visible()  # asks first
    listed.locator("summary", has_text="Revoke…").click()
    assert "Whatever uses it is refused" in listed.inner_text()
    revoke_now.click()

    page.locator(".messages", has_text=f"Revoked Helpdesk ({row.prefix}…)").wait_for()
    assert "revoked" in page.locator(f"#token-{row.pk}").inner_text()
    assert page.locator(f"#token-{row.pk} summary").count() == 0
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert Client().get("/api/v1/dispositions", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.console_errors == []  # a CSP violation is reported as a console error


def test_on_a_phone_a_tokens_scopes_wrap_after_their_commas_never_before(page, live_server):
    user = create_user("alex", AGENT)
    ApiToken.objects.create(
        user=user, name="Everything", prefix="vcc_0000aaaa", digest="0" * 64,
        scopes=["calls:read", "calls:write", "contacts:read", "contacts:write"],
    )  # fmt: skip
    page.set_viewport_size({"width": 375, "height": 800})
    log_in(page, live_server, "alex", PASSWORD, at="/profile/tokens/")

    # The scopes take several lines at this width: no line of them may start with the comma of the one before.
    lines = page.evaluate(
        """() => {
          const codes = [...document.querySelectorAll('.scope-list code')];
          const top = c => c.getClientRects()[0].top;
          return codes.filter((c, i) => i === 0 || top(c) > top(codes[i - 1]) + 1)  // the first on each line
            .map(c => getComputedStyle(c, '::before').content + c.textContent);
        }"""
    )
    assert len(lines) > 1, lines
    assert all(not line.startswith('", ') for line in lines), lines
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # and the page never scrolls sideways
    assert page.console_errors == []
