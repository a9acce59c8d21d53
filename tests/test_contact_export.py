"""The contacts export: streamed batch by batch under ASGI as under WSGI, the same bytes whatever the batch size, and
an export imported again gives back exactly the contacts it came from, formula guard and all; who may export it, and
its cells made inert."""

from __future__ import annotations

import csv
import io

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient

from calls import contact_csv, imports, spreadsheet
from calls.models import Contact, ContactPhone, ErasedNumber
from tests.test_import import confirm, started

pytestmark = pytest.mark.django_db

URL = "/contacts/export/"


@pytest.fixture(autouse=True)
def _inline_jobs(settings):
    settings.CONTACT_IMPORT_BACKGROUND = False  # the import's jobs in the request: a thread cannot see the test's rows


def some_contacts(count: int) -> list[Contact]:
    contacts = [Contact.objects.create(name=f"Person {i}", company="Cobalt") for i in range(count)]
    for i, contact in enumerate(contacts):
        ContactPhone.objects.create(contact=contact, label="mobile", number=f"+4474001234{i:02d}", is_primary=True)
    return contacts


def exported(client) -> bytes:
    response = client.get(URL)
    assert response.status_code == 200
    return b"".join(response.streaming_content)


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_export_is_an_async_stream_sent_batch_by_batch(supervisor_user, monkeypatch):
    monkeypatch.setattr(contact_csv, "EXPORT_BATCH", 2)
    await sync_to_async(some_contacts)(5)
    client = AsyncClient()
    await client.aforce_login(supervisor_user)
    response = await client.get(URL)
    assert response.status_code == 200
    assert response.is_async  # Django's ASGI handler sends each piece as it comes, not the whole file at the end
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="contacts-')
    chunks = [chunk async for chunk in response.streaming_content]
    assert len(chunks) == 4  # the header, then 2 + 2 + 1 contacts
    assert chunks[0].decode().startswith("\ufeffName,Company,Email,Mobile")
    rows = list(csv.reader(io.StringIO(b"".join(chunks[1:]).decode())))
    assert [row[0] for row in rows] == [f"Person {i}" for i in range(5)]
    await sync_to_async(connections.close_all)()  # asgiref's thread's own connection


def test_the_batch_size_changes_nothing_in_the_file(supervisor_client, monkeypatch):
    contacts = some_contacts(5)
    ContactPhone.objects.create(contact=contacts[1], label="work", number="+442079460123", do_not_call=True)
    ContactPhone.objects.create(contact=contacts[1], label="mobile", number="+447400999999")
    whole = exported(supervisor_client)
    for size in (1, 2, 5):
        monkeypatch.setattr(contact_csv, "EXPORT_BATCH", size)
        assert exported(supervisor_client) == whole
    rows = list(csv.DictReader(io.StringIO(whole.decode().removeprefix("\ufeff"))))
    assert len(rows) == 5
    # The primary number first; two numbers in a cell keep the formula guard, one number alone needs none.
    assert rows[1]["Mobile"] == "'+447400123401; +447400999999"
    assert rows[1]["Work phone"] == rows[1]["Do-not-call numbers"] == "+442079460123"


def test_the_export_reads_the_contacts_a_batch_at_a_time(supervisor_client, monkeypatch, django_assert_max_num_queries):
    monkeypatch.setattr(contact_csv, "EXPORT_BATCH", 10)
    some_contacts(30)
    exported(supervisor_client)  # the session and permissions are cached from then on
    with django_assert_max_num_queries(3 * 2 + 2):  # 3 batches of two queries, the empty last one, the session
        exported(supervisor_client)


GUARDED = [
    {"name": "=HYPERLINK(1)", "company": "+Corp", "email": "=x@example.com", "notes": "-1+1"},
    {"name": "@mention", "company": "-minus", "email": "+plus@example.com", "notes": "\tindented"},
    {"name": "'quoted", "company": "'", "email": "", "notes": "line\rbreak"},
    {"name": "Plain Person", "company": "Cobalt", "email": "plain@example.com", "notes": "="},
]


def test_an_export_imported_again_gives_back_exactly_the_contacts_it_came_from(supervisor_client):
    for n, fields in enumerate(GUARDED):
        contact = Contact.objects.create(**fields, do_not_call=n == 1)
        ContactPhone.objects.create(contact=contact, label="mobile", number=f"+44740012345{n}", is_primary=True)
        ContactPhone.objects.create(contact=contact, label="home", number=f"+44207946012{n}", do_not_call=n == 2)

    def everyone() -> list[tuple]:
        return sorted(
            (c.name, c.company, c.email, c.notes, c.do_not_call)
            + tuple(sorted((p.label, p.number, p.do_not_call) for p in c.phones.all()))
            for c in Contact.objects.prefetch_related("phones")
        )

    before = everyone()
    data = exported(supervisor_client)
    assert b"'=HYPERLINK(1)" in data and b"'\tindented" in data  # the export guarded them
    Contact.objects.all().delete()
    # Into a workspace that never had them: deleting keeps do-not-call numbers blocked (tests/test_privacy_opt_outs.py),
    # which would mark the numbers of the do-not-call contact do-not-call one by one as they come back.
    ErasedNumber.objects.all().delete()
    imp = started(supervisor_client, data)
    assert imp.report["problem_count"] == 0, imp.report
    assert confirm(supervisor_client, imp).status_code == 302
    assert everyone() == before


