"""The retention policy's page: after how many days each kind of personal data goes (blank: keep it)."""

from __future__ import annotations

from django import forms

from calls.models import RetentionPolicy

MAX_DAYS = 36500  # a hundred years: past that, leave it blank


class RetentionForm(forms.ModelForm):
    class Meta:
        model = RetentionPolicy
        fields = ["notes_days", "mask_days", "audit_days"]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        for field in self.fields.values():
            assert isinstance(field, forms.IntegerField)
            field.widget.attrs.update(min=1, max=MAX_DAYS, inputmode="numeric", placeholder="keep")
            field.validators = [_at_least_one, _at_most]
            field.error_messages["invalid"] = "Enter a whole number of days, or leave it blank to keep."


def _at_least_one(value: int | None) -> None:
    if value is not None and value < 1:
        raise forms.ValidationError("At least 1 day, or leave it blank to keep.")


def _at_most(value: int | None) -> None:
    if value is not None and value > MAX_DAYS:
        raise forms.ValidationError(f"At most {MAX_DAYS} days, or leave it blank to keep.")
