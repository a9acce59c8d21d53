from __future__ import annotations

import html
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from calls import reports
from calls.models import Call, CallRollup, CallRollupState
from tests._calls import local, make_call

pytestmark = pytest.mark.django_db

URL = "/reports/"
RANGE = {"start": "2026-03-02", "end": "2026-03-03"}


@pytest.fixture
def calls(agent_user, other_agent_user, supervisor_user, sales, london):
    """Eight calls over two days, counted by hand below, and one the day before."""
    alex, tom = agent_user.agent, other_agent_user.agent
    day1, day2 = "2026-03-02", "2026-03-03"
    return {
        "before": make_call(user=agent_user, agent=alex, at=local("2026-03-01", 10)),
        "a1": make_call(
            user=agent_user, agent=alex, at=local(day1, 10, 15), duration_seconds=60,
            disposition_code="Interested", presented_clid=london.number,
        ),
        "a2": make_call(user=agent_user, agent=alex, outcome="busy", at=local(day1, 10, 45),
                        presented_clid=london.number),
        "a3": make_call(user=agent_user, agent=alex, at=local(day2, 14, 5), duration_seconds=120,
                        disposition_code="Interested"),
        "t1": make_call(user=other_agent_user, agent=tom, outcome="no_answer", at=local(day1, 9, 30),
                        disposition_code="No answer"),
        "t2": make_call(user=other_agent_user, agent=tom, outcome="failed", at=local(day2, 11)),
        "g1": make_call(user=supervisor_user, groups=[sales], outcome="failed", at=local(day2, 16),
                        error_message="Service Unavailable", error_status=503),
        "g2": make_call(user=supervisor_user, groups=[sales], outcome="agent_no_answer", at=local(day2, 16, 30)),
        # VCC may have placed it: an outcome of its own, never counted as failed (nor among failures' reasons).
        "u1": make_call(user=agent_user, agent=alex, outcome="not_confirmed", at=local(day2, 14, 30),
                        error_message="Read timed out", error_status=None),
    }  # fmt: skip


def check_hand_counts(context, agent_user, other_agent_user):
    total = context["total"]
    assert (total.calls, total.answered, total.talk) == (8, 2, 180)
    assert total.average_talk == 90
    assert total.answered_rate == pytest.approx(2 / 8)
    outcomes = {row.label: row.calls for row in context["outcomes"]}
    assert outcomes == {
        "Answered": 2,
        "Not answered by the agent": 1,
        "Not answered by the contact": 1,
        "Line busy": 1,
        "Failed": 2,
        "Not confirmed: may have been placed": 1,
    }
    assert {row.label: row.calls for row in context["dispositions"]} == {
        "Interested": 2,
        "No answer": 1,
        "No disposition": 5,
    }
    clids = {row.label: (row.calls, row.answered) for row in context["clids"]}
    assert clids == {"London main +44 20 7946 0100": (2, 1), "VCC's default": (6, 1)} or clids == {
        "London main 020 7946 0100": (2, 1),
        "VCC's default": (6, 1),
    }
    failures = {(row.label, row.note): row.calls for row in context["failures"]}
    assert failures == {("Agent is not available", "HTTP 409"): 1, ("Service Unavailable", "HTTP 503"): 1}
    agents = {row.label: (row.calls, row.answered, row.talk) for row in context["agents"]}
    assert agents == {
        "Alex Morgan": (4, 2, 180),
        "Tom Okafor": (2, 0, 0),
        "Via groups (nobody answered)": (2, 0, 0),
    }
    report = context["report"]
    assert {day.isoformat(): c.calls for day, c in report.per_day.items()} == {"2026-03-02": 3, "2026-03-03": 5}
    hours = {k: c.calls for k, c in report.facets[CallRollup.Facet.HOUR].items()}
    assert hours == {"9": 1, "10": 2, "11": 1, "14": 2, "16": 2}
    assert report.per_agent_day[agent_user.agent.pk, local("2026-03-02").date()] == 2
    assert report.per_agent_day[other_agent_user.agent.pk, local("2026-03-03").date()] == 1


