from __future__ import annotations

import csv
import html
import io
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from calls import calllog
from calls.models import Agent, Call, Contact
from tests._calls import local, make_call

pytestmark = pytest.mark.django_db

URL = "/calls/"


def ids_in(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'href="/calls/(\d+)/" class="nowrap"', response.content.decode())]


@pytest.fixture
def mine(agent_user):
    return make_call(user=agent_user, agent=agent_user.agent)


@pytest.fixture
def theirs(other_agent_user):
    return make_call(user=other_agent_user, agent=other_agent_user.agent, to_number="+442079460999")


def test_url_is_named_and_in_the_navigation(agent_client):
    assert reverse("call_log") == URL
    response = agent_client.get("/contacts/")
    assert f'href="{URL}"' in response.content.decode()


def test_it_shows_a_supervisor_everyones_calls(supervisor_client, mine, theirs):
    response = supervisor_client.get(URL)
    assert response.status_code == 200
    assert set(ids_in(response)) == {mine.pk, theirs.pk}


def test_it_hides_other_agents_calls(agent_client, mine, theirs):
    response = agent_client.get(URL)
    assert ids_in(response) == [mine.pk]


def test_an_agent_sees_calls_that_rang_their_phone_though_someone_else_clicked(
    agent_client, agent_user, supervisor_user
):
    rang_me = make_call(user=supervisor_user, agent=agent_user.agent)
    assert ids_in(agent_client.get(URL)) == [rang_me.pk]


def test_a_crafted_filter_does_not_reveal_other_agents_calls(agent_client, other_agent_user, mine, theirs):
    response = agent_client.get(URL, {"agent": other_agent_user.agent.pk})
    assert response.status_code == 200
    assert ids_in(response) == []
    assert ids_in(agent_client.get(URL, {"contact": 1, "has_error": "no"})) == []


def test_it_rejects_post(agent_client):
    assert agent_client.post(URL).status_code == 405


def test_it_sends_anonymous_visitors_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response.url.startswith("/login/")


