"""The API's call log (GET /api/v1/calls) with its filters, sorts and cursor, and one call with its history."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from calls.models import AgentGroup, Call, Contact
from tests import _api_calls
from tests._api_calls import CALL_KEYS, bearer, get, post, problem, token_for
from tests._calls import make_call

pytestmark = pytest.mark.django_db

sim, alex, priya, log_calls = _api_calls.sim, _api_calls.alex, _api_calls.priya, _api_calls.log_calls  # fixtures


# --- The call log ---------------------------------------------------------------------------------------------


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["items"]]


def test_an_agent_reads_their_own_calls_newest_first(alex, log_calls):
    mine, group, _theirs = log_calls

    response = get(alex)

    assert ids(response) == [c.pk for c in [*mine, group]]
    assert response.json()["next"] is None
    assert set(response.json()["items"][0]) == CALL_KEYS


def test_a_supervisor_reads_everyones(priya, log_calls):
    mine, group, theirs = log_calls
    assert ids(get(priya)) == [theirs.pk, *(c.pk for c in mine), group.pk]


def test_the_cursor_walks_every_call_once_keeping_the_filters(priya, log_calls):
    mine, _group, _theirs = log_calls
    seen, response = [], get(priya, params={"agent": mine[0].from_agent_id, "limit": "2"})
    pages = 0
    while True:
        seen += ids(response)
        pages += 1
        following = response.json()["next"]
        if following is None:
            break
        assert following.startswith("http://testserver/api/v1/calls?") and "limit=2" in following
        assert f"agent={mine[0].from_agent_id}" in following
        response = Client().get(following, headers=bearer(priya))

    assert seen == [c.pk for c in mine] and pages == 3


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"outcome": "busy"}, lambda mine, group: [mine[1].pk, group.pk]),
        ({"via": "group"}, lambda mine, group: [group.pk]),
        ({"outcome": "answered", "sort": "time"}, lambda mine, group: [mine[4].pk, mine[2].pk, mine[0].pk]),
        ({"has_error": "yes"}, lambda mine, group: []),
    ],
)
def test_it_filters_as_the_call_log_does(alex, log_calls, params, expected):
    mine, group, _theirs = log_calls
    assert ids(get(alex, params=params)) == expected(mine, group)


@pytest.mark.parametrize("sort", ["-time", "time", "-duration", "duration"])
def test_every_sort_reads_the_whole_log_in_its_order_page_by_page(priya, log_calls, sort):
    """Two calls a page, following `next`: the order is the call log page's, calls without a talk time last."""
    for seconds, call in zip([30, None, 30, 5, 0, 12, None], Call.objects.order_by("pk"), strict=False):
        Call.objects.filter(pk=call.pk).update(duration_seconds=seconds)
    talk = {c.pk: -1 if c.duration_seconds is None else c.duration_seconds for c in Call.objects.all()}
    key = {"time": lambda c: (c.requested_at, c.pk), "duration": lambda c: (talk[c.pk], c.pk)}[sort.lstrip("-")]
    expected = [c.pk for c in sorted(Call.objects.all(), key=key, reverse=sort.startswith("-"))]

    seen, response = [], get(priya, params={"sort": sort, "limit": 2})
    while True:
        seen += ids(response)
        if not (following := response.json()["next"]):
            break
        response = Client().get(following, headers=bearer(priya))

    assert seen == expected and len(seen) == Call.objects.count() > 4


def test_it_filters_by_group(alex, log_calls, sales):
    assert ids(get(alex, params={"group": sales.pk})) == [log_calls[1].pk]


def test_an_agent_cannot_read_another_agents_calls_by_filter(alex, log_calls, other_agent_user):
    assert ids(get(alex, params={"agent": other_agent_user.agent.pk})) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"outcome": "great"}, "outcome"),
        ({"after": "yesterday"}, "after"),
        ({"start": "2026-13-01"}, "start"),
        ({"start": "2026-03-02", "end": "2026-03-01"}, "end"),
        ({"agent": "x"}, "agent"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "²"}, "limit"),
        ({"outcomes": "busy"}, "outcomes"),
        ({"before": "1_1"}, "before"),
        ({"disposition": "a\x00b"}, "disposition"),
    ],
)
def test_a_malformed_filter_or_cursor_is_a_400_naming_it(alex, params, field):
    assert problem(get(alex, params=params), 400)["detail"].startswith(f"{field}: ")


