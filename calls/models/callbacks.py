"""Callbacks (issue 23): a promise made at a wrap-up to call a contact again at a time, to one person or a group.

The agent's home lists their due and overdue ones, the contact's page shows the promise, a supervisor sees every
overdue one, and a due callback comes first when its agent works a queue (calls/queues/)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Callback(models.Model):
    class State(models.TextChoices):
        OPEN = "open", "Promised"
        DONE = "done", "Called back"
        CANCELLED = "cancelled", "Cancelled"

    contact = models.ForeignKey("calls.Contact", on_delete=models.CASCADE, related_name="callbacks")
    phone = models.ForeignKey(
        "calls.ContactPhone", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    due_at = models.DateTimeField("call back at")
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="callbacks"
    )
    group = models.ForeignKey(
        "calls.AgentGroup", null=True, blank=True, on_delete=models.SET_NULL, related_name="callbacks"
    )
    note = models.CharField(max_length=200, blank=True)
    promised_on = models.ForeignKey(
        "calls.Call", null=True, blank=True, on_delete=models.SET_NULL, related_name="callbacks_promised"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    done_at = models.DateTimeField(null=True, blank=True)
    # Held by the agent working it from a queue (calls/queues/working.py), like a queue entry.
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    done_by_call = models.ForeignKey(
        "calls.Call", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )

    class Meta:
        ordering = ["due_at", "pk"]
        indexes = [
            models.Index(fields=["due_at"], condition=Q(state="open"), name="callback_open_due_idx"),
            models.Index(fields=["contact", "due_at"], condition=Q(state="open"), name="callback_contact_idx"),
            models.Index(fields=["claimed_by"], condition=Q(claimed_by__isnull=False), name="callback_claimed_idx"),
        ]

    def __str__(self) -> str:
        return f"Callback to contact {self.contact_id} at {self.due_at:%Y-%m-%d %H:%M}"
