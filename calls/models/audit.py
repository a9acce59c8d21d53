"""AuditEntry: who changed, exported or erased what, when, and from which request.

Row changes are written by PostgreSQL's triggers (calls/audit/triggers.py), so no path of code skips them, raw SQL
included; exports, imports, logins and lock-outs by calls/audit (`record`). One table, so that one index serves a
page of /audit/ whatever it shows."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

# Do-not-call taken off a contact or a number: cleared, or (with the reason asked) a do-not-call number deleted or
# renumbered.
DNC_CLEARED = Q(kind__endswith=".dnc_cleared") | (Q(object_type="number") & ~Q(reason=""))


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    def about_contact(self, contact_id: int) -> AuditEntryQuerySet:
        """Entries about a contact and its numbers (and its calls' wrap-ups)."""
        return self.filter(contact_id=contact_id)

    def dnc_clearings(self) -> AuditEntryQuerySet:
        """Do-not-call taken off a contact or a number: cleared, or a do-not-call number deleted or renumbered."""
        return self.filter(DNC_CLEARED)


class AuditEntry(models.Model):
    """One change, export, import, login or lock-out. Never changed or deleted by the app (retention aside)."""

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(default=timezone.now)
    # Not a foreign key: an entry outlives the person, and keeps the username they had then.
    actor_id = models.IntegerField(null=True, blank=True)
    actor_name = models.CharField(max_length=150, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    # "<object_type>.<create|update|delete|dnc_cleared>" for row changes; "export.contacts", "login", ... otherwise.
    kind = models.CharField(max_length=40)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    # The contact a contact's, a number's or a call's entry is about, so that a contact's history is one index range.
    contact_id = models.BigIntegerField(null=True, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    # Why do-not-call was cleared; for an export or an import, what it was (filters, row counts) is in `after`.
    reason = models.TextField(blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        default_permissions = ("view",)
        indexes = [
            models.Index(fields=["at", "id"], name="audit_at_idx"),
            models.Index(fields=["actor_id", "at", "id"], name="audit_actor_idx"),
            models.Index(fields=["object_type", "object_id", "at", "id"], name="audit_object_idx"),
            models.Index(
                fields=["contact_id", "at", "id"], name="audit_contact_idx", condition=Q(contact_id__isnull=False)
            ),
            models.Index(fields=["kind", "at", "id"], name="audit_kind_idx"),
            # The contact's timeline: its do-not-call clearings, however many other changes it has had.
            models.Index(fields=["contact_id", "at", "id"], name="audit_dnc_cleared_idx", condition=DNC_CLEARED),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_type} {self.object_id} by {self.actor_name or '—'}"

    @property
    def changes(self) -> list[tuple[str, object, object]]:
        """(field, before, after) for each field the entry shows, in the row's order."""
        before, after = self.before or {}, self.after or {}
        keys = list(dict.fromkeys([*before, *after]))
        return [(k, before.get(k, ""), after.get(k, "")) for k in keys]
