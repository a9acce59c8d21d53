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
