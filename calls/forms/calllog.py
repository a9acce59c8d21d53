"""The call log's filters, sorts and page cursors (a contact's timeline pages by the same cursor)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models

from calls.forms.problems import NamedProblems
from calls.models import Agent, AgentGroup, Call, CallbackNumber, DispositionCode, QueueAttempt

NONE = "-"  # a filter value meaning "none": no disposition, no CLID (no real value is a single dash)
SORTS = [
    ("-time", "Newest first"),
    ("time", "Oldest first"),
    ("-duration", "Longest talk first"),
    ("duration", "Shortest talk first"),
]
DEFAULT_SORT = "-time"
CURSOR = re.compile(r"^(-1|[0-9]{1,17})_([0-9]{1,18})$")  # in range for datetimes and bigints


def _cursor(value: str) -> tuple[int, int] | None:
    """A page position: the sort value (microseconds since the epoch, or seconds of talk) and the call id."""
    if not value:
        return None
    match = CURSOR.match(value)
    if not match:
        raise ValidationError("This page link is damaged: start again from the first page.")
    return int(match[1]), int(match[2])


class TimelineForm(forms.Form):
    """Which page of a contact's calls: `older` is where the page before it ended (the call log's cursor)."""

    older = forms.CharField(max_length=50, required=False)

    def clean_older(self) -> tuple[int, int] | None:
        return _cursor(self.cleaned_data["older"])


def _check_years(form: forms.Form, data: dict[str, Any]) -> bool:
    """Dates far outside the call log's life are typing mistakes (and would overflow date arithmetic)."""
    ok = True
    for name in ("start", "end"):
        if data.get(name) and not 2000 <= data[name].year <= 2999:
            form.add_error(name, "Choose a date between the years 2000 and 2999.")
            ok = False
    return ok


DATE_MESSAGES = {"invalid": "Enter a valid date, as year-month-day (2026-03-02)."}
MENU_MESSAGES = {"invalid_choice": "That is not one of the menu's choices (removed, or a mistyped link): choose one."}
# Said after the error of a filter a link sets (a report's, a contact's), which a person cannot retype.
LINK_HINT = "The link that set it is damaged: open the call log from the menu, or go back and follow the link again."


class _Choosable(forms.CharField):
    """Free text shown as a menu of known values; a value not on the menu (an old code in a link) still works."""

    widget = forms.Select


