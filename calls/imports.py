"""Contacts from and to CSV: read an upload, check every row, find duplicates, write on confirmation; export.

An import is a `ContactImport` with a `ContactImportRow` per row of its file. `store_upload` reads the file a chunk
at a time (calls/import_files.py) into those rows, or refuses it with a message that says what to do; `check`
validates every row and finds duplicates within the file (in the database) and against saved contacts, writing a
report and nothing else; `apply` writes the contacts in one transaction. Each step holds BATCH rows at a time, never
the file. `check` and `apply` run in the background (`start`); the preview polls their progress.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, connection, models, transaction
from django.db.models import F, Max, Min, Window
from django.utils import timezone

from calls import audit, import_rows
from calls.import_files import FileFacts, ImportFileError, read_upload
from calls.import_rows import Row, check_header, dump_row, guess_mapping, load_row, mapping_problems, parse_row
from calls.models import Contact, ContactImport, ContactImportKey, ContactImportRow, ContactPhone, ImportedContact
from calls.privacy import hashing as privacy
from calls.webhooks import changes

log = logging.getLogger(__name__)
ImportId = uuid.UUID

SHOWN = 200  # problems and duplicates listed one by one in the preview; the rest are counted
STALE = timedelta(minutes=10)  # an upload counted as being checked (AT_ONCE) for this long at most
BATCH = 2_000  # rows read, checked and written at a time
AT_ONCE = 2  # a person's imports checked at the same time
TWO_AT_ONCE = "You have two imports being checked: wait for one to finish, then upload again."

# --- Reading the file ------------------------------------------------------------------------------------------


def store_upload(*, user: User, filename: str, chunks: Iterable[bytes]) -> ContactImport:
    """Read a file (or pasted rows) into a new import, BATCH rows at a time, and start checking it; or refuse it
    with ImportFileError, storing nothing. A person has at most AT_ONCE imports being checked at once."""
    with transaction.atomic():
        # One upload of a person's at a time passes this point: two at once could not both see one being checked.
        get_user_model().objects.select_for_update().filter(pk=user.pk).exists()
        checking = ContactImport.objects.filter(
            created_by=user, status=ContactImport.Status.CHECKING, updated_at__gte=timezone.now() - STALE
        )
        if checking.count() >= AT_ONCE:
            raise ImportFileError(TWO_AT_ONCE)
        imp = ContactImport.objects.create(created_by=user, filename=filename[:255])
    try:
        with transaction.atomic():
            facts = FileFacts()
            rows = read_upload(chunks, facts)
            header = next(rows)
            check_header(header)
            count = 0
            for batch in itertools.batched(rows, BATCH):
                _insert(
                    ContactImportRow,
                    ["contact_import_id", "number", "cells"],
                    [(imp.pk, count + i + 2, json.dumps(cells)) for i, cells in enumerate(batch)],
                )
                count += len(batch)
            imp.header, imp.row_count, imp.mapping = header, count, guess_mapping(header)
            # Until it is confirmed, `result` holds what reading the file found (the preview names the encoding);
            # the confirmation adds its counts.
            imp.result = {"encoding": facts.encoding}
            imp.save(update_fields=["header", "row_count", "mapping", "result", "updated_at"])
    except BaseException:
        imp.delete()
        raise
    start("check", imp)
    return imp


# --- Checking the rows -----------------------------------------------------------------------------------------


def problems_of(imp: ContactImport, number: int, cells: list[str]) -> list[str]:
    """What is still wrong with one row's cells (a correction), as the check would say; none when it is ready."""
    if mapping_problems(imp.mapping) or not any(cells):
        return []
    row = parse_row(number, cells, imp.mapping, settings.DEFAULT_PHONE_REGION)
    import_rows.check_owners([row])
    import_rows.check_saved_contacts([row])
    return row.problems


def problem_cells(imp: ContactImport, numbers: list[int]) -> dict[int, list[str]]:
    """The cells of these rows as the person last saw them (corrected in the preview, or as read)."""
    return dict(imp.lines.filter(number__in=numbers).values_list("number", "cells"))