@pytest.mark.parametrize(
    ("cell", "read"),
    [
        ("'=SUM(A1)", "=SUM(A1)"),
        ("'+44 7400 123456", "+44 7400 123456"),
        ("'-1", "-1"),
        ("'@x", "@x"),
        ("'\tx", "\tx"),
        ("'\rx", "\rx"),
        ("'quoted", "'quoted"),  # not a guard: kept as typed
        ("''=x", "''=x"),
        ("'", "'"),
        ("=x", "=x"),
    ],
)
def test_the_import_drops_only_the_apostrophe_an_export_added(cell, read):
    row = imports.parse_row(2, [cell], {"name": 0, "company": 0, "notes": 0}, "GB")
    assert (row.name, row.company, row.notes) == (read, read, read)


def test_export_needs_the_export_permission(agent_client, supervisor_client, client):
    assert client.get("/contacts/export/").status_code == 302
    assert agent_client.get("/contacts/export/").status_code == 403
    assert supervisor_client.get("/contacts/export/").status_code == 200


def test_export_streams_every_contact_with_all_their_numbers_made_inert(supervisor_client, contact):
    Contact.objects.create(name='=HYPERLINK("http://evil")', company="@corp", notes="-1+1", email="")
    ContactPhone.objects.filter(number="+442079460123").update(do_not_call=True)
    response = supervisor_client.get("/contacts/export/")
    assert response.streaming
    assert response["Content-Disposition"].startswith('attachment; filename="contacts-')
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    grace = next(r for r in rows if r["Name"] == "Grace Hopper")
    assert grace["Mobile"] == "+447400123456"  # plainly a phone number: no guard (issue 17)
    assert grace["Work phone"] == "+442079460123"
    assert grace["Do-not-call numbers"] == "+442079460123"
    evil = next(r for r in rows if "HYPERLINK" in r["Name"])
    assert evil["Name"].startswith("'=") and evil["Company"] == "'@corp" and evil["Notes"] == "'-1+1"


def test_an_export_imported_again_finds_every_contact_as_a_duplicate(supervisor_client, contact):
    exported = b"".join(supervisor_client.get("/contacts/export/").streaming_content)
    imp = started(supervisor_client, exported)
    assert imp.report["problem_count"] == 0
    assert [d["contact_id"] for d in imp.report["duplicates"]] == [contact.pk]


def test_inert_guards_every_formula_start():
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert spreadsheet.inert(f"{start}x") == f"'{start}x"
    assert spreadsheet.inert("plain") == "plain" and spreadsheet.inert(None) == ""


def test_every_field_comes_back_owner_time_zone_consent_priority_and_the_primary_number(
    supervisor_client, supervisor_user, agent_user
):
    # Re-imported, every contact was owned by whoever imported, lost its time zone, recording consent and priority,
    # and had its first mobile made primary whatever was.
    ada = Contact.objects.create(
        name="Ada", owner=agent_user, time_zone="America/New_York", consent_override="TwoParty", priority=5
    )
    ContactPhone.objects.create(contact=ada, label="home", number="+442079460100", is_primary=True)
    ContactPhone.objects.create(contact=ada, label="mobile", number="+447400123450")
    ContactPhone.objects.create(contact=ada, label="work", number="+442079460101", do_not_call=True)
    bob = Contact.objects.create(name="Bob", consent_override="OneParty", priority=-3)
    ContactPhone.objects.create(contact=bob, label="other", number="+12125550100", is_primary=True)
    Contact.objects.create(name="Cy", owner=supervisor_user)

    def everyone() -> list[tuple]:
        return sorted(
            (c.name, c.owner_id, c.time_zone, c.consent_override, c.priority)
            + tuple((p.label, p.number, p.is_primary, p.do_not_call) for p in c.phones.order_by("-is_primary", "pk"))
            for c in Contact.objects.prefetch_related("phones")
        )

    before = everyone()
    data = exported(supervisor_client)
    Contact.objects.all().delete()
    ErasedNumber.objects.all().delete()
    imp = started(supervisor_client, data)
    assert imp.report["problem_count"] == 0, imp.report
    confirm(supervisor_client, imp)
    assert everyone() == before


@pytest.mark.parametrize(
    ("cells", "problem"),
    [
        (["Nobody", "", "", ""], "The owner “Nobody” is not anyone's username"),
        (["", "Europe/Londn", "", ""], "“Europe/Londn” is not a time zone"),
        (["", "", "Maybe", ""], "Recording consent is “Maybe”: use Unknown, One party, Two party"),
        (["", "", "", "high"], "The priority is “high”: use a whole number"),
        (["", "", "", "99999"], "The priority is “99999”"),
    ],
)
def test_an_owner_time_zone_consent_or_priority_that_cannot_be_stored_says_what_to_fix(
    supervisor_client, cells, problem
):
    imp = started(supervisor_client, "Name,Owner,Time zone,Recording consent,Priority\nAda," + ",".join(cells) + "\n")
    assert problem in " ".join(imp.report["problems"][0]["messages"])


def test_an_owner_is_found_in_any_letter_case_and_an_update_takes_the_files_fields(
    supervisor_client, agent_user, contact
):
    header = "Name,Mobile,Owner,Time zone,Recording consent,Priority"
    text = f"{header}\nGrace,+447400123456,{agent_user.username.upper()},Europe/Paris,two party,2\n"
    imp = started(supervisor_client, text)
    assert imp.report["problem_count"] == 0, imp.report
    confirm(supervisor_client, imp, row2="update")
    contact.refresh_from_db()
    assert (contact.owner, contact.time_zone, contact.consent_override, contact.priority) == (
        agent_user,
        "Europe/Paris",
        "TwoParty",
        2,
    )
