"""A CSV import of contacts, stored between its steps (the work is in calls/imports.py)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction

PREVIEW_LIFETIME = timedelta(hours=24)  # a preview not confirmed within this is expired and its rows deleted


class ContactImportQuerySet(models.QuerySet["ContactImport"]):
    def expire_previews(self, *, now: datetime) -> int:
        """Expire the imports nobody confirmed: those not done whose last change is older than PREVIEW_LIFETIME
        (previews, failed ones, and jobs that died with their process). Their rows are deleted; the import stays,
        expired, so its page can say what happened. Returns how many expired."""
        old = self.filter(updated_at__lt=now - PREVIEW_LIFETIME).exclude(
            status__in=[ContactImport.Status.DONE, ContactImport.Status.EXPIRED]
        )
        pks = list(old.values_list("pk", flat=True)[:1000])
        expired = 0
        while pks:
            with transaction.atomic():
                ContactImportKey.objects.filter(contact_import_id__in=pks).delete()
                ContactImportRow.objects.filter(contact_import_id__in=pks).delete()
                expired += ContactImport.objects.filter(pk__in=pks).update(
                    status=ContactImport.Status.EXPIRED, report={}, decisions={}, updated_at=now
                )
            pks = list(old.values_list("pk", flat=True)[:1000])
        return expired


class ContactImport(models.Model):
    """A CSV file being imported: stored when uploaded, checked in the background, written only when confirmed.

    Its cells are ContactImportRow rows, one per row of the file (header excluded), corrected in place when a
    person fixes one in the preview; `mapping` says which column feeds which field; `decisions` what to do with each
    duplicate ("skip" or "update"). The work itself is in calls/imports.py.
    """

    class Status(models.TextChoices):
        CHECKING = "checking", "Checking"
        PREVIEW = "preview", "Ready to confirm"
        IMPORTING = "importing", "Importing"
        DONE = "done", "Imported"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    filename = models.CharField(max_length=255, blank=True)
    header = models.JSONField(default=list)
    row_count = models.PositiveIntegerField(default=0)
    mapping = models.JSONField(default=dict)
    decisions = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CHECKING)
    progress = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict)
    result = models.JSONField(default=dict)
    error = models.TextField(blank=True)

    objects = ContactImportQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["created_by", "status"], name="contactimport_owner_status")]

    def __str__(self) -> str:
        return f"Import of {self.filename or 'pasted text'} ({self.get_status_display()})"

    @property
    def total(self) -> int:
        return self.row_count

    @property
    def working(self) -> bool:
        return self.status in (self.Status.CHECKING, self.Status.IMPORTING)


class ContactImportRow(models.Model):
    """One row of an import's file: its cells as read (or as corrected in the preview), and what the last check
    made of it when it had no problem (`parsed`, kept so the confirmation does not parse the numbers again)."""

    contact_import = models.ForeignKey(ContactImport, on_delete=models.CASCADE, related_name="lines")
    number = models.PositiveIntegerField(help_text="As a spreadsheet numbers it: the header is row 1.")
    cells = models.JSONField(default=list)
    parsed = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contact_import", "number"], name="contactimportrow_number")]

    def __str__(self) -> str:
        return f"Row {self.number}"


class ContactImportKey(models.Model):
    """A number or (lower-cased) email of a row ready to import: what the check and the confirmation compare, in
    the database, to find rows that repeat an earlier row, whatever the size of the file."""

    contact_import = models.ForeignKey(ContactImport, on_delete=models.CASCADE, related_name="+")
    number = models.PositiveIntegerField()
    position = models.PositiveSmallIntegerField()
    key = models.TextField()

    class Meta:
        indexes = [models.Index(fields=["contact_import", "key", "number"], name="contactimportkey_key")]

    def __str__(self) -> str:
        return f"{self.key} on row {self.number}"


class ImportedContact(models.Model):
    """A contact an import added or updated: what a call queue made from that import holds."""

    contact_import = models.ForeignKey(ContactImport, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey("calls.Contact", on_delete=models.CASCADE, related_name="+")
    row = models.PositiveIntegerField(help_text="Its row in the file (the header is row 1).")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contact_import", "contact"], name="importedcontact_once"),
        ]

    def __str__(self) -> str:
        return f"Contact {self.contact_id} from row {self.row}"