def test_htmx_gets_the_results_fragment(supervisor_client, mine):
    response = supervisor_client.get(URL, {"outcome": "answered"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="results"')
    assert "<html" not in body
    assert ids_in(response) == [mine.pk]


def test_every_filter_lives_in_the_links(supervisor_client, supervisor_user, agent_user):
    for n in range(calllog.PAGE_SIZE + 1):
        make_call(
            user=supervisor_user, agent=agent_user.agent, outcome="busy", at=timezone.now() - timedelta(minutes=n)
        )
    response = supervisor_client.get(URL, {"outcome": "busy", "agent": agent_user.agent.pk})
    older = re.search(r'href="(/calls/\?[^"]*after=[^"]*)" hx-get', response.content.decode())[1]
    assert "outcome=busy" in older
    assert f"agent={agent_user.agent.pk}" in older


# --- Each filter -------------------------------------------------------------------------------------


def test_it_filters_by_date_range(supervisor_client, supervisor_user):
    before = make_call(user=supervisor_user, at=local("2026-03-01", 23, 59))
    first = make_call(user=supervisor_user, at=local("2026-03-02", 0, 0))
    last = make_call(user=supervisor_user, at=local("2026-03-04", 23, 59))
    make_call(user=supervisor_user, at=local("2026-03-05", 0, 0))
    response = supervisor_client.get(URL, {"start": "2026-03-02", "end": "2026-03-04"})
    assert ids_in(response) == [last.pk, first.pk]
    assert before.pk in ids_in(supervisor_client.get(URL, {"end": "2026-03-01"}))


def test_it_filters_by_agent(supervisor_client, supervisor_user, agent_user, other_agent_user):
    alex = make_call(user=supervisor_user, agent=agent_user.agent)
    make_call(user=supervisor_user, agent=other_agent_user.agent)
    assert ids_in(supervisor_client.get(URL, {"agent": agent_user.agent.pk})) == [alex.pk]


def test_it_filters_by_group_and_by_calls_via_groups(supervisor_client, supervisor_user, agent_user, sales, support):
    via_sales = make_call(user=supervisor_user, groups=[sales])
    via_both = make_call(user=supervisor_user, groups=[sales, support])
    direct = make_call(user=supervisor_user, agent=agent_user.agent)
    assert set(ids_in(supervisor_client.get(URL, {"group": sales.pk}))) == {via_sales.pk, via_both.pk}
    assert ids_in(supervisor_client.get(URL, {"group": support.pk})) == [via_both.pk]
    assert set(ids_in(supervisor_client.get(URL, {"via": "group"}))) == {via_sales.pk, via_both.pk}
    assert ids_in(supervisor_client.get(URL, {"via": "agent"})) == [direct.pk]


@pytest.mark.parametrize("outcome", [value for value, _label in Call.Outcome.choices])
def test_it_filters_by_each_outcome(supervisor_client, supervisor_user, outcome):
    calls = {o: make_call(user=supervisor_user, outcome=o) for o, _label in Call.Outcome.choices}
    assert ids_in(supervisor_client.get(URL, {"outcome": outcome})) == [calls[outcome].pk]


def test_it_filters_by_disposition_and_by_no_disposition(supervisor_client, supervisor_user):
    interested = make_call(user=supervisor_user, disposition_code="Interested")
    make_call(user=supervisor_user, disposition_code="Not interested")
    none = make_call(user=supervisor_user)
    assert ids_in(supervisor_client.get(URL, {"disposition": "Interested"})) == [interested.pk]
    assert ids_in(supervisor_client.get(URL, {"disposition": "-"})) == [none.pk]
    # A code no longer on the list (an old link) still filters, and stays chosen in the menu.
    old = make_call(user=supervisor_user, disposition_code="Retired code")
    response = supervisor_client.get(URL, {"disposition": "Retired code"})
    assert ids_in(response) == [old.pk]
    assert '<option value="Retired code" selected>' in response.content.decode()


def test_it_filters_by_contact(supervisor_client, supervisor_user, contact):
    to_grace = make_call(user=supervisor_user, contact=contact)
    make_call(user=supervisor_user)
    response = supervisor_client.get(URL, {"contact": contact.pk})
    assert ids_in(response) == [to_grace.pk]
    assert "Calls to" in response.content.decode() and contact.name in response.content.decode()


def test_it_filters_by_presented_clid(supervisor_client, supervisor_user, london):
    london_call = make_call(user=supervisor_user, presented_clid=london.number)
    default = make_call(user=supervisor_user, presented_clid="")
    assert ids_in(supervisor_client.get(URL, {"clid": london.number})) == [london_call.pk]
    assert ids_in(supervisor_client.get(URL, {"clid": "-"})) == [default.pk]


def test_it_filters_by_has_error(supervisor_client, supervisor_user):
    failed = make_call(user=supervisor_user, outcome="failed")
    fine = make_call(user=supervisor_user)
    assert ids_in(supervisor_client.get(URL, {"has_error": "yes"})) == [failed.pk]
    assert ids_in(supervisor_client.get(URL, {"has_error": "no"})) == [fine.pk]


def test_it_filters_by_vccs_error_message_and_status(supervisor_client, supervisor_user):
    busy_agent = make_call(user=supervisor_user, outcome="failed")
    make_call(user=supervisor_user, outcome="failed", error_message="Invalid telephone number", error_status=400)
    no_status = make_call(user=supervisor_user, outcome="not_confirmed")
    query = {"error": "Agent is not available", "error_status": 409}
    assert ids_in(supervisor_client.get(URL, query)) == [busy_agent.pk]
    assert ids_in(supervisor_client.get(URL, {"error": "Read timed out"})) == [no_status.pk]


def test_it_filters_by_hour_of_the_day(supervisor_client, supervisor_user):
    nine = make_call(user=supervisor_user, at=local("2026-03-02", 9, 30))
    make_call(user=supervisor_user, at=local("2026-03-02", 10, 30))
    assert ids_in(supervisor_client.get(URL, {"hour": 9})) == [nine.pk]


def test_it_filters_calls_to_wrap_up_and_lists_the_agents_own(agent_client, agent_user, supervisor_user):
    due = make_call(user=agent_user, agent=agent_user.agent)
    make_call(user=agent_user, agent=agent_user.agent, disposition_code="Interested", wrapped_up_at=timezone.now())
    make_call(user=agent_user, agent=agent_user.agent, outcome="failed")
    response = agent_client.get(URL, {"wrap_up": "on"})
    assert ids_in(response) == [due.pk]
    body = response.content.decode()
    assert "Your calls to wrap up" in body
    assert f'href="/calls/{due.pk}/#wrapup"' in body


def test_the_box_of_ones_own_calls_to_wrap_up_links_to_all_of_them_and_no_one_elses(
    supervisor_client, supervisor_user, agent_user
):
    mine = make_call(user=supervisor_user, agent=supervisor_user.agent)
    make_call(user=agent_user, agent=agent_user.agent)  # Alex's to wrap up: the supervisor sees it, but not as theirs
    body = supervisor_client.get(URL).content.decode()
    box = body[body.index("Your calls to wrap up") :]
    box = box[: box.index("</section>")]
    [link] = re.findall(r'<a href="(/calls/\?wrap_up=on[^"]*)">', box)
    assert ids_in(supervisor_client.get(html.unescape(link))) == [mine.pk]


# --- Sorting and pages ---------------------------------------------------------------------------------


def test_it_sorts_by_time_and_by_talk_time(supervisor_client, supervisor_user):
    short = make_call(user=supervisor_user, duration_seconds=5, at=timezone.now() - timedelta(minutes=1))
    long = make_call(user=supervisor_user, duration_seconds=500, at=timezone.now() - timedelta(minutes=3))
    failed = make_call(user=supervisor_user, outcome="failed", at=timezone.now() - timedelta(minutes=2))
    assert ids_in(supervisor_client.get(URL)) == [short.pk, failed.pk, long.pk]
    assert ids_in(supervisor_client.get(URL, {"sort": "time"})) == [long.pk, failed.pk, short.pk]
    # Calls without a talk time (never connected) come after every call that has one.
    assert ids_in(supervisor_client.get(URL, {"sort": "-duration"})) == [long.pk, short.pk, failed.pk]
    assert ids_in(supervisor_client.get(URL, {"sort": "duration"})) == [failed.pk, short.pk, long.pk]


@pytest.mark.parametrize("sort", ["-time", "time", "-duration", "duration"])
def test_pages_walk_every_call_once_forwards_and_back(supervisor_client, supervisor_user, sort):
    base = timezone.now() - timedelta(days=1)
    for n in range(2 * calllog.PAGE_SIZE + 7):
        # Ties on purpose: equal times and equal talk times are broken by id; some calls have no talk time (they
        # sort last, as -1: a page that started among them once lost the rest).
        talk = None if n % 5 == 0 else (n % 4) * 10
        make_call(user=supervisor_user, at=base - timedelta(seconds=n // 3), duration_seconds=talk)
    pages, link = [], f"{URL}?sort={sort}"
    while link:
        response = supervisor_client.get(link)
        pages.append(ids_in(response))
        match = re.search(r'href="(/calls/\?[^"]*)"[^>]*rel="next"', response.content.decode())
        link = html.unescape(match[1]) if match else ""
    seen = [pk for page in pages for pk in page]
    assert len(pages) == 3
    assert sorted(seen) == sorted(Call.objects.values_list("pk", flat=True))
    assert len(set(seen)) == len(seen)
    # Back from the last page: the pages before it, in the same order.
    last_page = response.content.decode()
    previous = supervisor_client.get(html.unescape(re.search(r'href="(/calls/\?[^"]*)"[^>]*rel="prev"', last_page)[1]))
    assert ids_in(previous) == pages[1]
    first = re.search(r'href="(/calls/\?[^"]*)"[^>]*rel="prev"', previous.content.decode())
    assert ids_in(supervisor_client.get(html.unescape(first[1]))) == pages[0]


@pytest.mark.parametrize(
    "query",
    [
        {"start": "yesterday"},
        {"end": "2026-02-30"},
        {"start": "9999-12-31"},
        {"start": "2026-03-05", "end": "2026-03-01"},
        {"agent": "abc"},
        {"agent": "99999"},
        {"agent": "99999999999999999999999"},
        {"group": "-99999999999999999999999"},
        {"contact": "99999999999999999999999"},
        {"start": "2026-01-01\x00"},
        {"group": "²"},
        {"outcome": "NoAnswer"},
        {"hour": "24"},
        {"contact": "-1"},
        {"error_status": "x"},
        {"sort": "id"},
        {"after": "garbage"},
        {"after": "1_2", "before": "1_2"},
        {"before": "99999999999999999999999_1"},
        {"after": "99999999999999999999_1"},
        {"after": "-99999999999999999_1"},
        {"after": "1_99999999999999999999", "sort": "-duration"},
        {"disposition": "x" * 300},
    ],
)
def test_malformed_filters_are_a_400_with_the_reason(supervisor_client, query):
    response = supervisor_client.get(URL, query)
    assert response.status_code == 400
    assert "could not be read" in response.content.decode()
    fragment = supervisor_client.get(URL, query, headers={"HX-Request": "true"})
    assert fragment.status_code == 200  # htmx swaps only 2xx: the form errors show in place
    assert "could not be read" in fragment.content.decode()


# --- Outcomes in plain words ---------------------------------------------------------------------------


@pytest.mark.parametrize(("outcome", "words"), Call.Outcome.choices)
def test_each_outcome_is_shown_in_plain_words(supervisor_client, supervisor_user, outcome, words):
    make_call(user=supervisor_user, outcome=outcome)
    body = supervisor_client.get(URL).content.decode()
    assert html.escape(words) in body or words in body
    for raw in ("NoAnswer", "OneParty", "Originator", ">Failure<"):
        assert raw not in body


def test_a_busy_call_does_not_look_like_an_answered_one(supervisor_client, supervisor_user):
    make_call(user=supervisor_user, outcome="busy")
    body = supervisor_client.get(URL).content.decode()
    assert 'class="badge outcome warn" data-outcome="busy">Line busy<' in body
    assert "outcome ok" not in body


# --- Query counts --------------------------------------------------------------------------------------


def count_queries(client, query=None) -> int:
    client.get(URL, query or {})  # the session and permissions are cached from then on
    with CaptureQueriesContext(connection) as captured:
        assert client.get(URL, query or {}).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("who", ["supervisor", "agent"])
def test_query_count_does_not_grow_with_rows(who, supervisor_client, agent_client, agent_user, sales, contact):
    client = supervisor_client if who == "supervisor" else agent_client
    make_call(user=agent_user, agent=agent_user.agent, contact=contact)
    one = count_queries(client)
    colleague = Agent.objects.create(name="Colleague", display_id="7001")
    for n in range(30):
        make_call(user=agent_user, agent=agent_user.agent, contact=Contact.objects.create(name=f"C{n}"))
        make_call(user=agent_user, groups=[sales], outcome="busy")
        # Every kind of row the page words differently: none may cost a query of its own (a party, a column).
        make_call(user=agent_user, groups=[sales], answered_by=agent_user.agent, contact=contact)
        make_call(user=agent_user, agent=agent_user.agent, to_agent=colleague, to_number="")
        make_call(user=agent_user, agent=agent_user.agent, outcome="failed", error_message="No", error_status=400)
        make_call(user=agent_user, agent=agent_user.agent, contact_erased=True, origin="inbound")
    assert count_queries(client) == one
    assert count_queries(client, {"outcome": "busy", "group": sales.pk}) <= one + 1


def talk_cells(response) -> dict[int, str]:
    """Each call's Talk cell, as text, by call id."""
    rows = re.findall(r'href="/calls/(\d+)/" class="nowrap".*?<td data-label="Talk"[^>]*>(.*?)</td>', response, re.S)
    return {int(pk): re.sub(r"<[^>]+>", "", cell) for pk, cell in rows}


def test_a_call_that_never_connected_shows_no_talk_time_on_the_page_in_htmx_and_in_the_csv(
    supervisor_client, agent_user
):
    alex = agent_user.agent
    at = timezone.now() - timedelta(hours=1)
    never = make_call(user=agent_user, agent=alex, outcome="no_answer", at=at)  # ended: 0 s stored
    assert never.duration_seconds == 0 and never.connected_at is None
    talked = make_call(user=agent_user, agent=alex, at=at, connected_at=at + timedelta(seconds=9), duration_seconds=0)

    for response in (supervisor_client.get(URL), supervisor_client.get(URL, headers={"HX-Request": "true"})):
        cells = talk_cells(response.content.decode())
        assert cells == {never.pk: "—", talked.pk: "0 s"}  # connected, hung up at once: 0 s is true

    export = supervisor_client.get(reverse("call_export"))
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode("utf-8-sig"))))
    assert {int(row["Call ID"]): row["Talk time (seconds)"] for row in rows} == {never.pk: "", talked.pk: "0"}
