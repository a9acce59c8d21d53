"""Callbacks (issue 23): a promise made at a wrap-up to call a contact again at a time, to one person or a group.

The agent's home lists their due and overdue ones, the contact's page shows the promise, a supervisor sees every
overdue one, and a due callback comes first when its agent works a queue (calls/queues/)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q

from calls import permissions as perms

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class CallbackQuerySet(models.QuerySet["Callback"]):
    def open(self) -> CallbackQuerySet:
        return self.filter(state=Callback.State.OPEN)

    def due(self, now: datetime) -> CallbackQuerySet:
        """Those whose time has come (overdue included)."""
        return self.filter(due_at__lte=now)

    def for_person(self, user: User) -> CallbackQuerySet:
        """Promised to this person, or to a group their agent is in (one query: the groups are a subquery)."""
        from calls.models.directory import AgentGroup

        groups = AgentGroup.members.through.objects.filter(agent__user=user).values("agentgroup_id")
        return self.filter(Q(assigned_to=user) | Q(group_id__in=groups))

    def visible_to(self, user: User) -> CallbackQuerySet:
        """Everyone's for those who see everyone's calls (supervisors, admins); else the person's own and their
        groups'. The same rule says who may close one."""
        return self if user.has_perm(perms.VIEW_ALL_CALLS) else self.for_person(user)


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
    announced_at = models.DateTimeField(
        null=True, blank=True, help_text="When its falling due was announced (the callback.due webhook event)."
    )

    objects = CallbackQuerySet.as_manager()

    class Meta:
        ordering = ["due_at", "pk"]
        indexes = [
            models.Index(fields=["due_at"], condition=Q(state="open"), name="callback_open_due_idx"),
            models.Index(fields=["contact", "due_at"], condition=Q(state="open"), name="callback_contact_idx"),
            models.Index(fields=["claimed_by"], condition=Q(claimed_by__isnull=False), name="callback_claimed_idx"),
            models.Index(
                fields=["due_at"], condition=Q(state="open", announced_at__isnull=True), name="callback_unannounced_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"Callback to contact {self.contact_id} at {self.due_at:%Y-%m-%d %H:%M}"

    def is_overdue(self, now: datetime) -> bool:
        return self.state == self.State.OPEN and self.due_at <= now

    @property
    def to_whom(self) -> str:
        """Who is to call back, in words: a person's name, or a group's."""
        if self.group_id and self.group is not None:
            return f"{self.group.name} (group)"
        if self.assigned_to_id and self.assigned_to is not None:
            return self.assigned_to.get_full_name() or self.assigned_to.get_username()
        return "nobody (their person or group was removed)"
