from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.forms import BaseInlineFormSet, inlineformset_factory

from calls import phones
from calls.models import Consent, Contact, ContactPhone

ONLY_SUPERVISORS = "Only a supervisor can change do-not-call."


def _guard_do_not_call(form: forms.ModelForm, user) -> None:
    """Do-not-call is a supervisor's decision: others see the flag but cannot clear or set it."""
    if not user.has_perm("calls.override_do_not_call"):
        field = form.fields["do_not_call"]
        field.disabled = True
        field.help_text = ONLY_SUPERVISORS


class ContactForm(forms.ModelForm):
    class Meta:
        model = Contact
        fields = ["name", "company", "email", "owner", "do_not_call", "consent_override", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args: object, user, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["consent_override"].choices = [("", "Country default"), *Consent.choices]
        self.fields["owner"].label_from_instance = lambda user: user.get_full_name() or user.username
        _guard_do_not_call(self, user)


class ContactPhoneForm(forms.ModelForm):
    number = forms.CharField(
        max_length=phones.MAX_INPUT,
        help_text="Any format: +44 20 7946 0100, 020 7946 0100, (312) 555-0100 with +1…",
    )

    class Meta:
        model = ContactPhone
        fields = ["label", "number", "is_primary", "do_not_call"]

    def __init__(self, *args: object, user, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        _guard_do_not_call(self, user)

    def clean_number(self) -> str:
        number = phones.to_e164(self.cleaned_data["number"])
        renumbering_blocked = self.instance.pk and self.instance.do_not_call and number != self.instance.number
        if renumbering_blocked and not self.user.has_perm("calls.override_do_not_call"):
            raise ValidationError(f"This number is marked do not call. {ONLY_SUPERVISORS}")
        return number

    def validate_constraints(self) -> None:
        # One row may take the primary flag from another row of the same save: the formset checks that rule
        # across all rows, and the view saves in an order the database accepts.
        try:
            self.instance.validate_constraints(exclude=self._get_validation_exclusions() | {"is_primary"})
        except ValidationError as e:
            self._update_errors(e)


class BaseContactPhoneFormSet(BaseInlineFormSet):
    def __init__(self, *args: object, user, **kwargs: object) -> None:
        self.user = user
        super().__init__(*args, form_kwargs={"user": user}, **kwargs)

    def clean(self) -> None:
        if any(self.errors):
            return
        if not self.user.has_perm("calls.override_do_not_call"):
            for form in self.deleted_forms:
                if form.instance.pk and form.instance.do_not_call:
                    raise ValidationError(
                        f"{phones.display(form.instance.number)} is marked do not call. {ONLY_SUPERVISORS}"
                    )
        kept = [f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        numbers = [f.cleaned_data["number"] for f in kept]
        duplicates = {n for n in numbers if numbers.count(n) > 1}
        if duplicates:
            raise ValidationError(f"{', '.join(phones.display(n) for n in sorted(duplicates))} is listed twice.")
        primaries = [f for f in kept if f.cleaned_data.get("is_primary")]
        if len(primaries) > 1:
            raise ValidationError("Only one number can be primary: untick all but one.")
        super().clean()


# A contact has a handful of numbers. Django builds as many forms as TOTAL_FORMS says, up to absolute_max (2,000
# by default): one crafted POST then took 25 s and answered 2.4 MB. More than this is refused with a message.
MAX_PHONES_PER_CONTACT = 20

ContactPhoneFormSet = inlineformset_factory(
    Contact,
    ContactPhone,
    form=ContactPhoneForm,
    formset=BaseContactPhoneFormSet,
    extra=1,
    can_delete=True,
    max_num=MAX_PHONES_PER_CONTACT,
    absolute_max=MAX_PHONES_PER_CONTACT,
    validate_max=True,
)


# --- What the calling views accept -----------------------------------------------------------------------
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
    """A click on a contact's number: "me:<phone>" or "group:<phone>", the ticked groups, a caller ID, a reason."""

    call = forms.RegexField(
        r"^(me|group):[0-9]{1,18}\Z",
        error_messages={"required": "Pick a number to call.", "invalid": "Pick a number to call."},
    )
    groups = PkListField(required=False)
    clid = forms.IntegerField(
        required=False, min_value=1, error_messages={"invalid": "Pick a caller ID from the list."}
    )

    def __init__(self, data, *args: object, **kwargs: object) -> None:
        super().__init__(data, *args, **kwargs)
        # Each number has its own "reason to call anyway" box; read the one of the number clicked.
        self.fields["dnc_reason"] = forms.CharField(required=False, max_length=500, strip=True)
        phone = str(data.get("call", "")).partition(":")[2]
        if phone.isascii() and phone.isdecimal():
            self.data = data.copy()
            self.data["dnc_reason"] = data.get(f"dnc_reason_{phone}", "")

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


class RecordingForm(forms.Form):
    recording = forms.ChoiceField(
        choices=[("Paused", "Pause"), ("Started", "Resume")],
        error_messages={
            "required": "Choose to pause or resume the recording.",
            "invalid_choice": "Choose to pause or resume the recording.",
        },
    )


class WrapUpForm(forms.Form):
    disposition = forms.ModelChoiceField(
        queryset=None,
        error_messages={"required": "Choose how the call went.", "invalid_choice": "Choose how the call went."},
    )
    notes = forms.CharField(required=False, max_length=5000, widget=forms.Textarea)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        from calls.models import DispositionCode

        self.fields["disposition"].queryset = DispositionCode.objects.filter(is_active=True)


def first_error(form: forms.Form) -> str:
    """The first problem a form found, as one sentence for the person."""
    for errors in form.errors.values():
        for error in errors:
            return error
    return "Check what you entered."
