"""Erasure of a contact (the right to erasure): the contact, its numbers and notes go, and every copy of its name,
e-mail and numbers that vccweb wrote elsewhere is removed or masked, in one transaction.

What stays: its calls, with their agent, times, outcome, duration and disposition (reports' figures do not move: no
column a report counts is touched, nor `changed_at`), the number masked (+44 20 •••• •100) and the contact shown as
"Erased contact"; and, for its do-not-call numbers, a salted hash (ErasedNumber), so the opt-out outlives it.

Where copies live, and what happens to each:

- the contact, its numbers, its row of calls_contactsearch (the trigger): deleted;
- its calls, and calls to its numbers that have no contact: number masked, notes and override reason blanked,
  the request sent masked, VCC's texts scrubbed, the contact unlinked and the call marked `contact_erased`;
- their history (CallEvent): scrubbed; VCC's raw events (VccEvent): the calls' own, and those matched to no call
  that name a number, scrubbed;
- the webhook outbox: the contact's events keep only its id, the calls' events their masked resource; the answers
  receivers gave to them (WebhookAttempt) blanked; the events still to be delivered send these;
- imports: rows of imports not yet written that hold it (its numbers, e-mail or whole name, as the import read
  them) deleted, with their keys; imports waiting for a confirmation checked again, and an import being
  written starts again without them; other imports' reports scrubbed;
- answers kept for an Idempotency-Key (ApiIdempotentRequest): masked;
- its queue entries and callbacks: deleted with it; its queue attempts (kept for the queues' reports): a skip's
  reason, typed by an agent, scrubbed;
- job errors, the reports' failure reasons (CallRollup keys), dial locks, Django admin's log: scrubbed or deleted.

"Scrubbed": each of the contact's numbers (E.164 with and without +, national and international forms, the national
number without its prefix) becomes its masked form, and its names and e-mails become "Erased contact". "Its": those it
has and those it had, as its calls and the audit trail's entries name them (a form, the API or an import written just
before may have changed them, and the copies of the old ones stay). The audit trail
keeps that it happened and by whom (calls/privacy/audit.py).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import phonenumbers
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import Q

from calls import imports
from calls.models import (
    ERASED_CONTACT,
    ApiIdempotentRequest,
    Call,
    CallEvent,
    CallRollup,
    Contact,
    ContactImport,
    ContactImportKey,
    ContactImportRow,
    ContactPhone,
    DialLock,
    ErasedNumber,
    JobError,
    QueueAttempt,
    VccEvent,
    WebhookAttempt,
    WebhookEvent,
)
from calls.phones import MASK
from calls.privacy import audit
from calls.privacy.hashing import number_digest
from calls.privacy.masking import mask_number
from calls.webhooks import outbox

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger("calls.privacy")

BATCH = 1000  # rows written a statement


@dataclass
class ErasurePlan:
    """What erasing a contact removes and keeps, for the confirm page."""

    contact: Contact
    numbers: list[str]
    do_not_call: list[str]
    calls: int


def plan_erasure(contact: Contact) -> ErasurePlan:
    numbers = [p.number for p in contact.phones.all()]
    dnc = numbers if contact.do_not_call else [p.number for p in contact.phones.all() if p.do_not_call]
    return ErasurePlan(contact, numbers, dnc, contact.calls.count())


@dataclass
class Erasure:
    contact_pk: int
    counts: dict[str, int] = field(default_factory=dict)


# --- Scrubbing text -------------------------------------------------------------------------------------------------


def number_forms(e164: str) -> list[str]:
    """The ways a number is written that a copy may hold: E.164 with and without +, international and national, and
    its national number without the national prefix."""
    forms = {e164, e164.lstrip("+")}
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return sorted(forms)
    for fmt in (phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.NATIONAL):
        shown = phonenumbers.format_number(parsed, fmt)
        forms |= {shown, re.sub(r"\D", "", shown) if fmt == phonenumbers.PhoneNumberFormat.NATIONAL else shown}
    # As a spreadsheet keeps a number typed without +: its national prefix dropped (7400900461).
    forms.add(phonenumbers.national_significant_number(parsed))
    return sorted(f for f in forms if sum(c.isdigit() for c in f) >= 6)


class Scrubber:
    """Replaces every form of the contact's numbers by its mask, and its names and e-mails (those it has and those it
    had) by "Erased contact"."""

    def __init__(self, *, names: Iterable[str] = (), emails: Iterable[str] = (), numbers: Iterable[str]) -> None:
        self.names = sorted({n.strip() for n in names if n.strip()})
        self.emails = sorted({e.strip() for e in emails if e.strip()})
        self.numbers = sorted(set(numbers))
        self.replacements: dict[str, str] = {}
        for number in self.numbers:
            for form in number_forms(number):
                self.replacements[form.lower()] = mask_number(number)
        for text in (*self.names, *self.emails):
            if len(text) >= 3:  # a name of one or two letters would be found inside every word
                self.replacements[text.lower()] = ERASED_CONTACT
        # Longest first: +442079460100 before 442079460100, which it holds. Whole words and whole numbers only:
        # erasing "Busy" must not touch "Destination busy", nor a number the digits of a longer one.
        # A name is matched as it is written (case and all): "Busy" the person, not "Destination busy".
        secrets = sorted(self.replacements, key=len, reverse=True)
        cased: dict[str, list[str]] = {}
        for name in self.names:
            if len(name) >= 3:
                cased.setdefault(name.lower(), []).append(name)
        alternatives = [
            rf"(?<![\w@.+])(?-i:{re.escape(name)})(?![\w@])" if s in cased else rf"(?<![\w@.+]){re.escape(s)}(?![\w@])"
            for s in secrets
            for name in cased.get(s, [s])
        ]
        self.pattern = re.compile("|".join(alternatives), re.IGNORECASE) if secrets else None

    @functools.cached_property
    def numbers_only(self) -> Scrubber:
        """The same numbers, without the names and e-mails (where a name could be any other words); made once."""
        return Scrubber(numbers=self.numbers)

    def holds_them(self, cells: Any) -> bool:
        """Whether an import row's cells are theirs: a cell that is a whole name or e-mail of theirs, or one holding
        one of their numbers; a namesake's "Sam Jones" is not "Sam"."""
        values = [str(c).strip().lower() for c in (cells if isinstance(cells, list) else [cells]) if c is not None]
        whole = {t.lower() for t in (*self.names, *self.emails)}
        numbers = self.numbers_only
        return any(v in whole or numbers.finds(v) for v in values)

    @property
    def secrets(self) -> list[str]:
        return list(self.replacements)

    def text(self, value: str) -> str:
        if not value or self.pattern is None:
            return value
        return self.pattern.sub(lambda m: self.replacements[m.group(0).lower()], value)

    def json(self, value: Any) -> Any:
        """A JSON value with every string in it scrubbed (keys too)."""
        if value is None:
            return None
        dumped = json.dumps(value, ensure_ascii=False)
        scrubbed = self.text(dumped)
        return value if scrubbed == dumped else json.loads(scrubbed)

    def finds(self, value: object) -> bool:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return bool(self.pattern and self.pattern.search(text))


