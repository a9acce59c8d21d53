"""Reading the audit trail: /audit/'s filters (all in the URL) and its pages, newest first, by keyset on (at, id).

Each filter that narrows by one column (person, object, contact, kind) has an index that ends in (at, id), so the
page is one index range read backwards from the cursor, whatever the table holds; dates bound the same range."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import Q
from django.utils import timezone

from calls import cursors
from calls.audit.triggers import AUDITED
from calls.forms.problems import NamedProblems
from calls.models import AuditEntry

PAGE_SIZE = 50

# Every kind an entry may have, for the kind filter.
APP_KINDS = [
    "contact.erased",
    "export.contacts",
    "export.calls",
    "export.queue",
    "export.subject",
    "import.confirm",
    "import",
    "login",
    "lockout",
    "lockout.lift",
    "retention.update",
    "retention.run",
]
ROW_KINDS = [
    f"{a.kind}.{op}"
    for a in AUDITED
    for op in ("create", "update", "delete", *(("dnc_cleared",) if a.kind in ("contact", "number") else ()))
    if not (a.kind == "call" and op == "create")
]
KINDS = sorted({*ROW_KINDS, *APP_KINDS})
OBJECT_TYPES = sorted({a.object_type for a in AUDITED} | {"import", "lockout", "retention"})

_CURSOR = re.compile(r"(-?[0-9]{1,19})_([0-9]{1,19})")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def cursor_of(entry: AuditEntry) -> str:
    micros = (entry.at - EPOCH) // timedelta(microseconds=1)
    return f"{micros}_{entry.pk}"


class AuditFilter(NamedProblems):
    link_hint = "The link that set it is damaged: open the audit trail from the menu, or go back and follow it again."
    whole_errors = (NON_FIELD_ERRORS, "after")  # "That page link is damaged."

    person = forms.CharField(required=False, max_length=150, label="Person (username)")
    kind = forms.ChoiceField(required=False, label="What", choices=[("", "Any"), *((k, k) for k in KINDS)])
    type = forms.ChoiceField(required=False, label="Object", choices=[("", "Any"), *((t, t) for t in OBJECT_TYPES)])
    id = forms.CharField(required=False, max_length=64, label="Object id")
    contact = forms.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, label="Contact", widget=forms.HiddenInput
    )
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    after = forms.CharField(required=False, max_length=60, widget=forms.HiddenInput)

    def clean_id(self) -> str:
        value: str = self.cleaned_data["id"].strip()
        if not cursors.is_text(value):
            raise ValidationError("That object id cannot be searched for.")
        return value

    def clean_person(self) -> str:
        value: str = self.cleaned_data["person"].strip()
        if not cursors.is_text(value):
            raise ValidationError("That username cannot be searched for.")
        return value

    def clean_after(self) -> tuple[datetime, int] | None:
        raw = self.cleaned_data["after"]
        if not raw:
            return None
        found = _CURSOR.fullmatch(raw)
        if not found or not cursors.is_bigint(int(found[2])):
            raise ValidationError("That page link is damaged.", code="cursor")
        try:
            at = EPOCH + timedelta(microseconds=int(found[1]))
        except OverflowError:
            raise ValidationError("That page link is damaged.", code="cursor") from None
        return at, int(found[2])

    def params(self, **changes: object) -> str:
        """This view's query string, with changes (None drops a parameter)."""
        data: dict[str, Any] = {k: self.cleaned_data.get(k) for k in ("person", "kind", "type", "id", "contact")}
        for day in ("since", "until"):
            data[day] = self.cleaned_data[day].isoformat() if self.cleaned_data.get(day) else None
        data.update(changes)
        return urlencode({k: v for k, v in data.items() if v not in (None, "")})


@dataclass
class Page:
    entries: list[AuditEntry]
    older: str  # the cursor of the next (older) page, "" on the last


