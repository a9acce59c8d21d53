"""What bounds a contact import: the file is read a chunk at a time, a person has at most two imports checked at
once, and previews nobody confirms expire after 24 hours with their rows (by the worker, or by hand)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from calls import import_files, tasks
from calls.models import Contact, ContactImport, ContactImportKey, ContactImportRow
from tests.test_import import GOOD, confirm, started, upload

pytestmark = pytest.mark.django_db

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _inline_jobs(settings):
    settings.CONTACT_IMPORT_BACKGROUND = False


# --- Read a chunk at a time ------------------------------------------------------------------------------------


def test_a_file_is_read_a_chunk_at_a_time_not_whole():
    pulled = []

    def chunks():
        yield b"Name,Phone\nAda,020 7946 0100\n" + b"Bob,020 7946 0101\n" * 5000
        for i in range(1000):
            pulled.append(i)
            yield b"Cy,020 7946 0102\n" * 100

    rows = import_files.read_upload(chunks())
    assert next(rows) == ["Name", "Phone"]
    assert next(rows) == ["Ada", "020 7946 0100"]
    assert len(pulled) <= 1  # the rest of the file has not been read yet
    assert sum(1 for _ in rows) == 5000 + 100_000
    assert len(pulled) == 1000


def test_rows_are_stored_numbered_as_a_spreadsheet_numbers_them(agent_client, monkeypatch):
    monkeypatch.setattr("calls.imports.BATCH", 2)  # several batches of rows
    imp = started(agent_client, "Name,Phone\nA,020 7946 0100\n\nC,020 7946 0102\nD,\nE,020 7946 0104\n")
    assert list(imp.lines.order_by("number").values_list("number", "cells")) == [
        (2, ["A", "020 7946 0100"]),
        (3, []),
        (4, ["C", "020 7946 0102"]),
        (5, ["D", ""]),
        (6, ["E", "020 7946 0104"]),
    ]
    assert imp.row_count == 5 and imp.report["rows"] == 4 and imp.report["ready"] == 4


def test_duplicates_across_batches_are_found(agent_client, monkeypatch):
    monkeypatch.setattr("calls.imports.BATCH", 2)
    text = (
        "Name,Phone,Email\nA,020 7946 0100,\nB,,b@example.com\nC,020 7946 0101,\nD,,B@EXAMPLE.com\nE,020 7946 0100,\n"
    )
    imp = started(agent_client, text)
    assert {d["row"]: d["of_row"] for d in imp.report["duplicates"]} == {5: 3, 6: 2}
    confirm(agent_client, imp, row5="update", row6="skip")
    assert sorted(Contact.objects.values_list("name", flat=True)) == ["A", "C", "D"]  # D updated B's contact


def test_a_row_with_more_numbers_than_a_person_has_is_a_problem(agent_client):
    many = "; ".join(f"020 7946 {i:04d}" for i in range(21))
    imp = started(agent_client, f"Name,Phone\nA,{many}\nB,020 7946 0100\n")
    assert imp.report["problems"] == [
        {"row": 2, "messages": ["The row has more than 20 numbers: a contact may have at most 20."]}
    ]
    assert imp.report["ready"] == 1


# --- Two at once -----------------------------------------------------------------------------------------------


def checking(user, **fields) -> ContactImport:
    return ContactImport.objects.create(created_by=user, status=ContactImport.Status.CHECKING, **fields)


def test_a_third_upload_while_two_are_checked_is_refused(agent_client, agent_user):
    checking(agent_user)
    checking(agent_user)
    response = upload(agent_client, GOOD)
    assert response.status_code == 400
    assert "You have two imports being checked: wait for one to finish, then upload again." in response.content.decode()
    assert ContactImport.objects.count() == 2
    pasted = agent_client.post("/contacts/import/", {"text": GOOD})
    assert pasted.status_code == 400 and ContactImport.objects.count() == 2


def test_imports_checked_for_someone_else_or_stopped_long_ago_do_not_count(agent_client, agent_user, make_user):
    someone = make_user("someone")
    checking(someone)
    checking(someone)
    stopped = checking(agent_user)
    ContactImport.objects.filter(pk=stopped.pk).update(updated_at=T)  # its process died long ago
    checking(agent_user)
    assert upload(agent_client, GOOD).status_code == 302


# --- Expiry ----------------------------------------------------------------------------------------------------


def an_import(user, status: str, updated_at: datetime) -> ContactImport:
    imp = ContactImport.objects.create(created_by=user, status=status, header=["Name"], row_count=1)
    imp.lines.create(number=2, cells=["Ada"], parsed=[2, "Ada", "", "", "", False, []])
    ContactImportKey.objects.create(contact_import=imp, number=2, position=0, key="ada@example.com")
    ContactImport.objects.filter(pk=imp.pk).update(updated_at=updated_at)
    return imp


def test_previews_not_confirmed_in_24_hours_expire_and_their_rows_are_deleted(agent_user):
    preview = an_import(agent_user, "preview", T)
    failed = an_import(agent_user, "failed", T)
    died = an_import(agent_user, "checking", T)
    recent = an_import(agent_user, "preview", T + timedelta(hours=2))
    done = an_import(agent_user, "done", T)

    assert ContactImport.objects.expire_previews(now=T + timedelta(hours=23, minutes=59)) == 0
    assert ContactImport.objects.expire_previews(now=T + timedelta(hours=24, minutes=1)) == 3

    statuses = dict(ContactImport.objects.values_list("pk", "status"))
    assert [statuses[i.pk] for i in (preview, failed, died, recent, done)] == [
        "expired",
        "expired",
        "expired",
        "preview",
        "done",
    ]
    assert set(ContactImportRow.objects.values_list("contact_import_id", flat=True)) == {recent.pk, done.pk}
    assert set(ContactImportKey.objects.values_list("contact_import_id", flat=True)) == {recent.pk, done.pk}
    assert ContactImport.objects.expire_previews(now=T + timedelta(days=3)) == 1  # the recent one, later


def test_an_expired_import_says_so_and_cannot_be_confirmed(agent_client, agent_user):
    imp = started(agent_client, GOOD)
    ContactImport.objects.filter(pk=imp.pk).update(updated_at=T)
    ContactImport.objects.expire_previews(now=T + timedelta(days=1, seconds=1))
    page = agent_client.get(f"/contacts/import/{imp.pk}/").content.decode()
    assert "This import expired: it was not confirmed within 24 hours" in page
    confirm(agent_client, imp)
    assert Contact.objects.count() == 0
    assert agent_client.post(f"/contacts/import/{imp.pk}/fix/2/", {}).status_code == 404


def test_the_command_expires_previews(agent_user, capsys):
    an_import(agent_user, "preview", T)
    call_command("expire_imports")
    assert "Expired 1 import nobody confirmed." in capsys.readouterr().out
    assert not ContactImportRow.objects.exists()


def test_the_worker_expires_previews(agent_user):
    imp = an_import(agent_user, "preview", T)
    tasks.expire_imports.func(timestamp=0)
    imp.refresh_from_db()
    assert imp.status == "expired" and not imp.lines.exists()


def test_the_check_reports_progress_after_a_small_first_batch(agent_user, monkeypatch):
    """The preview's bar moves within a fraction of a second: FIRST_BATCH rows, then BATCH at a time."""
    from calls import imports

    sizes = []
    store = imports._store_parsed
    monkeypatch.setattr(imports, "_store_parsed", lambda parsed: sizes.append(len(parsed)) or store(parsed))
    monkeypatch.setattr(imports, "BATCH", 500)
    rows = "".join(f"Person {i},+4474001{i:05d}\n" for i in range(1_300))
    imp = imports.store_upload(user=agent_user, filename="many.csv", chunks=[f"Name,Phone\n{rows}".encode()])
    imp.refresh_from_db()
    assert imp.status == "preview" and imp.report["rows"] == 1_300
    assert sizes == [imports.FIRST_BATCH, 500, 500, 100]