def test_a_token_without_calls_read_is_a_403(agent_user):
    assert "calls:read" in problem(get(token_for(agent_user, "contacts:read")), 403)["detail"]


def test_the_lists_queries_do_not_grow_with_rows(alex, agent_user, sales, django_assert_max_num_queries):
    make_call(user=agent_user, agent=agent_user.agent)
    # Once first: a connection prepares the page's statement at its first page (calls/api/callrows.py), whichever
    # test that was; what is counted is every page after.
    get(alex, params={"limit": "200"})
    with django_assert_max_num_queries(6):
        assert len(ids(get(alex, params={"limit": "200"}))) == 1
    for n in range(30):
        make_call(user=agent_user, agent=agent_user.agent, contact=Contact.objects.create(name=f"C{n}"))
        make_call(user=agent_user, groups=[sales], outcome="busy")
    with django_assert_max_num_queries(6):
        assert len(ids(get(alex, params={"limit": "200"}))) == 61


def test_a_page_of_the_log_shows_each_call_as_its_own_resource_does(priya, log_calls, london, sales, other_agent_user):
    """The log's page is read as rows, not models (for speed): each item must still be what GET /calls/{id} says."""
    from calls.api.callrows import ROW, rows_as_items
    from calls.api.calls import as_json, resource, with_parties

    mine, group, _ = log_calls
    group.from_groups.add(AgentGroup.objects.create(display_id="150", name="Alpha"))  # two groups, in their order
    Call.objects.filter(pk=mine[0].pk).update(
        presented_clid=london.number, disposition_code="SALE", notes="Keen", error_display="", vcc_call_id="abc"
    )
    make_call(user=other_agent_user, agent=other_agent_user.agent, to_number="", to_agent=mine[0].from_agent)
    whole_second = mine[1].requested_at.replace(microsecond=0)
    Call.objects.filter(pk=mine[1].pk).update(
        requested_at=whole_second,  # no fraction written
        connected_at=whole_second + timedelta(microseconds=500),  # under a millisecond: ".000"
        ended_at=whole_second + timedelta(seconds=3, microseconds=999_999),  # milliseconds cut, not rounded
        notes='Zoë said "call me"\n\tat 5 \\ o\'clock',
    )

    Call.objects.filter(pk=group.pk).update(connected_at=None, duration_seconds=0)  # ended, never connected

    items = get(priya, params={"limit": 200}).json()["items"]

    assert next(i for i in items if i["id"] == group.pk)["duration_seconds"] is None  # no talk time, as on the page
    expected = {c.pk: as_json(resource(c)) for c in with_parties(Call.objects.all())}
    assert len(items) == len(expected) and all(item == expected[item["id"]] for item in items)
    # The rows as Python makes them (where PostgreSQL does not write the JSON) say the same.
    rows = list(Call.objects.values_list(*ROW))
    assert {item["id"]: item for item in rows_as_items(rows, "/calls/")} == expected
    assert next(i for i in items if i["id"] == group.pk)["via_groups"] == [
        g.pk for g in AgentGroup.objects.filter(calls=group)
    ]


# --- One call -------------------------------------------------------------------------------------------------


def test_it_reads_one_call_with_its_history(alex, contact, london, sim):
    placed = post(alex, {"to": "+447400123456"}).json()

    response = get(alex, f"/{placed['id']}")

    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in CALL_KEYS} == placed
    assert body["history"][0]["what"] == "Asked VCC to place the call"
    assert any(line["what"] == "VCC placed the call" for line in body["history"])
    assert body["events"] == []


def test_another_agents_call_is_a_404_and_a_supervisor_sees_it(alex, priya, other_agent_user, contact):
    theirs = make_call(user=other_agent_user, agent=other_agent_user.agent)

    assert problem(get(alex, f"/{theirs.pk}"), 404)
    assert get(priya, f"/{theirs.pk}").json()["id"] == theirs.pk


@pytest.mark.parametrize("path", ["/99999", f"/{2**70}", "/abc"])
def test_a_call_that_is_not_there_is_a_problem(alex, path):
    response = get(alex, path)
    assert response.status_code in (404, 422) and response["Content-Type"] == "application/problem+json"