def like_any(column: str, secrets: Sequence[str]) -> tuple[str, list[Any]]:
    """SQL: the text of column holds one of secrets (case-insensitive); the escape of LIKE is applied."""
    patterns = ["%" + s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for s in secrets]
    if connection.vendor == "postgresql":
        return f"{column}::text ILIKE ANY(%s)", [patterns]
    return "(" + " OR ".join([f"LOWER({column}) LIKE %s ESCAPE '\\'"] * len(patterns)) + ")", [
        p.lower() for p in patterns
    ]


def _ids_where_text_has(model: type[Any], column: str, secrets: Sequence[str], extra: str = "") -> list[Any]:
    if not secrets:
        return []
    where, params = like_any(column, secrets)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {model._meta.db_table} WHERE {where}{extra}", params)
        return [row[0] for row in cursor.fetchall()]


def _batched(items: Sequence[Any], size: int = BATCH) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- Erasing --------------------------------------------------------------------------------------------------------


def _former_numbers(contact_pk: int) -> set[str]:
    """Numbers the contact had that it has no longer: those its calls went to, those its numbers' audit entries name."""
    from calls.models import AuditEntry

    called = Call.objects.filter(contact_id=contact_pk).values_list("to_number", flat=True).distinct()
    found = {n for n in called if n.startswith("+") and MASK not in n}
    entries = AuditEntry.objects.filter(contact_id=contact_pk, object_type="number").values_list("before", "after")
    for values in entries:
        found.update(v["number"] for v in values if isinstance(v, dict) and isinstance(v.get("number"), str))
    return found


