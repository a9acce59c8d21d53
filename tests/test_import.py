"""Importing contacts from CSV (preview, problems, duplicates, mapping, fixes, one transaction, bad files); the
export: tests/test_contact_export.py."""

from __future__ import annotations

import io
import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from procrastinate.jobs import Job

from calls import import_files, import_rows, imports, tasks
from calls.models import Contact, ContactImport, ContactImportRow
from calls.views import imports as views_imports
from tests._jobs import queued, run_jobs

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _inline_jobs(settings):
    # The same jobs, run in the request instead of a thread: a test's transaction is not visible to a thread.
    settings.CONTACT_IMPORT_BACKGROUND = False


def upload(client, text: str | bytes, name: str = "contacts.csv"):
    data = text.encode() if isinstance(text, str) else text
    return client.post("/contacts/import/", {"file": SimpleUploadedFile(name, data, content_type="text/csv")})


def started(client, text: str | bytes) -> ContactImport:
    response = upload(client, text)
    assert response.status_code == 302, response.content.decode()[:2000]
    return ContactImport.objects.get(pk=response.url.rstrip("/").split("/")[-1])


def confirm(client, imp: ContactImport, **decisions: str):
    data = {f"dup_{row.removeprefix('row')}": value for row, value in decisions.items()}
    return client.post(f"/contacts/import/{imp.pk}/confirm/", data)


GOOD = """Full name,Organisation,E-mail,Mobile phone,Work phone,Do not call
Ada Lovelace,Analytical Engines,ada@example.com,07400 321123,020 7946 0100,no
Charles Babbage,Analytical Engines,,+44 7400 321124;07400 321125,,yes
"""


# --- Access ----------------------------------------------------------------------------------------------------


def test_it_needs_login_and_the_add_contact_permission(client, make_user):
    assert client.get("/contacts/import/").status_code == 302
    client.force_login(make_user("nobody"))
    assert client.get("/contacts/import/").status_code == 403


def test_someone_elses_import_is_not_found(agent_client, supervisor_client):
    imp = started(agent_client, GOOD)
    assert supervisor_client.get(f"/contacts/import/{imp.pk}/").status_code == 404
    assert confirm(supervisor_client, imp).status_code == 404
    assert Contact.objects.count() == 0


def test_the_import_pages_refuse_wrong_methods(agent_client):
    imp = started(agent_client, GOOD)
    assert agent_client.get(f"/contacts/import/{imp.pk}/confirm/").status_code == 405
    assert agent_client.post(f"/contacts/import/{imp.pk}/").status_code == 405


# --- The happy path --------------------------------------------------------------------------------------------


def test_a_file_is_previewed_then_written_only_on_confirmation(agent_client, agent_user):
    imp = started(agent_client, GOOD)
    preview = agent_client.get(f"/contacts/import/{imp.pk}/")
    assert b"<strong>2</strong> rows read" in preview.content
    assert Contact.objects.count() == 0  # nothing until confirmed
    assert confirm(agent_client, imp).status_code == 302
    ada = Contact.objects.get(name="Ada Lovelace")
    assert (ada.company, ada.email, ada.owner, ada.do_not_call) == (
        "Analytical Engines",
        "ada@example.com",
        agent_user,
        False,
    )
    assert {(p.label, p.number, p.is_primary) for p in ada.phones.all()} == {
        ("mobile", "+447400321123", True),
        ("work", "+442079460100", False),
    }
    charles = Contact.objects.get(name="Charles Babbage")
    assert charles.do_not_call
    assert sorted(charles.phones.values_list("number", flat=True)) == ["+447400321124", "+447400321125"]
    done = agent_client.get(f"/contacts/import/{imp.pk}/")
    assert b"2 contacts added" in done.content
    imp.refresh_from_db()
    assert imp.status == "done" and not imp.lines.exists()  # the file is not kept once imported


def test_pasted_rows_are_imported_too(agent_client):
    response = agent_client.post("/contacts/import/", {"text": "Name;Phone\nGrace Hopper;020 7946 0111\n"})
    imp = ContactImport.objects.get()
    assert response.status_code == 302 and imp.filename == ""
    confirm(agent_client, imp)
    assert Contact.objects.get().phones.get().number == "+442079460111"


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Name", "name"),
        ("Full name", "name"),
        ("CONTACT NAME", "name"),
        ("Company name", "company"),
        ("Organization", "company"),
        ("Email address", "email"),
        ("e-mail", "email"),
        ("Phone", "phone"),
        ("Telephone", "phone"),
        ("Mobile", "mobile"),
        ("Cell phone", "mobile"),
        ("Office phone", "work"),
        ("Home phone", "home"),
        ("DNC", "do_not_call"),
        ("Surname", "last_name"),
        ("First Name", "first_name"),
    ],
)
def test_column_names_are_matched_leniently(header, field):
    assert imports.guess_mapping(["Something", header])[field] == 1


