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


ContactPhoneFormSet = inlineformset_factory(
    Contact, ContactPhone, form=ContactPhoneForm, formset=BaseContactPhoneFormSet, extra=1, can_delete=True
)