def test_url_is_named_and_in_the_navigation_for_supervisors(supervisor_client, agent_client):
    assert reverse("reports") == URL
    assert f'href="{URL}"' in supervisor_client.get("/calls/").content.decode()
    assert f'href="{URL}"' not in agent_client.get("/calls/").content.decode()


def test_it_counts_calls_as_counted_by_hand(supervisor_client, calls, agent_user, other_agent_user):
    response = supervisor_client.get(URL, RANGE)
    assert response.status_code == 200
    check_hand_counts(response.context, agent_user, other_agent_user)


def test_the_roll_up_gives_the_same_numbers(supervisor_client, calls, agent_user, other_agent_user):
    days = reports.rebuild_rollup(now=local("2026-03-10"))
    assert days == 9  # 1 to 9 March
    response = supervisor_client.get(URL, RANGE)
    assert response.context["report"].live_from is None  # every day came from the roll-up
    check_hand_counts(response.context, agent_user, other_agent_user)


def test_half_rolled_up_and_half_live_gives_the_same_numbers(supervisor_client, calls, agent_user, other_agent_user):
    reports.rebuild_rollup(now=local("2026-03-03", 8))  # built through 2 March; 3 March is computed live
    response = supervisor_client.get(URL, RANGE)
    assert response.context["report"].live_from.isoformat() == "2026-03-03"
    check_hand_counts(response.context, agent_user, other_agent_user)


def rolled_up_hours() -> set[str]:
    rows = CallRollup.objects.filter(scope=CallRollup.Scope.EVERYONE, facet=CallRollup.Facet.HOUR)
    return set(rows.values_list("key", flat=True))


def test_a_new_time_zone_rolls_every_day_up_again(calls, settings):
    """The roll-up's days and hours were those of the TIME_ZONE it was built in: a team that set TIME_ZONE after
    going live (London is the default) got reports whose finished days still counted London's hours and days."""
    reports.rebuild_rollup(now=local("2026-03-10", 10))
    assert rolled_up_hours() == {"9", "10", "11", "14", "16"}
    settings.TIME_ZONE = "America/New_York"  # UTC-5 in early March: London's 9:30 is New York's 4:30

    assert reports.refresh_rollup(now=local("2026-03-10", 12)) == []
    assert rolled_up_hours() == {"4", "5", "6", "9", "11"}
    assert CallRollupState.objects.get().time_zone == "America/New_York"


def test_the_periodic_job_rolls_up_a_changed_call_again(supervisor_client, calls):
    reports.rebuild_rollup(now=local("2026-03-10", 10))
    busy = calls["a2"]
    Call.objects.filter(pk=busy.pk).update(outcome="answered", duration_seconds=30, changed_at=local("2026-03-10", 11))
    assert reports.refresh_rollup(now=local("2026-03-10", 12)) == [local("2026-03-02").date()]
    total = supervisor_client.get(URL, RANGE).context["total"]
    assert (total.calls, total.answered, total.talk) == (8, 3, 210)
    # The next run finds nothing new to do.
    assert reports.refresh_rollup(now=local("2026-03-10", 13)) == []


def test_the_periodic_job_rolls_up_days_that_finished_since(calls):
    reports.rebuild_rollup(now=local("2026-03-02", 12))
    assert reports.refresh_rollup(now=local("2026-03-04", 1)) == [
        local("2026-03-02").date(),
        local("2026-03-03").date(),
    ]


@pytest.mark.parametrize("rolled_up", [False, True])
def test_it_reports_one_agent_or_one_group(supervisor_client, calls, agent_user, sales, rolled_up):
    if rolled_up:
        reports.rebuild_rollup(now=local("2026-03-10"))
    alex = supervisor_client.get(URL, {**RANGE, "agent": agent_user.agent.pk}).context
    assert (alex["total"].calls, alex["total"].answered, alex["total"].talk) == (4, 2, 180)
    group = supervisor_client.get(URL, {**RANGE, "group": sales.pk}).context
    assert group["total"].calls == 2
    assert {row.label: row.calls for row in group["outcomes"]} == {"Failed": 1, "Not answered by the agent": 1}


