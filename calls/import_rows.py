"""What a row of a contacts file means: which column feeds which field (guessed from the header, corrected by the
person), and a row parsed into a contact's fields and numbers, with its problems. No database here, but for the
owners the rows name (owners_of, check_owners: one query a batch) and the saved contacts they repeat
(saved_contacts_with, check_saved_contacts: a query a batch, or two)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models.functions import Lower

from calls import phones
from calls.forms.contacts import MAX_PHONES_PER_CONTACT
from calls.import_files import ImportFileError
from calls.models import Consent, Contact, ContactPhone
from calls.models.common import validate_time_zone
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
    "owner": "Owner (a username; an empty cell: no owner)",
    "time_zone": "Time zone",
    "consent": "Recording consent",
    "priority": "Priority",
    "notes": "Notes",
}
PHONE_FIELDS = ("phone", "mobile", "work", "home", "other", "dnc_numbers")
EMAIL_LENGTH = Contact._meta.get_field("email").max_length or 254
# Numbers in one row: more is not one person (and would let a batch of rows hold a whole file); the contact's form
# takes no more either, nor does an update (check_saved_contacts, and imports._update at the confirmation).
MAX_NUMBERS = MAX_PHONES_PER_CONTACT

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
    "owner": ("owner", "contactowner", "ownedby", "assignedto", "accountowner"),
    "time_zone": ("timezone", "tz"),
    "consent": ("recordingconsent", "consent"),
    "priority": ("priority",),
    "notes": ("notes", "note", "comments", "comment", "description", "remarks"),
}
LABEL_WORDS = {
    ContactPhone.Label.MOBILE: ("mobile", "cell", "cellphone", "mob", "m"),
    ContactPhone.Label.WORK: ("work", "office", "business", "direct", "w"),
    ContactPhone.Label.HOME: ("home", "landline", "h"),
    ContactPhone.Label.OTHER: ("other", "o", "main", "fax"),
}
CONSENTS = {
    _k: c.value
    for c in Consent
    for _k in (re.sub(r"[^a-z]", "", c.value.lower()), re.sub(r"[^a-z]", "", c.label.lower()))
}
PRIORITY = (-32768, 32767)  # what the column (a SmallIntegerField) holds
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
    owner: str = ""  # a username, as the cell gives it (check_owners: a user's); empty: none, or see _create
    time_zone: str = ""
    consent: str = ""  # a Consent value; empty: the country default
    priority: int | None = None  # None: not given

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
    row.owner, row.time_zone = cell("owner"), cell("time_zone")
    try:
        validate_time_zone(row.time_zone)
    except ValidationError as e:
        row.problems.append(e.messages[0])
    consent = cell("consent")
    row.consent = CONSENTS.get(re.sub(r"[^a-z]", "", consent.lower()), "") if consent else ""
    if consent and not row.consent:
        row.problems.append(
            f"Recording consent is “{consent}”: use {', '.join(c.label for c in Consent)}, or leave it empty."
        )
    priority = cell("priority")
    if re.fullmatch(r"[+-]?[0-9]{1,6}", priority) and PRIORITY[0] <= int(priority) <= PRIORITY[1]:
        row.priority = int(priority)
    elif priority:
        row.problems.append(f"The priority is “{priority}”: use a whole number ({PRIORITY[0]:,} to {PRIORITY[1]:,}).")
    label_text = _key(cell("label"))
    phone_label = next((label for label, words in LABEL_WORDS.items() if label_text in words), None)
    if label_text and phone_label is None:
        row.problems.append(f"The label “{cell('label')}” is not one of mobile, work, home or other.")
    seen: dict[str, int] = {}
    guessed: set[int] = set()  # where in row.phones a number's label was guessed from its kind
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
                i = seen[e164]
                if source == "dnc_numbers":
                    row.phones[i] = (row.phones[i][0], e164, True)
                elif i in guessed and source != "phone":
                    # The Phone column gives the first (primary) number, its label guessed; a labelled column that
                    # repeats it says what it is (an export's Primary phone and Home phone).
                    row.phones[i] = (label, e164, row.phones[i][2])
                    guessed.discard(i)
                continue
            if source == "phone" and phone_label is None:
                guessed.add(len(row.phones))
            seen[e164] = len(row.phones)
            row.phones.append((label, e164, source == "dnc_numbers"))
    return row


def owners_of(names: Iterable[str]) -> dict[str, int]:
    """The users these owner cells name, by username (in any letter case when only one user has it): cell -> id."""
    names = {n for n in names if n}
    if not names:
        return {}
    user_model = get_user_model()
    found = user_model.objects.annotate(lowered=Lower(user_model.USERNAME_FIELD))
    users = list(found.filter(lowered__in={n.lower() for n in names}).values_list(user_model.USERNAME_FIELD, "pk"))
    exact = dict(users)
    by_case: dict[str, list[int]] = {}
    for username, pk in users:
        by_case.setdefault(username.lower(), []).append(pk)
    matched = {}
    for name in names:
        if name in exact:
            matched[name] = exact[name]
        elif len(same := by_case.get(name.lower(), [])) == 1:
            matched[name] = same[0]
    return matched


def check_owners(rows: Iterable[Row]) -> None:
    """A problem for each row whose owner is not a user's username."""
    rows = [r for r in rows if r.owner]
    known = owners_of(r.owner for r in rows)
    for r in rows:
        if r.owner not in known:
            r.problems.append(
                f"The owner “{r.owner}” is not anyone's username: correct it, or empty the cell for no owner. "
                "With no column chosen for Owner, whoever imports owns the contacts."
            )


