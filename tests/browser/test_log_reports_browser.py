"""The call log and reports in Chromium at 1280 and 375 px: folded filters, whole words, report presets."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from calls.models import Contact
from tests._calls import make_call
from tests.browser.conftest import log_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}


@pytest.fixture
def logged_in(browser, live_server, supervisor_user):
    contexts = []

    def open_at(viewport: dict[str, int]):
        phone = viewport["width"] < 720
        context = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.console_errors = errors
        log_in(page, live_server, supervisor_user.username, PASSWORD, at=None)  # each test opens its page
        return page

    yield open_at
    for context in contexts:
        context.close()


@pytest.fixture
def calls(supervisor_user, agent_user):
    now = timezone.now()
    for n, code in enumerate(["Interested", "Callback-requested", "Not-interested-at-this-time"]):
        make_call(
            user=supervisor_user,
            agent=agent_user.agent,
            at=now - timedelta(hours=n + 1),
            disposition_code=code,
            wrapped_up_at=now,
            # A long name and VCC's long reason make the other columns greedy.
            contact=Contact.objects.create(name=f"Bartholomew Featherstonehaugh-Cholmondeley {n}"),
            presented_clid="+442079460100",
        )
    make_call(
        user=supervisor_user,
        agent=agent_user.agent,
        outcome="failed",
        error_message="The agent's device is not registered with the contact centre; check the softphone " * 2,
        disposition_code="Wrong-number-reported",
        wrapped_up_at=now,
    )
    make_call(user=supervisor_user, agent=agent_user.agent, at=now - timedelta(minutes=5))  # to wrap up


@pytest.mark.parametrize(("viewport", "folded"), [(DESKTOP, False), (PHONE, True)])
def test_filters_fold_on_a_phone_and_show_at_desktop_width(logged_in, live_server, calls, viewport, folded):
    page = logged_in(viewport)
    page.goto(f"{live_server.url}/calls/")
    outcome = page.locator("#id_outcome")
    summary = page.locator(".filters-fold > summary")
    if folded:
        expect(outcome).to_be_hidden()
        expect(summary).to_be_visible()
        summary.click()
        expect(outcome).to_be_visible()
    else:
        expect(outcome).to_be_visible()
        expect(summary).to_be_hidden()
    # Filtering still works through the (opened) form, and the address carries only what is set.
    outcome.select_option("busy")
    page.wait_for_url(f"{live_server.url}/calls/?outcome=busy")
    overflow = page.evaluate("document.documentElement.scrollWidth") - viewport["width"]
    assert overflow <= 0, f"the call log scrolls sideways by {overflow}px"
    assert page.console_errors == []  # includes CSP violations


def test_the_wrap_up_and_from_columns_do_not_break_words_at_desktop_width(logged_in, live_server, calls):
    page = logged_in(DESKTOP)
    page.goto(f"{live_server.url}/calls/")
    cells = page.locator("td.wrap-up")
    expect(cells).to_have_count(5)
    # Each word of a cell fits its column: the cell is at least as wide as its widest word (and the badge whole).
    broken = page.evaluate(
        """() => [...document.querySelectorAll('td.wrap-up, td[data-label="From"]')].filter(td => {
            const range = document.createRange();
            range.selectNodeContents(td);
            const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
            return td.textContent.trim().split(/\\s+/).length < lines.size;
        }).map(td => td.textContent.trim())"""
    )
    assert broken == []


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE])
def test_report_presets_fill_the_date_boxes(logged_in, live_server, calls, viewport):
    page = logged_in(viewport)
    page.goto(f"{live_server.url}/reports/")
    today = timezone.localdate()
    # The default range is shown in the boxes, not left empty.
    expect(page.locator("#id_start")).to_have_value((today - timedelta(days=29)).isoformat())
    expect(page.locator("#id_end")).to_have_value(today.isoformat())
    page.get_by_role("link", name="Last 7 days").click()
    expect(page.locator("#id_start")).to_have_value((today - timedelta(days=6)).isoformat())
    expect(page.locator("#id_end")).to_have_value(today.isoformat())
    page.get_by_role("link", name="Yesterday").click()
    yesterday = (today - timedelta(days=1)).isoformat()
    expect(page.locator("#id_start")).to_have_value(yesterday)
    expect(page.locator("#id_end")).to_have_value(yesterday)
    page.get_by_role("link", name="This month").click()
    expect(page.locator("#id_start")).to_have_value(today.replace(day=1).isoformat())
    # The boxes come before the charts in the page: the new page may still be being read when they show its range.
    page.wait_for_load_state("domcontentloaded")
    # The axis labels of the charts shown at this width: readable (9 px or more), apart, inside their chart.
    charts = page.evaluate(
        """() => [...document.querySelectorAll('svg.chart:not(.heatmap):not(.shares)')]
            .filter(svg => svg.getBoundingClientRect().width > 0)
            .map(svg => {
                const box = svg.getBoundingClientRect();
                const ticks = [...svg.querySelectorAll('.chart-tick')].map(t => t.getBoundingClientRect());
                return {
                    name: svg.getAttribute('aria-label'),
                    ticks: ticks.length,
                    smallest: Math.min(...ticks.map(t => t.height)),
                    overlaps: ticks.filter((t, i) => i > 0 && t.left < ticks[i - 1].right).length,
                    outside: ticks.filter(t => t.left < box.left - 0.5 || t.right > box.right + 0.5).length,
                };
            })"""
    )
    assert [c["name"] for c in charts] == ["Calls per day", "Calls by hour of the day"]
    for chart in charts:
        assert chart["ticks"] >= 4, chart
        assert chart["smallest"] >= 9, chart
        assert chart["overlaps"] == 0 and chart["outside"] == 0, chart
    assert page.console_errors == []


# Of the pixels of a focused segment, those whose colour changed by 3:1 or more (WCAG's contrast ratio) from
# before it had the focus: the browser decodes both screenshots and counts.
CHANGED_BY_3_TO_1 = """async ([before, after]) => {
    const pixels = async (b64) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const image = await createImageBitmap(new Blob([bytes], {type: 'image/png'}));
        const canvas = new OffscreenCanvas(image.width, image.height);
        const context = canvas.getContext('2d');
        context.drawImage(image, 0, 0);
        return context.getImageData(0, 0, image.width, image.height).data;
    };
    const linear = c => (c /= 255) <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    const luminance = (d, i) => 0.2126 * linear(d[i]) + 0.7152 * linear(d[i + 1]) + 0.0722 * linear(d[i + 2]);
    const [a, b] = [await pixels(before), await pixels(after)];
    let changed = 0;
    for (let i = 0; i < a.length; i += 4) {
        const [x, y] = [luminance(a, i), luminance(b, i)];
        if ((Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05) >= 3) changed++;
    }
    return changed;
}"""


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE])
def test_the_share_bar_shows_clearly_which_segment_has_the_keyboard_focus(logged_in, live_server, calls, viewport):
    """A focused segment of the outcome share bar was only made a little paler (opacity .8), which nobody sees
    (WCAG 2.4.7): its focus indicator changes at least a 2 px ring of it by a contrast of 3:1 or more."""
    import base64

    page = logged_in(viewport)
    page.goto(f"{live_server.url}/reports/")
    for n, segment in enumerate(page.locator("svg.chart.shares a").all()):
        segment.scroll_into_view_if_needed()
        box = segment.locator("rect").bounding_box()
        assert box is not None
        clip = {key: box[key] for key in ("x", "y", "width", "height")}
        before = page.screenshot(clip=clip)
        segment.focus()
        assert page.evaluate("document.activeElement.matches(':focus-visible')")
        after = page.screenshot(clip=clip)
        changed = page.evaluate(
            CHANGED_BY_3_TO_1, [base64.b64encode(before).decode(), base64.b64encode(after).decode()]
        )
        ring = 2 * (2 * int(box["width"]) + 2 * int(box["height"])) - 16  # 2 px inside its edges
        assert changed >= ring, (n, changed, ring)
    assert page.console_errors == []