def assert_every_number_opens_the_calls_behind_it(client, body, *, links_at_least=20, bars_at_least=24):
    links = re.findall(r'<a (?:class="stat" )?href="(/calls/\?[^"]*)">(?:<span class="stat-value">)?(\d+)<', body)
    assert len(links) > links_at_least
    for link, number in links:
        log = client.get(html.unescape(link)).content.decode()
        shown = len(re.findall(r'href="/calls/\d+/" class="nowrap"', log))
        assert shown == int(number), link
    # The charts' bars and cells link too, with their number in the title.
    bars = re.findall(r'<a href="(/calls/\?[^"]*)"><title>[^<]*?: (\d+) calls', body)
    assert len(bars) > bars_at_least
    for link, number in bars[:40]:
        log = client.get(html.unescape(link)).content.decode()
        assert len(re.findall(r'href="/calls/\d+/" class="nowrap"', log)) == int(number), link


def test_every_number_opens_the_calls_behind_it(supervisor_client, calls):
    assert_every_number_opens_the_calls_behind_it(supervisor_client, supervisor_client.get(URL, RANGE).content.decode())


def test_the_group_calls_nobody_answered_open_those_calls_alone(supervisor_client, supervisor_user, agent_user, sales):
    # Group calls an agent answered count on that agent's row; the rest have a row of their own.
    make_call(user=supervisor_user, groups=[sales], outcome="agent_no_answer", at=local("2026-03-02", 10))
    make_call(user=supervisor_user, groups=[sales], answered_by=agent_user.agent, at=local("2026-03-02", 11))
    make_call(user=supervisor_user, groups=[sales], answered_by=agent_user.agent, at=local("2026-03-03", 12))

    response = supervisor_client.get(URL, RANGE)

    agents = {row.label: row.calls for row in response.context["agents"]}
    assert agents == {"Alex Morgan": 2, "Via groups (nobody answered)": 1}
    body = response.content.decode()
    assert "Via groups, unanswered, 2 Mar: 1 calls" in body  # the heatmap's row
    assert_every_number_opens_the_calls_behind_it(supervisor_client, body, links_at_least=8, bars_at_least=4)
    log = supervisor_client.get("/calls/", {"via": "unanswered"}).content.decode()
    assert '<option value="unanswered" selected>Via groups, nobody answered</option>' in log


def test_charts_are_svg_without_inline_styles_or_scripts(supervisor_client, calls):
    body = supervisor_client.get(URL, RANGE).content.decode()
    assert body.count("<svg") >= 3
    assert "style=" not in body
    assert "<script>" not in body


def test_agents_are_refused(agent_client):
    assert agent_client.get(URL).status_code == 403


def test_it_sends_anonymous_visitors_to_log_in(client):
    assert client.get(URL).status_code == 302


def test_it_rejects_post(supervisor_client):
    assert supervisor_client.post(URL).status_code == 405


@pytest.mark.parametrize(
    "query",
    [
        {"start": "March"},
        {"start": "2026-03-05", "end": "2026-03-01"},
        {"start": "1999-01-01"},
        {"start": "2020-01-01", "end": "2026-01-01"},
        {"agent": "x"},
        {"group": "99999999999999999999999"},
    ],
)
def test_malformed_input_is_a_400(supervisor_client, query):
    assert supervisor_client.get(URL, query).status_code == 400


def test_an_agent_and_a_group_at_once_is_a_400(supervisor_client, agent_user, sales):
    assert supervisor_client.get(URL, {"agent": agent_user.agent.pk, "group": sales.pk}).status_code == 400


def test_without_a_range_it_shows_the_last_30_days(supervisor_client):
    context = supervisor_client.get(URL).context
    assert (context["last"] - context["first"]).days == 29


