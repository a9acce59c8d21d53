"""What the callbacks pages accept: the list's filters and page cursor, and a Done or Cancel click."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import User

from calls.forms.calllog import _cursor
from calls.models import AgentGroup

# "All open" first: what the list shows when nothing is chosen, and what its select then shows (its first option).
SHOWS = [("open", "All open"), ("overdue", "Overdue"), ("today", "Due today")]


class CallbackListForm(forms.Form):
    """/callbacks/: which callbacks (overdue, due today, every open one), whose (a person, a group), which page."""

    show = forms.ChoiceField(choices=SHOWS, required=False)
    person = forms.ModelChoiceField(
        User.objects.filter(is_active=True).order_by("first_name", "last_name", "username"),
        required=False,
        empty_label="Anyone",
    )
    group = forms.ModelChoiceField(AgentGroup.objects.all(), required=False, empty_label="Any group")
    after = forms.CharField(max_length=50, required=False)

    def __init__(self, *args: Any, show_people: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not show_people:  # agents see their own and their groups' only: no one else to pick
            del self.fields["person"]

    def clean_after(self) -> tuple[int, int] | None:
        return _cursor(self.cleaned_data["after"])

    def link(self, **extra: str) -> str:
        """The query string of the filters that are set, with extra (a page cursor)."""
        from django.utils.http import urlencode

        data = self.cleaned_data
        pairs = {
            "show": data.get("show") or "",
            "person": data["person"].pk if data.get("person") else "",
            "group": data["group"].pk if data.get("group") else "",
            **extra,
        }
        kept = {k: v for k, v in pairs.items() if v}
        return f"?{urlencode(kept)}" if kept else ""
