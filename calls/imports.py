"""Contacts from and to CSV: read an upload, check every row, find duplicates, write on confirmation; export.

An import is a `ContactImport` row. `read_upload` turns the bytes into a header and rows (or refuses the file with
a message that says what to do); `check` validates every row and finds duplicates within the file and against the
database, writing a report and nothing else; `apply` writes the contacts in one transaction. `check` and `apply`
run in the background (`start`) so a large file never holds a web worker; the preview polls their progress.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import close_old_connections, connection, transaction
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from calls import phones
from calls.models import Contact, ContactImport, ContactPhone
from calls.spreadsheet import Line, as_typed, inert

log = logging.getLogger(__name__)

MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 200_000
MAX_COLUMNS = 100  # cells in any row; a row may be wider than the first (unnamed columns, trailing empty cells)
MAX_CELL = 5_000
SHOWN = 200  # problems and duplicates listed one by one in the preview; the rest are counted
STALE = timedelta(minutes=10)  # a job that has not written progress for this long died with its process
BATCH = 2_000

# The fields a column can feed, in the order the mapping form shows them.
FIELDS: dict[str, str] = {
    "name": "Name",
    "first_name": "First name",
    "last_name": "Last name",
    "company": "Company",
    "email": "Email",
    "phone": "Phone (labelled by the Label column, or by the kind of line)",
    "mobile": "Mobile",
    "work": "Work phone",
    "home": "Home phone",
    "other": "Other phone",
    "label": "Label of Phone",
    "do_not_call": "Do not call (the contact)",
    "dnc_numbers": "Numbers marked do not call",
    "notes": "Notes",
}
PHONE_FIELDS = ("phone", "mobile", "work", "home", "other", "dnc_numbers")

# Header names people use, compared without case, spaces or punctuation.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": ("name", "fullname", "contactname", "contact", "displayname", "customername", "customer"),
    "first_name": ("firstname", "first", "givenname", "forename", "forenames"),
    "last_name": ("lastname", "last", "surname", "familyname"),
    "company": ("company", "companyname", "organisation", "organization", "org", "business", "employer", "account"),
    "email": ("email", "emailaddress", "mail", "emails"),
    "phone": ("phone", "phonenumber", "number", "numbers", "telephone", "tel", "primaryphone", "primarynumber"),
    "mobile": ("mobile", "mobilephone", "mobilenumber", "cell", "cellphone", "cellular", "mob"),
    "work": ("work", "workphone", "worknumber", "office", "officephone", "businessphone", "directdial", "direct"),
    "home": ("home", "homephone", "homenumber", "landline"),
    "other": ("other", "otherphone", "othernumber", "phone2", "alternatephone"),
    "label": ("label", "phonelabel", "phonetype", "numbertype", "type"),
    "do_not_call": ("donotcall", "dnc", "nocall", "dontcall", "optout", "optedout"),
    "dnc_numbers": ("donotcallnumbers", "dncnumbers", "numbersmarkeddonotcall"),
    "notes": ("notes", "note", "comments", "comment", "description", "remarks"),
}
LABEL_WORDS = {
    ContactPhone.Label.MOBILE: ("mobile", "cell", "cellphone", "mob", "m"),
    ContactPhone.Label.WORK: ("work", "office", "business", "direct", "w"),
    ContactPhone.Label.HOME: ("home", "landline", "h"),
    ContactPhone.Label.OTHER: ("other", "o", "main", "fax"),
}
YES = {"yes", "y", "true", "1", "x", "dnc", "donotcall"}
NO = {"no", "n", "false", "0", ""}


class ImportFileError(Exception):
    """The file cannot be imported at all; the message says why and what to do."""


NOT_TEXT = (
    "This is not a text file (a spreadsheet saved as .xlsx, or a picture?). "
    "Save it from your spreadsheet as “CSV UTF-8 (comma delimited)” and import that."
)


def _key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


# --- Reading the file ------------------------------------------------------------------------------------------


def read_upload(data: bytes) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of a CSV file, or ImportFileError saying why it cannot be read."""
    if not data.strip():
        raise ImportFileError("The file is empty.")
    if len(data) > MAX_BYTES:
        raise ImportFileError(f"The file is larger than {MAX_BYTES // 2**20} MB: split it and import each part.")
    text = _decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), csv.excel, **_separator(text[:8192]))
    header: list[str] | None = None
    rows: list[list[str]] = []
    try:
        for number, cells in enumerate(reader, start=1):  # as a spreadsheet numbers its rows
            if header is None:
                if any(c.strip() for c in cells):
                    header = [c.strip() for c in cells]
                    _check_header(header)
                continue
            if len(rows) >= MAX_ROWS:
                raise ImportFileError(f"The file has more than {MAX_ROWS:,} rows: split it and import each part.")
            # Before anything else looks at the cells: a line of commas is one row of millions of them.
            if len(cells) > MAX_COLUMNS:
                raise ImportFileError(
                    f"Row {number} has {len(cells):,} cells; a row may have at most {MAX_COLUMNS}: check that the "
                    "file is a CSV of contacts, and delete the extra cells (or stray commas) at the end of that row."
                )
            if any(len(c) > MAX_CELL for c in cells):
                raise ImportFileError(
                    f"Row {number} has a cell longer than {MAX_CELL:,} characters: is this a contacts file?"
                )
            rows.append([c.strip() for c in cells])
    except csv.Error as e:
        raise ImportFileError(f"The file is not readable as CSV near line {reader.line_num}: {e}.") from None
    if header is None:
        raise ImportFileError("The file has no rows.")
    return header, rows


