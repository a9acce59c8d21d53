"""Real-browser tests: Debian's Chromium driven by Playwright, against the app on a real port (live_server)."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"


def _is_browser_test(item) -> bool:
    return "tests/browser/" in str(item.fspath)


def pytest_collection_modifyitems(config, items):
    # Playwright's sync API leaves an event loop running in this thread once it starts, which async tests
    # cannot share: run the browser tests last.
    items.sort(key=_is_browser_test)
    if CHROMIUM.exists():
        return
    reason = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium); CI installs it."
    for item in items:
        if _is_browser_test(item):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def quick_polls(request, settings, monkeypatch):
    """Pages ask for a call's progress every 250 ms instead of 2 s, and VCC may be asked about a call as often: the
    browser tests wait on polls, and would otherwise spend most of their time waiting out the production pace."""
    if not _is_browser_test(request.node):
        return
    from calls.calling import following

    settings.CALL_POLL_MS = 250
    monkeypatch.setattr(following, "FOLLOW_INTERVAL", timedelta(milliseconds=250))


@pytest.fixture(autouse=True)
def server_settled(request):
    """After a browser test, wait for the requests the live server is still answering (a poll the closed page sent
    just before) to finish: one still reading the database when the test database is flushed can deadlock the flush
    and fail the tests that follow. The live server answers each connection in a thread of its own."""
    yield
    if not _is_browser_test(request.node):
        return
    from django.core.servers.basehttp import ThreadedWSGIServer

    for thread in threading.enumerate():
        # Only the live server's own threads: vccsim's keep connections open to the app's client for ever.
        server = getattr(getattr(thread, "_target", None), "__self__", None)
        if isinstance(server, ThreadedWSGIServer) and thread is not threading.current_thread():
            # enumerate() lists a thread the server is still starting, which join() refuses ("cannot join thread
            # before it is started": seen once in CI): wait for it to start first.
            thread._started.wait(timeout=10)
            thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright runs an event loop in this thread; the tests' own ORM calls are still plain sync code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-gpu",
                # Chromium 156 makes the address bar's two drop-downs (WebUI pages, in a renderer of their own) for
                # every new context, though headless shows neither: some 0.25 s of CPU a context, a test's worth.
                "--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.console_errors = errors
    yield page
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    page.goto("about:blank")  # stops the page's polls before the test database is flushed
    context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def log_in(
    page, live_server, username: str, password: str, *, via_form: bool = False, at: str | None = "/contacts/"
) -> None:
    """Log the page in and open the page at `at` (a path: the contact list unless the test starts elsewhere; None
    opens nothing, for a test whose next step opens its first page itself).

    Most tests are about what comes after: the session is made by Django's test client (the same password check)
    and handed to the browser as its cookie. `via_form` fills in the login page instead (the tests of logging in),
    which lands on Today, the home page (the contact list for those who see no callbacks).
    """
    if via_form:
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        return
    from django.conf import settings
    from django.test import Client

    client = Client()
    assert client.login(username=username, password=password), f"{username} could not log in"
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    if at is not None:
        page.goto(f"{live_server.url}{at}")


class Held:
    """The page's requests to `url` (a Playwright URL pattern), held unanswered until `release()`: what the page does
    while an answer is still on the way, whatever the machine's speed. With `answered`, `wait()` has the app answer
    each one and only the answer is held: it then says what was true before whatever the test changes meanwhile."""

    def __init__(self, page, url, *, answered: bool = False) -> None:
        self.page, self.url, self.answered = page, url, answered
        self.held: list = []  # [route, the app's answer or None]
        self.released = False
        page.route(url, self._hold)

    def _hold(self, route) -> None:
        if self.released:
            route.continue_()
        else:
            self.held.append([route, None])

    def wait(self, count: int = 1) -> int:
        """Wait until `count` requests are held, and say how many are. Playwright hands a held request to the test
        with the messages it sends anyway, so a round trip to the page or two is enough to see one that was sent
        (the deadline only bounds a test that is failing)."""
        deadline = time.monotonic() + 10
        while len(self.held) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the page sent {len(self.held)} requests to {self.url}, not {count}")
            self.page.evaluate("0")
        if self.answered:
            for entry in self.held:
                if entry[1] is None:
                    entry[1] = entry[0].fetch()  # the app answers now; the page is not told yet
        return len(self.held)

    def release(self) -> None:
        """Let the held requests (or answers) through, and the page's later requests straight away."""
        self.released = True
        for route, answer in self.held:
            if answer is None:
                route.continue_()
            else:
                route.fulfill(response=answer)
        self.page.unroute(self.url, self._hold)