def test_first_and_last_name_make_the_name_and_a_phone_is_labelled_by_its_kind(agent_client):
    imp = started(
        agent_client, "First name,Surname,Phone,Type\nAlan,Turing,07400 321333,\nJoan,Clarke,020 7946 0222,home\n"
    )
    confirm(agent_client, imp)
    alan, joan = Contact.objects.get(name="Alan Turing"), Contact.objects.get(name="Joan Clarke")
    assert alan.phones.get().label == "mobile"  # no label given: a mobile number is a mobile
    assert joan.phones.get().label == "home"


# --- Problems --------------------------------------------------------------------------------------------------

BAD = """Name,Email,Phone,Label,Do not call
Good Person,good@example.com,020 7946 0101,work,no
,nameless@example.com,020 7946 0102,,
Bad Number,,12345,,
Bad Email,not-an-email,,,
Bad Flag,,,,perhaps
Bad Label,,020 7946 0103,pager,
Has Extension,,020 7946 0104 ext 22,,
"""


def test_every_problem_is_listed_with_its_row_number_and_nothing_is_written(agent_client):
    imp = started(agent_client, BAD)
    problems = {p["row"]: " ".join(p["messages"]) for p in imp.report["problems"]}
    assert set(problems) == {3, 4, 5, 6, 7, 8}
    assert "name is missing" in problems[3]
    assert "12345" in problems[4]
    assert "not-an-email" in problems[5]
    assert "perhaps" in problems[6]
    assert "pager" in problems[7]
    assert "extension" in problems[8] and "22" in problems[8]
    page = agent_client.get(f"/contacts/import/{imp.pk}/").content.decode()
    for row in problems:
        assert f"Row {row}" in page
    assert Contact.objects.count() == 0
    confirm(agent_client, imp)
    assert list(Contact.objects.values_list("name", flat=True)) == ["Good Person"]  # the rest are left out


def test_a_row_is_corrected_in_the_preview(agent_client):
    imp = started(agent_client, BAD)
    # Row 4's cells: Name, Email, Phone, Label, Do not call
    response = agent_client.post(
        f"/contacts/import/{imp.pk}/fix/4/",
        {"r4-c0": "Bad Number", "r4-c1": "", "r4-c2": "020 7946 0199", "r4-c3": "", "r4-c4": ""},
    )
    assert response.status_code == 302
    imp.refresh_from_db()
    assert 4 not in {p["row"] for p in imp.report["problems"]}
    confirm(agent_client, imp)
    assert Contact.objects.get(name="Bad Number").phones.get().number == "+442079460199"


@pytest.mark.parametrize(
    ("cell", "words"),
    [
        ("x" * 5001, "Row 4: a cell is longer than 5,000 characters."),
        ("a\x00b", "Row 4: Null characters are not allowed."),
    ],
)
def test_a_correction_that_cannot_be_read_says_why_and_changes_nothing(agent_client, cell, words):
    imp = started(agent_client, BAD)
    before = list(imp.lines.order_by("number").values_list("cells", flat=True))
    response = agent_client.post(f"/contacts/import/{imp.pk}/fix/4/", {"r4-c0": cell}, follow=True)
    assert words in response.content.decode()
    assert list(imp.lines.order_by("number").values_list("cells", flat=True)) == before


def test_pasted_rows_with_a_nul_say_so_and_only_that(agent_client):
    response = agent_client.post("/contacts/import/", {"text": "Name,Notes\nAda,nul\x00here\n"})
    page = response.content.decode()
    assert "Null characters are not allowed." in page
    assert "one of the two" not in page  # the rows were pasted: only what is wrong with them is said


