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
