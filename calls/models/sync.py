"""The sync from VCC's User Admin API: one row per run, previewed or applied."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

# A run not ended this long after it started was stopped with its worker: it applies all or nothing (calls/sync.py).
RUN_AT_MOST = timedelta(hours=1)


class SyncRun(models.Model):
    """One run of the sync from VCC's User Admin API, a dry run (a preview) or applied, and what it changed."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    dry_run = models.BooleanField("dry run", default=False, help_text="A preview: nothing was saved.")
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty: run by the sync_vcc command.",
    )
    lines = models.JSONField(default=list, blank=True, help_text="What changed (or would change), one line each.")
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    deactivated = models.PositiveIntegerField(default=0)
    problems = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, help_text="Why the run failed; nothing was changed then.")

    class Meta:
        ordering = ["-started_at", "-pk"]
        verbose_name = "sync from VCC"
        verbose_name_plural = "syncs from VCC"
        permissions = [("view_integration_health", "Can see the integration health page")]
        indexes = [models.Index(fields=["-started_at"], name="syncrun_started_idx")]

    # Not stored: the run failed because VCC could not answer now (busy, failing, unreachable), so trying again
    # later may succeed (calls/tasks.py's sync_vcc job does).
    retryable = False

    def __str__(self) -> str:
        kind = "Dry run" if self.dry_run else "Sync"
        return f"{kind} {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def ok(self) -> bool:
        return not self.error and self.finished_at is not None

    @property
    def summary(self) -> str:
        if self.error:
            return f"failed: {self.error}"
        if self.finished_at is None:
            if timezone.now() - self.started_at < RUN_AT_MOST:
                return "running"
            return "stopped before it ended (its worker was stopped): nothing was changed, the next run syncs"
        return (
            f"{self.created} created, {self.updated} updated, {self.deactivated} deactivated, {self.problems} problems"
        )
