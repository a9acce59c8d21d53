"""The reports' period, agent and group."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms

from calls.forms.calllog import _check_years
from calls.models import Agent, AgentGroup


class ReportFilter(forms.Form):
    start = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    agent = forms.ModelChoiceField(Agent.objects.all(), required=False, empty_label="Everyone")
    group = forms.ModelChoiceField(AgentGroup.objects.all(), required=False, empty_label="Any group")

    MAX_DAYS = 366 * 3

    def __init__(self, *args: Any, today: date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.today = today

    @staticmethod
    def presets(today: date) -> list[tuple[str, date, date]]:
        """The ranges people ask for most, as (label, first day, last day)."""
        return [
            ("Today", today, today),
            ("Yesterday", today - timedelta(days=1), today - timedelta(days=1)),
            ("Last 7 days", today - timedelta(days=6), today),
            ("Last 30 days", today - timedelta(days=29), today),
            ("This month", today.replace(day=1), today),
        ]

    def show_dates_used(self) -> None:
        """After a valid clean: the date boxes show the range the report covers, also the default one."""
        used = {"start": self.cleaned_data["start"].isoformat(), "end": self.cleaned_data["end"].isoformat()}
        self.data = {**{name: self.data.get(name) for name in self.data}, **used}  # a QueryDict's last values

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if not _check_years(self, data):
            return data
        end = data.get("end") or self.today
        start = data.get("start") or end - timedelta(days=29)
        if end < start:
            self.add_error("end", "The end date is before the start date.")
        elif (end - start).days >= self.MAX_DAYS:
            self.add_error("start", "Choose at most three years.")
        if data.get("agent") and data.get("group"):
            self.add_error("group", "Choose an agent or a group, not both.")
        data["start"], data["end"] = start, end
        return data
