"""The call log's filter form as people meet it: distinct labels, menus by role, one sort, a clean address."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.utils import timezone

from calls import calllog
from tests._calls import make_call

pytestmark = pytest.mark.django_db

URL = "/calls/"
EMPTY_FORM = {
    "start": "",
    "end": "",
    "agent": "",
    "group": "",
    "via": "",
    "outcome": "busy",
    "disposition": "",
    "clid": "",
    "has_error": "",
    "sort": "-time",
}


def labels_in(body: str) -> dict[str, str]:
    return {m[1]: html.unescape(m[2]) for m in re.finditer(r'<label for="id_(\w+)">([^<]*)</label>', body)}


def test_the_date_from_and_the_caller_from_have_distinct_labels(supervisor_client):
    labels = labels_in(supervisor_client.get(URL).content.decode())
    assert labels["start"] == "From date"
    assert labels["end"] == "To date"
    assert labels["via"] == "Called from"
    assert len(set(labels.values())) == len(labels), labels


def test_an_agent_gets_no_agent_menu_and_a_supervisor_does(agent_client, supervisor_client):
    agent_page = agent_client.get(URL).content.decode()
    assert 'name="agent"' not in agent_page
    assert "Any agent" not in agent_page
    assert 'name="agent"' in supervisor_client.get(URL).content.decode()


def test_sort_is_offered_once(supervisor_client, supervisor_user):
    make_call(user=supervisor_user)
    body = supervisor_client.get(URL).content.decode()
    for _value, label in [("-time", "Newest first"), ("time", "Oldest first"), ("duration", "Shortest talk first")]:
        assert body.count(label) == 1, label
    assert body.count('name="sort"') == 1


def test_the_filters_fold_into_a_closed_details_with_a_summary_of_what_is_set(supervisor_client):
    body = supervisor_client.get(URL, {"outcome": "busy", "has_error": "yes"}).content.decode()
    assert '<details class="filters-fold">' in body  # no `open`: app.css shows it from 720 px, folds it on a phone
    assert "<summary>Filters (2 set)</summary>" in body
    assert "<summary>Filters</summary>" in supervisor_client.get(URL).content.decode()


def test_a_submitted_form_with_empty_fields_moves_to_the_address_of_the_filters_that_are_set(supervisor_client):
    response = supervisor_client.get(URL, EMPTY_FORM)
    assert response.status_code == 302
    assert response.url == f"{URL}?outcome=busy"  # no empty fields, and the default sort left out
    response = supervisor_client.get(URL, {**EMPTY_FORM, "sort": "time", "wrap_up": "on"})
    assert dict(parse_qsl(urlsplit(response.url).query)) == {"outcome": "busy", "wrap_up": "on", "sort": "time"}
    assert supervisor_client.get(URL, {"outcome": "busy"}).status_code == 200


def test_an_htmx_filter_change_pushes_the_address_of_the_filters_that_are_set(supervisor_client):
    response = supervisor_client.get(URL, {**EMPTY_FORM, "sort": "duration"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response["HX-Push-Url"] == f"{URL}?outcome=busy&sort=duration"


def test_a_bad_filter_is_not_redirected_but_explained(supervisor_client):
    response = supervisor_client.get(URL, {**EMPTY_FORM, "start": "soon"})
    assert response.status_code == 400
    assert "Enter a valid date" in response.content.decode()


NOT_ON_MENU = "That is not one of the menu's choices (removed, or a mistyped link): choose one."


def problems_in(body: str) -> list[str]:
    alert = body[body.index('<div class="error" role="alert">') :]
    alert = alert[: alert.index("</div>")]
    return [html.unescape(m) for m in re.findall(r"<li>([^<]*)</li>", alert)]


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({"start": "soon"}, "From date: Enter a valid date, as year-month-day (2026-03-02)."),
        ({"end": "2026-02-30"}, "To date: Enter a valid date, as year-month-day (2026-03-02)."),
        ({"start": "2026-03-05", "end": "2026-03-01"}, "To date: The end date is before the start date."),
        ({"has_error": "maybe"}, f"Errors: {NOT_ON_MENU}"),
        ({"via": "post"}, f"Called from: {NOT_ON_MENU}"),
        ({"agent": "99999"}, f"Agent: {NOT_ON_MENU}"),
        ({"after": "garbage"}, "This page link is damaged: start again from the first page."),
    ],
)
def test_a_bad_filter_is_named_by_its_label_with_what_to_fix(supervisor_client, query, problem):
    for headers in ({}, {"HX-Request": "true"}):
        assert problems_in(supervisor_client.get(URL, query, headers=headers).content.decode()) == [problem]


def test_a_bad_value_a_link_set_is_named_and_the_link_blamed(supervisor_client):
    [problem] = problems_in(supervisor_client.get(URL, {"hour": "24"}).content.decode())
    assert problem.startswith("The hour: Ensure this value is less than or equal to 23. The link that set it is")
    [problem] = problems_in(supervisor_client.get(URL, {"queue_user": "me"}).content.decode())
    assert problem.startswith("The person in the queue: Enter a whole number. The link that set it is damaged")


def test_the_export_names_a_bad_filter_by_its_label(supervisor_client):
    response = supervisor_client.get("/calls/export.csv", {"start": "soon"})
    assert response.status_code == 400
    assert response.content.decode() == "Bad filter: From date: Enter a valid date, as year-month-day (2026-03-02)."


def test_page_and_export_links_carry_only_the_filters_that_are_set(supervisor_client, supervisor_user):
    for n in range(calllog.PAGE_SIZE + 1):
        make_call(user=supervisor_user, outcome="busy", at=timezone.now() - timedelta(minutes=n))
    body = supervisor_client.get(URL, {"outcome": "busy"}).content.decode()
    results = body[body.index('<div id="results"') :]  # the wrap-up list above links to ?wrap_up=on alone
    links = [html.unescape(m) for m in re.findall(r'href="(/calls/(?:export\.csv)?\?[^"]*)"', results)]
    assert any("after=" in link for link in links)
    assert any(link.startswith("/calls/export.csv?") for link in links)
    for link in links:
        query = parse_qsl(urlsplit(link).query, keep_blank_values=True)
        assert all(value for _name, value in query), link
        assert ("outcome", "busy") in query, link
        assert ("sort", "-time") not in query, link


def test_a_link_without_any_filter_is_the_bare_address(supervisor_client, contact):
    body = supervisor_client.get(URL, {"contact": contact.pk}).content.decode()
    assert 'href="/calls/">every contact</a>' in body
    assert 'href="/calls/export.csv?contact=' in body
    assert 'href="/calls/export.csv"' in supervisor_client.get(URL).content.decode()
