"""Erasure and an import being written (calls/privacy/erasure.py, calls/imports.py apply): an erasure that commits
while a confirmed import writes its rows wins; the person's rows are left out, and the import says so. The erasure
of pending imports' rows: tests/test_privacy_erasure.py."""

from __future__ import annotations

import json
import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from calls import imports
from calls.models import Contact, ContactImport, ContactImportRow, ContactPhone
from calls.privacy import erasure

NAME, EMAIL, MOBILE = "Perpetua Quillfeather", "perpetua.q@example.org", "+447400900461"
HEADER = "Name,Email,Mobile\n"
# Their whole name with a number the contact never had: theirs to the erasure, yet no duplicate of the contact.
THEIRS = f"{NAME},,07400 555000\n"
OTHERS = ["Somebody Else,,07400 123456\n", "Somebody Third,,07400 123457\n"]


@pytest.fixture
def person(db) -> Contact:
    contact = Contact.objects.create(name=NAME, email=EMAIL)
    ContactPhone.objects.create(contact=contact, label="mobile", number=MOBILE, is_primary=True)
    return contact


def erase_in_another_transaction(contact_pk: int, by) -> None:
    """Erase the contact on a connection of its own and wait until it has committed (or failed): the apply's
    transaction, still open on this one, sees it as it would a web request's."""
    failed: list[BaseException] = []

    def erase() -> None:
        try:
            erasure.erase_contact(contact_pk=contact_pk, by=by, now=timezone.now())
        except BaseException as exc:  # handed to the test's thread
            failed.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=erase)
    thread.start()
    thread.join(30)  # a guard against a lock that never comes, not a wait for anything
    assert not thread.is_alive(), "the erasure waited on the apply's transaction"
    assert not failed, failed


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("theirs_at", [0, 1], ids=["already-written", "still-to-write"])
def test_an_erasure_committed_while_an_import_is_written_leaves_their_row_out(
    supervisor_client, supervisor_user, person, settings, monkeypatch, theirs_at
):
    """The erasure commits between two chunks of the apply: the apply has read the person's row (their whole name,
    a new number) and has written it already, or is still to. Either way it must not write them back."""
    if connection.vendor != "postgresql":
        pytest.skip("two transactions at once: PostgreSQL")
    settings.CONTACT_IMPORT_BACKGROUND = False
    rows = [*OTHERS]
    rows.insert(theirs_at, THEIRS)
    upload = SimpleUploadedFile("people.csv", (HEADER + "".join(rows)).encode(), content_type="text/csv")
    imp = ContactImport.objects.get(pk=supervisor_client.post("/contacts/import/", {"file": upload}).url.split("/")[-2])
    assert imp.status == ContactImport.Status.PREVIEW and imp.report["ready"] == 3

    monkeypatch.setattr(imports, "BATCH", 1)  # a chunk a row
    real, chunks = imports._create, []

    def erased_after_the_first_chunk(rows, imp):
        written = real(rows, imp)
        chunks.append(written)
        if len(chunks) == 1:
            erase_in_another_transaction(person.pk, supervisor_user)
        return written

    monkeypatch.setattr(imports, "_create", erased_after_the_first_chunk)
    supervisor_client.post(f"/contacts/import/{imp.pk}/confirm/", {"rest": "skip"})

    imp.refresh_from_db()
    assert imp.status == ContactImport.Status.DONE, imp.error
    assert sorted(Contact.objects.values_list("name", flat=True)) == ["Somebody Else", "Somebody Third"]
    assert not ContactPhone.objects.filter(number="+447400555000").exists()
    assert (imp.result["created"], imp.result["erased"]) == (2, 1)
    page = supervisor_client.get(f"/contacts/import/{imp.pk}/").content.decode()
    assert "2 contacts added" in page and "1 row left out: erased on request meanwhile" in page
    assert "Quillfeather" not in page and "555000" not in page


@pytest.mark.django_db
def test_an_erasure_locks_an_import_before_it_deletes_its_rows(supervisor_client, supervisor_user, person, settings):
    """An apply locks its import as it ends, then deletes its rows: an erasure that deleted rows first and then
    waited for the import's lock would wait for the apply while the apply waits for it (a deadlock)."""
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("SQLite locks the whole database, not rows")
    settings.CONTACT_IMPORT_BACKGROUND = False
    upload = SimpleUploadedFile("people.csv", (HEADER + THEIRS + OTHERS[0]).encode(), content_type="text/csv")
    supervisor_client.post("/contacts/import/", {"file": upload})
    imports_table, rows_table = ContactImport._meta.db_table, ContactImportRow._meta.db_table

    with CaptureQueriesContext(connection) as queries:
        erasure.erase_contact(contact_pk=person.pk, by=supervisor_user, now=timezone.now())

    sql = [q["sql"] for q in queries.captured_queries]
    locked = next(i for i, s in enumerate(sql) if f'FROM "{imports_table}"' in s and s.endswith("FOR UPDATE"))
    deleted = next(i for i, s in enumerate(sql) if s.startswith(f'DELETE FROM "{rows_table}"'))
    assert locked < deleted
    assert list(ContactImportRow.objects.values_list("number", flat=True)) == [3]


@pytest.mark.django_db
def test_an_import_that_renamed_the_contact_just_before_the_erasure_leaves_no_old_name_or_email_behind(
    supervisor_client, supervisor_user, person, settings, django_capture_on_commit_callbacks
):
    """An import confirmed just before the erasure updated the contact (matched by its number) with a new name and
    e-mail. The erasure finds the ones they replaced too (the audit trail names them): the import's report that
    quotes the old name is scrubbed, and another import's rows with the old whole name or the old e-mail are theirs,
    so confirming it does not bring the person back."""
    settings.CONTACT_IMPORT_BACKGROUND = False

    def uploaded(text: str) -> ContactImport:
        upload = SimpleUploadedFile("people.csv", (HEADER + text).encode(), content_type="text/csv")
        return ContactImport.objects.get(
            pk=supervisor_client.post("/contacts/import/", {"file": upload}).url.split("/")[-2]
        )

    pending = uploaded(f"{THEIRS}Somebody Old Mail,{EMAIL},07400 555001\n{OTHERS[0]}")
    renaming = uploaded("P. Q.,pq@example.net,07400 900461\n")
    supervisor_client.post(f"/contacts/import/{renaming.pk}/confirm/", {"dup_2": "update"})
    person.refresh_from_db()
    assert (person.name, person.email) == ("P. Q.", "pq@example.net")

    with django_capture_on_commit_callbacks(execute=True):  # the pending import is checked again
        erasure.erase_contact(contact_pk=person.pk, by=supervisor_user, now=timezone.now())

    renaming.refresh_from_db()
    assert NAME not in json.dumps(renaming.report) and EMAIL not in json.dumps(renaming.report)
    assert list(ContactImportRow.objects.filter(contact_import=pending).values_list("number", flat=True)) == [4]
    supervisor_client.post(f"/contacts/import/{pending.pk}/confirm/", {"rest": "update"})
    assert list(Contact.objects.values_list("name", flat=True)) == ["Somebody Else"]
