"""The Webhooks page in a browser, on a desk (1280 px) and a phone (375 px): an admin adds an endpoint, sees its
secret once and copies it, then pauses the endpoint; rotates a secret that has five previous ones signing, warned
first; under the strict CSP (no inline script), no console error."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from calls.models.webhooks import MAX_PREVIOUS_SECRETS, WebhookEndpoint
from calls.roles import ADMIN
from calls.webhooks import endpoints, safety, signing
from tests.browser.conftest import log_in
from tests.conftest import PASSWORD, create_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1280, 375])
def test_an_admin_adds_an_endpoint_sees_its_secret_once_and_pauses_it(page, live_server, monkeypatch, width):
    monkeypatch.setattr(safety, "resolve", lambda host, port: {"hooks.example.com": ["93.184.215.14"]}[host])
    create_user("ada", ADMIN)
    page.set_viewport_size({"width": width, "height": 900})
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    log_in(page, live_server, "ada", PASSWORD)

    page.click("header >> text=Webhooks")
    page.wait_for_url(f"{live_server.url}/integrations/webhooks/")
    assert "No endpoints yet" in page.locator(".empty").inner_text()
    page.click("text=Add an endpoint")
    page.fill("#id_url", "https://hooks.example.com/vccweb")
    page.fill("#id_description", "Helpdesk")
    page.check("input[value='call.*']")
    page.check("input[value='contact.created']")
    page.click("button:has-text('Add the endpoint')")

    box = page.locator("#new-secret")
    secret = box.input_value()
    endpoint = WebhookEndpoint.objects.get()
    assert secret == endpoint.secret and secret.startswith("whsec_")
    assert endpoint.event_types == ["call.*", "contact.created"]
    assert "only time it is shown" in page.locator(".new-token").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # never scrolls sideways
    page.click("button[data-copy]")
    # A locator's wait, not wait_for_function: a string predicate polled again is eval'd, which the CSP refuses.
    page.locator("button[data-copy]", has_text=re.compile(r"^Copied$")).wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == secret

    page.goto(f"{live_server.url}/integrations/webhooks/")  # shown once: not on the page again
    assert page.locator("#new-secret").count() == 0 and secret not in page.content()
    row = page.locator(f"#endpoint-{endpoint.pk}")
    assert "Helpdesk" in row.inner_text() and "on" in row.locator(".badge").inner_text()
    row.locator("button:has-text('Pause')").click()
    page.locator(".messages", has_text="Paused Helpdesk").wait_for()
    assert "paused" in page.locator(f"#endpoint-{endpoint.pk} .badge").first.inner_text()
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    assert page.locator(f"#endpoint-{endpoint.pk} button:has-text('Resume')").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    page.click(f"#endpoint-{endpoint.pk} >> text=Log")
    page.wait_for_url(f"{live_server.url}/integrations/webhooks/{endpoint.pk}/")
    assert "Nothing sent to it yet" in page.locator(".empty").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert page.console_errors == []  # a CSP violation is reported as a console error


@pytest.mark.parametrize("width", [1280, 375])
def test_the_rotation_warns_before_it_stops_the_oldest_of_five_previous_secrets(page, live_server, width):
    """Each previous secret's end is listed; the confirmation says which one the next rotation stops; no sideways
    scroll on a phone."""
    create_user("ada", ADMIN)
    endpoint = WebhookEndpoint.objects.create(
        url="https://hooks.example.com/vccweb", description="Helpdesk", event_types=["*"], secret=signing.new_secret()
    )
    original = endpoint.secret
    for _ in range(MAX_PREVIOUS_SECRETS):
        endpoints.rotate(endpoint, by="test")
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, live_server, "ada", PASSWORD)

    page.goto(f"{live_server.url}/integrations/webhooks/{endpoint.pk}/")
    signing_line = page.locator("dd.signing")
    assert "5 previous ones" in signing_line.inner_text() and signing_line.locator("time").count() == 5
    page.click("summary:has-text('Rotate the secret')")
    warning = page.locator("form[action$='/rotate/'] p")
    assert "rotating now stops the oldest at once" in warning.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.click("button:has-text('Make a new secret')")

    shown = page.locator("#new-secret").input_value()
    endpoint.refresh_from_db()
    assert shown == endpoint.secret and original not in endpoint.signing_secrets(timezone.now())
    assert page.locator("dd.signing time").count() == 5
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert page.console_errors == []


def _gap(page, upper: str, lower: str) -> float:
    """The space between the bottom of the first element `upper` matches and the top of the first `lower` matches."""
    above = page.locator(upper).first.bounding_box()
    return page.locator(lower).first.bounding_box()["y"] - (above["y"] + above["height"])


def test_an_endpoints_page_is_not_crowded_on_a_phone(page, live_server):
    """At 375 px: the head's buttons, the endpoint's details and its buttons, the replay's field and its help, the
    filters and the log each keep some room, and an attempt's "12 ms" or "1 attempt" is not cut in two."""
    from calls.models.webhooks import WebhookAttempt, WebhookDelivery
    from tests.test_webhooks_pages import delivery

    create_user("ada", ADMIN)
    endpoint = WebhookEndpoint.objects.create(
        url="https://hooks.example.com/vccweb", description="Helpdesk", event_types=["*"], secret=signing.new_secret()
    )
    failed = delivery(endpoint, type="contact.created", subject="contact:7", status=WebhookDelivery.Status.FAILED)
    WebhookAttempt.objects.create(delivery=failed, status_code=500, duration_ms=12, response_snippet="boom")
    page.set_viewport_size({"width": 375, "height": 900})
    log_in(page, live_server, "ada", PASSWORD, at=f"/integrations/webhooks/{endpoint.pk}/")

    assert _gap(page, ".page-head .actions", "section[aria-labelledby=endpoint-title]") >= 8
    assert _gap(page, "dl.details", "summary:has-text('Rotate the secret')") >= 8
    assert _gap(page, "#id_since", ".replay .field small") >= 0  # the help under the field, not squeezed beside it
    assert _gap(page, ".log-filters", "table.deliveries") >= 8
    line = page.evaluate("parseFloat(getComputedStyle(document.querySelector('.deliveries td')).lineHeight)")
    for words in ("12 ms", "1 attempt"):
        assert page.locator(".deliveries span.muted", has_text=words).first.bounding_box()["height"] <= line + 1, words
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.console_errors == []