@pytest.mark.parametrize("step", ["fix/4", "mapping"])
def test_a_correction_that_a_confirmation_overtook_changes_nothing(agent_client, monkeypatch, step):
    imp = started(agent_client, BAD)
    before = list(imp.lines.order_by("number").values_list("cells", flat=True))
    checked = views_imports._editable

    def confirmed_meanwhile(imp):  # the confirmation lands between the correction's check and its save
        checked(imp)
        ContactImport.objects.filter(pk=imp.pk).update(status=ContactImport.Status.IMPORTING)
        return imp

    monkeypatch.setattr(views_imports, "_editable", confirmed_meanwhile)
    fix = {"r4-c0": "Bad Number", "r4-c1": "", "r4-c2": "020 7946 0199", "r4-c3": "", "r4-c4": ""}
    mapping = dict.fromkeys(import_rows.FIELDS, "") | {"name": "0", "phone": "2"}
    response = agent_client.post(f"/contacts/import/{imp.pk}/{step}/", fix if step != "mapping" else mapping)

    assert response.status_code == 302
    imp.refresh_from_db()
    assert imp.status == ContactImport.Status.IMPORTING and imp.report  # the check neither started nor ran
    assert list(imp.lines.order_by("number").values_list("cells", flat=True)) == before
    page = agent_client.get(response.url).content.decode()
    assert "This import was confirmed (or expired) meanwhile: nothing was changed." in page


def test_a_row_that_does_not_exist_cannot_be_corrected(agent_client):
    imp = started(agent_client, GOOD)
    assert agent_client.post(f"/contacts/import/{imp.pk}/fix/99/", {}).status_code == 404


# --- Duplicates ------------------------------------------------------------------------------------------------


def test_duplicates_in_the_file_and_in_the_database_are_found_with_a_choice_each(agent_client, contact):
    text = """Name,Email,Phone
Grace H.,,+44 20 7946 0123
Someone,GRACE@example.com,
New One,new@example.com,020 7946 0150
New One Again,,020 7946 0150
"""
    imp = started(agent_client, text)
    dups = {d["row"]: d for d in imp.report["duplicates"]}
    assert dups[2]["contact_id"] == contact.pk and "020 7946 0123" in dups[2]["match"]
    assert dups[3]["contact_id"] == contact.pk and "grace@example.com" in dups[3]["match"]
    assert dups[5]["of_row"] == 4
    page = agent_client.get(f"/contacts/import/{imp.pk}/").content.decode()
    assert "Update the existing contact" in page and "Grace Hopper" in page
    confirm(agent_client, imp, row2="update", row3="skip", row5="update")
    contact.refresh_from_db()
    assert contact.name == "Grace H."  # updated from row 2
    assert Contact.objects.filter(name="Someone").count() == 0  # skipped
    new = Contact.objects.get(name="New One Again")  # row 5 updated the contact row 4 created
    assert new.phones.count() == 1
    assert Contact.objects.count() == 2


def test_skipping_a_duplicate_leaves_the_saved_contact_alone(agent_client, contact):
    imp = started(agent_client, "Name,Phone\nImpostor,07400 123456\n")
    confirm(agent_client, imp, row2="skip")
    contact.refresh_from_db()
    assert contact.name == "Grace Hopper"
    assert Contact.objects.count() == 1


def test_an_update_adds_numbers_and_can_mark_do_not_call_but_never_clears_it(agent_client, contact):
    Contact.objects.filter(pk=contact.pk).update(do_not_call=True)
    imp = started(agent_client, "Name,Email,Mobile,Do not call\n,grace@example.com,07400 321777,no\nX,,,\n")
    assert {p["row"] for p in imp.report["problems"]} == {2}  # the name is required even to update
    imp = started(agent_client, "Name,Email,Mobile,Do not call\nGrace,grace@example.com,07400 321777,no\n")
    confirm(agent_client, imp, row2="update")
    contact.refresh_from_db()
    assert contact.do_not_call  # "no" does not clear it
    assert contact.phones.filter(number="+447400321777", is_primary=False).exists()


def test_without_change_permission_duplicates_can_only_be_skipped(client, make_user, contact):
    from django.contrib.auth.models import Permission

    user = make_user("clerk")
    user.user_permissions.add(Permission.objects.get(codename="add_contact"))
    client.force_login(user)
    imp = started(client, "Name,Phone\nImpostor,07400 123456\n")
    assert b"Update the existing contact" not in client.get(f"/contacts/import/{imp.pk}/").content
    confirm(client, imp, row2="update")
    imp.refresh_from_db()
    assert imp.status == "preview"  # refused
    contact.refresh_from_db()
    assert contact.name == "Grace Hopper"


