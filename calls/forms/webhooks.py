"""The webhook pages' forms: an endpoint (URL, description, events), replaying since a moment, filtering the log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from calls.forms.once import SentOnce
from calls.models.webhooks import WebhookDelivery
from calls.webhooks import EVENT_TYPES, TEST_EVENT_TYPE, check_event_patterns, safety
from calls.webhooks.endpoints import EndpointSettings

# The wildcards offered on the page, then every event type; the command accepts any pattern that matches one.
EVENT_CHOICES = [
    ("*", "Every event"),
    ("call.*", "Every call event"),
    ("contact.*", "Every contact event"),
    *[(event_type, event_type) for event_type in EVENT_TYPES],
]


class EndpointForm(SentOnce):  # a reload of the add answer (which shows the secret) adds nothing
    url = forms.CharField(
        label="URL",
        max_length=safety.MAX_URL_LENGTH,
        strip=True,
        help_text="Where each event is POSTed: https://, to a public address.",
        error_messages={"required": "Enter the URL the webhooks are sent to (https://…)."},
    )
    url.widget.attrs.update(inputmode="url", autocomplete="off", spellcheck="false", placeholder="https://")
    description = forms.CharField(
        max_length=255,
        required=False,
        strip=True,
        help_text="What receives them, so you know which is which: the helpdesk, the warehouse, …",
        error_messages={"max_length": "Keep the description under 255 characters."},
    )
    event_types = forms.MultipleChoiceField(
        label="Events",
        choices=EVENT_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        help_text="Which events it is sent. A test event can be sent whatever you tick.",
        error_messages={
            "required": "Tick at least one event (Every event sends them all).",
            "invalid_choice": "%(value)s is not an event type.",
        },
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # An endpoint added by the command may have a pattern the page does not offer: keep it offered, ticked.
        field = self.fields["event_types"]
        assert isinstance(field, forms.MultipleChoiceField)
        offered = {value for value, _ in EVENT_CHOICES}
        extra = [pattern for pattern in self.initial.get("event_types", []) if pattern not in offered]
        field.choices = [*EVENT_CHOICES, *[(pattern, pattern) for pattern in extra]]

    def clean_url(self) -> str:
        return safety.check_url(self.cleaned_data["url"])

    def clean_event_types(self) -> list[str]:
        return check_event_patterns(self.cleaned_data["event_types"])

    def chosen(self) -> EndpointSettings:
        data = self.cleaned_data
        return EndpointSettings(data["url"], data["event_types"], data["description"])


class RotateForm(SentOnce):
    """Rotating the secret: no field of its own; a reload of the answer (which shows the new secret) rotates nothing."""


class ReplayForm(forms.Form):
    since = forms.DateTimeField(
        label="Replay since",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Every event it subscribes to since then is sent again (events are kept 7 days).",
        error_messages={
            "required": "Choose when to replay from.",
            "invalid": "Give the moment as a date and a time.",
        },
    )

    def clean_since(self) -> datetime:
        since: datetime = self.cleaned_data["since"]
        if since > timezone.now():
            raise ValidationError("Choose a moment in the past: there are no events after now yet.")
        return since


STATUS_CHOICES = [("", "Any status"), *WebhookDelivery.Status.choices]
TYPE_CHOICES = [("", "Any event"), *[(t, t) for t in EVENT_TYPES], (TEST_EVENT_TYPE, TEST_EVENT_TYPE)]


class DeliveryFilter(forms.Form):
    """The delivery log's filters (a GET form); a value it does not know is ignored, as if not given."""

    status = forms.ChoiceField(choices=STATUS_CHOICES, required=False)
    type = forms.ChoiceField(label="Event", choices=TYPE_CHOICES, required=False)
    subject = forms.CharField(
        max_length=64, required=False, strip=True, help_text="call:123 or contact:45", label="Subject"
    )
    subject.widget.attrs.update(placeholder="call:123", spellcheck="false", autocomplete="off")
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def filters(self) -> dict[str, Any]:
        """The valid filters, for the query."""
        if not self.is_valid():
            return {name: self.cleaned_data[name] for name in self.cleaned_data if self.cleaned_data[name]}
        return {name: value for name, value in self.cleaned_data.items() if value}
