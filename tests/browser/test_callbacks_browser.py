"""Callbacks in a real browser, on a phone: the call bar's wrap-up brings "Call back at" forward when "Call back
later" is chosen (static/js/callbacks.js, under the strict CSP), the promise shows on Today and is closed there."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from calls.models import Agent, Callback, DispositionCode
from tests._calls import make_call
from tests.browser.conftest import log_in
from tests.conftest import PASSWORD, create_agent_user, create_contact

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_on_a_phone_an_agent_promises_a_callback_from_the_bar_and_closes_it_on_today(page, live_server):
    page.on("pageerror", lambda error: page.console_errors.append(f"uncaught: {error}"))
    alex, contact = create_agent_user(), create_contact()
    DispositionCode.objects.get_or_create(code="Call back later")  # the migrations' codes are gone after a flush
    # Ended ten minutes ago, never sent to VCC (no VCC id): the wrap-up is kept here only.
    call = make_call(
        user=alex,
        agent=Agent.objects.get(user=alex),
        contact=contact,
        phone=contact.phones.get(is_primary=True),
        at=timezone.now() - timedelta(minutes=10),
    )
    page.set_viewport_size({"width": 375, "height": 800})
    log_in(page, live_server, "alex", PASSWORD)

    bar = page.locator(f"#bar-call-{call.pk}")
    fields = bar.locator("[data-callback-fields]")
    expect(fields).to_be_hidden()  # folded away behind "Call back…" until wanted
    bar.locator("select[name=disposition]").select_option(label="Call back later")
    expect(fields).to_be_visible()
    expect(fields).to_have_class("callback-fields is-prominent")
    expect(bar.locator("[data-callback-at]")).to_be_focused()
    due = timezone.localtime(timezone.now() + timedelta(days=1)).replace(hour=15, minute=30, second=0, microsecond=0)
    bar.locator("[data-callback-at]").fill(due.strftime("%Y-%m-%dT%H:%M"))
    bar.locator("input[name=callback_note]").fill("Wants the quote")
    bar.locator("button", has_text="Save").click()
    expect(page.locator(f"#bar-call-{call.pk}")).to_have_count(0)  # wrapped up: it leaves the bar

    callback = Callback.objects.get()
    assert callback.due_at == due and callback.assigned_to == alex and callback.note == "Wants the quote"
    page.goto(f"{live_server.url}/")
    row = page.locator(f"#callback-{callback.pk}")
    expect(row).to_contain_text(contact.name)
    expect(row).to_contain_text("Wants the quote")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # the page never scrolls sideways
    row.locator("button", has_text="Done").click()
    expect(page.locator(".messages")).to_contain_text(f"The callback to {contact.name} is done.")
    expect(page.locator("main")).to_contain_text("No callbacks are promised to you")
    callback.refresh_from_db()
    assert callback.state == Callback.State.DONE
    assert not page.console_errors, page.console_errors


def test_on_a_phone_a_callback_time_refused_in_the_bar_is_said_where_it_can_be_read(page, live_server):
    """Three calls to wrap up fill a phone's screen with the bar: the message saying what to fix comes into view."""
    alex, contact = create_agent_user(), create_contact()
    DispositionCode.objects.get_or_create(code="Call back later")  # the migrations' codes are gone after a flush
    calls = [
        make_call(user=alex, agent=Agent.objects.get(user=alex), contact=contact, phone=contact.phones.first(),
                  at=timezone.now() - timedelta(minutes=minutes))
        for minutes in (10, 20, 30)
    ]  # fmt: skip
    page.set_viewport_size({"width": 375, "height": 800})
    log_in(page, live_server, "alex", PASSWORD)

    bar = page.locator(f"#bar-call-{calls[0].pk}")
    bar.locator("select[name=disposition]").select_option(label="Call back later")
    bar.locator("[data-callback-at]").fill("2020-01-01T10:00")  # long past
    bar.locator("button", has_text="Save").click()

    flash = page.locator("#flash")
    expect(flash).to_have_text("Choose a time to call back that is still to come.")
    expect(flash).to_be_in_viewport()
    expect(bar.locator("button", has_text="Save")).to_be_in_viewport()  # and the form to correct, still in sight
    assert not Callback.objects.exists()
    assert [error for error in page.console_errors if "status of 400" not in error] == []  # the 400 is the refusal
