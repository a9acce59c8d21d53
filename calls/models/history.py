"""A call's history beyond the milestones its row keeps (CallEvent): errors asking VCC, recording changes,
wrap-ups, what VCC's events and polls said, a call closed by hand."""

from __future__ import annotations

from django.db import models


class CallEvent(models.Model):
    """One entry of a call's history beyond the milestones its row keeps (asked, answered, connected, ended):
    errors asking VCC, recording changes, wrap-ups and their edits, a call closed without a result."""

    class Kind(models.TextChoices):
        PROGRESS = "progress", "Progress"
        ERROR = "error", "Error asking VCC"
        RECORDING = "recording", "Recording"
        WRAP_UP = "wrap_up", "Wrap-up"
        CLOSED = "closed", "Closed by hand"

    call = models.ForeignKey("calls.Call", on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    kind = models.CharField(max_length=12, choices=Kind.choices)
    detail = models.CharField(max_length=2000, blank=True)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["call", "at"], name="callevent_call_idx")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.get_kind_display()}: {self.detail}"
