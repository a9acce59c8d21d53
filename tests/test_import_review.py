"""Imports as an admin meets them with real files: what would fail at the confirmation is a row's problem in the
preview, the preview says which columns are left out, and the export comes back as it went."""

from __future__ import annotations

import pytest

from calls.models import Contact, ContactImport
from tests.test_import import confirm, started

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _inline_jobs(settings):
    settings.CONTACT_IMPORT_BACKGROUND = False


def test_an_email_too_long_to_store_is_a_problem_of_its_row_not_a_failed_import(agent_client):
    # A valid address (up to 320 characters) longer than the column's 254 made the whole import fail at the
    # confirmation with "Something went wrong", after the preview had said every row was ready.
    long_email = "a" * 250 + "@example.com"
    imp = started(agent_client, f"Name,Email\nLong Mail,{long_email}\nBo Brown,bo@example.com\n")
    assert imp.report["problems"] == [{"row": 2, "messages": ["The email is longer than 254 characters."]}]
    assert imp.report["ready"] == 1
    confirm(agent_client, imp)
    imp.refresh_from_db()
    assert imp.status == ContactImport.Status.DONE
    assert list(Contact.objects.values_list("name", flat=True)) == ["Bo Brown"]


def test_the_preview_names_the_columns_it_leaves_out_and_opens_the_mapping(agent_client):
    # A French spreadsheet: only Name is known, and the preview said "1 ready to add" without a word about the
    # numbers and company it would drop.
    data = "Name;Société;Téléphone;Portable;\r\nZoë Müller;Café;020 7946 0100;07400 123456;\r\n".encode("cp1252")
    imp = started(agent_client, data)
    page = agent_client.get(f"/contacts/import/{imp.pk}/").content.decode()
    assert "Not imported: Société, Téléphone, Portable. If they hold details of the contacts" in page
    assert '<details class="card mapping" open>' in page
    # Once each column feeds a field, nothing is said.
    mapping = {"name": "0", "company": "1", "phone": "2", "mobile": "3"}
    agent_client.post(f"/contacts/import/{imp.pk}/mapping/", mapping)
    page = agent_client.get(f"/contacts/import/{imp.pk}/").content.decode()
    assert "Not imported" not in page and '<details class="card mapping">' in page


def test_a_separator_hint_line_that_excel_reads_names_the_separator_and_is_not_the_header(agent_client):
    # The file was refused: "sep=;" was taken for the header, which named no known column.
    imp = started(agent_client, "sep=;\r\nName;Mobile;Notes\r\nZoë Müller;07400 123456;a, b\r\n".encode("cp1252"))
    assert imp.header == ["Name", "Mobile", "Notes"]
    confirm(agent_client, imp)
    zoe = Contact.objects.get()
    assert (zoe.name, zoe.notes, zoe.phones.get().number) == ("Zoë Müller", "a, b", "+447400123456")


TWO_CONTACTS = (
    "The row matches two different contacts: its number 07400 123456 is Grace Hopper's and its email "
    "ada@example.org is Ada Lovelace's. Correct or empty the cell that is not this person's, so that the row "
    "matches one contact."
)


def test_a_row_that_is_one_contacts_number_and_anothers_email_is_a_problem_not_an_update(agent_client, contact):
    # The preview named Grace alone (her number), and "update" wrote Ada's email onto Grace: two contacts, one email.
    ada = Contact.objects.create(name="Ada Lovelace", email="Ada@Example.org")
    imp = started(agent_client, "Name,Email,Mobile\nGrace Hopper,ada@example.org,07400 123456\nBo Brown,,\n")
    assert imp.report["problems"] == [{"row": 2, "messages": [TWO_CONTACTS]}]
    assert imp.report["duplicates"] == [] and imp.report["ready"] == 1
    page = agent_client.get(f"/contacts/import/{imp.pk}/").content.decode()
    assert "The row matches two different contacts: its number 07400 123456 is Grace Hopper&#x27;s" in page

    confirm(agent_client, imp, row2="update")

    contact.refresh_from_db()
    ada.refresh_from_db()
    assert (contact.email, ada.email) == ("grace@example.com", "Ada@Example.org")
    assert sorted(Contact.objects.values_list("name", flat=True)) == ["Ada Lovelace", "Bo Brown", "Grace Hopper"]


def test_a_row_matching_two_contacts_is_corrected_in_the_preview_to_update_one(agent_client, contact):
    Contact.objects.create(name="Ada Lovelace", email="ada@example.org")
    imp = started(agent_client, "Name,Email,Mobile\nGrace Hopper,ada@example.org,07400 123456\n")
    # A correction that still matches both says so at once; one that matches Grace alone is her duplicate.
    still = {"r2-c0": "Grace Hopper", "r2-c1": "ADA@example.org", "r2-c2": "07400 123456"}
    page = agent_client.post(f"/contacts/import/{imp.pk}/fix/2/", still, follow=True).content.decode()
    assert "Row 2 was saved but still has a problem: The row matches two different contacts" in page
    agent_client.post(f"/contacts/import/{imp.pk}/fix/2/", {**still, "r2-c1": ""})
    imp.refresh_from_db()
    assert imp.report["problems"] == []
    assert [(d["row"], d["contact_id"]) for d in imp.report["duplicates"]] == [(2, contact.pk)]