def count_queries(client) -> int:
    client.get(URL)  # the session and permissions are cached from then on
    with CaptureQueriesContext(connection) as captured:
        assert client.get(URL, {"start": "2026-02-01", "end": "2026-03-31"}).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("rolled_up", [False, True])
def test_query_count_does_not_grow_with_rows(supervisor_client, supervisor_user, agent_user, rolled_up):
    make_call(user=supervisor_user, agent=agent_user.agent, at=local("2026-03-02"))
    if rolled_up:
        reports.rebuild_rollup(now=local("2026-03-10"))
    one = count_queries(supervisor_client)
    for day in range(1, 28):
        make_call(user=supervisor_user, agent=agent_user.agent, outcome="failed", at=local(f"2026-02-{day:02d}"))
    if rolled_up:
        reports.rebuild_rollup(now=local("2026-03-10"))
    assert count_queries(supervisor_client) == one


def test_the_rollup_command_builds_then_refreshes(calls, capsys):
    from django.core.management import call_command

    from calls.models import CallRollupState

    call_command("rollup_calls", "--rebuild")
    assert "Rebuilt the roll-up" in capsys.readouterr().out
    assert CallRollupState.objects.get().built_through is not None
    call_command("rollup_calls")
    assert "Rolled up" in capsys.readouterr().out
    everyone = CallRollup.objects.filter(scope="everyone", facet="total", day__gte="2026-03-02", day__lte="2026-03-03")
    assert sum(everyone.values_list("calls", flat=True)) == 8


def test_the_migration_that_changed_the_failures_rule_has_the_roll_up_built_again(calls):
    """Roll-up rows built before failures stopped counting unconfirmed calls are rebuilt on the next run."""
    from importlib import import_module

    from django.apps import apps

    from calls.models import CallRollupState

    reports.rebuild_rollup(now=local("2026-03-10"))
    import_module("calls.migrations.0011_rollup_failures_are_failed_calls").rebuild_on_next_run(apps, None)
    assert CallRollupState.objects.get().built_through is None
    reports.refresh_rollup(now=local("2026-03-10"))
    assert CallRollupState.objects.get().built_through is not None


def test_a_group_call_rolled_up_counts_for_the_agent_who_answered_it(
    supervisor_client, supervisor_user, other_agent_user, sales
):
    make_call(user=supervisor_user, groups=[sales], answered_by=other_agent_user.agent, at=local("2026-03-02", 11),
              duration_seconds=45)  # fmt: skip
    reports.rebuild_rollup(now=local("2026-03-10"))

    response = supervisor_client.get(URL, RANGE)

    assert response.context["report"].live_from is None  # read from the roll-up
    body = response.content.decode()
    row = re.search(r'<tr><td data-label="Agent">Tom Okafor</td>(.*?)</tr>', body, re.S)
    assert row, "the answering agent's row is in the per-agent table"
    numbers = re.findall(r'data-label="(Calls|Answered)"><a href="[^"]*">(\d+)</a>', row.group(1))
    assert numbers == [("Calls", "1"), ("Answered", "1")]
    assert "Via groups (nobody answered)" not in body


@pytest.mark.parametrize("words", ["  Destination unreachable", "Trunk busy  "])
def test_a_failures_link_opens_its_calls_whatever_spaces_vccs_words_have(supervisor_client, supervisor_user, words):
    """The failures' links carry VCC's words as they are: the call log's filter must not trim them, or a reason that
    begins with a space opens no call."""
    make_call(user=supervisor_user, outcome="failed", at=local("2026-03-02", 11), error_message=words, error_status=502)
    page = supervisor_client.get(URL, RANGE).content.decode()
    links = [html.unescape(link) for link in re.findall(r'href="(/calls/\?[^"]*error=[^"]*)"', page)]
    assert links
    for link in links:
        log = supervisor_client.get(link).content.decode()
        assert len(re.findall(r'href="/calls/\d+/" class="nowrap"', log)) == 1, link
