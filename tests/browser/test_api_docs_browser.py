"""The API's docs page (/api/v1/docs) in Chromium: django-ninja's Swagger UI from vccweb's own static files, under
the strict CSP, lists the operations and authorizes with a token; no console error (a CSP violation is one)."""

from __future__ import annotations

import pytest

from calls.models import ApiToken, DispositionCode
from calls.roles import AGENT
from tests.conftest import create_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_docs_page_shows_the_api_and_tries_a_call_with_a_token(page, live_server):
    DispositionCode.objects.create(code="SALE", description="Sold", position=1)
    _, token = ApiToken.issue(create_user("dev", AGENT), name="docs", scopes=["calls:read"])
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))

    page.goto(f"{live_server.url}/api/v1/docs")

    page.get_by_text("vccweb API").first.wait_for()
    assert page.locator(".sandbox").is_visible()  # the tests run in sandbox mode, as every page says
    operation = page.locator(".opblock-summary-path", has_text="/api/v1/dispositions").first
    operation.wait_for()
    page.click("button.authorize")
    page.fill(".auth-container input", token)
    page.click(".auth-btn-wrapper button.authorize")
    page.click("button.btn-done")
    operation.click()
    page.click("button.try-out__btn")
    page.click("button.execute")
    page.locator(".live-responses-table .response-col_status", has_text="200").first.wait_for()
    assert "SALE" in page.locator(".live-responses-table").inner_text()
    assert all(url.startswith(live_server.url) for url in requests), [u for u in requests if live_server.url not in u]
    assert page.console_errors == [], page.console_errors
