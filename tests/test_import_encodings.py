"""The walkthrough's import defects: files that are not UTF-8, duplicates within the file, corrections that still
fail, and a confirmation with nothing to import."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from calls import import_files
from calls.models import Contact, ContactImport

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _inline_jobs(settings):
    settings.CONTACT_IMPORT_BACKGROUND = False


def started(client, data: bytes) -> ContactImport:
    response = client.post("/contacts/import/", {"file": SimpleUploadedFile("c.csv", data, content_type="text/csv")})
    assert response.status_code == 302, response.content.decode()[:2000]
    return ContactImport.objects.get(pk=response.url.rstrip("/").split("/")[-1])


def read(data: bytes, chunk: int = import_files.CHUNK) -> tuple[list[list[str]], str]:
    facts = import_files.FileFacts()
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    return list(import_files.read_upload(pieces, facts)), facts.encoding


@pytest.mark.parametrize("codec", ["cp1252", "latin-1"])
def test_a_windows_or_latin_1_file_is_read_and_the_preview_says_so(agent_client, codec):
    imp = started(agent_client, "Name,Phone\nJosé Núñez,020 7946 0100\nFrançoise,020 7946 0101\n".encode(codec))
    assert list(imp.lines.order_by("number").values_list("cells", flat=True)) == [
        ["José Núñez", "020 7946 0100"],
        ["Françoise", "020 7946 0101"],
    ]
    page = agent_client.get(f"/contacts/import/{imp.pk}/").content.decode()
    assert "Read as Windows-1252" in page and "save it as “CSV UTF-8”" in page


def test_windows_only_characters_are_read_as_windows_writes_them():
    rows, encoding = read("Name,Notes\nZoë,“quoted” – €5\n".encode("cp1252"))
    assert rows[1] == ["Zoë", "“quoted” – €5"]
    assert encoding == import_files.WINDOWS_1252


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        ("Name\nZoë\n".encode(), import_files.UTF8),
        ("\ufeffName\nZoë\n".encode(), import_files.UTF8),
        ("Name\nZoë\n".encode("utf-16"), import_files.UTF16),
    ],
)
def test_utf_8_with_or_without_a_bom_comes_first(data, encoding):
    rows, found = read(data)
    assert rows == [["Name"], ["Zoë"]] and found == encoding


def test_a_file_whose_first_chunk_is_plain_ascii_switches_to_windows_1252_where_it_must():
    data = ("Name,Notes\n" + "Ada,fine\n" * 200 + "René,café\n").encode("cp1252")
    rows, encoding = read(data, chunk=256)  # the é is chunks after the first
    assert rows[-1] == ["René", "café"] and encoding == import_files.WINDOWS_1252


def test_a_file_mixing_utf_8_and_other_bytes_is_refused_with_the_line():
    data = "Name\nJosé\n".encode() + b"x\n" * 200 + "René\n".encode("cp1252")
    with pytest.raises(import_files.ImportFileError, match="line 203"):
        read(data, chunk=64)


def test_a_file_mixing_utf_8_and_other_bytes_after_its_first_chunk_is_refused_with_the_line():
    ascii_start = b"Name\n" + b"Ada\n" * (import_files.CHUNK // 4)  # line 1 and the whole first chunk are ASCII
    data = ascii_start + "Zoë\n".encode() + "René\n".encode("cp1252")  # both in the same, later chunk
    with pytest.raises(import_files.ImportFileError, match=f"line {import_files.CHUNK // 4 + 3} "):
        read(data)


def test_a_windows_1252_file_with_utf_8_text_after_its_first_chunk_is_refused_with_the_line():
    data = "Name\nRené\n".encode("cp1252") + b"Ada\n" * (import_files.CHUNK // 4) + "Zoë\n".encode()
    with pytest.raises(import_files.ImportFileError, match="line 2 "):
        read(data)
    with pytest.raises(import_files.ImportFileError, match="line 2 "):  # the letter cut between two chunks
        read(data, chunk=len(data) - 2)


def test_the_preview_of_a_utf_8_file_says_utf_8(agent_client):
    imp = started(agent_client, "Name,Phone\nZoë,020 7946 0100\n".encode())
    page = agent_client.get(f"/contacts/import/{imp.pk}/").content.decode()
    assert "Read as UTF-8." in page and "Windows" not in page


def test_a_duplicate_within_the_file_is_offered_a_merge_not_an_update(agent_client):
    imp = started(agent_client, b"Name,Phone\nNew One,020 7946 0150\nNew One Again,020 7946 0150\n")
    page = agent_client.get(f"/contacts/import/{imp.pk}/").content.decode()
    assert "Update the existing contact" not in page
    assert "Merge it into the contact from row 2" in page


def test_a_correction_that_still_fails_says_so_and_no_success(agent_client):
    imp = started(agent_client, b"Name,Phone\nBad,12\n")
    response = agent_client.post(f"/contacts/import/{imp.pk}/fix/2/", {"r2-c0": "Bad", "r2-c1": "13"}, follow=True)
    page = response.content.decode()
    assert "Row 2 was saved but still has a problem" in page
    assert "corrected and checked again" not in page
    response = agent_client.post(
        f"/contacts/import/{imp.pk}/fix/2/", {"r2-c0": "Good", "r2-c1": "020 7946 0150"}, follow=True
    )
    assert "Row 2 corrected and checked again." in response.content.decode()


def test_the_confirm_button_is_disabled_with_nothing_to_import_and_confirming_is_refused(agent_client):
    imp = started(agent_client, b"Name,Phone\nBad,12\n")
    page = agent_client.get(f"/contacts/import/{imp.pk}/").content.decode()
    assert 'disabled aria-describedby="nothing-to-import"' in page
    response = agent_client.post(f"/contacts/import/{imp.pk}/confirm/", {}, follow=True)
    assert "No row is ready to import" in response.content.decode()
    imp.refresh_from_db()
    assert imp.status == "preview" and Contact.objects.count() == 0


def test_the_confirm_button_is_enabled_with_a_contact_to_import(agent_client):
    imp = started(agent_client, b"Name,Phone\nGood,020 7946 0150\n")
    page = agent_client.get(f"/contacts/import/{imp.pk}/").content.decode()
    assert "nothing-to-import" not in page


@pytest.mark.parametrize("chunk", [17, 18, 19, 20, 4096])
def test_a_windows_letter_cut_by_a_chunk_or_ending_the_file_is_read(chunk):
    data = "Name,Notes\nAda,fine\nBob,ok\nRené,café".encode("cp1252")  # no line end after the last é
    rows, encoding = read(data, chunk=chunk)
    assert rows[-1] == ["René", "café"] and encoding == import_files.WINDOWS_1252