class CallLogFilter(NamedProblems):
    """The call log's filters, sort and page position, all from the query string. `problems()` names the filters
    that cannot be read by their labels."""

    link_hint = LINK_HINT
    whole_errors = (
        NON_FIELD_ERRORS,
        "after",
        "before",
    )  # "This page link is damaged: start again from the first page."

    # "From date" and "Called from": the log's table has a From column (who called), so the dates say they are dates.
    start = forms.DateField(
        required=False, label="From date", widget=forms.DateInput(attrs={"type": "date"}), error_messages=DATE_MESSAGES
    )
    end = forms.DateField(
        required=False, label="To date", widget=forms.DateInput(attrs={"type": "date"}), error_messages=DATE_MESSAGES
    )
    agent = forms.ModelChoiceField(
        Agent.objects.all(), required=False, empty_label="Any agent", error_messages=MENU_MESSAGES
    )
    group = forms.ModelChoiceField(
        AgentGroup.objects.all(), required=False, empty_label="Any group", error_messages=MENU_MESSAGES
    )
    via = forms.ChoiceField(
        choices=[
            ("", "Agent or group"),
            ("agent", "From one agent"),
            ("group", "Via groups"),
            # The reports' row of group calls: those an agent answered count on the agent's row.
            ("unanswered", "Via groups, nobody answered"),
        ],
        required=False,
        label="Called from",
        error_messages=MENU_MESSAGES,
    )
    outcome = forms.ChoiceField(
        choices=[("", "Any outcome"), *Call.Outcome.choices], required=False, error_messages=MENU_MESSAGES
    )
    disposition = _Choosable(max_length=255, required=False)
    clid = _Choosable(max_length=32, required=False, label="Caller ID")
    # The form's metaclass moves declared fields into base_fields, so BaseForm.has_error() stays a method; mypy
    # does not model the metaclass and sees the field replacing it.
    has_error = forms.ChoiceField(  # type: ignore[assignment]
        choices=[("", "With or without"), ("yes", "With an error"), ("no", "Without an error")],
        required=False,
        label="Errors",
        error_messages=MENU_MESSAGES,
    )
    wrap_up = forms.BooleanField(required=False, label="Only calls to wrap up")
    # From the call bar's "and N more": only the calls the person may act on (their own), as the bar counts them,
    # even for those who see everyone's.
    mine = forms.BooleanField(required=False, label="Only your calls", widget=forms.HiddenInput)
    contact = forms.IntegerField(
        min_value=1, max_value=2**63 - 1, required=False, label="The contact", widget=forms.HiddenInput
    )
    hour = forms.IntegerField(min_value=0, max_value=23, required=False, label="The hour", widget=forms.HiddenInput)
    # From a call queue's report: the queue's calls, with an effect and outcome in the queue, by one person.
    queue = forms.IntegerField(
        min_value=1, max_value=2**63 - 1, required=False, label="The call queue", widget=forms.HiddenInput
    )
    queue_effect = forms.ChoiceField(
        choices=[("", ""), *((v, label) for v, label in QueueAttempt.Effect.choices if v)],
        required=False,
        label="The effect in the queue",
        widget=forms.HiddenInput,
    )
    # The words the queue's report shows for the attempt (a disposition, an outcome's label); NONE for none.
    queue_outcome = forms.CharField(
        max_length=255, required=False, label="The outcome in the queue", widget=forms.HiddenInput
    )
    queue_user = forms.IntegerField(
        min_value=1, max_value=2**63 - 1, required=False, label="The person in the queue", widget=forms.HiddenInput
    )
    # VCC's words as the report's link carries them, spaces and all: the log finds the calls that begin with them.
    error = forms.CharField(max_length=2000, required=False, strip=False, label="The error", widget=forms.HiddenInput)
    error_status = forms.IntegerField(
        min_value=0, max_value=999, required=False, label="The error's HTTP status", widget=forms.HiddenInput
    )
    sort = forms.ChoiceField(choices=SORTS, required=False, label="Sort", error_messages=MENU_MESSAGES)
    after = forms.CharField(max_length=50, required=False, label="The page", widget=forms.HiddenInput)
    before = forms.CharField(max_length=50, required=False, label="The page", widget=forms.HiddenInput)

    def __init__(self, *args: Any, show_agents: bool = True, **kwargs: Any) -> None:
        """show_agents: whether the agent menu is drawn (an agent sees only their own calls: no menu for them)."""
        super().__init__(*args, **kwargs)
        self.show_agents = show_agents
        codes = list(DispositionCode.objects.values_list("code", flat=True))
        self.fields["disposition"].widget.choices = self._menu(
            "disposition", [("", "Any disposition"), (NONE, "No disposition"), *((c, c) for c in codes)]
        )
        numbers = list(CallbackNumber.objects.values_list("number", "label"))
        self.fields["clid"].widget.choices = self._menu(
            "clid", [("", "Any caller ID"), (NONE, "VCC's default"), *((n, f"{label} ({n})") for n, label in numbers)]
        )

    def _menu(self, name: str, choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
        value = self.data.get(name, "") if self.is_bound else ""
        if value and value not in {c for c, _label in choices}:
            choices.append((value, value))
        return choices

    def clean_after(self) -> tuple[int, int] | None:
        return _cursor(self.cleaned_data["after"])

    def clean_before(self) -> tuple[int, int] | None:
        return _cursor(self.cleaned_data["before"])

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        _check_years(self, data)
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            self.add_error("end", "The end date is before the start date.")
        if data.get("after") and data.get("before"):
            raise ValidationError("This page link is damaged: start again from the first page.")
        data["sort"] = data.get("sort") or DEFAULT_SORT
        return data

    def menus(self) -> list[dict[str, object]]:
        """The visible filters as plain data for the template to draw: Django's widget templates cost ~5 ms a menu,
        and the call log is drawn on every filter change."""
        labels = {
            "agent": lambda: [(str(pk), f"{name} ({display_id})") for pk, name, display_id in
                              Agent.objects.values_list("pk", "name", "display_id")],
            "group": lambda: [(str(pk), f"{name} ({display_id})") for pk, name, display_id in
                              AgentGroup.objects.values_list("pk", "name", "display_id")],
        }  # fmt: skip
        out = []
        for bound in self.visible_fields():
            field, name = bound.field, bound.name
            if name == "agent" and not self.show_agents:
                continue
            value = self.data.get(name, "") if self.is_bound else ""
            item = {"name": name, "id": bound.id_for_label, "label": bound.label, "value": value}
            if isinstance(field, forms.BooleanField):
                item["kind"] = "checkbox"
            elif isinstance(field, forms.DateField):
                item["kind"] = "date"
            else:
                item["kind"] = "select"
                choices: Iterable[tuple[object, object]]
                if isinstance(field, forms.ModelChoiceField):
                    choices = [("", field.empty_label), *labels[name]()]
                else:
                    # Every other visible filter is a menu: a ChoiceField (which keeps its choices on its widget
                    # too) or a _Choosable (whose menu is its widget's).
                    assert isinstance(field.widget, forms.Select)
                    choices = field.widget.choices
                item["options"] = [(str(v), label, str(v) == value) for v, label in choices]
            out.append(item)
        return out

    def set_count(self) -> int:
        """How many of the menus are set (the folded filters' summary on a phone says so)."""
        if not self.is_bound:
            return 0
        names = {b.name for b in self.visible_fields()} - {"sort"} - (set() if self.show_agents else {"agent"})
        return sum(1 for name in names if self.data.get(name))

    def filters(self) -> dict[str, object]:
        """The filters that are set (not the sort or page), as query string values: for links and the export."""
        out = {}
        for name in self.fields:
            if name in ("sort", "after", "before"):
                continue
            value = self.cleaned_data.get(name)
            if value is None or value is False or value == "":
                continue
            if isinstance(value, models.Model):
                value = value.pk
            elif value is True:
                value = "on"
            out[name] = value
        return out

    def query(self, **extra: object) -> dict[str, str]:
        """The query string of these filters and extra (sort, a page cursor): only what is set, so the address
        carries no empty `?agent=&group=`, and the default sort is left out."""
        query = {**self.filters(), **extra}
        if query.get("sort") == DEFAULT_SORT:
            del query["sort"]
        return {k: str(v) for k, v in query.items() if v is not None and v != ""}
