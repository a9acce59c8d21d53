from __future__ import annotations

import csv
import io

import pytest
from django.db import connection, connections
from django.test import AsyncClient
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from calls.spreadsheet import inert
from tests._calls import make_call

pytestmark = pytest.mark.django_db

URL = "/calls/export.csv"


def rows_of(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    assert text.startswith("\ufeff")  # once: Excel reads the file as UTF-8
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


def test_url_is_named():
    assert reverse("call_export") == URL


def test_it_exports_a_header_then_one_row_per_call(supervisor_client, agent_user, contact, sales, london):
    call = make_call(
        user=agent_user,
        agent=agent_user.agent,
        contact=contact,
        presented_clid=london.number,
        disposition_code="Interested",
        notes="Wants a quote",
        vcc_call_id="017db4a2",
        duration_seconds=75,
    )
    via = make_call(user=agent_user, groups=[sales], outcome="failed")
    inbound = make_call(user=agent_user, agent=agent_user.agent, contact=contact, origin="inbound")
    header, *rows = rows_of(supervisor_client.get(URL))
    # In words a spreadsheet user reads, as the page says them: no column names from the code.
    assert header == [
        "Call ID", "When", "Agent", "Via groups", "Placed by", "Contact", "Number called", "Colleague called",
        "Caller ID", "Outcome", "Talk time (seconds)", "Disposition", "Notes", "VCC call ID", "Error", "Origin",
    ]  # fmt: skip
    by_id = {int(r[0]): dict(zip(header, r, strict=True)) for r in rows}
    assert set(by_id) == {call.pk, via.pk, inbound.pk}
    row = by_id[call.pk]
    assert row["Agent"] == "Alex Morgan (1001)"
    assert row["Contact"] == "Grace Hopper"
    assert row["Number called"] == "+447400123456"  # plainly a phone number: no formula guard
    assert row["Caller ID"] == "+442079460100"
    assert row["Outcome"] == "Answered"
    assert row["Talk time (seconds)"] == "75"
    assert row["Disposition"] == "Interested"
    assert row["Notes"] == "Wants a quote"
    assert row["VCC call ID"] == "017db4a2"
    assert row["When"].startswith(call.requested_at.astimezone().strftime("%Y-"))
    failed = by_id[via.pk]
    assert failed["Via groups"] == "Sales UK"
    assert failed["Agent"] == ""
    assert failed["Outcome"] == "Failed"
    assert failed["Error"] == "HTTP 409: Agent is not available"
    assert failed["Talk time (seconds)"] == ""
    # Where each call came from, in the words of the log's badge: inbound calls apart from outbound ones.
    assert row["Origin"] == failed["Origin"] == "Placed from vccweb"
    assert by_id[inbound.pk]["Origin"] == "Inbound, not placed from vccweb"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("plain = text", "plain = text"),
        ("", ""),
    ],
)
def test_cells_a_spreadsheet_would_run_are_made_inert(value, expected):
    assert inert(value) == expected


def test_the_export_escapes_formulas_in_stored_text(supervisor_client, agent_user, contact):
    contact.name = "=cmd|' /C calc'!A0"
    contact.save()
    make_call(user=agent_user, agent=agent_user.agent, contact=contact, notes="@SUM(1+1)", disposition_code="-bad")
    header, row = rows_of(supervisor_client.get(URL))
    cells = dict(zip(header, row, strict=True))
    assert cells["Contact"] == "'=cmd|' /C calc'!A0"
    assert cells["Notes"] == "'@SUM(1+1)"
    assert cells["Disposition"] == "'-bad"


def test_the_export_escapes_formulas_in_agent_and_group_names(supervisor_client, agent_user, supervisor_user, sales):
    agent = agent_user.agent
    agent.name = '=HYPERLINK("http://evil","x")'
    agent.save()
    sales.name = "@SUM(1+1)"
    sales.save()
    make_call(user=agent_user, agent=agent)
    make_call(user=supervisor_user, groups=[sales])

    header, *rows = rows_of(supervisor_client.get(URL, {"sort": "time"}))
    by_agent, via_group = (dict(zip(header, row, strict=True)) for row in rows)

    assert by_agent["Agent"] == f'\'=HYPERLINK("http://evil","x") ({agent.display_id})'
    assert via_group["Via groups"] == "'@SUM(1+1)"


def test_an_agent_exports_only_their_own_calls(agent_client, agent_user, other_agent_user):
    mine = make_call(user=agent_user, agent=agent_user.agent)
    make_call(user=other_agent_user, agent=other_agent_user.agent)
    _header, *rows = rows_of(agent_client.get(URL))
    assert [int(r[0]) for r in rows] == [mine.pk]
    # Not through a crafted filter either.
    _header, *rows = rows_of(agent_client.get(URL, {"agent": other_agent_user.agent.pk}))
    assert rows == []