Saved = dict[str, list[tuple[int, str]]]  # a number or (lower-cased) email -> the saved contacts (id, name) with it


def saved_contacts_with(keys: set[str], up_to: int | None = None) -> Saved:
    """Saved contacts (with an id up to `up_to`, when given) having any of these numbers or (lower-cased) emails."""
    found: Saved = {}
    numbers = sorted(k for k in keys if k.startswith("+"))
    emails = sorted(k for k in keys if not k.startswith("+"))
    phones_qs = ContactPhone.objects.all() if up_to is None else ContactPhone.objects.filter(contact_id__lte=up_to)
    contacts = Contact.objects.all() if up_to is None else Contact.objects.filter(pk__lte=up_to)
    for i in range(0, len(numbers), 1000):
        chunk = numbers[i : i + 1000]
        for number, pk, name in phones_qs.filter(number__in=chunk).values_list("number", "contact_id", "contact__name"):
            found.setdefault(number, []).append((pk, name))
    for i in range(0, len(emails), 1000):
        chunk = emails[i : i + 1000]
        for email, pk, name in (
            contacts.annotate(email_lower=Lower("email"))
            .filter(email_lower__in=chunk)
            .values_list("email_lower", "pk", "name")
        ):
            found.setdefault(email, []).append((pk, name))
    return found


def saved_match(row: Row, saved: Saved) -> tuple[str, int, str] | None:
    """(key, contact id, name): the saved contact a row repeats, by the first of its keys that one has, preferring
    a contact that has all the row's saved keys; None when no saved contact has any."""
    matched = [k for k in row.keys if k in saved]
    if not matched:
        return None
    common = set.intersection(*({pk for pk, _ in saved[k]} for k in matched))
    pk, name = next((c for c in saved[matched[0]] if c[0] in common), saved[matched[0]][0])
    return matched[0], pk, name


def check_saved_contacts(rows: list[Row]) -> None:
    """A problem for each row whose number is one saved contact's and whose email (or another number) another's:
    an update of either would give it the other's (two contacts with one email), and only a person can tell
    which of them the row is. And for each row whose update would give its contact more numbers than the
    contact's form takes (which could then never be saved)."""
    saved = saved_contacts_with({key for r in rows for key in r.keys})
    matches = {r.number: match for r in rows if (match := saved_match(r, saved))}
    numbers: dict[int, set[str]] = {}
    if matches:
        targets = ContactPhone.objects.filter(contact_id__in={pk for _, pk, _ in matches.values()})
        for pk, number in targets.values_list("contact_id", "number"):
            numbers.setdefault(pk, set()).add(number)
    for r in rows:
        if (match := matches.get(r.number)) is None:
            continue
        key, pk, name = match
        other = next((k for k in r.keys if saved.get(k) and all(c[0] != pk for c in saved[k])), None)
        if other is not None:
            r.problems.append(
                f"The row matches two different contacts: its {describe(key)} is {name}'s and its "
                f"{describe(other)} is {saved[other][0][1]}'s. Correct or empty the cell that is not this "
                "person's, so that the row matches one contact."
            )
            continue
        have = numbers.get(pk, set())
        if (new := {n for _, n, _ in r.phones} - have) and len(have) + len(new) > MAX_PHONES_PER_CONTACT:
            r.problems.append(
                f"An update of {name} with this row would give them {len(have) + len(new)} numbers: a contact may "
                f"have at most {MAX_PHONES_PER_CONTACT}. Leave out {len(have) + len(new) - MAX_PHONES_PER_CONTACT} "
                f"of the row's new numbers, or remove some of {name}'s first."
            )


def may_take_email(row: Row, contact: Contact, saved: Saved) -> bool:
    """Whether an update may give contact the row's email: no other contact has it, saved (`saved`, as
    saved_contacts_with read it for the batch) or written earlier by the import. The check ran before the
    confirmation, and two rows of a file that update two contacts each pass it alone: written, both contacts would
    have the email. When it may, notes the email as contact's (and contact's old one as no longer its)."""
    key = row.email.lower()
    if not key or key == contact.email.lower():
        return True
    if any(pk != contact.pk for pk, _ in saved.get(key, [])):
        return False
    if old := saved.get(contact.email.lower()):
        old[:] = [c for c in old if c[0] != contact.pk]
    saved.setdefault(key, []).append((contact.pk, contact.name))
    return True


def describe(key: str) -> str:
    return f"number {phones.display(key)}" if key.startswith("+") else f"email {key}"


def _numbers_in(text: str) -> list[str]:
    # Several numbers in one cell are separated by ; or a new line ("," is kept: it appears in "ext, 22").
    # A leading ' on any of them (how a spreadsheet marks a number kept as text: '07400…) is dropped.
    return [part.strip().removeprefix("'").strip() for part in re.split(r"[;\n]", text) if part.strip(" '")]


def dump_row(row: Row) -> list:
    fields = [row.name, row.company, row.email, row.notes, row.do_not_call, row.phones]
    return [row.number, *fields, row.owner, row.time_zone, row.consent, row.priority]


def load_row(data: list) -> Row:
    # A row checked before owners, time zones, consent and priority were read has only the first seven.
    number, name, company, email, notes, dnc, numbers, *more = data
    owner, time_zone, consent, priority = more or ("", "", "", None)
    row = Row(number, name, company, email, notes, dnc, [tuple(p) for p in numbers])
    row.owner, row.time_zone, row.consent, row.priority = owner, time_zone, consent, priority
    return row