def _former_names_and_emails(contact_pk: int) -> tuple[set[str], set[str]]:
    """Names and e-mails the contact had before its last change (by a form, the API or an import that updated it),
    as the audit trail's entries about it name them: copies of those (an import's rows and report) are theirs too."""
    from calls.models import AuditEntry

    names: set[str] = set()
    emails: set[str] = set()
    entries = AuditEntry.objects.filter(contact_id=contact_pk, object_type="contact").values_list("before", "after")
    for values in entries:
        for value in values:
            if isinstance(value, dict):
                names.update([value["name"]] if isinstance(value.get("name"), str) else [])
                emails.update([value["email"]] if isinstance(value.get("email"), str) else [])
    return names, emails


def erase_contact(*, contact_pk: int, by: User, now: datetime) -> Erasure:
    """Erase the contact and every copy of its personal data (see the module's table), in one transaction; announce
    `contact.erased`. Raises Contact.DoesNotExist if it is gone (erased meanwhile)."""
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=contact_pk)
        phones = list(contact.phones.all())
        current = {p.number for p in phones}
        dnc = sorted(current if contact.do_not_call else {p.number for p in phones if p.do_not_call})
        # And the numbers it had before (changed or removed since): its calls and the audit trail still name them.
        numbers = sorted(current | _former_numbers(contact_pk))
        # And the names and e-mails it had: an import written just before may have changed them, and its report, or
        # another import's rows, still hold the ones it replaced.
        names, emails = _former_names_and_emails(contact_pk)
        scrub = Scrubber(names={contact.name, *names}, emails={contact.email, *emails}, numbers=numbers)
        result = Erasure(contact_pk)
        counts = result.counts
        counts["numbers"] = len(numbers)

        # Its own writes are not the trail's row changes: those would keep the values it removes (audit.quiet);
        # the trail gets one entry saying what was erased, by whom (audit_erasure).
        with audit.quiet():
            # The opt-outs outlive the contact, as salted hashes.
            ErasedNumber.objects.bulk_create(
                [ErasedNumber(digest=number_digest(n), erased_at=now) for n in dnc], ignore_conflicts=True
            )
            counts["do_not_call_kept"] = len(dnc)

            call_pks = list(
                Call.objects.filter(Q(contact_id=contact_pk) | Q(contact__isnull=True, to_number__in=numbers))
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            counts["calls"] = _erase_calls(call_pks, contact_pk, scrub)
            counts["call_events"] = _scrub_call_events(call_pks, scrub)
            counts["vcc_events"] = _scrub_vcc_events(call_pks, numbers, scrub)
            counts["webhook_events"] = _scrub_webhook_events(contact_pk, call_pks, scrub)
            counts["import_rows"] = _erase_import_rows(numbers, scrub)
            counts["api_answers"] = _scrub_api_answers(call_pks, scrub)
            counts["queue_attempts"] = _scrub_queue_attempts(contact_pk, call_pks, scrub)
            counts["other"] = _scrub_the_rest(contact_pk, [p.pk for p in phones], numbers, scrub)

            # The contact itself: its numbers go with it (CASCADE), its search row with it (the trigger).
            ContactPhone.objects.filter(contact_id=contact_pk).delete()
            Contact.objects.filter(pk=contact_pk).delete()
        audit.scrub_audit_entries_of_contact(
            contact_pk=contact_pk, phone_pks=[p.pk for p in phones], call_pks=call_pks, secrets=scrub.secrets
        )

        outbox.emit(
            "contact.erased",
            f"contact:{contact_pk}",
            {"id": contact_pk, "erased_at": now.isoformat().replace("+00:00", "Z"), "calls": counts["calls"]},
        )
        audit.audit_erasure(by=by, contact_pk=contact_pk, counts=counts, at=now)
    log.info("contact %s erased by user %s: %s", contact_pk, by.pk, counts)
    return result


# A call's texts in VCC's words (and its checks' reasons), which may quote its number: erasure scrubs them, retention
# masks the number in them when it masks the call's (without_number).
CALL_TEXTS = ("error_message", "error_display", "result_reason", "clid_reason", "consent_reason")


def without_number(text: str, number: str) -> str:
    """text with every form of number (see number_forms) masked as the call log masks it."""
    digits = re.sub(r"\D", "", number)
    # Every form holds the number's digits after its country code (at most 3) in a row, whatever separates them:
    # the text of most calls has none, and is left without the cost of knowing the number's forms.
    if not text or not digits or digits[3:] not in re.sub(r"\D", "", text):
        return text
    return _scrubber_of(number).text(text)


@functools.lru_cache(maxsize=1024)
def _scrubber_of(number: str) -> Scrubber:
    return Scrubber(numbers=[number])


def _erase_calls(call_pks: list[int], contact_pk: int, scrub: Scrubber) -> int:
    """The calls keep agent, times, outcome, duration and disposition; their number is masked, their notes go, and
    the contact's own calls are shown as "Erased contact". `changed_at` is left alone: reports count the same."""
    fields = ["to_number", "notes", "dnc_override_reason", "request_body", "hours_override_reason"]
    fields += ["contact", "phone", "contact_erased", *CALL_TEXTS]
    for chunk in _batched(call_pks):
        calls = list(Call.objects.filter(pk__in=chunk).only("pk", "contact_id", *fields[:5], *CALL_TEXTS))
        for call in calls:
            call.contact_erased = call.contact_erased or call.contact_id == contact_pk
            call.contact_id, call.phone_id = None, None
            call.to_number = mask_number(call.to_number)
            call.notes, call.dnc_override_reason, call.hours_override_reason = "", "", ""
            call.request_body = _masked_request(call.request_body, scrub)
            for name in CALL_TEXTS:
                setattr(call, name, scrub.text(getattr(call, name)))
        Call.objects.bulk_update(calls, fields)
    _scrub_rollup(scrub)
    return len(call_pks)


def _masked_request(body: Any, scrub: Scrubber) -> Any:
    if not isinstance(body, dict):
        return scrub.json(body)
    body = scrub.json(body)
    target = body.get("to")
    if isinstance(target, dict) and isinstance(target.get("telephoneNumber"), str):
        target["telephoneNumber"] = mask_number(target["telephoneNumber"])
    return body


def _scrub_rollup(scrub: Scrubber) -> None:
    """A failure's reason in VCC's words may quote the number: the reports' roll-up keeps those words as a key."""
    scrub = scrub.numbers_only  # a failure's words may happen to hold the name: reports' keys keep them
    ids = _ids_where_text_has(CallRollup, '"key"', scrub.secrets, " AND facet = 'error'")
    rows = list(CallRollup.objects.filter(pk__in=ids))
    for row in rows:
        row.key = scrub.text(row.key)
    CallRollup.objects.bulk_update(rows, ["key"], batch_size=BATCH)


def _scrub_call_events(call_pks: list[int], scrub: Scrubber) -> int:
    changed = 0
    for chunk in _batched(call_pks):
        events = [e for e in CallEvent.objects.filter(call_id__in=chunk) if scrub.finds(e.detail)]
        for event in events:
            event.detail = scrub.text(event.detail)
        CallEvent.objects.bulk_update(events, ["detail"], batch_size=BATCH)
        changed += len(events)
    return changed


def _scrub_vcc_events(call_pks: list[int], numbers: list[str], scrub: Scrubber) -> int:
    """VCC's raw events: those of the calls, and those matched to no call that name one of the numbers."""
    pks: set[int] = set()
    for chunk in _batched(call_pks):
        pks.update(VccEvent.objects.filter(call_id__in=chunk).values_list("pk", flat=True))
    forms = [f for n in numbers for f in number_forms(n)]
    pks.update(_ids_where_text_has(VccEvent, "data", forms, " AND call_id IS NULL"))
    changed = 0
    for chunk in _batched(sorted(pks)):
        events = list(VccEvent.objects.filter(pk__in=chunk))
        for event in events:
            event.data, event.subject, event.result = (
                scrub.json(event.data),
                scrub.text(event.subject),
                scrub.text(event.result),
            )
        VccEvent.objects.bulk_update(events, ["data", "subject", "result"], batch_size=BATCH)
        changed += len(events)
    return changed


def _scrub_webhook_events(contact_pk: int, call_pks: list[int], scrub: Scrubber) -> int:
    """The outbox: the contact's past events keep only its id; its calls' events their masked resource, without
    notes. Deliveries not yet made send these; the answers receivers gave are blanked (they may echo a payload)."""
    subjects = [f"contact:{contact_pk}", *(f"call:{pk}" for pk in call_pks)]
    changed = 0
    for chunk in _batched(subjects):
        events = list(WebhookEvent.objects.filter(subject__in=chunk))
        for event in events:
            payload = dict(event.payload or {})
            if event.subject.startswith("contact:"):
                payload["data"] = {"id": contact_pk, "erased": True}
            else:
                data = scrub.json(payload.get("data") or {})
                data.update(notes="", contact=None)
                if isinstance(data.get("to"), str):
                    data["to"] = mask_number(data["to"])
                payload["data"] = data
            event.payload = payload
        WebhookEvent.objects.bulk_update(events, ["payload"], batch_size=BATCH)
        WebhookAttempt.objects.filter(delivery__event__in=[e.pk for e in events]).update(response_snippet="")
        changed += len(events)
    return changed


def _erase_import_rows(numbers: list[str], scrub: Scrubber) -> int:
    """Rows of imports not yet written that are theirs: deleted with their keys, so confirming the import does not
    bring the contact back. A row is theirs when, as the import's check read it, it has one of their numbers or their
    e-mail, or their whole name (in a Name column, or First and Last name); or, for a row the check could not read
    (it has a problem), when a cell is their whole name or e-mail or holds one of their numbers. An import waiting
    for a confirmation that lost rows is checked again, so its preview neither names nor counts them; the other
    imports' reports (problems, duplicates) and results are scrubbed."""
    waiting = ContactImport.objects.exclude(status__in=[ContactImport.Status.DONE, ContactImport.Status.EXPIRED])
    import_pks = list(waiting.values_list("pk", flat=True))
    keys = [*numbers, *(email.lower() for email in scrub.emails)]
    keyed: dict[Any, set[int]] = {}
    for import_pk, number in ContactImportKey.objects.filter(
        contact_import_id__in=import_pks, key__in=keys
    ).values_list("contact_import_id", "number"):
        keyed.setdefault(import_pk, set()).add(number)
    theirs = Q(pk__in=[])
    for import_pk, keyed_rows in keyed.items():
        theirs |= Q(contact_import_id=import_pk, number__in=keyed_rows)
    for name in scrub.names:
        if len(name) >= 3:
            theirs |= Q(contact_import_id__in=import_pks, parsed__1__iexact=name)
    found = set(_ids_where_text_has(ContactImportRow, "cells", scrub.secrets))
    # Only the rows that are theirs (a cell their whole name or e-mail, or one of their numbers): other people's
    # rows that merely share a word stay.
    theirs |= Q(
        pk__in=[
            pk
            for pk, cells in ContactImportRow.objects.filter(pk__in=found).values_list("pk", "cells")
            if scrub.holds_them(cells)
        ]
    )
    rows = list(ContactImportRow.objects.filter(theirs).values_list("pk", "contact_import_id", "number"))
    touched: dict[Any, list[int]] = {}
    for _, import_pk, number in rows:
        touched.setdefault(import_pk, []).append(number)
    # Their imports locked (in one order: two erasures) before the rows go, as a check and an apply lock theirs as
    # they end (calls/imports.py): one being checked or written ends first (and its rows are gone when this deletes
    # them), or sees, once this commits, that rows went, and starts again without them.
    list(ContactImport.objects.select_for_update().filter(pk__in=list(touched)).order_by("pk").values_list("pk"))
    ContactImportRow.objects.filter(pk__in=[pk for pk, _, _ in rows]).delete()
    for import_pk, row_numbers in touched.items():
        ContactImportKey.objects.filter(contact_import_id=import_pk, number__in=row_numbers).delete()
    _check_again(touched)
    for imp in ContactImport.objects.all().only("pk", "report", "result", "error", "decisions"):
        before = (imp.report, imp.result, imp.error)
        imp.report, imp.result, imp.error = scrub.json(imp.report), scrub.json(imp.result), scrub.text(imp.error)
        if (imp.report, imp.result, imp.error) != before:
            imp.save(update_fields=["report", "result", "error"])
    return len(rows)


def _check_again(import_pks: Iterable[Any]) -> None:
    """Have the imports that lost rows and wait for a confirmation checked again: the preview waits for the check,
    which starts once the erasure commits (a job started before would find its rows still there). Their rows are
    locked (since before their rows went): a confirmation that came first keeps its import (its apply, as it ends,
    sees that rows went and writes it again without them: imports.apply); one that comes later finds the import
    being checked. A check running now sees, as it ends (it locks the row too), that rows went, and starts again
    (imports.check)."""
    for imp in ContactImport.objects.select_for_update().filter(pk__in=list(import_pks)):
        if imp.status != ContactImport.Status.PREVIEW:
            continue
        if not imp.lines.exists():  # none of its rows left: its report, of none, at once
            imports.check(imp.pk)
            continue
        imp.status, imp.progress, imp.report = ContactImport.Status.CHECKING, 0, {}
        imp.save(update_fields=["status", "progress", "report", "updated_at"])
        transaction.on_commit(functools.partial(imports.start, "check", imp))


def _scrub_api_answers(call_pks: list[int], scrub: Scrubber) -> int:
    """The answers kept for an Idempotency-Key that placed one of the calls: masked; the request's digest (a hash of a
    body that held the number) dropped, so a repeat of the key is refused rather than matched to it."""
    changed = 0
    for chunk in _batched(call_pks):
        kept = list(ApiIdempotentRequest.objects.filter(response__id__in=list(chunk)))
        for row in kept:
            response = scrub.json(row.response) or {}
            if isinstance(response, dict):
                response.update(notes="", contact=None)
                if isinstance(response.get("to"), str):
                    response["to"] = mask_number(response["to"])
            row.response, row.request_digest = response, "erased"
        ApiIdempotentRequest.objects.bulk_update(kept, ["response", "request_digest"], batch_size=BATCH)
        changed += len(kept)
    return changed


def _scrub_queue_attempts(contact_pk: int, call_pks: list[int], scrub: Scrubber) -> int:
    """Their queue entries go with the contact (CASCADE), their attempts stay for the queue's report: an attempt's
    outcome is a skip's reason as the agent typed it, which may quote their name or number: scrubbed (the count
    stays)."""
    attempts = {a.pk: a for a in QueueAttempt.objects.filter(entry__contact_id=contact_pk).exclude(outcome="")}
    for chunk in _batched(call_pks):
        attempts.update((a.pk, a) for a in QueueAttempt.objects.filter(call_id__in=chunk).exclude(outcome=""))
    changed = [a for a in attempts.values() if scrub.finds(a.outcome)]
    for attempt in changed:
        attempt.outcome = scrub.text(attempt.outcome)[: QueueAttempt._meta.get_field("outcome").max_length]
    QueueAttempt.objects.bulk_update(changed, ["outcome"], batch_size=BATCH)
    return len(changed)


def _scrub_the_rest(contact_pk: int, phone_pks: list[int], numbers: list[str], scrub: Scrubber) -> int:
    """Job errors that quote it, the numbers' dial locks, and Django admin's log of changes to it."""
    changed = 0
    errors = list(JobError.objects.filter(pk__in=_ids_where_text_has(JobError, "error", scrub.secrets)))
    for error in errors:
        error.error = scrub.text(error.error)
    JobError.objects.bulk_update(errors, ["error"], batch_size=BATCH)
    changed += len(errors)
    changed += DialLock.objects.filter(number__in=numbers).delete()[0]
    contact_type = ContentType.objects.get_for_model(Contact)
    phone_type = ContentType.objects.get_for_model(ContactPhone)
    entries = LogEntry.objects.filter(
        Q(content_type=contact_type, object_id=str(contact_pk))
        | Q(content_type=phone_type, object_id__in=[str(pk) for pk in phone_pks])
    )
    changed += entries.update(object_repr=ERASED_CONTACT, change_message="[]")
    return changed
