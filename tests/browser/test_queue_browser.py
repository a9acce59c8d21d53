"""Working a call queue in a real browser with the keyboard only: Start, call with "c", wrap up with "w", the next
contact with "n", skip with "s"; three contacts, vccsim as its own server on its own clock."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from calls.models import Agent, Call, Callback, CallQueue, Contact, ContactPhone, QueueEntry
from calls.queues import building
from tests.browser.conftest import log_in
from tests.browser.test_calling_browser import sim, vccsim_server  # noqa: F401  (the fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def quick_queue_bar(settings):
    settings.QUEUE_BAR_POLL_MS = 300  # the bar's refresh, as the call panel's is quickened for these tests


@pytest.fixture
def queue(db) -> CallQueue:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    Callback.objects.all().delete()  # the demo agent's due callbacks would come first (tests/test_queues_working.py)
    for i, name in enumerate(["Ada Keys", "Ben Keys", "Cleo Keys"]):
        contact = Contact.objects.create(name=name, company="Keyboard Ltd")
        ContactPhone.objects.create(contact=contact, number=f"+4420794601{50 + i}", is_primary=True)
    made = building.make_queue(
        user=None,  # type: ignore[arg-type]
        name="Keyboard leads",
        now=timezone.now(),
        source_filter={"company": "Keyboard Ltd"},
        agents=Agent.objects.filter(user__username="agent"),
    )
    return made.queue


def tab_to(page, selector: str, limit: int = 60) -> None:
    """Press Tab until the element matching selector has the focus, as a keyboard user would."""
    for _ in range(limit):
        if page.evaluate(f"document.activeElement && document.activeElement.matches({selector!r})"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def test_an_agent_works_three_contacts_with_the_keyboard_only(queue, page, live_server, sim):  # noqa: F811
    log_in(page, live_server, "agent", "demo", at="/queues/")
    tab_to(page, f"#queue-{queue.pk} button[data-queue-start]")  # the demo has a queue of its own too
    page.keyboard.press("Enter")

    # Ada: answered, wrapped up "Interested": reached.
    bar = page.locator("#queue-bar")
    expect(page.locator("h1")).to_contain_text("Ada Keys")
    expect(bar).to_contain_text("Contact 1 of 3")
    sim.post("next-outcome", {"outcome": "answered", "talkSeconds": 20})
    page.keyboard.press("c")
    expect(page.locator(".call-panel")).to_have_attribute("data-call-state", "live")
    sim.advance(9)
    sim.advance(25)
    expect(page.locator(".call-panel .phase")).to_have_text("Call ended", timeout=10_000)
    page.keyboard.press("w")
    expect(page.locator(".wrapup select[name=disposition]")).to_be_focused()
    page.keyboard.type("Interested")
    tab_to(page, ".wrapup button[type=submit]")
    page.keyboard.press("Enter")
    expect(bar).to_contain_text("Reached: done.", timeout=10_000)
    page.keyboard.press("n")

    # Ben: nobody answers: back after the wait, no wrap-up asked.
    expect(page.locator("h1")).to_contain_text("Ben Keys")
    expect(bar).to_contain_text("Contact 2 of 3")
    sim.post("next-outcome", {"outcome": "no_answer"})
    page.keyboard.press("c")
    expect(page.locator(".call-panel")).to_have_attribute("data-call-state", "live")
    sim.advance(40)
    expect(bar).to_contain_text("Back after the wait.", timeout=10_000)
    page.keyboard.press("n")

    # Cleo: skipped with a reason, typed after "s".
    expect(page.locator("h1")).to_contain_text("Cleo Keys")
    page.keyboard.press("s")
    expect(page.locator("#queue-skip-reason")).to_be_focused()
    page.keyboard.type("Asked to be called next week")
    page.keyboard.press("Enter")
    expect(page.locator(".messages")).to_contain_text("Nobody to call right now")

    states = dict(QueueEntry.objects.filter(queue=queue).values_list("contact__name", "state"))
    assert states == {"Ada Keys": "reached", "Ben Keys": "waiting", "Cleo Keys": "waiting"}
    assert QueueEntry.objects.get(contact__name="Cleo Keys").skip_reason == "Asked to be called next week"
    assert Call.objects.filter(queue_attempt__queue=queue).count() == 2
    assert not page.console_errors, page.console_errors


def test_on_a_phone_a_supervisor_makes_a_queue_from_the_contact_list_and_reads_its_report(queue, page, live_server):
    page.set_viewport_size({"width": 375, "height": 800})
    log_in(page, live_server, "supervisor", "demo", at="/contacts/?company=Keyboard+Ltd")
    page.locator("[data-make-queue]").click()
    expect(page.locator(".source-words")).to_contain_text("Every contact at Keyboard Ltd")
    page.fill("#id_name", "Keyboard callers")
    page.get_by_label("Sales UK").check()
    page.locator("button", has_text="Make the queue").click()
    expect(page.locator(".messages")).to_contain_text("Made Keyboard callers with 3 contacts.")
    expect(page.locator("#progress-title")).to_be_visible()
    expect(page.locator("svg.chart")).to_be_visible()  # contacts by attempts
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # the report never scrolls sideways
    page.locator("a", has_text="Every contact in the queue").click()
    expect(page.locator("main")).to_contain_text("Cleo Keys")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert not page.console_errors, page.console_errors
