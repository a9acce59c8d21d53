"""What privacy needs from the audit trail (calls/audit, calls/models/audit.py), one function per need.

The audit trail keeps that an erasure happened and by whom, never the erased data; retention deletes its entries
older than the days admins set, and takes the deleted notes out of the entries of the calls it clears; a subject's
data lists the entries about them. Erasure and retention write inside `quiet()`, so the row triggers do not copy
what they remove into the trail."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.db.models import Q

from calls import audit as trail
from calls.models import AuditEntry

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from calls.models import RetentionPolicy, RetentionRun

BATCH = 5_000  # entries a transaction when retention deletes them
EXPORTS = ("export.contacts", "export.calls")
NOTES_REMOVED = "(removed by retention)"

quiet = trail.quiet


def audit_erasure(*, by: User, contact_pk: int, counts: dict[str, int], at: datetime) -> None:
    """Record that `by` erased contact `contact_pk` at `at`, with what was removed and masked (counts only: no name,
    number, e-mail or note)."""
    actor = trail.Actor(by.pk, trail.current().request_id, username=by.get_username())
    trail.record(
        "contact.erased",
        actor=actor,
        object_type="contact",
        object_id=contact_pk,
        contact_id=contact_pk,
        after={"erased_at": at.isoformat(), **counts},
    )


def audit_retention_run(run: RetentionRun, policy: RetentionPolicy) -> None:
    """Record what a run of the retention job did (counts, and the days it applied), if it did anything: its own
    writes are not row changes in the trail, and the entries it deletes would otherwise go without a trace."""
    if not (run.notes_cleared or run.numbers_masked or run.audit_deleted):
        return
    after = {
        "notes_cleared": run.notes_cleared,
        "numbers_masked": run.numbers_masked,
        "audit_deleted": run.audit_deleted,
        "notes_days": policy.notes_days,
        "mask_days": policy.mask_days,
        "audit_days": policy.audit_days,
        **({"error": run.error} if run.error else {}),
    }
    trail.record(
        "retention.run",
        actor=trail.Actor(None, f"retention:{run.pk}"),
        object_type="retention",
        object_id=run.pk,
        after=after,
    )


def _about(contact_pk: int, phone_pks: Sequence[int], call_pks: Sequence[int]) -> Q:
    return (
        Q(contact_id=contact_pk)
        | Q(object_type="contact", object_id=str(contact_pk))
        | Q(object_type="number", object_id__in=[str(pk) for pk in phone_pks])
        | Q(object_type="call", object_id__in=[str(pk) for pk in call_pks])
    )


def scrub_audit_entries_of_contact(
    *, contact_pk: int, phone_pks: list[int], call_pks: list[int], secrets: list[str]
) -> int:
    """Remove the erased contact's data from the audit entries about the contact, its numbers and its calls (their
    values before and after, and the reasons given, which may name them), keeping that each change happened, by
    whom and when; and from the filters of exports that searched for them. Returns the entries changed. Runs in
    the erasure's transaction."""
    changed = (
        AuditEntry.objects.filter(_about(contact_pk, phone_pks, call_pks))
        .filter(Q(before__isnull=False) | Q(after__isnull=False) | ~Q(reason=""))
        .update(before=None, after=None, reason="")
    )
    if secrets and connection.vendor == "postgresql":
        from calls.privacy.erasure import like_any  # erasure imports this module

        holds, params = like_any("(after -> 'filters')", secrets)
        table = AuditEntry._meta.db_table
        with connection.cursor() as cursor:
            # An export's filters may hold the name or a number searched for: the filters go, the row count stays.
            cursor.execute(
                f"UPDATE {table} SET after = jsonb_set(after, '{{filters}}', '\"(erased)\"') "
                f"WHERE kind = ANY(%s) AND {holds}",
                [list(EXPORTS), *params],
            )
            changed += cursor.rowcount
    return changed


def strip_notes_of_calls(call_pks: Sequence[int]) -> int:
    """Retention cleared these calls' notes: their audit entries keep that the notes changed, not what they said.
    In the open transaction (one retention window)."""
    if not call_pks or connection.vendor != "postgresql":
        return 0
    table = AuditEntry._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {table} SET
                  before = CASE WHEN before ? 'notes' AND before ->> 'notes' <> ''
                      THEN jsonb_set(before, '{{notes}}', to_jsonb(%s::text)) ELSE before END,
                  after = CASE WHEN after ? 'notes' AND after ->> 'notes' <> ''
                      THEN jsonb_set(after, '{{notes}}', to_jsonb(%s::text)) ELSE after END
                WHERE object_type = 'call' AND object_id = ANY(%s)
                  AND ((before ->> 'notes') NOT IN ('', %s) OR (after ->> 'notes') NOT IN ('', %s))""",
            [NOTES_REMOVED, NOTES_REMOVED, [str(pk) for pk in call_pks], NOTES_REMOVED, NOTES_REMOVED],
        )
        return cursor.rowcount


def delete_audit_entries_before(cutoff: datetime) -> int:
    """Delete audit entries older than cutoff (retention (c)), oldest first, ≤ 5,000 a transaction; returns how
    many."""
    table = AuditEntry._meta.db_table
    deleted = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE at < %s ORDER BY at, id LIMIT {BATCH})",
                [connection.ops.adapt_datetimefield_value(cutoff)],
            )
            count = cursor.rowcount
        deleted += count
        if count < BATCH:
            return deleted


def audit_entries_about(*, contact_pk: int, phone_pks: list[int], call_pks: list[int]) -> list[dict[str, Any]]:
    """The audit entries about a contact, its numbers and its calls, for a subject's data (oldest first)."""
    entries = AuditEntry.objects.filter(_about(contact_pk, phone_pks, call_pks)).order_by("at", "id")
    return [
        {
            "at": entry.at.isoformat(),
            "by": entry.actor_name,
            "request_id": entry.request_id,
            "kind": entry.kind,
            "object": f"{entry.object_type}:{entry.object_id}" if entry.object_type else "",
            "before": entry.before,
            "after": entry.after,
            "reason": entry.reason,
        }
        for entry in entries
    ]