def _separator(sample: str) -> dict[str, object]:
    """The header line's delimiter (comma, semicolon or tab) and whether a space follows it. Quotes are always ",
    as every spreadsheet writes them: sniffed from the rows, an export's formula guard ('=SUM(A1)) looks like one,
    and a tab inside a cell like a delimiter."""
    header = next((line for line in sample.splitlines() if line.strip(" ,;\t")), "")
    try:
        sniffed = csv.Sniffer().sniff(header, delimiters=",;\t")
    except csv.Error:
        return {}
    return {"delimiter": sniffed.delimiter, "skipinitialspace": sniffed.skipinitialspace}


def _decode(data: bytes) -> str:
    # A NUL anywhere, not only near the start, is refused: no text file has one, and PostgreSQL cannot store it.
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise ImportFileError("The file says it is UTF-16 but is not: save it as “CSV UTF-8”.") from None
        if "\x00" in text:
            raise ImportFileError(NOT_TEXT)
        return text
    if b"\x00" in data:
        raise ImportFileError(NOT_TEXT)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ImportFileError(
            f"The file is not UTF-8 text (line {line} has bytes that are not): save it from your spreadsheet as "
            "“CSV UTF-8 (comma delimited)” and import that."
        ) from None


def _check_header(header: list[str]) -> None:
    if len(header) > MAX_COLUMNS:
        raise ImportFileError(f"The first row has {len(header)} columns: is this a contacts file?")
    if not any(guess_mapping(header).values()) and not any(k in FIELDS for k in map(_key, header)):
        raise ImportFileError(
            "No column of this file is one vccweb knows. The first row must name the columns, for example "
            "Name, Company, Email, Phone, Mobile."
        )


def guess_mapping(header: list[str]) -> dict[str, int | None]:
    """Which column feeds each field, by name, leniently (Full name, E-mail, Mobile phone, ...)."""
    mapping: dict[str, int | None] = dict.fromkeys(FIELDS)
    taken: set[int] = set()
    for field_name, names in SYNONYMS.items():
        for i, column in enumerate(header):
            if i not in taken and _key(column) in names:
                mapping[field_name] = i
                taken.add(i)
                break
    return mapping