def _ready_rows(pk: ImportId, numbers: Iterable[int] | None = None) -> Iterator[list[Row]]:
    """The rows the last check found ready to write (or those of them with these numbers, in order), in file
    order, BATCH at a time."""
    parsed = ContactImportRow.objects.filter(contact_import_id=pk, parsed__isnull=False).order_by("number")
    if numbers is not None:
        for chunk in itertools.batched(numbers, BATCH):
            found = parsed.filter(number__in=chunk).values_list("parsed", flat=True)
            yield [load_row(data) for data in found if data is not None]
        return
    for batch in itertools.batched(parsed.values_list("parsed", flat=True).iterator(chunk_size=BATCH), BATCH):
        yield [load_row(data) for data in batch if data is not None]


def _earlier_rows(pk: ImportId) -> Iterator[tuple[int, int, str]]:
    """(row number, earlier row number, key) for each ready row whose number or email is on an earlier ready row:
    the first of its keys that is, with the first row that has it. Worked out by the database from the keys the
    check stored, so a file of 200,000 rows needs no dictionary of every number in memory."""
    first = Window(Min("number"), partition_by=[F("key")])
    repeats = (
        ContactImportKey.objects.filter(contact_import_id=pk)
        .annotate(first=first)
        .filter(first__lt=F("number"))
        .order_by("number", "position")
        .values_list("number", "first", "key")
    )
    last = None
    for number, earlier, key in repeats.iterator(chunk_size=BATCH):
        if number != last:
            last = number
            yield number, earlier, key


def with_duplicates(pk: ImportId, *, contacts_up_to: int | None = None) -> Iterator[tuple[Row, tuple | None]]:
    """Each ready row in file order with its duplicate, or None: ("row", earlier row number, key), or ("contact",
    contact id, key, name) when its number or email is on a saved contact (which wins: it can be updated). Only
    contacts with an id up to `contacts_up_to` count, when given: not those the import itself is writing."""
    earlier = _earlier_rows(pk)
    pending = next(earlier, None)
    for batch in _ready_rows(pk):
        saved = import_rows.saved_contacts_with({key for row in batch for key in row.keys}, contacts_up_to)
        for row in batch:
            while pending is not None and pending[0] < row.number:
                pending = next(earlier, None)
            dup: tuple | None = None
            if pending is not None and pending[0] == row.number:
                dup = ("row", pending[1], pending[2])
            if match := import_rows.saved_match(row, saved):
                dup = ("contact", match[1], match[0], match[2])
            yield row, dup


def check(pk: ImportId) -> None:
    """Build the preview's report of an import: problems by row, duplicates, how many rows are ready; keep each
    ready row parsed (and its numbers and email as keys) for the confirmation, so numbers are parsed once. Reads
    and writes BATCH rows at a time: what it holds does not grow with the file."""
    imp = ContactImport.objects.get(pk=pk)
    ContactImportKey.objects.filter(contact_import_id=pk).delete()
    problems = mapping_problems(imp.mapping)
    if problems:
        imp.report = {"mapping": problems}
        imp.status, imp.progress = ContactImport.Status.PREVIEW, imp.row_count
        imp.save(update_fields=["report", "status", "progress", "updated_at"])
        return
    region = settings.DEFAULT_PHONE_REGION
    read = ready = problem_count = done = 0
    listed: list[dict] = []
    lines = imp.lines.order_by("number").values_list("pk", "number", "cells")
    for batch in _first_small(lines.iterator(chunk_size=BATCH)):
        parsed: list[tuple[int, list | None]] = []
        keys: list[tuple[uuid.UUID, int, int, str]] = []
        rows = [(line, n, parse_row(n, cells, imp.mapping, region) if any(cells) else None) for line, n, cells in batch]
        import_rows.check_owners(row for _, _, row in rows if row is not None)  # one query a batch
        import_rows.check_saved_contacts([row for _, _, row in rows if row is not None])  # a few a batch
        for line_pk, number, row in rows:
            read += row is not None
            if row is not None and row.problems:
                problem_count += 1
                if len(listed) < SHOWN:
                    listed.append({"row": row.number, "messages": row.problems})
            elif row is not None:
                ready += 1
                keys += [(pk, number, i, key) for i, key in enumerate(row.keys)]
            parsed.append((line_pk, dump_row(row) if row is not None and not row.problems else None))
        _store_parsed(parsed)
        _insert(ContactImportKey, ["contact_import_id", "number", "position", "key"], keys)
        done += len(batch)
        ContactImport.objects.filter(pk=pk).update(progress=done, updated_at=timezone.now())
    duplicate_count, duplicates = 0, list[dict]()
    for row, dup in with_duplicates(pk):
        if dup is not None:
            duplicate_count += 1
            if len(duplicates) < SHOWN:
                duplicates.append(_duplicate_entry(row.number, dup))
    imp.report = {
        "rows": read,
        "ready": ready - duplicate_count,
        "problem_count": problem_count,
        "problems": listed,
        "duplicate_count": duplicate_count,
        "duplicates": duplicates,
    }
    imp.status, imp.progress = ContactImport.Status.PREVIEW, imp.row_count
    with transaction.atomic():
        # Its row locked, as an erasure locks it before it deletes rows of the import (calls/privacy/erasure.py):
        # rows that went while they were read (an erasure committed meanwhile) must not be named or counted, so the
        # check starts again. An erasure that comes after this sees the preview, and has it checked again itself.
        ContactImport.objects.select_for_update().filter(pk=pk).exists()
        if imp.lines.count() != done:
            log.info("contact import %s: rows went while it was checked; checking it again", pk)
            gone = True
        else:
            gone = False
            imp.save(update_fields=["report", "status", "progress", "updated_at"])
    if gone:
        check(pk)


