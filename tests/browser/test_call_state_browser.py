"""Honest call state in a real browser, at 1280 and 375 px: the simulator stopped mid-call and started again (the
panel says it lost contact, then recovers), and a group call answered by another agent (who is shown, and whose
session gets the wrap-up). The app runs on a real port and vccsim in its own process, over real sockets."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from calls.models import Call, ContactPhone
from calls.models import calls as calls_models
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


class SimProcess:
    """`python -m vccsim` in a process of its own, which a test may stop and start again on the same port."""

    def __init__(self) -> None:
        self.port = 0
        self.process: subprocess.Popen[str] | None = None
        self.base = ""

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vccsim", "--port", str(self.port), "--quiet"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline()  # blocks until vccsim serves, or exits
        found = re.search(r"vccsim serving (\S+)", first)
        if found is None:
            self.process.kill()
            raise RuntimeError(f"vccsim did not start: {first}")
        self.base = found.group(1)
        self.port = int(self.base.rsplit(":", 1)[1])

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def control(self, path: str, body: dict | None = None) -> dict:
        response = httpx.post(f"{self.base}/_sim/{path}", json=body or {}, timeout=5)
        response.raise_for_status()
        return response.json()

    def advance(self, seconds: float) -> None:
        self.control("clock/advance", {"seconds": seconds})


@pytest.fixture
def sim(settings) -> Iterator[SimProcess]:
    simulator = SimProcess()
    simulator.start()
    settings.VCC_SANDBOX = False
    settings.VCC_TRANSPORT = ""
    settings.VCC_BASE_URL = settings.VCC_AUTH_URL = settings.VCC_GATEWAY_URL = simulator.base
    settings.VCC_ACCOUNT_KEY = "sandbox01"
    settings.VCC_API_TOKEN = "sandbox-api-token"
    yield simulator
    simulator.stop()


@pytest.fixture
def demo(db) -> None:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115


def new_page(browser, width: int):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    return context, page


def a_contact() -> ContactPhone:
    return ContactPhone.objects.filter(
        contact__do_not_call=False, do_not_call=False, is_primary=True, number__startswith="+44"
    ).first()


def test_the_panel_says_it_lost_contact_while_vcc_is_stopped_then_recovers(
    demo, browser, live_server, sim, monkeypatch
):
    """At 1280 px, then at 375 px while contact is lost and after it comes back (one call, both widths)."""
    # The restarted simulator no longer knows the call: after 20 s of such answers (wall clock) the app would end it,
    # and a test held up that long on a busy machine would read "Ended" where it checks "Connected".
    monkeypatch.setattr(calls_models, "MISSING_GRACE", timedelta(hours=1))
    phone = a_contact()
    sim.control("next-outcome", {"outcome": "answered", "talkSeconds": 3600})
    context, page = new_page(browser, 1280)
    try:
        log_in(page, live_server, "agent", "demo", at=f"/contacts/{phone.contact_id}/")
        page.click("button[data-shortcut=c]")
        panel = page.locator(".call-panel")
        expect(panel).to_have_attribute("data-call-state", "live")
        sim.advance(9)  # the agent answers, then the contact
        expect(panel.locator(".phase")).to_contain_text("Connected", timeout=15_000)
        expect(panel.locator("[data-talk-since]")).to_have_count(1)

        sim.stop()  # VCC cannot be asked any more

        phase = panel.locator(".phase")
        expect(phase).to_contain_text(
            re.compile(r"Lost contact with VCC: status unknown since \d\d:\d\d"), timeout=20_000
        )
        expect(panel.locator(".pulse")).to_have_count(0)
        expect(panel.locator("[data-talk-since]")).to_have_count(0)
        call = Call.objects.get()
        assert call.lost_contact_since is not None and call.state == Call.State.LIVE
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        page.set_viewport_size({"width": 375, "height": 900})  # the same words on a phone
        # It stays said on the following polls (each answered without asking VCC again so soon).
        for _ in range(2):
            with page.expect_response(lambda r: "/panel/" in r.url, timeout=10_000):
                pass
            expect(phase).to_contain_text("Lost contact with VCC")

        sim.start()  # on the same port: VCC answers again (it no longer knows the call, but it answers)

        expect(phase).not_to_contain_text("Lost contact", timeout=20_000)
        expect(phase).to_contain_text("Connected")
        call.refresh_from_db()
        assert call.lost_contact_since is None
        assert call.last_seen_at is not None
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
    finally:
        context.close()


def test_a_group_call_shows_who_answered_and_that_agent_wraps_it_up(demo, browser, live_server, sim):
    """The supervisor clicks on a desktop, the agent who answers wraps up on a phone: both widths in one call."""
    supervisor_width, agent_width = 1280, 375
    phone = a_contact()
    supervisor_context, supervisor = new_page(browser, supervisor_width)
    agent_context, agent = new_page(browser, agent_width)
    try:
        log_in(supervisor, live_server, "supervisor", "demo")
        supervisor.goto(f"{live_server.url}/contacts/{phone.contact_id}/")
        expect(supervisor.locator("#group-choices")).to_contain_text("ready")
        for label in supervisor.locator("label.group-choice").all():
            label.locator("input").uncheck()
        supervisor.locator("label.group-choice", has_text="Sales UK").locator("input").check()
        supervisor.click("button[data-shortcut=g]")
        panel = supervisor.locator(".call-panel")
        expect(panel).to_have_attribute("data-call-state", "live")
        expect(panel.locator(".phase")).to_contain_text("Ringing an agent…")

        sim.advance(4)  # Alex (agent 1001, Sales UK's first ready member) answers; the contact's phone rings
        expect(panel.locator(".answered-by")).to_have_text("Alex Morgan", timeout=15_000)
        expect(panel.locator(".phase")).to_have_text("Ringing…")
        sim.advance(5)
        expect(panel.locator(".phase")).to_contain_text("Connected", timeout=15_000)
        call = Call.objects.get()
        assert call.answered_by.display_id == "1001"

        sim.advance(70)  # the call ends
        expect(panel).to_have_attribute("data-call-state", "ended", timeout=15_000)
        # The supervisor who clicked sees the call; Alex, who answered, is asked for the wrap-up.
        expect(panel.locator("#wrapup")).to_have_count(0)
        expect(panel).to_contain_text("Not wrapped up yet.")

        log_in(agent, live_server, "agent", "demo")
        agent.goto(f"{live_server.url}/calls/")
        expect(agent.locator(".wrap-up-list")).to_contain_text(phone.contact.name)
        agent.goto(f"{live_server.url}/calls/{call.pk}/")
        expect(agent.locator(".call-panel")).to_contain_text("answered by Alex Morgan")
        agent.select_option(f"#disposition-{call.pk}", label="Interested")
        agent.click("#wrapup button[type=submit]")
        expect(agent.locator(".call-panel")).to_contain_text("Wrapped up: Interested")

        supervisor.goto(f"{live_server.url}/calls/{call.pk}/")
        expect(supervisor.locator("body")).to_contain_text("Answered by")
        expect(supervisor.locator(".call-panel")).to_contain_text("Wrapped up: Interested")
        assert agent.evaluate("document.documentElement.scrollWidth") <= agent_width
        assert supervisor.evaluate("document.documentElement.scrollWidth") <= supervisor_width
    finally:
        supervisor_context.close()
        agent_context.close()