def mapping_problems(mapping: dict[str, int | None]) -> list[str]:
    if mapping.get("name") is None and mapping.get("first_name") is None and mapping.get("last_name") is None:
        return ["No column gives the name: choose which column is the Name (or First name and Last name)."]
    return []


# --- Checking the rows -----------------------------------------------------------------------------------------


@dataclass
class Row:
    number: int  # as a spreadsheet numbers it: the header is row 1
    name: str = ""
    company: str = ""
    email: str = ""
    notes: str = ""
    do_not_call: bool = False
    phones: list[tuple[str, str, bool]] = field(default_factory=list)  # (label, E.164, do not call)
    problems: list[str] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        """What makes two rows the same person: their numbers and their email."""
        return [n for _, n, _ in self.phones] + ([self.email.lower()] if self.email else [])


def row_cells(imp: ContactImport, index: int) -> list[str]:
    """A row's cells as the person last saw them: corrected in the preview, or as read."""
    return imp.fixes.get(str(index + 2)) or imp.rows[index]


def parse_row(number: int, cells: list[str], mapping: dict[str, int | None], region: str) -> Row:
    def cell(name: str) -> str:
        # As typed before an export guarded it: `'=SUM(A1)` is `=SUM(A1)` again (calls.spreadsheet.as_typed).
        i = mapping.get(name)
        return as_typed(cells[i].strip()) if i is not None and i < len(cells) else ""

    row = Row(number=number)
    row.name = cell("name") or " ".join(p for p in (cell("first_name"), cell("last_name")) if p)
    if not row.name:
        row.problems.append("The name is missing.")
    elif len(row.name) > 200:
        row.problems.append("The name is longer than 200 characters.")
    row.company = cell("company")
    if len(row.company) > 200:
        row.problems.append("The company is longer than 200 characters.")
    row.email = cell("email")
    if row.email:
        try:
            validate_email(row.email)
        except ValidationError:
            row.problems.append(f"“{row.email}” is not an email address.")
    row.notes = cell("notes")
    dnc = cell("do_not_call").lower().replace(" ", "").replace("-", "")
    if dnc in YES:
        row.do_not_call = True
    elif dnc not in NO:
        row.problems.append(f"Do not call is “{cell('do_not_call')}”: use yes or no.")
    label_text = _key(cell("label"))
    phone_label = next((label for label, words in LABEL_WORDS.items() if label_text in words), None)
    if label_text and phone_label is None:
        row.problems.append(f"The label “{cell('label')}” is not one of mobile, work, home or other.")
    seen: dict[str, int] = {}
    for source in PHONE_FIELDS:
        for raw in _numbers_in(cell(source)):
            try:
                e164 = phones.to_e164(raw, region)
            except ValidationError as e:
                row.problems.append(f"{FIELDS[source].split(' (')[0]}: {e.messages[0]}")
                continue
            if source == "phone":
                label = phone_label or ("mobile" if phones.number_type(e164) == "mobile" else "work")
            elif source == "dnc_numbers":
                label = "other"
            else:
                label = source
            if e164 in seen:
                if source == "dnc_numbers":
                    i = seen[e164]
                    row.phones[i] = (row.phones[i][0], e164, True)
                continue
            seen[e164] = len(row.phones)
            row.phones.append((label, e164, source == "dnc_numbers"))
    return row


def _numbers_in(text: str) -> list[str]:
    # Several numbers in one cell are separated by ; or a new line ("," is kept: it appears in "ext, 22").
    # A leading ' on any of them (how a spreadsheet marks a number kept as text: '07400…) is dropped.
    return [part.strip().removeprefix("'").strip() for part in re.split(r"[;\n]", text) if part.strip(" '")]