FIRST_BATCH = 200  # the preview's progress moves within a fraction of a second of the upload, however busy


def _first_small[T](items: Iterator[T]) -> Iterator[tuple[T, ...]]:
    """FIRST_BATCH items, then BATCH at a time."""
    yield from itertools.batched(itertools.islice(items, FIRST_BATCH), FIRST_BATCH)
    yield from itertools.batched(items, BATCH)


def _insert(model: type[models.Model], columns: list[str], rows: list[tuple]) -> None:
    """Insert rows as they are (JSON already dumped): PostgreSQL's COPY, a tenth of bulk_create's time; elsewhere
    one INSERT of many rows."""
    if not rows:
        return
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(map(connection.ops.quote_name, columns))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        for chunk in itertools.batched(rows, 500):  # SQLite's limit on parameters a statement
            values = ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * len(chunk))
            params = [v.hex if isinstance(v, uuid.UUID) else v for row in chunk for v in row]  # as Django keeps it
            cursor.execute(f"INSERT INTO {table} ({names}) VALUES {values}", params)


def _store_parsed(parsed: list[tuple[int, list | None]]) -> None:
    """Each row's parsed form (or NULL), in one statement: bulk_update's CASE of one branch a row costs seconds."""
    table = connection.ops.quote_name(ContactImportRow._meta.db_table)
    cast = "::jsonb" if connection.vendor == "postgresql" else ""
    values = ", ".join(["(%s, %s)"] * len(parsed))
    params = [value for pk, dump in parsed for value in (pk, None if dump is None else json.dumps(dump))]
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH v(id, parsed) AS (VALUES {values}) "
            f"UPDATE {table} SET parsed = v.parsed{cast} FROM v WHERE {table}.id = v.id",
            params,
        )


def _duplicate_entry(number: int, dup: tuple) -> dict:
    if dup[0] == "row":
        return {"row": number, "of_row": dup[1], "match": import_rows.describe(dup[2])}
    return {"row": number, "contact_id": dup[1], "contact_name": dup[3], "match": import_rows.describe(dup[2])}


# --- Writing ---------------------------------------------------------------------------------------------------


def progress_key(pk: ImportId) -> str:
    return f"contact-import:{pk}:progress"


class _Progress:
    """Writes how many rows the apply has written where the preview's poll sees it while the apply's transaction is
    still open: the import's `progress` column through a connection of its own that commits each write (PostgreSQL;
    the worker and the web server are different processes), and the cache (SQLite, or a shared Redis)."""

    def __init__(self, pk: ImportId) -> None:
        self.pk, self.conn = pk, None
        if connection.vendor == "postgresql":
            import psycopg

            params = {
                k: v for k, v in connection.get_connection_params().items() if k not in ("cursor_factory", "context")
            }
            self.conn = psycopg.connect(**params, autocommit=True)

    def __call__(self, done: int) -> None:
        cache.set(progress_key(self.pk), done, 3600)
        if self.conn is not None:
            table = connection.ops.quote_name(ContactImport._meta.db_table)
            self.conn.execute(f"UPDATE {table} SET progress = %s, updated_at = now() WHERE id = %s", (done, self.pk))

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


class _RowsWent(Exception):
    """Rows of the import went while it was written: an erasure deleted them (calls/privacy/erasure.py)."""

    def __init__(self, count: int) -> None:
        super().__init__(count)
        self.count = count


