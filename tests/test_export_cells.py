"""Both CSV exports as a spreadsheet opens them: a BOM, no guard on a phone number, local ISO times, colleagues."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from django.db import connection

from calls.models import Agent, Call, Contact
from calls.spreadsheet import as_typed, csv_download, inert
from tests._calls import make_call

pytestmark = pytest.mark.django_db

CALLS = "/calls/export.csv"
CONTACTS = "/contacts/export/"


def text_of(response) -> str:
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode()


def rows_of(response) -> list[dict[str, str]]:
    text = text_of(response)
    assert text.startswith("\ufeff") and not text.startswith("\ufeff\ufeff")
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+447400123456", "+447400123456"),  # E.164: a plus and digits, nothing a spreadsheet runs
        ("+12125550182", "+12125550182"),
        ("2026-12-05T13:39:00+00:00", "2026-12-05T13:39:00+00:00"),
        ("2026-12-05", "2026-12-05"),
        ("+447400123456+1", "'+447400123456+1"),  # not a number any more: arithmetic
        ("+44 7400 123456", "'+44 7400 123456"),
        ("+447400123456; +442079460123", "'+447400123456; +442079460123"),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("=1+1", "'=1+1"),
        ("+0123456789", "'+0123456789"),
    ],
)
def test_the_formula_guard_spares_plain_phone_numbers_and_dates_only(value, expected):
    assert inert(value) == expected
    assert as_typed(inert(value)) == value


def test_a_download_starts_with_one_bom_whether_or_not_its_first_piece_has_one(rf):
    for pieces in (["a,b\r\n", "1,2\r\n"], ["\ufeffa,b\r\n"], [b"a,b\r\n"], [b"\xef\xbb\xbfa,b\r\n"]):
        response = csv_download(rf.get("/"), iter(pieces), filename="x.csv")
        whole = b"".join(response.streaming_content)
        assert whole.startswith(b"\xef\xbb\xbfa,b"), pieces


def test_the_call_export_keeps_phone_numbers_unguarded_and_names_guarded(supervisor_client, agent_user, london):
    make_call(user=agent_user, agent=agent_user.agent, to_number="+447400123456", presented_clid=london.number,
              notes="-2+3")  # fmt: skip
    (row,) = rows_of(supervisor_client.get(CALLS))
    assert row["Number called"] == "+447400123456"
    assert row["Caller ID"] == london.number
    assert row["Notes"] == "'-2+3"


@pytest.mark.parametrize("time_zone", ["Europe/London", "America/New_York", "Asia/Kolkata"])
def test_call_times_are_iso_in_the_viewers_time_zone(supervisor_client, supervisor_user, settings, time_zone):
    settings.TIME_ZONE = time_zone
    make_call(user=supervisor_user, at=datetime(2026, 7, 1, 12, 39, tzinfo=UTC))
    (row,) = rows_of(supervisor_client.get(CALLS))
    expected = {
        "Europe/London": "2026-07-01T13:39:00+01:00",
        "America/New_York": "2026-07-01T08:39:00-04:00",
        "Asia/Kolkata": "2026-07-01T18:09:00+05:30",
    }[time_zone]
    assert row["When"] == expected


@pytest.mark.skipif(connection.vendor != "postgresql", reason="also the Python export, which other databases use")
def test_the_python_export_writes_the_same_times(supervisor_user, settings):
    from calls import calllog
    from calls.views.calllog import _Export

    settings.TIME_ZONE = "America/New_York"
    make_call(user=supervisor_user, at=datetime(2026, 7, 1, 12, 39, 5, 250_000, tzinfo=UTC))
    rows = list(csv.DictReader(io.StringIO("".join(_Export(calllog.filtered_calls(Call.objects.all(), {}), "-time")))))
    assert rows[0]["When"] == "2026-07-01T08:39:05-04:00"


def test_a_call_to_a_colleague_has_a_number_column_and_a_colleague_column(supervisor_client, agent_user):
    tom = Agent.objects.create(display_id="1077", name="Tom Field")
    make_call(user=agent_user, agent=agent_user.agent, to_number="", to_agent=tom, outcome="no_answer")
    make_call(user=agent_user, agent=agent_user.agent, to_number="+447400555111", to_agent=tom, outcome="no_answer")
    make_call(user=agent_user, agent=agent_user.agent, to_number="+447400123456")
    rows = rows_of(supervisor_client.get(CALLS, {"sort": "time"}))
    assert [(r["Number called"], r["Colleague called"]) for r in rows] == [
        ("", "Tom Field (1077)"),
        ("+447400555111", "Tom Field (1077)"),  # the colleague's number, when it is known
        ("+447400123456", ""),
    ]


def test_the_contacts_export_has_one_bom_and_reimports_its_accents(supervisor_client):
    contact = Contact.objects.create(name="Zoë Ångström", company="Café Müller")
    contact.phones.create(number="+447400123456", is_primary=True)
    text = text_of(supervisor_client.get(CONTACTS))
    assert text.startswith("\ufeffName,") and not text.startswith("\ufeff\ufeff")
    (row,) = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    assert (row["Name"], row["Company"], row["Mobile"]) == ("Zoë Ångström", "Café Müller", "+447400123456")


def test_the_contacts_export_writes_when_a_contact_was_created_in_the_viewers_time_zone(supervisor_client, settings):
    settings.TIME_ZONE = "America/New_York"
    contact = Contact.objects.create(name="Ada Byron")
    Contact.objects.filter(pk=contact.pk).update(created_at=datetime(2026, 7, 1, 12, 39, 5, tzinfo=UTC))
    (row,) = csv.DictReader(io.StringIO(text_of(supervisor_client.get(CONTACTS)).removeprefix("\ufeff")))
    assert row["Created"] == "2026-07-01T08:39:05-04:00"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL writes the CSV itself (COPY)")
def test_postgresql_and_python_agree_on_which_cells_are_phone_numbers(supervisor_client, supervisor_user):
    from calls import calllog
    from calls.views.calllog import _Export

    cells = ["+447400123456", "+1234567", "+123456", "+123456789012345", "+1234567890123456", "+0123456789",
             "+44 7400 123456", "+4474001234x", "-447400123456", "+", "=1"]  # fmt: skip
    for n, cell in enumerate(cells):
        make_call(user=supervisor_user, to_number=cell, notes=cell, at=datetime(2026, 7, 1, 12, n, tzinfo=UTC))
    copied = rows_of(supervisor_client.get(CALLS, {"sort": "time"}))
    python = list(csv.DictReader(io.StringIO("".join(_Export(calllog.filtered_calls(Call.objects.all(), {}), "time")))))
    expected = [inert(cell) for cell in cells]
    assert [r["Number called"] for r in copied] == [r["Number called"] for r in python] == expected
    assert [r["Notes"] for r in copied] == [r["Notes"] for r in python] == expected
    unguarded = {"+447400123456", "+1234567", "+123456789012345"}  # E.164: 7 to 15 digits, the first not 0
    assert [e for e in expected if not e.startswith("'")] == [c for c in cells if c in unguarded]