def parse_all(imp: ContactImport, progress: Callable[[int], None] | None = None) -> list[Row]:
    """Every non-empty row parsed and validated."""
    region = settings.DEFAULT_PHONE_REGION
    rows: list[Row] = []
    for index in range(len(imp.rows)):
        cells = row_cells(imp, index)
        if any(cells):
            rows.append(parse_row(index + 2, cells, imp.mapping, region))
        if progress and index % BATCH == BATCH - 1:
            progress(index + 1)
    return rows


def find_duplicates(rows: list[Row]) -> dict[int, tuple]:
    """Row number -> ("row", earlier row number, key) or ("contact", contact id, key, name), for rows without
    problems whose number or email is on an earlier row or on a saved contact (which wins: it can be updated)."""
    duplicates: dict[int, tuple] = {}
    first_with: dict[str, int] = {}
    for row in rows:
        for key in row.keys:
            if key in first_with:
                duplicates[row.number] = ("row", first_with[key], key)
                break
        for key in row.keys:
            first_with.setdefault(key, row.number)
    saved = _saved_contacts_with({key for row in rows for key in row.keys})
    for row in rows:
        match = next((key for key in row.keys if key in saved), None)
        if match:
            duplicates[row.number] = ("contact", saved[match][0], match, saved[match][1])
    return duplicates


def _dump(row: Row) -> list:
    return [row.number, row.name, row.company, row.email, row.notes, row.do_not_call, row.phones]


def _load(data: list) -> Row:
    number, name, company, email, notes, dnc, numbers = data
    return Row(number, name, company, email, notes, dnc, [tuple(p) for p in numbers])


def _saved_contacts_with(keys: set[str]) -> dict[str, tuple[int, str]]:
    """Saved contacts having any of these numbers or (lower-cased) emails: key -> (contact id, name)."""
    found: dict[str, tuple[int, str]] = {}
    numbers = sorted(k for k in keys if k.startswith("+"))
    emails = sorted(k for k in keys if not k.startswith("+"))
    for i in range(0, len(numbers), 1000):
        chunk = numbers[i : i + 1000]
        for number, pk, name in ContactPhone.objects.filter(number__in=chunk).values_list(
            "number", "contact_id", "contact__name"
        ):
            found.setdefault(number, (pk, name))
    for i in range(0, len(emails), 1000):
        chunk = emails[i : i + 1000]
        for email, pk, name in (
            Contact.objects.annotate(email_lower=Lower("email"))
            .filter(email_lower__in=chunk)
            .values_list("email_lower", "pk", "name")
        ):
            found.setdefault(email, (pk, name))
    return found


def _describe(key: str) -> str:
    return f"number {phones.display(key)}" if key.startswith("+") else f"email {key}"


def check(pk) -> None:
    """Build the preview's report of an import: problems by row, duplicates, how many rows are ready; keep the
    parsed rows for the confirmation, so numbers are parsed once."""
    imp = ContactImport.objects.get(pk=pk)

    def progress(done: int) -> None:
        ContactImport.objects.filter(pk=pk).update(progress=done, updated_at=timezone.now())

    problems = mapping_problems(imp.mapping)
    if problems:
        imp.report, imp.checked = {"mapping": problems}, []
        imp.status, imp.progress = ContactImport.Status.PREVIEW, imp.row_count
        imp.save(update_fields=["report", "checked", "status", "progress", "updated_at"])
        return
    rows = parse_all(imp, progress)
    bad = [r for r in rows if r.problems]
    good = [r for r in rows if not r.problems]
    duplicates = find_duplicates(good)
    report = {
        "rows": len(rows),
        "ready": len(good) - len(duplicates),
        "problem_count": len(bad),
        "problems": [{"row": r.number, "messages": r.problems} for r in bad[:SHOWN]],
        "duplicate_count": len(duplicates),
        "duplicates": [_duplicate_entry(n, duplicates[n]) for n in sorted(duplicates)[:SHOWN]],
    }
    imp.report, imp.checked = report, [_dump(r) for r in good]
    imp.status, imp.progress = ContactImport.Status.PREVIEW, imp.row_count
    imp.save(update_fields=["report", "checked", "status", "progress", "updated_at"])


