"""What a row of a contacts file means: which column feeds which field (guessed from the header, corrected by the
person), and a row parsed into a contact's fields and numbers, with its problems. No database here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from calls import phones
from calls.import_files import ImportFileError
from calls.models import Contact, ContactPhone
from calls.spreadsheet import as_typed

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
EMAIL_LENGTH = Contact._meta.get_field("email").max_length or 254
MAX_NUMBERS = 20  # numbers in one row: more is not one person (and would let a batch of rows hold a whole file)

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


def _key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def check_header(header: list[str]) -> None:
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
    if len(row.email) > EMAIL_LENGTH:
        # A valid address may have 320 characters; the column holds 254, and one longer failed the whole import.
        row.problems.append(f"The email is longer than {EMAIL_LENGTH} characters.")
    elif row.email:
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
    given = {source: _numbers_in(cell(source)) for source in PHONE_FIELDS}
    if sum(map(len, given.values())) > MAX_NUMBERS:
        row.problems.append(f"The row has more than {MAX_NUMBERS} numbers: a contact may have at most {MAX_NUMBERS}.")
        given = {}
    for source, numbers in given.items():
        for raw in numbers:
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


def dump_row(row: Row) -> list:
    return [row.number, row.name, row.company, row.email, row.notes, row.do_not_call, row.phones]


def load_row(data: list) -> Row:
    number, name, company, email, notes, dnc, numbers = data
    return Row(number, name, company, email, notes, dnc, [tuple(p) for p in numbers])
