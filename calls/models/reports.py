"""Reports: the call log rolled up by day, and how far the roll-up has got (calls/reports.py)."""

from __future__ import annotations

from django.db import models

from calls.models.directory import Agent, AgentGroup


class CallRollup(models.Model):
    """How many calls of one finished day had one value of one facet: everyone's, one agent's, or one group's.

    Reports read these rows instead of millions of calls. `manage.py rollup_calls`, a periodic job, builds them
    (and seed_volume fills them); calls/reports.py computes the days after the last build live from the calls.
    Each scope counts every call once: `everyone` rows have no agent or group (a year's report reads a few
    thousand), `agent` rows are per agent (no agent: calls via groups), `group` rows per group a call went via.
    """

    class Scope(models.TextChoices):
        EVERYONE = "everyone", "Everyone"
        AGENT = "agent", "One agent"
        GROUP = "group", "One group"

    class Facet(models.TextChoices):
        TOTAL = "total", "All calls"
        OUTCOME = "outcome", "Outcome"
        DISPOSITION = "disposition", "Disposition"
        CLID = "clid", "Presented CLID"
        HOUR = "hour", "Hour of the day"
        ERROR = "error", "VCC's reason for a failure"

    day = models.DateField()
    scope = models.CharField(max_length=8, choices=Scope.choices)
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    group = models.ForeignKey(AgentGroup, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    facet = models.CharField(max_length=12, choices=Facet.choices)
    key = models.CharField(max_length=300, blank=True)
    calls = models.PositiveIntegerField(default=0)
    answered = models.PositiveIntegerField(default=0)
    talk_seconds = models.BigIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["scope", "day", "facet"], name="callrollup_day_idx"),
            models.Index(fields=["agent", "day"], name="callrollup_agent_idx"),
            models.Index(fields=["group", "day"], name="callrollup_group_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.facet}={self.key}: {self.calls}"


class CallRollupState(models.Model):
    """One row: the last day the roll-up holds, and since when changed calls have been rolled up again."""

    built_through = models.DateField(null=True, blank=True)
    changes_seen_at = models.DateTimeField(null=True, blank=True)
    built_at = models.DateTimeField(null=True, blank=True)
    # The TIME_ZONE its days and hours were counted in: another one rolls every day up again (calls/reports.py).
    time_zone = models.CharField(max_length=64, blank=True, default="")

    def __str__(self) -> str:
        return f"Roll-up through {self.built_through}"
