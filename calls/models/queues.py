"""Call queues (issue 23): a list of contacts that agents work through, one contact each at a time.

CallQueue is the list and its rules; QueueEntry one contact in it (when it may be called next, who holds it, how
often it was tried); QueueAttempt one call placed or one skip from a queue, for its reports and the call log's queue
filter. The work is in calls/queues/."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class CallQueue(models.Model):
    class Order(models.TextChoices):
        OLDEST = "oldest", "Oldest contacts first"
        LAST_CALLED = "last_called", "Longest since last called first (never called first)"
        PRIORITY = "priority", "Highest priority first"

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        CLOSED = "closed", "Closed"

    name = models.CharField(max_length=100)
    description = models.CharField(max_length=300, blank=True)
    # Where its contacts came from: the contact list's filter (its query string's parameters), or an import.
    source_filter = models.JSONField(default=dict, blank=True)
    source_import = models.ForeignKey(
        "calls.ContactImport", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    live = models.BooleanField(
        default=False, help_text="New contacts matching the filter join the queue; otherwise it is a snapshot."
    )
    live_after = models.BigIntegerField(
        default=0, help_text="A live queue's contacts up to this id are settled: its looks start above it."
    )
    live_seen = models.BigIntegerField(default=0, help_text="The highest contact id a live queue's last look saw.")
    live_seen_xmax = models.BigIntegerField(
        default=0,
        help_text="One past the newest transaction writing in the database as that look ended (xid8): "
        "once every transaction begun before it has ended, "
        "every contact up to live_seen is visible, and live_after moves up to it (calls/queues/building.py).",
    )
    sort = models.CharField("order", max_length=12, choices=Order.choices, default=Order.OLDEST)
    max_attempts = models.PositiveSmallIntegerField(
        "attempts per contact", default=3, help_text="After this many calls without reaching them: unreached."
    )
    retry_minutes = models.PositiveIntegerField(
        "wait between attempts (minutes)", default=60, help_text="How long before a contact not reached comes back."
    )
    agents = models.ManyToManyField("calls.Agent", blank=True, related_name="queues")
    groups = models.ManyToManyField("calls.AgentGroup", blank=True, related_name="queues")
    state = models.CharField(max_length=8, choices=State.choices, default=State.ACTIVE)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [("work_callqueue", "Can work call queues given to them")]

    def __str__(self) -> str:
        return self.name


class QueueEntry(models.Model):
    class State(models.TextChoices):
        WAITING = "waiting", "Waiting"
        REACHED = "reached", "Reached"
        UNREACHED = "unreached", "Unreached"
        DO_NOT_CALL = "dnc", "Do not call"
        REMOVED = "removed", "Removed"

    # No index of its own: the unique (queue, contact) and the indexes below start with it.
    queue = models.ForeignKey(CallQueue, on_delete=models.CASCADE, related_name="entries", db_index=False)
    contact = models.ForeignKey("calls.Contact", on_delete=models.CASCADE, related_name="queue_entries")
    position = models.BigIntegerField(help_text="The queue's order: lower comes first.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.WAITING)
    due_at = models.DateTimeField(help_text="Not offered before this (the wait after an attempt, a callback).")
    attempts = models.PositiveSmallIntegerField(default=0)
    # Held by one agent from "next" until the outcome, a skip, a stop, or CLAIM_IDLE without a sign of them.
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="The last sign of the agent holding it.")
    claimed_since = models.DateTimeField(null=True, blank=True, help_text="When the agent holding it took it.")
    is_callback = models.BooleanField(default=False, help_text="Back at a promised time: comes first when due.")
    last_call = models.ForeignKey(
        "calls.Call", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_outcome = models.CharField(max_length=255, blank=True)
    skip_reason = models.CharField(max_length=200, blank=True)
    # The callee's time zones as calls/calling/hours.py found them, kept so a queue can skip closed hours in SQL.
    time_zone = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["queue", "position"]
        verbose_name_plural = "queue entries"
        constraints = [
            models.UniqueConstraint(fields=["queue", "contact"], name="queueentry_once_per_queue"),
            # One contact of a queue held by an agent at a time, whatever the timing of their "next"s (a double
            # press): a lapsed claim is let go before another is taken (calls/queues/claims.py). Also the index of
            # what an agent holds, looked up on every "next" and every refresh of the queue bar.
            models.UniqueConstraint(
                fields=["claimed_by", "queue"], condition=Q(claimed_by__isnull=False), name="queueentry_one_held"
            ),
        ]
        indexes = [
            # "Next": the waiting entries of a queue in its order (callbacks first).
            models.Index(
                fields=["queue", "-is_callback", "position"], condition=Q(state="waiting"), name="queueentry_next_idx"
            ),
            models.Index(fields=["queue", "state"], name="queueentry_state_idx"),
            models.Index(fields=["last_call"], condition=Q(last_call__isnull=False), name="queueentry_call_idx"),
            # The minute job's look-ups: contacts whose time zones are still to be looked up.
            models.Index(fields=["id"], condition=Q(state="waiting", time_zone=""), name="queueentry_unzoned_idx"),
        ]

    def __str__(self) -> str:
        return f"Contact {self.contact_id} in queue {self.queue_id}"


class QueueAttempt(models.Model):
    """One try at a queue's contact: a call placed from the queue, or a skip (no call)."""

    class Effect(models.TextChoices):
        PENDING = "", "Call in progress"
        REACHED = "reached", "Reached: done"
        RETRY = "retry", "Back after the wait"
        CALLBACK = "callback", "Back at the promised time"
        DO_NOT_CALL = "dnc", "Out: do not call"
        UNREACHED = "unreached", "Out: attempts used up"
        SKIPPED = "skipped", "Skipped"

    queue = models.ForeignKey(CallQueue, on_delete=models.CASCADE, related_name="attempts")
    # An erased or deleted contact's entry goes; its attempts stay (without it), so the queue's report is unchanged.
    entry = models.ForeignKey(QueueEntry, null=True, on_delete=models.SET_NULL, related_name="tries")
    call = models.OneToOneField(
        "calls.Call", null=True, blank=True, on_delete=models.SET_NULL, related_name="queue_attempt"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    at = models.DateTimeField()
    outcome = models.CharField(
        max_length=255, blank=True, help_text="The disposition, the call's outcome, or why skipped."
    )
    effect = models.CharField(max_length=10, choices=Effect.choices, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [
            models.Index(fields=["queue", "-at"], name="queueattempt_queue_idx"),
            # The minute job's look-ups: attempts whose outcome is still to be applied.
            models.Index(fields=["id"], condition=Q(effect=""), name="queueattempt_pending_idx"),
        ]

    def __str__(self) -> str:
        return f"Attempt at {self.entry_id} ({self.effect or 'pending'})"
