"""A CSV import of contacts, stored between its steps (the work is in calls/imports.py)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class ContactImport(models.Model):
    """A CSV file being imported: stored when uploaded, checked in the background, written only when confirmed.

    `rows` holds the file's cells as read (a list of lists, header excluded); `mapping` says which column feeds
    which field; `fixes` holds the cells a person corrected in the preview, by row number; `decisions` what to do
    with each duplicate ("skip" or "update"). The work itself is in calls/imports.py.
    """

    class Status(models.TextChoices):
        CHECKING = "checking", "Checking"
        PREVIEW = "preview", "Ready to confirm"
        IMPORTING = "importing", "Importing"
        DONE = "done", "Imported"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    filename = models.CharField(max_length=255, blank=True)
    header = models.JSONField(default=list)
    rows = models.JSONField(default=list)
    row_count = models.PositiveIntegerField(default=0)
    checked = models.JSONField(default=list, help_text="The rows ready to write, as the last check parsed them.")
    mapping = models.JSONField(default=dict)
    fixes = models.JSONField(default=dict)
    decisions = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CHECKING)
    progress = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict)
    result = models.JSONField(default=dict)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Import of {self.filename or 'pasted text'} ({self.get_status_display()})"

    @property
    def total(self) -> int:
        return self.row_count

    @property
    def working(self) -> bool:
        return self.status in (self.Status.CHECKING, self.Status.IMPORTING)
