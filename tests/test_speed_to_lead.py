"""Speed to lead: a contact says how long since it was added and last called; reports give the time from a contact's
creation to its first call, per agent of that call (calls/reports.py time_to_first_call)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calls import reports
from calls.models import Call, Contact
from tests._calls import local, make_call

pytestmark = pytest.mark.django_db

DAY = "2026-03-02"


def test_the_contact_page_says_when_it_was_added_and_last_called(agent_client, contact):
    now = timezone.now()
    Contact.objects.filter(pk=contact.pk).update(
        created_at=now - timedelta(hours=3, seconds=30), last_called_at=now - timedelta(minutes=20, seconds=10)
    )

    page = agent_client.get(f"/contacts/{contact.pk}/").content.decode()

    assert "Added 3\xa0hours ago · last called 20\xa0minutes ago" in page


def test_a_contact_never_called_says_so(agent_client, contact):
    page = agent_client.get(f"/contacts/{contact.pk}/").content.decode()

    assert "Added just now · not called yet" in page


def added(name: str, at) -> Contact:
    contact = Contact.objects.create(name=name)
    Contact.objects.filter(pk=contact.pk).update(created_at=at)
    return contact


@pytest.fixture
def leads(agent_user, other_agent_user, supervisor_user, sales):
    """Contacts added on 2 March at 09:00, first called after known times; later calls do not count."""
    alex, tom = agent_user.agent, other_agent_user.agent
    start = local(DAY, 9)
    for n, minutes in enumerate([10, 20, 30, 40, 100]):  # Alex: median 30 min, 90th percentile 84 min
        lead = added(f"Alex lead {n}", start)
        make_call(user=agent_user, agent=alex, contact=lead, at=start + timedelta(minutes=minutes))
        make_call(user=other_agent_user, agent=tom, contact=lead, at=start + timedelta(minutes=minutes + 5))
    for n, minutes in enumerate([60, 120]):  # Tom: median 90 min, 90th percentile 114 min
        lead = added(f"Tom lead {n}", start)
        make_call(user=other_agent_user, agent=tom, contact=lead, at=start + timedelta(minutes=minutes))
    # A group call nobody answered, an inbound call (not an attempt), a contact never called, one added the day before.
    lead = added("Group lead", start)
    make_call(
        user=supervisor_user, groups=[sales], outcome="agent_no_answer", contact=lead, at=start + timedelta(hours=2)
    )
    lead = added("Inbound lead", start)
    make_call(user=agent_user, agent=alex, contact=lead, at=start + timedelta(minutes=1), origin=Call.Origin.INBOUND)
    make_call(user=agent_user, agent=alex, contact=lead, at=start + timedelta(minutes=50))
    added("Never called", start)
    old = added("Old lead", local("2026-03-01", 9))
    make_call(user=agent_user, agent=alex, contact=old, at=start)
    return alex, tom


def test_time_to_first_call_per_agent_in_one_query(leads):
    alex, tom = leads

    with CaptureQueriesContext(connection) as queries:
        rows = reports.time_to_first_call(first=date(2026, 3, 2), last=date(2026, 3, 2))

    figures = {(r.agent_id, r.contacts, r.median, r.p90) for r in rows}
    assert figures == {
        (alex.pk, 6, timedelta(minutes=35), timedelta(minutes=75)),  # 10, 20, 30, 40, 50, 100
        (tom.pk, 2, timedelta(minutes=90), timedelta(minutes=114)),
        (None, 1, timedelta(hours=2), timedelta(hours=2)),
    }
    assert rows[0].agent_id == alex.pk  # most contacts first
    if connection.vendor == "postgresql":
        assert len(queries) == 1


def test_time_to_first_call_for_one_agent(leads):
    alex, tom = leads

    rows = reports.time_to_first_call(first=date(2026, 3, 2), last=date(2026, 3, 2), agent=tom)

    assert [(r.agent_id, r.contacts) for r in rows] == [(tom.pk, 2)]


def test_the_python_answer_matches_the_sql_one(leads):
    start, end = reports.day_bounds(date(2026, 3, 2), date(2026, 3, 2))

    if connection.vendor != "postgresql":
        pytest.skip("percentile_cont is PostgreSQL's: the SQL runs there only")
    in_python = sorted(reports._first_call_seconds(start, end), key=str)
    with connection.cursor() as cursor:
        cursor.execute(reports._first_calls_sql(), [*reports.FIRST_CALL_PARAMS, start, end])
        in_sql = sorted(((a, float(m), float(p), n) for a, n, m, p in cursor.fetchall()), key=str)
    for mine, theirs in zip(in_python, in_sql, strict=True):
        assert mine[0] == theirs[0] and mine[3] == theirs[3]
        assert mine[1] == pytest.approx(theirs[1]) and mine[2] == pytest.approx(theirs[2])


def test_a_click_that_failed_is_not_the_first_call(agent_user, other_agent_user):
    """VCC refused it (the agent's phone was not ready): nothing rang, so the contact has not been called yet."""
    alex, tom = agent_user.agent, other_agent_user.agent
    start = local(DAY, 9)
    lead = added("Refused first", start)
    make_call(user=agent_user, agent=alex, contact=lead, outcome="failed", at=start + timedelta(minutes=1))
    make_call(user=other_agent_user, agent=tom, contact=lead, outcome="no_answer", at=start + timedelta(minutes=45))
    only_failed = added("Only refused", start)
    make_call(user=agent_user, agent=alex, contact=only_failed, outcome="failed", at=start + timedelta(minutes=2))

    rows = reports.time_to_first_call(first=date(2026, 3, 2), last=date(2026, 3, 2))

    assert [(r.agent_id, r.contacts, r.median) for r in rows] == [(tom.pk, 1, timedelta(minutes=45))]
    start_, end = reports.day_bounds(date(2026, 3, 2), date(2026, 3, 2))
    assert [(a, n) for a, _median, _p90, n in reports._first_call_seconds(start_, end)] == [(tom.pk, 1)]


def test_the_reports_page_shows_time_to_first_call(supervisor_client, leads):
    page = supervisor_client.get("/reports/", {"start": DAY, "end": DAY}).content.decode()

    assert "Time to first call" in page
    assert "Alex" in page and "35 min 00 s" in page and "1 h 15 min" in page
    assert "Via groups (nobody answered)" in page