# --- Mapping ---------------------------------------------------------------------------------------------------


def test_a_file_without_a_name_column_asks_for_the_mapping_which_the_person_corrects(agent_client):
    imp = started(agent_client, "Who,Phone\nAda,020 7946 0160\n")
    page = agent_client.get(f"/contacts/import/{imp.pk}/").content.decode()
    assert "No column gives the name" in page
    assert confirm(agent_client, imp).status_code == 302
    assert Contact.objects.count() == 0
    mapping = dict.fromkeys(import_rows.FIELDS, "") | {"name": "0", "phone": "1"}
    assert agent_client.post(f"/contacts/import/{imp.pk}/mapping/", mapping).status_code == 302
    imp.refresh_from_db()
    assert imp.report["ready"] == 1
    confirm(agent_client, imp)
    assert Contact.objects.get().name == "Ada"


def test_a_column_cannot_feed_two_fields(agent_client):
    imp = started(agent_client, GOOD)
    mapping = dict.fromkeys(import_rows.FIELDS, "") | {"name": "0", "company": "0"}
    agent_client.post(f"/contacts/import/{imp.pk}/mapping/", mapping)
    imp.refresh_from_db()
    assert imp.mapping["company"] == 1  # unchanged


# --- All or nothing --------------------------------------------------------------------------------------------