def apply(pk: ImportId) -> None:
    """Write the import: new contacts for ready rows, updates where the person chose so; all or nothing. Reads the
    parsed rows BATCH at a time, twice (new contacts, then the duplicates), and keeps only row number -> id. An
    erasure that deletes rows of the import while it is written wins: what was written is rolled back, and the
    import written again without them (its result counts them as erased)."""
    erased = 0
    while True:
        try:
            _apply(pk, erased=erased)
            return
        except _RowsWent as went:
            log.info("contact import %s: %s rows erased while it was written; writing it again", pk, went.count)
            erased += went.count


def _apply(pk: ImportId, *, erased: int) -> None:
    imp = ContactImport.objects.select_related("created_by").get(pk=pk)
    decisions = imp.decisions
    default = decisions.get("rest", "skip")
    created = updated = skipped = numbers_left_out = 0
    emails_left_out: list[int] = []  # rows whose email was already another contact's when written
    contact_of_row: dict[int, int] = {}  # row number -> the contact it made or updated
    duplicates: dict[int, int] = {}  # row number -> a saved contact's id, or minus the earlier row's number
    progress = _Progress(pk)
    # The audit trail records the contacts it writes as the person who confirmed, under the import's id.
    acting = audit.acting(user_id=imp.created_by_id, request_id=f"import:{pk}")
    with contextlib.closing(progress), acting, transaction.atomic():
        if not _still_to_apply(pk):  # another run of this job (a worker taken for dead) wrote it meanwhile
            log.warning("contact import %s: already applied by another run; nothing written", pk)
            return
        ready = imp.lines.filter(parsed__isnull=False)  # the rows it writes from
        lines = ready.count()
        # Duplicates are found again (the database may have changed since the preview), among the contacts saved
        # before this import wrote any.
        known = Contact.objects.aggregate(last=Max("pk"))["last"] or 0
        new: list[Row] = []
        for row, dup in itertools.chain(with_duplicates(pk, contacts_up_to=known), [(None, None)]):
            if row is not None and dup is not None:
                duplicates[row.number] = dup[1] if dup[0] == "contact" else -dup[1]
            elif row is not None:
                new.append(row)
            if len(new) >= BATCH or (row is None and new):
                for r, contact_pk in zip(new, _create(new, imp), strict=True):
                    contact_of_row[r.number] = contact_pk
                created += len(new)
                new = []
                progress(created)
        for batch in _ready_rows(pk, duplicates):
            updates = _updates_of(batch, duplicates, contact_of_row, lambda r: decisions.get(str(r.number), default))
            skipped += sum(1 for r in batch if r.number in duplicates) - len(updates)
            # The batch's contacts' events in one go: their do-not-call read once before, their events written
            # once after (a contact two rows update gets one contact.updated, as it is after both). The contacts
            # are read locked (in one order, as contact_change locks them with webhooks), so a change committed
            # meanwhile is not overwritten, and one deleted meanwhile is skipped: saving a contact read unlocked
            # and deleted since would insert it again under its old id.
            with changes.contact_change(*{target_pk for _, target_pk in updates}):
                targeted = Contact.objects.filter(pk__in={target_pk for _, target_pk in updates}).order_by("pk")
                targets = {c.pk: c for c in targeted.select_for_update(of=("self",))}
                owners = import_rows.owners_of(r.owner for r, _ in updates)
                emails = import_rows.saved_contacts_with({r.email.lower() for r, _ in updates if r.email})
                for r, target_pk in updates:
                    if (target := targets.get(target_pk)) is None:  # deleted since the check: skipped
                        skipped += 1
                        continue
                    if not import_rows.may_take_email(r, target, emails):  # another contact's: the rest is written
                        emails_left_out.append(r.number)
                        r.email = ""
                    numbers_left_out += _update(target, r, owners)
                    updated += 1
        # Its row locked, as an erasure locks it before it deletes rows of the import (calls/privacy/erasure.py), and
        # only now: `_Progress` updates it until the last contact is made. Ready rows that went since they were read
        # were a person's an erasure removed; nothing read from them may stay, so all of it is rolled back and
        # written again. An erasure that comes after this waits for the commit, and finds the rows gone.
        ContactImport.objects.select_for_update().filter(pk=pk).exists()
        if (went := lines - ready.count()) > 0:  # rows are never added to an import being written
            raise _RowsWent(went)
        _remember_contacts(pk, contact_of_row)
        problem_rows = imp.report.get("problem_count", 0)
        imp.result = {
            **imp.result,
            "created": created,
            "updated": updated,
            "skipped": skipped,
            "problem_rows": problem_rows,
            "erased": erased,
            "numbers_left_out": numbers_left_out,
            "emails_left_out": len(emails_left_out),
            "email_rows_left_out": emails_left_out[:SHOWN],
        }
        imp.status, imp.progress = ContactImport.Status.DONE, imp.row_count
        imp.save(update_fields=["result", "status", "progress", "updated_at"])
        audit.record("import", object_type="import", object_id=pk, after={"filename": imp.filename, **imp.result})
        # The contacts are saved; the file need not be kept.
        ContactImportKey.objects.filter(contact_import_id=pk).delete()
        ContactImportRow.objects.filter(contact_import_id=pk).delete()


