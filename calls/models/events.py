"""Events VCC pushed in (its Webhooks API), kept until processed: the receiver stores them, a job applies them."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class VccEvent(models.Model):
    """One CloudEvent from VCC. Its `event_id` is unique: a redelivery is acknowledged and changes nothing."""

    event_id = models.CharField("CloudEvents id", max_length=255, unique=True)
    type = models.CharField(max_length=100, help_text="As VCC sent it, version and all: channel.connected.v1")
    source = models.CharField(max_length=255)
    subject = models.CharField(max_length=255, blank=True)
    time = models.DateTimeField(null=True, blank=True, help_text="When it happened, by VCC's clock.")
    data = models.JSONField(default=dict)
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Times processing looked at it and waited.")
    not_before = models.DateTimeField(null=True, blank=True, help_text="Waiting for its call: looked at again then.")
    result = models.CharField(max_length=300, blank=True, help_text="What processing did with it, in words.")
    call = models.ForeignKey("calls.Call", null=True, blank=True, on_delete=models.SET_NULL, related_name="vcc_events")

    class Meta:
        ordering = ["-received_at", "-pk"]
        verbose_name = "event from VCC"
        verbose_name_plural = "events from VCC"
        indexes = [
            # The job's queue: what is not processed yet, oldest first.
            models.Index(
                fields=["received_at", "id"], condition=Q(processed_at__isnull=True), name="vccevent_pending_idx"
            ),
            models.Index(fields=["-received_at"], name="vccevent_received_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