def test_a_failure_while_writing_writes_nothing(agent_client, contact, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(imports, "_update", broken)
    imp = started(agent_client, "Name,Phone\nNew Person,020 7946 0170\nGrace,07400 123456\n")
    confirm(agent_client, imp, row3="update")
    imp.refresh_from_db()
    assert imp.status == "failed" and "nothing was written" in imp.error
    assert list(Contact.objects.values_list("name", flat=True)) == ["Grace Hopper"]
    assert b"nothing was written" in agent_client.get(f"/contacts/import/{imp.pk}/").content


def test_confirming_twice_imports_once(agent_client):
    imp = started(agent_client, GOOD)
    confirm(agent_client, imp)
    again = confirm(agent_client, imp)
    assert again.status_code == 302 and again.url == f"/contacts/import/{imp.pk}/"
    assert Contact.objects.count() == 2


# --- Bad files -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("Name,Phone\nJosé,020 7946 0100\n".encode() + "René,020 7946 0101\n".encode("latin-1"), "not UTF-8"),
        (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + os.urandom(4000), "not a text file"),
        (b"Colour,Size\nred,large\n", "No column of this file is one vccweb knows"),
        (b"", "empty"),
        (b"\n\n\n", "empty"),
        (b'Name,Notes\nA,"unterminated\n' + b"x" * 6000, "longer than"),
    ],
)
def test_a_bad_file_gets_a_clear_message_and_changes_nothing(agent_client, data, message):
    response = upload(agent_client, data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert ContactImport.objects.count() == 0 and Contact.objects.count() == 0


def test_a_nul_anywhere_in_the_file_is_refused_like_a_binary_file(agent_client):
    late = ("Name,Notes\n" + "Ada,fine\n" * 1200 + "Bob,nul\x00here\n").encode()
    assert late.index(b"\x00") > 8192  # past the sample that was looked at for binary files
    utf16 = "Name,Notes\nAda,nul\x00here\n".encode("utf-16")
    for data in (late, utf16):
        response = upload(agent_client, data)
        assert response.status_code == 400
        assert "This is not a text file" in response.content.decode()
    assert ContactImport.objects.count() == 0 and Contact.objects.count() == 0


def test_pasted_rows_with_a_nul_are_refused_and_change_nothing(agent_client):
    response = agent_client.post("/contacts/import/", {"text": "Name,Notes\nAda,nul\x00here\n"})
    assert response.status_code == 400
    assert ContactImport.objects.count() == 0 and Contact.objects.count() == 0


def test_a_row_of_millions_of_cells_is_refused_naming_the_row(agent_client):
    response = upload(agent_client, b"Name\n" + b"," * (10 * 2**20))
    assert response.status_code == 400
    assert (
        f"Row 2 has 10,485,761 cells; a row may have at most {import_files.MAX_COLUMNS}: check that the file is a "
        "CSV of contacts" in response.content.decode()
    )
    assert ContactImport.objects.count() == 0 and Contact.objects.count() == 0


def test_a_row_may_be_wider_than_the_first_up_to_the_column_limit():
    limit = import_files.MAX_COLUMNS
    header, *rows = import_files.read_upload([b"Name,Phone\nAda,020 7946 0100,,,\nBob" + b"," * (limit - 1) + b"\n"])
    assert header == ["Name", "Phone"] and rows[0] == ["Ada", "020 7946 0100", "", "", ""]
    assert len(rows[1]) == limit  # Excel's trailing empty cells are fine
    with pytest.raises(import_files.ImportFileError, match=f"Row 4 has {limit + 1} cells"):
        list(import_files.read_upload([b"Name\nAda\nBob\nCy" + b"," * limit + b"\n"]))


def test_ten_megabytes_of_garbage_are_refused(agent_client):
    rng = io.BytesIO(os.urandom(10 * 2**20))
    response = upload(agent_client, rng.getvalue(), "garbage.csv")
    assert response.status_code == 400
    assert b"not" in response.content  # not a text file, or not UTF-8
    text_garbage = ("qwerty uiop asdf ghjkl " * 460_000).encode()[: 10 * 2**20]
    response = upload(agent_client, text_garbage, "garbage.csv")
    assert response.status_code == 400
    assert ContactImport.objects.count() == 0


def test_a_file_larger_than_the_limit_is_refused_before_reading(agent_client, monkeypatch):
    monkeypatch.setattr(import_files, "MAX_BYTES", 100)
    response = upload(agent_client, "Name\n" + "A\n" * 100)
    assert response.status_code == 400 and b"larger than" in response.content


def test_neither_or_both_file_and_text_is_refused(agent_client):
    assert agent_client.post("/contacts/import/", {}).status_code == 400
    both = {"text": "Name\nA\n", "file": SimpleUploadedFile("a.csv", b"Name\nB\n")}
    assert agent_client.post("/contacts/import/", both).status_code == 400


def test_utf16_and_a_byte_order_mark_are_read(agent_client):
    imp = started(agent_client, "Name,Phone\nZoë,020 7946 0180\n".encode("utf-16"))
    assert list(imp.lines.values_list("cells", flat=True)) == [["Zoë", "020 7946 0180"]]
    imp = started(agent_client, "\ufeffName\tPhone\nZoë\t020 7946 0181\n".encode())
    assert imp.header == ["Name", "Phone"]


# --- Progress --------------------------------------------------------------------------------------------------


def test_progress_is_polled_while_working_and_refreshes_when_done(agent_client):
    imp = started(agent_client, GOOD)
    response = agent_client.get(f"/contacts/import/{imp.pk}/progress/", headers={"HX-Request": "true"})
    assert response.headers["HX-Refresh"] == "true"
    ContactImport.objects.filter(pk=imp.pk).update(status="importing")
    response = agent_client.get(f"/contacts/import/{imp.pk}/progress/", headers={"HX-Request": "true"})
    assert b'id="import-progress"' in response.content and b"<html" not in response.content
    page = agent_client.get(f"/contacts/import/{imp.pk}/")
    assert b'hx-trigger="load delay:1s"' in page.content


def test_an_import_nobody_has_picked_up_says_it_waits_for_a_worker(agent_client):
    from datetime import timedelta

    from django.utils import timezone

    imp = started(agent_client, GOOD)
    ContactImport.objects.filter(pk=imp.pk).update(
        status="checking", progress=0, updated_at=timezone.now() - timedelta(hours=1)
    )
    page = agent_client.get(f"/contacts/import/{imp.pk}/").content.decode()
    assert "Waiting for a worker to take this import" in page
    assert 'id="import-progress"' in page  # still polled: it starts when a worker takes it
    assert "Start again" not in page  # nothing is lost


def test_with_the_engine_on_an_upload_and_a_confirmation_each_queue_a_job(agent_client, settings, jobs):
    settings.CONTACT_IMPORT_BACKGROUND = True
    imp = started(agent_client, GOOD)
    [check] = queued(jobs, "check_import")
    assert check["args"] == {"import_id": str(imp.pk)} and check["queue_name"] == "imports"
    assert check["lock"] == f"import:{imp.pk}"  # one job of an import runs at a time
    assert ContactImport.objects.get(pk=imp.pk).status == "checking"  # nothing ran in the request

    tasks.enqueue_import("check", imp.pk)  # a re-check while one waits (a correction saved meanwhile)
    assert len(queued(jobs, "check_import")) == 1  # the waiting one reads the import afresh: not queued twice

    assert run_jobs(jobs) == ["check_import"]
    assert ContactImport.objects.get(pk=imp.pk).status == "preview"
    confirm(agent_client, imp)
    confirm(agent_client, imp)  # a second click
    assert [j["task_name"] for j in queued(jobs)] == ["apply_import"]
    assert run_jobs(jobs) == ["apply_import"]
    imp.refresh_from_db()
    assert imp.status == "done" and imp.result["created"] == Contact.objects.count() > 0


def test_a_job_run_twice_writes_the_contacts_once(agent_client, settings, jobs):
    """A worker killed after the apply committed, before the engine heard: the job runs again and does nothing."""
    settings.CONTACT_IMPORT_BACKGROUND = True
    imp = started(agent_client, GOOD)
    run_jobs(jobs)
    confirm(agent_client, imp)
    [apply_job] = queued(jobs, "apply_import")
    run_jobs(jobs)
    count = Contact.objects.count()
    apply_job["status"] = "todo"  # the engine retries it
    run_jobs(jobs)
    assert Contact.objects.count() == count


def test_a_job_whose_rows_are_gone_fails_for_good_and_says_why(agent_client, settings, jobs):
    settings.CONTACT_IMPORT_BACKGROUND = True
    imp = started(agent_client, GOOD)
    ContactImportRow.objects.filter(contact_import_id=imp.pk).delete()  # expired under it, say

    with pytest.raises(imports.ImportGone):
        run_jobs(jobs)

    imp.refresh_from_db()
    assert imp.status == "failed" and imp.error == imports.GONE
    assert "rows are gone" in agent_client.get(f"/contacts/import/{imp.pk}/").content.decode()


def test_a_job_that_loses_the_database_is_tried_again_and_fails_the_import_only_at_the_last_try(
    agent_client, settings, jobs, monkeypatch
):
    from django.db import OperationalError

    settings.CONTACT_IMPORT_BACKGROUND = True
    imp = started(agent_client, GOOD)

    def lost(pk):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setitem(imports.JOBS, "check", lost)
    [job] = queued(jobs)
    for attempt in range(tasks.IMPORT_ATTEMPTS):
        job["attempts"], job["status"] = attempt, "todo"
        with pytest.raises(OperationalError):
            run_jobs(jobs)
        last = attempt == tasks.IMPORT_ATTEMPTS - 1
        assert ContactImport.objects.get(pk=imp.pk).status == ("failed" if last else "checking")
    strategy, first_try = tasks.check_import.retry_strategy, Job.from_row({**job, "attempts": 0})
    assert strategy.get_retry_decision(exception=OperationalError(), job=first_try).retry_at is not None
    assert strategy.get_retry_decision(exception=ValueError(), job=first_try) is None  # a bug is not retried
    last_try = Job.from_row({**job, "attempts": tasks.IMPORT_ATTEMPTS - 1})
    assert strategy.get_retry_decision(exception=OperationalError(), job=last_try) is None


# --- Export ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_second_run_of_the_apply_waits_for_the_first_and_then_writes_nothing(agent_client):
    """A worker taken for dead while its apply still runs: the engine starts the job again elsewhere. The second
    run waits on the import's lock until the first commits, then finds the import written."""
    import threading
    import time

    from django.db import connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("the import's lock is PostgreSQL's advisory lock")
    imp = started(agent_client, GOOD)
    ContactImport.objects.filter(pk=imp.pk).update(status="importing", decisions={"rest": "skip"})
    holding, release = threading.Event(), threading.Event()

    def first_run() -> None:  # holds the lock as a running apply does, then commits it done
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"contact-import:{imp.pk}"])
            holding.set()
            release.wait(30)
            ContactImport.objects.filter(pk=imp.pk).update(status="done")
        connection.close()

    def second_run() -> None:
        imports.apply(imp.pk)
        connection.close()

    threads = [threading.Thread(target=first_run), threading.Thread(target=second_run)]
    threads[0].start()
    assert holding.wait(30)
    threads[1].start()
    deadline = time.monotonic() + 30
    with connection.cursor() as cursor:  # the second run is waiting on the lock, not writing
        while True:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            if cursor.fetchone()[0] == 1:
                break
            assert time.monotonic() < deadline, "the second run never waited for the first"
            time.sleep(0.01)
    release.set()
    for thread in threads:
        thread.join(30)

    assert Contact.objects.count() == 0  # the first run "wrote" them (here: only the status); the second wrote none
