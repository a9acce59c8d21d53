"""The reports' range as people set it: dates shown in the boxes, usual ranges as links, readable charts, and
outcome colours that match the outcome."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta

import pytest
from django.template import Context, Template
from django.utils import timezone

from calls import charts
from calls.models import Call
from tests._calls import make_call

pytestmark = pytest.mark.django_db

URL = "/reports/"


def box(body: str, name: str) -> str:
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', body)[0]
    match = re.search(r'value="([^"]*)"', tag)
    return match[1] if match else ""


def test_the_default_range_is_shown_in_the_date_boxes(supervisor_client):
    body = supervisor_client.get(URL).content.decode()
    today = timezone.localdate()
    assert box(body, "start") == (today - timedelta(days=29)).isoformat()
    assert box(body, "end") == today.isoformat()


def test_a_half_given_range_shows_the_dates_used(supervisor_client):
    body = supervisor_client.get(URL, {"end": "2026-03-31"}).content.decode()
    assert (box(body, "start"), box(body, "end")) == ("2026-03-02", "2026-03-31")
    body = supervisor_client.get(URL, {"start": "2026-03-02", "end": ""}).content.decode()
    assert (box(body, "start"), box(body, "end")) == ("2026-03-02", timezone.localdate().isoformat())


def test_a_bad_range_keeps_what_was_typed_and_says_what_to_fix(supervisor_client):
    response = supervisor_client.get(URL, {"start": "2026-03-05", "end": "2026-03-01"})
    assert response.status_code == 400
    body = response.content.decode()
    assert (box(body, "start"), box(body, "end")) == ("2026-03-05", "2026-03-01")
    assert "The end date is before the start date." in body


def presets_in(body: str) -> dict[str, tuple[str, bool]]:
    nav = body[body.index('class="presets"') :]
    nav = nav[: nav.index("</nav>")]
    return {
        m[3]: (html.unescape(m[1]), bool(m[2]))
        for m in re.finditer(r'<a class="button" href="([^"]*)"( aria-current="true")?>([^<]*)</a>', nav)
    }


def test_the_usual_ranges_are_offered_as_links_keeping_the_agent(supervisor_client, agent_user):
    today = timezone.localdate()
    agent = agent_user.agent.pk
    presets = presets_in(supervisor_client.get(URL, {"agent": agent}).content.decode())
    yesterday = today - timedelta(days=1)
    assert presets == {
        "Today": (f"/reports/?start={today}&end={today}&agent={agent}", False),
        "Yesterday": (f"/reports/?start={yesterday}&end={yesterday}&agent={agent}", False),
        "Last 7 days": (f"/reports/?start={today - timedelta(days=6)}&end={today}&agent={agent}", False),
        "Last 30 days": (f"/reports/?start={today - timedelta(days=29)}&end={today}&agent={agent}", True),
        "This month": (f"/reports/?start={today.replace(day=1)}&end={today}&agent={agent}", today.day == 30),
    }


def test_a_preset_link_shows_its_range(supervisor_client):
    presets = presets_in(supervisor_client.get(URL).content.decode())
    body = supervisor_client.get(presets["Yesterday"][0]).content.decode()
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    assert (box(body, "start"), box(body, "end")) == (yesterday, yesterday)
    assert presets_in(body)["Yesterday"][1]


@pytest.mark.parametrize("days", [1, 7, 24, 31, 62, 366, 1095])
@pytest.mark.parametrize("fit", [charts.PHONE_WIDTH, 400, 960])
def test_axis_labels_never_touch_and_keep_their_size(days, fit):
    first = date(2026, 1, 1)
    items = [charts.Bar((first + timedelta(days=n)).strftime("%-d %b"), n, "/x", "") for n in range(days)]
    svg = str(charts.bars(items, label="Calls per day", fit=fit))
    view_x, _y, view_width, _h = (float(v) for v in re.search(r'viewBox="([^"]+)"', svg)[1].split())
    assert view_width <= max(fit, 3 * days) + 2 * 6.5 * 6  # drawn for its box: text is not shrunk much
    ticks = [
        (float(x), text) for x, text in re.findall(r'<text x="([\d.]+)"[^>]*class="chart-tick"[^>]*>([^<]*)<', svg)
    ]
    assert ticks
    half = [len(text) * charts.TICK_CHAR / 2 for _x, text in ticks]
    for (x, _text), (next_x, _next), w, next_w in zip(ticks, ticks[1:], half, half[1:], strict=False):
        assert x + w < next_x - next_w, (x, next_x)
    assert ticks[0][0] - half[0] >= view_x and ticks[-1][0] + half[-1] <= view_x + view_width


def test_the_report_draws_each_chart_for_both_widths(supervisor_client, supervisor_user):
    make_call(user=supervisor_user)
    body = supervisor_client.get(URL).content.decode()
    for label in ("Calls per day", "Calls by hour of the day"):
        assert len(re.findall(rf'<svg class="chart chart-(?:wide|narrow)"[^>]*aria-label="{label}"', body)) == 2


def badge_look(outcome: str) -> str:
    badge = Template("{% load calls_tags %}{% outcome_badge call %}").render(Context({"call": Call(outcome=outcome)}))
    return re.search(r'class="badge outcome ?([a-z]*)"', badge)[1] or "none"


@pytest.mark.parametrize("outcome", Call.Outcome.values)
def test_an_outcomes_colour_is_its_badges(outcome):
    assert charts.OUTCOME_LOOK[outcome] == badge_look(outcome)


def test_outcome_colours_match_the_outcome_in_chart_and_table(supervisor_client, supervisor_user):
    for outcome in ("answered", "answered", "busy", "no_answer", "failed"):
        make_call(user=supervisor_user, outcome=outcome)
    body = supervisor_client.get(URL).content.decode()
    chart = re.search(r'<svg class="chart shares".*?</svg>', body, re.S)[0]
    in_chart = dict(re.findall(r"<title>([^:<]+): \d+ \(\d+%\)</title><rect class=\"share share-(\w+)\"", chart))
    assert in_chart == {
        "Answered": "ok",
        "Not answered by the contact": "warn",
        "Line busy": "warn",
        "Failed": "danger",
    }
    table = body[body.index('class="list outcomes"') :]
    swatches = re.findall(r'class="swatch share-(\w+)"[^>]*></span> ([^<]+)</td>', table)
    in_table = {label: look for look, label in swatches}
    assert in_table == in_chart
    assert '<td data-label="Share">40%</td>' in table  # two answered calls of five


def linked_charts() -> dict[str, str]:
    """Each kind of chart, drawn with links to the calls behind its parts."""
    bar = charts.Bar("2 Mar", 3, "/calls/?day=2", "Mon 2 Mar: 3 calls")
    return {
        "bars": str(charts.bars([bar, charts.Bar("3 Mar", 0, "/calls/?day=3")], label="Calls per day")),
        "shares": str(charts.shares([charts.Share("Answered", 2, "/calls/?o=a", "ok")], label="Calls by outcome")),
        "heatmap": str(charts.heatmap([("Alex", [bar])], ["2 Mar"], label="Calls per agent per day")),
    }


@pytest.mark.parametrize("kind", ["bars", "shares", "heatmap"])
def test_a_chart_with_links_is_a_named_group_not_an_image(kind):
    """An image's children are presentational: a browser may hide the links of a role="img" chart."""
    svg = linked_charts()[kind]
    root = re.match(r"<svg [^>]*>", svg)[0]
    assert 'role="group"' in root
    assert re.search(r'aria-label="Calls [a-z ]+"', root)
    links = re.findall(r'<a href="[^"]+"><title>([^<]+)</title>', svg)
    assert links and all(links)  # every link is named by its title
    # The axis labels repeat what the links' titles say: hidden, as they were inside an image.
    ticks = re.findall(r'<text [^>]*class="chart-tick"[^>]*>', svg)
    assert all('aria-hidden="true"' in tick for tick in ticks)


def test_a_chart_without_links_stays_an_image():
    svg = str(charts.bars([], label="Calls per day"))
    assert "<a " not in svg
    assert re.match(r'<svg [^>]*role="img" aria-label="Calls per day"', svg)