def _remember_contacts(pk: ImportId, contact_of_row: dict[int, int]) -> None:
    """Keep which contacts the import added or updated (ImportedContact), each with its first row: a call queue can
    be made of them later. A contact deleted while the import ran is left out."""
    first_row: dict[int, int] = {}
    for number, contact_pk in sorted(contact_of_row.items()):
        first_row.setdefault(contact_pk, number)
    if not first_row:
        return
    for chunk in itertools.batched(first_row.items(), BATCH):
        alive = set(Contact.objects.filter(pk__in=[c for c, _ in chunk]).values_list("pk", flat=True))
        ImportedContact.objects.bulk_create(
            [ImportedContact(contact_import_id=pk, contact_id=c, row=row) for c, row in chunk if c in alive],
            ignore_conflicts=True,
        )


def _updates_of(
    batch: list[Row], duplicates: dict[int, int], contact_of_row: dict[int, int], decision: Callable[[Row], str]
) -> list[tuple[Row, int]]:
    """(row, the contact it updates) for the batch's duplicate rows to write as updates, in file order; records
    each in contact_of_row (a later row that repeats it updates the same contact). A row that repeats a saved
    contact or an earlier row is skipped unless its decision is "update" (and so is a row repeating a skipped one)."""
    updates = []
    for r in batch:
        found = duplicates.get(r.number)
        if found is None:
            continue
        target_pk = found if found > 0 else contact_of_row.get(-found)
        if decision(r) == "update" and target_pk is not None:
            contact_of_row[r.number] = target_pk
            updates.append((r, target_pk))
    return updates


