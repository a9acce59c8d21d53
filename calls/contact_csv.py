"""The contacts export (Contacts → Export CSV): every contact with all their numbers, streamed in batches, each cell
made inert; an export imported again gives back the contacts it came from (calls/imports.py): their fields, owner,
time zone, consent and priority, and their numbers with labels, do-not-call and which one is primary."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils import timezone

from calls.models import Consent, Contact, ContactPhone
from calls.spreadsheet import Line, inert

EXPORT_BATCH = 2_000  # contacts read and written at a time
EXPORT_HEADER = [
    "Name",
    "Company",
    "Email",
    "Mobile",
    "Work phone",
    "Home phone",
    "Other phone",
    "Primary phone",
    "Do not call",
    "Do-not-call numbers",
    "Owner",
    "Time zone",
    "Recording consent",
    "Priority",
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
    rows = contacts.order_by("pk").values_list(
        *columns, "time_zone", "consent_override", "priority", "notes", "created_at"
    )
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
        for pk, name, company, email, do_not_call, owner, time_zone, consent, priority, notes, created_at in batch:
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
                next((number for _label, number, _dnc in numbers.get(pk, ())), ""),  # the primary is listed first
                "yes" if do_not_call else "no",
                "; ".join(number for _label, number, dnc in numbers.get(pk, ()) if dnc),
                owner or "",
                time_zone,
                Consent(consent).label if consent else "",
                priority,
                notes,
                timezone.localtime(created_at).isoformat(timespec="seconds"),
            )
            out.append(writer.writerow([inert(cell) for cell in cells]))
        yield "".join(out)
        if len(batch) < EXPORT_BATCH:
            return
