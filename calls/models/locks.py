"""A number being dialled: one row per number (calls/locks.py takes and frees them)."""

from __future__ import annotations

from django.db import models


class DialLock(models.Model):
    """A number being dialled by one click (calls/locks.py): one row per number, free again once expired."""

    number = models.CharField(max_length=32, primary_key=True)
    owner = models.CharField(max_length=64)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.number} held by {self.owner} until {self.expires_at:%H:%M:%S}"
