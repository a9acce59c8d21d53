"""What privacy needs from the audit trail (issue 22, item 1, built in calls/audit/ on its own branch). Each function
is one need, named for it; they do nothing until the audit trail is merged.

The audit trail keeps that an erasure happened and by whom, never the erased data; retention deletes its entries
older than the days admins set; a subject's data lists the entries about them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def audit_erasure(*, by: User, contact_pk: int, counts: dict[str, int], at: datetime) -> None:
    """Record that `by` erased contact `contact_pk` at `at`, with what was removed and masked (counts only: no name,
    number, e-mail or note)."""
    # AUDIT: write the erasure entry (who, when, request id, contact id, counts) once calls/audit/ exists.


def scrub_audit_entries_of_contact(
    *, contact_pk: int, phone_pks: list[int], call_pks: list[int], secrets: list[str]
) -> int:
    """Remove the erased contact's data from the audit entries about the contact, its numbers and its calls (their
    values before and after), those the erasure's own statements just made included, keeping that each change
    happened and by whom; returns the entries changed. Runs in the erasure's transaction, after its deletes."""
    # AUDIT: blank the before/after values of pghistory's events of calls_contact / calls_contactphone / calls_call
    # rows contact_pk / phone_pks / call_pks, and of any entry whose values hold one of `secrets` (the name, the
    # e-mail, each number in its written forms).
    return 0


def delete_audit_entries_before(cutoff: datetime) -> int:
    """Delete audit entries older than cutoff (retention (c)), in batches; returns how many."""
    # AUDIT: delete pghistory events and the audit context rows older than cutoff, ≤ 5,000 a transaction.
    return 0


def audit_entries_about(*, contact_pk: int, phone_pks: list[int], call_pks: list[int]) -> list[dict[str, Any]]:
    """The audit entries about a contact, its numbers and its calls, for a subject's data (oldest first)."""
    # AUDIT: read them from calls/audit/ (who, when, kind, before → after).
    return []
