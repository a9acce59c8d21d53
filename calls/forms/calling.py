"""What the calling views accept: the click, the dial preview, the recording and the wrap-up."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.utils import timezone

from calls import callbacks
from calls.calling.recording import CallbackPromise
from calls.models import AgentGroup, DispositionCode

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# Every POST (and every query parameter that selects something) is read by a form: a malformed value is a
# message and a 400, never a 500 ("²".isdigit() is true, int("²") raises; PostgreSQL refuses NUL characters).

OUT_OF_DATE = "This page is out of date: reload it and click again."


class PkListField(forms.Field):
    """A list of database ids (from checkboxes sent under one name)."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {"invalid": "Pick from the list: reload the page if it is out of date."}

    def to_python(self, value: object) -> list[int]:
        values = value if isinstance(value, list | tuple) else ([value] if value else [])
        pks: list[int] = []
        for item in values:
            text = str(item)
            if not (text.isascii() and text.isdecimal()) or len(text) > 18:
                raise ValidationError(self.error_messages["invalid"], code="invalid")
            if int(text) not in pks:
                pks.append(int(text))
        return pks


class ClickForm(forms.Form):
    """A call button's click: a one-time id, so that the same click twice places one call."""

    request_id = forms.UUIDField(error_messages={"required": OUT_OF_DATE, "invalid": OUT_OF_DATE})


class NumberClickForm(ClickForm):
    """A click on a contact's number: "me:<phone>" or "group:<phone>", the ticked groups, a caller ID, the reasons
    to call a do-not-call number or outside calling hours anyway."""

    call = forms.RegexField(
        r"^(me|group):[0-9]{1,18}\Z",
        error_messages={"required": "Pick a number to call.", "invalid": "Pick a number to call."},
    )
    groups = PkListField(required=False)
    clid = forms.IntegerField(
        required=False, min_value=1, error_messages={"invalid": "Pick a caller ID from the list."}
    )

    def __init__(self, data: QueryDict, *args: Any, **kwargs: Any) -> None:
        super().__init__(data, *args, **kwargs)
        # Each number has its own "reason to call anyway" box; read the one of the number clicked.
        self.fields["dnc_reason"] = forms.CharField(required=False, max_length=500, strip=True)
        self.fields["hours_reason"] = forms.CharField(required=False, max_length=500, strip=True)
        phone = str(data.get("call", "")).partition(":")[2]
        if phone.isascii() and phone.isdecimal():
            own = data.copy()
            own["dnc_reason"] = data.get(f"dnc_reason_{phone}", "")
            own["hours_reason"] = data.get(f"hours_reason_{phone}", "")
            self.data = own

    @property
    def via_groups(self) -> bool:
        return self.cleaned_data["call"].startswith("group:")

    @property
    def phone_pk(self) -> int:
        return int(self.cleaned_data["call"].partition(":")[2])


class DialPreviewForm(forms.Form):
    """The contact page's choices, sent as they change so the preview can say what a click would send."""

    groups = PkListField(required=False)
    clid = forms.IntegerField(required=False, min_value=1)
    ticked = forms.BooleanField(required=False)  # whether `groups` was sent (none ticked is a choice too)
    only_me = forms.BooleanField(required=False)  # readiness of the caller alone (the contact list has no groups)


class RecordingForm(forms.Form):
    recording = forms.ChoiceField(
        choices=[("Paused", "Pause"), ("Started", "Resume")],
        error_messages={
            "required": "Choose to pause or resume the recording.",
            "invalid_choice": "Choose to pause or resume the recording.",
        },
    )


class WrapUpForm(forms.Form):
    # Each form gets its own copy of the (lazy) queryset, evaluated when the form is validated or drawn.
    disposition = forms.ModelChoiceField(
        queryset=DispositionCode.objects.filter(is_active=True),
        error_messages={"required": "Choose how the call went.", "invalid_choice": "Choose how the call went."},
    )
    notes = forms.CharField(required=False, max_length=5000, widget=forms.Textarea)
    # An optional callback: when (the site's time zone, which the form names), to "me" or a group's id, a note.
    callback_at = forms.DateTimeField(
        required=False,
        error_messages={"invalid": "Enter when to call back as a date and a time, such as 2026-12-07 15:30."},
    )
    callback_to = forms.CharField(required=False, max_length=20)
    callback_note = forms.CharField(required=False, max_length=200)

    def __init__(self, *args: Any, user: User | None = None, now: datetime | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user, self.now = user, now
        self.promise: CallbackPromise | None = None

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        due_at, to, note = data.get("callback_at"), data.get("callback_to") or "me", data.get("callback_note", "")
        if "callback_at" in self.errors:
            return data
        if due_at is None:
            if note:
                self.add_error("callback_at", "Say when to call back, or clear the callback's note.")
            return data
        if self.user is None:
            self.add_error("callback_at", "A callback needs someone to promise it.")
            return data
        disposition = data.get("disposition")
        if disposition is not None and disposition.action:
            self.add_error("callback_at", f"“{disposition.code}” marks them do not call: promise no callback.")
            return data
        group: AgentGroup | None = None
        if to != "me":
            found = None
            if to.isascii() and to.isdecimal() and len(to) < 19:
                found = callbacks.groups_for(self.user).filter(pk=int(to)).first()
            if found is None:
                self.add_error("callback_to", "Choose yourself or one of your groups to call back.")
                return data
            group = found
        try:
            callbacks.check_promise(user=self.user, due_at=due_at, group=group, now=self.now or timezone.now())
        except ValidationError as exc:
            self.add_error("callback_to" if exc.code == "group" else "callback_at", exc)
            return data
        except OverflowError:
            self.add_error("callback_at", f"Choose a time to call back within {callbacks.MAX_AHEAD.days} days.")
            return data
        self.promise = CallbackPromise(due_at=due_at, group=group, note=note)
        return data


def first_error(form: forms.Form) -> str:
    """The first problem a form found, as one sentence for the person."""
    for errors in form.errors.values():
        for error in errors:
            return str(error)
    return "Check what you entered."
