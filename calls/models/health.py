"""Worker heartbeats: each background worker notes here that it ran, where every process sees it (the database),
whatever the cache is (each process's own memory, or a Redis that may be down)."""

from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    """The last time the worker `name` finished a round (one row per worker, updated in place)."""

    name = models.CharField(max_length=64, primary_key=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.seen_at:%Y-%m-%d %H:%M:%S}"


class JobError(models.Model):
    """Why a background job failed (one row per failed attempt): Procrastinate records that a job failed, not why,
    and the health page shows the reason beside each failed job. Written by the worker (calls/worker.py)."""

    job_id = models.BigIntegerField(db_index=True)
    task_name = models.CharField(max_length=255)
    attempt = models.PositiveIntegerField(default=1)
    error = models.TextField()
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-at", "-pk"]
        # Admins queue a failed job again from the health page (calls/views/health.py).
        permissions = [("retry_job", "Can queue a failed background job again")]

    def __str__(self) -> str:
        return f"job {self.job_id} ({self.task_name}) at {self.at:%Y-%m-%d %H:%M:%S}: {self.error[:80]}"