def test_it_takes_the_call_logs_filters(supervisor_client, supervisor_user):
    busy = make_call(user=supervisor_user, outcome="busy")
    make_call(user=supervisor_user, outcome="answered")
    _header, *rows = rows_of(supervisor_client.get(URL, {"outcome": "busy"}))
    assert [int(r[0]) for r in rows] == [busy.pk]


def test_the_log_links_to_the_export_with_its_filters(supervisor_client):
    body = supervisor_client.get("/calls/", {"outcome": "busy"}).content.decode()
    assert 'href="/calls/export.csv?outcome=busy"' in body  # the default sort goes without saying


def test_it_exports_in_batches_across_many_rows(supervisor_client, supervisor_user, monkeypatch):
    from calls.views import calllog

    monkeypatch.setattr(calllog, "EXPORT_BATCH", 3)
    made = [make_call(user=supervisor_user, duration_seconds=n % 2) for n in range(10)]
    _header, *rows = rows_of(supervisor_client.get(URL, {"sort": "-duration"}))
    assert sorted(int(r[0]) for r in rows) == sorted(c.pk for c in made)
    assert len(rows) == 10


def test_malformed_filters_are_a_400(supervisor_client):
    response = supervisor_client.get(URL, {"start": "soon"})
    assert response.status_code == 400
    assert "From date: Enter a valid date" in response.content.decode()


def test_it_rejects_post(supervisor_client):
    assert supervisor_client.post(URL).status_code == 405


def test_it_sends_anonymous_visitors_to_log_in(client):
    assert client.get(URL).status_code == 302


def count_queries(client) -> int:
    client.get(URL)  # the session and permissions are cached from then on
    with CaptureQueriesContext(connection) as captured:
        rows_of(client.get(URL))
    return len(captured.captured_queries)


def test_query_count_does_not_grow_with_rows(supervisor_client, supervisor_user, sales, contact):
    make_call(user=supervisor_user, groups=[sales], contact=contact)
    one = count_queries(supervisor_client)
    for _ in range(40):
        make_call(user=supervisor_user, groups=[sales], contact=contact)
    assert count_queries(supervisor_client) == one


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_it_streams_batch_by_batch(supervisor_user):
    from asgiref.sync import sync_to_async

    call = await sync_to_async(make_call)(user=supervisor_user, outcome="busy")
    client = AsyncClient()
    await client.aforce_login(supervisor_user)
    response = await client.get(URL)
    assert response.status_code == 200
    chunks = [chunk async for chunk in response.streaming_content]
    assert len(chunks) == 2  # the header, then the one batch
    assert chunks[0].startswith("\ufeff".encode())
    assert f"{call.pk}," in chunks[1].decode()
    await sync_to_async(connections.close_all)()  # asgiref's thread's own connection


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL writes the CSV itself (COPY)")
@pytest.mark.parametrize("sort", ["-time", "time", "-duration", "duration"])
def test_postgresqls_csv_is_the_same_as_pythons(supervisor_client, supervisor_user, agent_user, contact, sales, sort):
    """The COPY export and the Python one give the same cells for the same calls, formula guard included."""
    from calls import calllog
    from calls.models import Call
    from calls.views.calllog import _Export

    tom = agent_user.agent
    make_call(user=agent_user, agent=tom, contact=contact, notes="=HYPERLINK(1)", disposition_code="+1 later")
    make_call(user=supervisor_user, groups=[sales], outcome="busy", notes="@cmd", duration_seconds=None)
    make_call(user=agent_user, agent=tom, outcome="failed", error_message="-bad", error_display="x")
    make_call(user=agent_user, agent=tom, outcome="not_confirmed", error_status=None)
    make_call(user=agent_user, agent=tom, to_number="", to_agent=tom, outcome="no_answer", duration_seconds=12)
    make_call(user=agent_user, agent=tom, outcome="no_answer")  # never connected: no talk time, not 0
    tom.name, sales.name = "-Tom", "=Sales"
    tom.save()
    sales.save()
    make_call(user=agent_user, agent=tom, outcome="answered")
    make_call(user=supervisor_user, groups=[sales], outcome="answered")
    make_call(user=agent_user, agent=tom, contact=None, contact_erased=True, to_number="+44 •••• •••461")
    make_call(user=agent_user, agent=tom, contact=contact, origin="inbound")
    make_call(user=agent_user, agent=tom, origin="agent_phone")

    copied = rows_of(supervisor_client.get(URL, {"sort": sort}))
    calls = calllog.filtered_calls(Call.objects.all(), {})
    python = list(csv.reader(io.StringIO("".join(_Export(calls, sort)))))

    assert [row[:1] + row[2:] for row in copied] == [row[:1] + row[2:] for row in python]
    assert {row[-1] for row in copied[1:]} == {"Placed from vccweb", "Inbound, not placed from vccweb",
                                                "Dialled from the agent's phone, not from vccweb"}  # fmt: skip
    assert [row[1][:19] for row in copied] == [row[1][:19] for row in python]  # the time, to the second