def filtered(opts: dict[str, Any]) -> Any:
    """The entries that match the filters (AuditFilter's cleaned data)."""
    entries = AuditEntry.objects.all()
    if person := opts.get("person"):
        user_model = get_user_model()
        ids = list(user_model.objects.filter(**{user_model.USERNAME_FIELD: person}).values_list("pk", flat=True))
        entries = entries.filter(actor_id__in=ids) if ids else entries.none()
    if kind := opts.get("kind"):
        entries = entries.filter(kind=kind)
    if object_type := opts.get("type"):
        entries = entries.filter(object_type=object_type)
        if object_id := opts.get("id"):
            entries = entries.filter(object_id=object_id)
    if contact := opts.get("contact"):
        entries = entries.filter(contact_id=contact)
    if since := opts.get("since"):
        entries = entries.filter(at__gte=_start_of(since))
    if until := opts.get("until"):
        entries = entries.filter(at__lt=_start_of(until + timedelta(days=1)))
    return entries


def _start_of(day: Any) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def page(opts: dict[str, Any], *, size: int = PAGE_SIZE) -> Page:
    """A page of the matching entries, newest first, after the cursor `opts["after"]` if given."""
    entries = filtered(opts).order_by("-at", "-id")
    if after := opts.get("after"):
        at, pk = after
        # The first condition alone is a range the index starts from; the second breaks ties by id.
        entries = entries.filter(at__lte=at).filter(Q(at__lt=at) | Q(at=at, id__lt=pk))
    rows = list(entries[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return Page(rows, cursor_of(rows[-1]) if more and rows else "")


def dnc_clearings(contact_id: int, *, limit: int = 20) -> list[AuditEntry]:
    """When do-not-call was taken off the contact or one of its numbers, by whom and why, newest first."""
    return list(AuditEntry.objects.about_contact(contact_id).dnc_clearings().order_by("-at", "-id")[:limit])


def place_dnc_clearings(
    contact_id: int, calls: list[Any], *, newer_than: datetime | None, last_page: bool
) -> list[AuditEntry]:
    """Put the contact's do-not-call clearings beside its calls on a timeline page (newest first): each call gets
    `dnc_clearings`, those made after it (and before the call above it); returned are those older than every call of
    the last page (or all, with no calls). `newer_than` is the time of the call above this page, None on the first."""
    found = list(AuditEntry.objects.about_contact(contact_id).dnc_clearings().order_by("-at", "-id")[:200])
    _name_numbers(found)
    if newer_than is not None:
        found = [entry for entry in found if entry.at <= newer_than]
    for call in calls:
        call.dnc_clearings = [entry for entry in found if entry.at > call.requested_at]
        found = [entry for entry in found if entry.at <= call.requested_at]
    return found if last_page else []


def _name_numbers(found: list[AuditEntry]) -> None:
    """Give each number's entry the number it is about (`entry.number`): a change of the flag alone does not hold it."""
    from calls.models import ContactPhone

    missing = [e.object_id for e in found if e.object_type == "number" and not _number_in(e)]
    numbers = dict(
        ContactPhone.objects.filter(pk__in=[int(pk) for pk in missing if pk.isdigit()]).values_list("pk", "number")
    )
    for entry in found:
        if entry.object_type == "number":
            in_entry = _number_in(entry)
            entry.number = in_entry or numbers.get(int(entry.object_id) if entry.object_id.isdigit() else 0, "")  # type: ignore[attr-defined]


def _number_in(entry: AuditEntry) -> str:
    return str((entry.before or {}).get("number") or (entry.after or {}).get("number") or "")


def name_roles(entries: list[AuditEntry]) -> None:
    """Add the role's name beside a role entry's group id, and the permission's beside its id, for reading."""
    from django.contrib.auth.models import Group, Permission

    def ids(kind: str, key: str) -> set[int]:
        return {
            int(row[key])
            for e in entries
            if e.kind.startswith(kind)
            for row in (e.before, e.after)
            if row and isinstance(row.get(key), int)
        }

    groups = dict(Group.objects.filter(pk__in=ids("role", "group_id")).values_list("pk", "name"))
    permissions = dict(
        Permission.objects.filter(pk__in=ids("role_permission.", "permission_id")).values_list("pk", "codename")
    )
    for entry in entries:
        for row in (entry.before, entry.after):
            if not row:
                continue
            if entry.kind.startswith("role") and row.get("group_id") in groups:
                row["role"] = groups[row["group_id"]]
            if entry.kind.startswith("role_permission.") and row.get("permission_id") in permissions:
                row["permission"] = permissions[row["permission_id"]]
