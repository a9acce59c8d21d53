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