def _duplicate_entry(number: int, dup: tuple) -> dict:
    if dup[0] == "row":
        return {"row": number, "of_row": dup[1], "match": _describe(dup[2])}
    return {"row": number, "contact_id": dup[1], "contact_name": dup[3], "match": _describe(dup[2])}


# --- Writing ---------------------------------------------------------------------------------------------------


def progress_key(pk) -> str:
    return f"contact-import:{pk}:progress"


def apply(pk) -> None:
    """Write the import: new contacts for ready rows, updates where the person chose so; all or nothing."""
    imp = ContactImport.objects.select_related("created_by").defer("rows").get(pk=pk)
    rows = [_load(data) for data in imp.checked]
    duplicates = find_duplicates(rows)  # again: the database may have changed since the preview
    decisions = imp.decisions
    default = decisions.get("rest", "skip")
    created = updated = skipped = 0
    contact_of_row: dict[int, Contact] = {}
    with transaction.atomic():
        new_rows = [r for r in rows if r.number not in duplicates]
        for start in range(0, len(new_rows), BATCH):
            batch = new_rows[start : start + BATCH]
            contacts = Contact.objects.bulk_create(
                [
                    Contact(
                        name=r.name,
                        company=r.company,
                        email=r.email,
                        notes=r.notes,
                        do_not_call=r.do_not_call,
                        owner=imp.created_by,
                    )
                    for r in batch
                ]
            )
            numbers = []
            for r, contact in zip(batch, contacts, strict=True):
                contact_of_row[r.number] = contact
                numbers += [
                    ContactPhone(contact=contact, label=label, number=n, is_primary=i == 0, do_not_call=dnc)
                    for i, (label, n, dnc) in enumerate(r.phones)
                ]
            ContactPhone.objects.bulk_create(numbers)
            created += len(batch)
            cache.set(progress_key(pk), start + len(batch), 3600)
        for r in rows:
            dup = duplicates.get(r.number)
            if dup is None:
                continue
            if decisions.get(str(r.number), default) != "update":
                skipped += 1
                continue
            target = contact_of_row.get(dup[1]) if dup[0] == "row" else Contact.objects.filter(pk=dup[1]).first()
            if target is None:  # the earlier row was itself skipped: this one is too
                skipped += 1
                continue
            _update(target, r)
            contact_of_row[r.number] = target
            updated += 1
        problem_rows = imp.report.get("problem_count", 0)
        imp.result = {"created": created, "updated": updated, "skipped": skipped, "problem_rows": problem_rows}
        imp.status, imp.progress = ContactImport.Status.DONE, imp.row_count
        imp.rows, imp.fixes, imp.checked = [], {}, []  # the contacts are saved; the file need not be kept
        imp.save(update_fields=["result", "status", "progress", "rows", "fixes", "checked", "updated_at"])


def _update(contact: Contact, row: Row) -> None:
    """Fill the contact from the row: non-empty fields replace, new numbers are added, do-not-call is only set."""
    for name in ("name", "company", "email", "notes"):
        if value := getattr(row, name):
            setattr(contact, name, value)
    contact.do_not_call = contact.do_not_call or row.do_not_call
    contact.save()
    have = {p.number: p for p in contact.phones.all()}
    has_primary = any(p.is_primary for p in have.values())
    for label, number, dnc in row.phones:
        if number in have:
            if dnc and not have[number].do_not_call:
                have[number].do_not_call = True
                have[number].save(update_fields=["do_not_call"])
            continue
        have[number] = ContactPhone.objects.create(
            contact=contact, label=label, number=number, do_not_call=dnc, is_primary=not has_primary
        )
        has_primary = True


# --- Running in the background ---------------------------------------------------------------------------------