def _still_to_apply(pk: ImportId) -> bool:
    """Whether the import still waits to be written, asked once this transaction holds the import's own lock (on
    PostgreSQL, an advisory lock for the transaction): a second run of the apply waits here until the first
    commits or rolls back, then finds it done, or writes it. Not the row's lock: `_Progress` updates that row from
    a connection of its own and would wait for ever."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"contact-import:{pk}"])
    return ContactImport.objects.filter(pk=pk, status=ContactImport.Status.IMPORTING).exists()


def _create(rows: list[Row], imp: ContactImport) -> list[int]:
    """New contacts for these rows, with their numbers (the first one primary): their ids."""
    # Whoever imports owns the contacts of a file without an Owner column; with one, an empty cell is no owner (as
    # the export writes it), and an owner deleted since the check is whoever imports.
    owners = import_rows.owners_of(r.owner for r in rows)
    unowned = imp.created_by_id if imp.mapping.get("owner") is None else None
    contacts = Contact.objects.bulk_create(
        [
            Contact(
                name=r.name,
                company=r.company,
                email=r.email,
                notes=r.notes,
                do_not_call=r.do_not_call,
                owner_id=owners.get(r.owner, imp.created_by_id) if r.owner else unowned,
                time_zone=r.time_zone,
                consent_override=r.consent,
                priority=r.priority or 0,
            )
            for r in rows
        ]
    )
    phones = [
        ContactPhone(contact=contact, label=label, number=n, is_primary=i == 0, do_not_call=dnc)
        for r, contact in zip(rows, contacts, strict=True)
        for i, (label, n, dnc) in enumerate(r.phones)
    ]
    privacy.mark_erased_opt_outs(phones)  # an erased contact's opt-out holds for the number added again
    ContactPhone.objects.bulk_create(phones)
    changes.contacts_created(contact.pk for contact in contacts)  # their events, in one INSERT
    return [contact.pk for contact in contacts]


def _update(contact: Contact, row: Row, owners: dict[str, int]) -> int:
    """Fill the contact from the row: non-empty fields replace, new numbers are added, do-not-call is only set.
    Returns how many new numbers were left out: a contact has at most MAX_NUMBERS, as its form takes (the check
    refused a row that would pass it; two rows updating one contact, or one merged into a new contact, can)."""
    given: dict[str, object] = {"name": row.name, "company": row.company, "email": row.email, "notes": row.notes}
    given |= {"time_zone": row.time_zone, "consent_override": row.consent, "owner_id": owners.get(row.owner)}
    for name, value in given.items():
        if value:
            setattr(contact, name, value)
    contact.priority = contact.priority if row.priority is None else row.priority
    contact.do_not_call = contact.do_not_call or row.do_not_call
    contact.save()
    have = {p.number: p for p in contact.phones.all()}
    has_primary = any(p.is_primary for p in have.values())
    left_out = 0
    for label, number, dnc in row.phones:
        if number in have:
            if dnc and not have[number].do_not_call:
                have[number].do_not_call = True
                have[number].save(update_fields=["do_not_call"])
            continue
        if len(have) >= import_rows.MAX_NUMBERS:
            left_out += 1
            continue
        have[number] = ContactPhone.objects.create(
            contact=contact, label=label, number=number, do_not_call=dnc, is_primary=not has_primary
        )
        has_primary = True
    return left_out


# --- Running in the background ---------------------------------------------------------------------------------

JOBS = {"check": check, "apply": apply}
GONE = "This import's rows are gone (it expired or was deleted before the job ran): nothing was written."
FAILED = "Something went wrong while importing; nothing was written. Try again, or tell an admin."


class ImportGone(Exception):
    """The import (or its rows) no longer exists: the job cannot do anything, ever."""


def start(step: str, imp: ContactImport) -> None:
    """Have the task engine run `step` ("check" or "apply") of imp (calls/tasks.py), or run it here when
    `CONTACT_IMPORT_BACKGROUND` is off (tests that look at the result in the same request)."""
    if getattr(settings, "CONTACT_IMPORT_BACKGROUND", True):
        from calls import tasks

        tasks.enqueue_import(step, imp.pk)
    else:
        with contextlib.suppress(Exception):  # logged, and the import marked failed: the page says why
            run(step, imp.pk)


def run(step: str, pk: ImportId, *, last_try: bool = True) -> None:
    """Run one step of an import, as the task engine's job does. A job that fails for good marks the import failed
    with the reason the person sees; one the engine will try again (a lost database connection before its
    `last_try`) leaves it working."""
    imp = ContactImport.objects.filter(pk=pk).first()
    if imp is None:
        raise ImportGone(GONE)
    wanted = ContactImport.Status.CHECKING if step == "check" else ContactImport.Status.IMPORTING
    if imp.status != wanted:  # done already (a retried job whose first try finished), expired, or re-checked
        log.info("contact import %s: %s skipped, the import is %s", pk, step, imp.status)
        return
    if imp.row_count and not imp.lines.exists():  # the stored file is gone: no try can ever succeed
        exc = ImportGone(GONE)
        _fail(pk, str(exc))
        raise exc
    try:
        JOBS[step](pk)
    except (OperationalError, InterfaceError):
        log.exception("contact import %s: %s lost the database%s", pk, step, "" if last_try else "; tried again")
        if last_try:
            _fail(pk, FAILED)
        raise
    except Exception:
        log.exception("contact import %s: %s failed", pk, step)
        _fail(pk, FAILED)
        raise


def _fail(pk: ImportId, reason: str) -> None:
    ContactImport.objects.filter(pk=pk).update(status=ContactImport.Status.FAILED, error=reason)


WAITING = timedelta(minutes=2)  # a job with no progress for this long is waiting for a worker (or a slow one)


def waiting_for_worker(imp: ContactImport) -> bool:
    """The job is queued (or a worker died and another is yet to take it back): say so, and keep polling."""
    return imp.working and imp.updated_at < timezone.now() - WAITING and current_progress(imp) == 0


def current_progress(imp: ContactImport) -> int:
    if imp.status == ContactImport.Status.IMPORTING:
        return max(imp.progress, cache.get(progress_key(imp.pk), 0))
    return imp.progress
