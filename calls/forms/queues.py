"""Call queues: making and editing one, its contacts' page, skipping a contact."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from calls.models import Agent, AgentGroup, CallQueue, ContactImport, QueueEntry

MAX_ATTEMPTS = 20
MAX_WAIT_MINUTES = 14 * 24 * 60  # two weeks


class QueueForm(forms.ModelForm):
    """A queue's name and rules, and who works it. Its source (a filter or an import) is set when it is made."""

    agents = forms.ModelMultipleChoiceField(
        Agent.objects.filter(is_active=True).order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Agents who may work it.",
    )
    groups = forms.ModelMultipleChoiceField(
        AgentGroup.objects.filter(is_active=True).order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Every member of these groups may work it.",
        error_messages={
            "invalid_choice": "A group you ticked no longer exists in VCC (the sync retired it): reload the page and "
            "tick the groups again."
        },
    )

    class Meta:
        model = CallQueue
        fields = ["name", "description", "sort", "max_attempts", "retry_minutes", "agents", "groups"]
        widgets = {"sort": forms.RadioSelect}

    def clean_max_attempts(self) -> int:
        value = self.cleaned_data["max_attempts"]
        if not 1 <= value <= MAX_ATTEMPTS:
            raise ValidationError(f"Give each contact from 1 to {MAX_ATTEMPTS} attempts.")
        return value

    def clean_retry_minutes(self) -> int:
        value = self.cleaned_data["retry_minutes"]
        if not 1 <= value <= MAX_WAIT_MINUTES:
            raise ValidationError(f"Wait from 1 minute to {MAX_WAIT_MINUTES // 1440} days between attempts.")
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("agents") and not data.get("groups"):
            raise ValidationError("Give the queue to at least one agent or group, or nobody can work it.")
        return data


class NewQueueForm(QueueForm):
    """A new queue: its rules, plus where its contacts come from (the contact list's filter, or an import)."""

    source = forms.ChoiceField(
        choices=[("filter", "The contacts matching the filter"), ("import", "The contacts an import added or updated")],
        initial="filter",
        widget=forms.RadioSelect,
    )
    live = forms.BooleanField(
        required=False,
        label="Live: new contacts matching the filter join the queue",
        help_text="Otherwise the queue is a snapshot of the contacts matching now.",
    )
    source_import = forms.ModelChoiceField(
        ContactImport.objects.none(), required=False, empty_label="Choose an import", label="Import"
    )
    # The contact list's filter, carried from its page (ContactListForm's names).
    q = forms.CharField(required=False, max_length=100, widget=forms.HiddenInput)
    company = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)
    dnc = forms.ChoiceField(required=False, choices=[("", ""), ("only", ""), ("hide", "")], widget=forms.HiddenInput)
    mine = forms.BooleanField(required=False, widget=forms.HiddenInput)

    class Meta(QueueForm.Meta):
        fields = [*QueueForm.Meta.fields]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        done = ContactImport.objects.filter(status=ContactImport.Status.DONE).order_by("-created_at")
        recent = list(done.values_list("pk", flat=True)[:50])
        field = self.fields["source_import"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = done.filter(pk__in=recent)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("source") == "import":
            if not data.get("source_import"):
                self.add_error("source_import", "Choose the import whose contacts the queue holds.")
            if data.get("live"):
                self.add_error("live", "Only a queue made from a filter can be live: an import does not grow.")
        return data

    def source_filter(self) -> dict[str, object]:
        data = self.cleaned_data
        return {k: data[k] for k in ("q", "company", "dnc", "mine") if data.get(k)}


class SkipForm(forms.Form):
    reason = forms.CharField(
        max_length=200,
        min_length=3,
        strip=True,
        error_messages={
            "required": "Say why you skip this contact (3 characters or more).",
            "min_length": "Say why you skip this contact (3 characters or more).",
        },
    )
    # The contact the page shows: a second press, or a stale tab, must not skip the one the agent holds now.
    contact = forms.IntegerField(
        min_value=1,
        max_value=2**63 - 1,
        widget=forms.HiddenInput,
        error_messages={"required": "This page is out of date: skip from the contact's page again."},
    )


class EntryFilter(forms.Form):
    state = forms.ChoiceField(choices=[("", "Every state"), *QueueEntry.State.choices], required=False)
    attempts = forms.IntegerField(min_value=0, max_value=1000, required=False)
    after = forms.IntegerField(min_value=-1, max_value=2**63 - 1, required=False, widget=forms.HiddenInput)


class QueueStateForm(forms.Form):
    action = forms.ChoiceField(choices=[("pause", "Pause"), ("resume", "Resume"), ("close", "Close")])