def start(job: Callable[[object], None], imp: ContactImport) -> None:
    """Run check or apply for imp: in a thread of its own (the web worker answers at once), or inline when
    `CONTACT_IMPORT_BACKGROUND` is off (tests). A job that fails marks the import failed with the reason."""
    if getattr(settings, "CONTACT_IMPORT_BACKGROUND", True):
        threading.Thread(target=_run, args=(job, imp.pk), daemon=True, name=f"contact-import-{imp.pk}").start()
    else:
        _run(job, imp.pk, close=False)


def _run(job: Callable[[object], None], pk, close: bool = True) -> None:
    try:
        job(pk)
    except Exception:
        log.exception("contact import %s failed", pk)
        ContactImport.objects.filter(pk=pk).update(
            status=ContactImport.Status.FAILED,
            error="Something went wrong while importing; nothing was written. Try again, or tell an admin.",
        )
    finally:
        if close:
            close_old_connections()
            connection.close()


def is_stale(imp: ContactImport) -> bool:
    """A job whose process died (a restart) leaves its import working for ever: say so after a while."""
    return imp.working and imp.updated_at < timezone.now() - STALE


def current_progress(imp: ContactImport) -> int:
    if imp.status == ContactImport.Status.IMPORTING:
        return cache.get(progress_key(imp.pk), 0)
    return imp.progress


# --- Export ----------------------------------------------------------------------------------------------------

EXPORT_BATCH = 2_000
EXPORT_HEADER = [
    "Name",
    "Company",
    "Email",
    "Mobile",
    "Work phone",
    "Home phone",
    "Other phone",
    "Do not call",
    "Do-not-call numbers",
    "Owner",
    "Notes",
    "Created",
]


def export_chunks(contacts: QuerySet[Contact]) -> Iterator[str]:
    """The CSV of contacts with all their numbers, for calls.spreadsheet.csv_download: the header, then EXPORT_BATCH
    contacts at a time in id order, each batch two queries (the contacts after the last one sent, and their
    numbers), so nothing is held between batches and memory stays flat however many contacts there are."""
    writer = csv.writer(Line())
    yield "\ufeff" + writer.writerow(EXPORT_HEADER)  # the BOM makes Excel read UTF-8
    columns = ("pk", "name", "company", "email", "do_not_call", f"owner__{get_user_model().USERNAME_FIELD}")
    rows = contacts.order_by("pk").values_list(*columns, "notes", "created_at")
    labels = ContactPhone.Label.values
    after = None
    while batch := list((rows if after is None else rows.filter(pk__gt=after))[:EXPORT_BATCH]):
        after = batch[-1][0]
        numbers: dict[int, list[tuple[str, str, bool]]] = {}
        # In the order the contact's page lists them (ContactPhone.Meta.ordering): the primary number first.
        for contact_id, label, number, dnc in ContactPhone.objects.filter(
            contact_id__in=[row[0] for row in batch]
        ).values_list("contact_id", "label", "number", "do_not_call"):
            numbers.setdefault(contact_id, []).append((label, number, dnc))
        out = []
        for pk, name, company, email, do_not_call, owner, notes, created_at in batch:
            by_label: dict[str, list[str]] = {label: [] for label in labels}
            for label, number, _dnc in numbers.get(pk, ()):
                by_label[label].append(number)
            cells = (
                name,
                company,
                email,
                "; ".join(by_label["mobile"]),
                "; ".join(by_label["work"]),
                "; ".join(by_label["home"]),
                "; ".join(by_label["other"]),
                "yes" if do_not_call else "no",
                "; ".join(number for _label, number, dnc in numbers.get(pk, ()) if dnc),
                owner or "",
                notes,
                created_at.isoformat(timespec="seconds"),
            )
            out.append(writer.writerow([inert(cell) for cell in cells]))
        yield "".join(out)
        if len(batch) < EXPORT_BATCH:
            return