def test_a_row_whose_keys_are_all_on_one_contact_is_that_contacts_duplicate(agent_client, contact):
    # Ada shares Grace's number (a switchboard): the row is Grace's, whose number and email it has.
    ada = Contact.objects.create(name="Ada Lovelace", email="ada@example.org")
    ada.phones.create(number="+447400123456", label="work", is_primary=True)
    imp = started(agent_client, "Name,Email,Mobile\nGrace H.,grace@example.com,07400 123456\n")
    assert imp.report["problems"] == []
    assert [(d["row"], d["contact_id"]) for d in imp.report["duplicates"]] == [(2, contact.pk)]


def _mobiles(first: int, count: int) -> str:
    return ";".join(f"07400 2000{i:02d}" for i in range(first, first + count))


def test_a_row_whose_update_would_give_its_contact_more_than_20_numbers_is_a_problem(agent_client, contact):
    # Grace has 2 numbers; the update gave her 21, and then her own form (at most 20) could not be saved.
    imp = started(agent_client, f"Name,Mobile,Work phone\nGrace Hopper,{_mobiles(0, 19)},07400 123456\n")
    assert imp.report["problems"] == [
        {
            "row": 2,
            "messages": [
                "An update of Grace Hopper with this row would give them 21 numbers: a contact may have at most 20. "
                "Leave out 1 of the row's new numbers, or remove some of Grace Hopper's first."
            ],
        }
    ]
    confirm(agent_client, imp, row2="update")
    assert contact.phones.count() == 2
    # One number fewer is an update to 20, which the form takes.
    imp = started(agent_client, f"Name,Mobile,Work phone\nGrace Hopper,{_mobiles(0, 18)},07400 123456\n")
    assert imp.report["problems"] == []
    confirm(agent_client, imp, row2="update")
    assert contact.phones.count() == 20


def test_updates_that_together_pass_20_numbers_add_only_up_to_20_and_say_so(agent_client, contact):
    # Each row alone fits (2 + 10 numbers), but both update Grace: the confirmation stops at 20.
    rows = [f"Grace Hopper,{_mobiles(first, 10)},07400 123456" for first in (0, 10)]
    imp = started(agent_client, "Name,Mobile,Work phone\n" + "\n".join(rows) + "\n")
    assert imp.report["problems"] == [] and imp.report["duplicate_count"] == 2
    confirm(agent_client, imp, row2="update", row3="update")
    imp.refresh_from_db()
    assert contact.phones.count() == 20 and imp.result["numbers_left_out"] == 2
    page = agent_client.get(f"/contacts/import/{imp.pk}/").content.decode()
    assert "2 numbers of updates not added: their contacts already had as many numbers as a contact may have." in page


def test_an_email_two_rows_give_two_contacts_is_written_onto_the_first_only_and_the_result_says_so(
    agent_client, contact
):
    # Row 2 gives Grace a new email, row 3 gives Bo the same one: each passed the check alone, and both contacts
    # ended up with it.
    bo = Contact.objects.create(name="Bo Brown", email="bo@example.com")
    bo.phones.create(number="+442079460170", is_primary=True)
    data = "Name,Email,Phone\nGrace Hopper,new@example.com,07400 123456\nBo Brown,New@Example.com,020 7946 0170\n"
    imp = started(agent_client, data)
    assert imp.report["problems"] == [] and imp.report["duplicate_count"] == 2
    confirm(agent_client, imp, row2="update", row3="update")
    imp.refresh_from_db()
    assert imp.status == ContactImport.Status.DONE and imp.result["updated"] == 2
    assert Contact.objects.get(pk=contact.pk).email == "new@example.com"
    bo.refresh_from_db()
    assert (bo.email, bo.name) == ("bo@example.com", "Bo Brown")
    assert imp.result["emails_left_out"] == 1 and imp.result["email_rows_left_out"] == [3]
    page = agent_client.get(f"/contacts/import/{imp.pk}/").content.decode()
    assert "1 email not written, as it was already another contact's (row 3); the rest of its row was written." in page


def test_an_email_given_to_another_contact_after_the_preview_is_not_written_twice(agent_client, contact):
    imp = started(agent_client, "Name,Email,Phone,Company\nGrace Hopper,new@example.com,07400 123456,Brightwater\n")
    assert imp.report["problems"] == [] and imp.report["duplicate_count"] == 1
    bo = Contact.objects.create(name="Bo Brown", email="NEW@example.com")  # between the preview and the confirmation
    confirm(agent_client, imp, row2="update")
    imp.refresh_from_db()
    grace = Contact.objects.get(pk=contact.pk)
    assert (grace.email, grace.company) == ("grace@example.com", "Brightwater")  # the rest of the row is written
    assert Contact.objects.get(pk=bo.pk).email == "NEW@example.com"
    assert imp.result["emails_left_out"] == 1 and imp.result["email_rows_left_out"] == [2]


def test_an_email_a_contact_gives_up_in_the_same_file_may_go_to_another(agent_client, contact):
    # Row 2 gives Grace an email, row 3 gives her another: the first is nobody's by row 4, which gives it to Bo.
    bo = Contact.objects.create(name="Bo Brown")
    bo.phones.create(number="+442079460170", is_primary=True)
    rows = ["Grace Hopper,x@example.com,07400 123456", "Grace Hopper,y@example.com,07400 123456"]
    imp = started(agent_client, "Name,Email,Phone\n" + "\n".join([*rows, "Bo Brown,x@example.com,020 7946 0170\n"]))
    confirm(agent_client, imp, row2="update", row3="update", row4="update")
    imp.refresh_from_db()
    assert imp.result["emails_left_out"] == 0
    assert [Contact.objects.get(pk=c.pk).email for c in (contact, bo)] == ["y@example.com", "x@example.com"]
