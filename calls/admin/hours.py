"""What admins set for calling hours (calls/calling/hours.py): each country's hours, and holidays."""

from __future__ import annotations

from typing import Any

import phonenumbers
from django import forms
from django.contrib import admin

from calls.admin.base import BoundedSearch
from calls.calling.hours import days_words
from calls.models import CallingHours, Holiday
from calls.models.hours import WEEKDAYS

DAY_CHOICES = [(str(number), name) for number, name in WEEKDAYS]


def _country(value: str, *, blank: bool = False) -> str:
    code = (value or "").strip().upper()
    if not code and blank:
        return ""
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise forms.ValidationError(f"{value or 'Nothing'} is not a country code: use two letters, such as US or GB.")
    return code


class CallingHoursForm(forms.ModelForm):
    """Days as ticks, not digits; times that must make a window; a country code phonenumbers knows."""

    days = forms.MultipleChoiceField(
        choices=DAY_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="The days calls are allowed, in the callee's local calendar.",
    )

    class Meta:
        model = CallingHours
        fields = ["country", "opens_at", "closes_at", "days", "note"]
        widgets = {
            "opens_at": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "closes_at": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial["days"] = list(self.instance.days if self.instance.pk else self.initial.get("days") or "012345")

    def clean_country(self) -> str:
        return _country(self.cleaned_data.get("country", ""))

    def clean_days(self) -> str:
        return "".join(sorted(set(self.cleaned_data.get("days") or [])))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        opens, closes = cleaned.get("opens_at"), cleaned.get("closes_at")
        if opens and closes and opens >= closes:
            self.add_error(
                "closes_at", f"Make it later than {opens:%H:%M}: calls are allowed from the first time until this one."
            )
        if "days" in cleaned and not cleaned["days"]:
            self.add_error("days", "Tick at least one day (to stop all calls to a country, add holidays instead).")
        return cleaned


@admin.register(CallingHours)
class CallingHoursAdmin(BoundedSearch, admin.ModelAdmin):
    form = CallingHoursForm
    list_display = ["country", "opens_at", "closes_at", "days_shown", "note", "updated_at"]
    search_fields = ["country", "note"]

    @admin.display(description="days")
    def days_shown(self, obj: CallingHours) -> str:
        return days_words(obj.days)


class HolidayForm(forms.ModelForm):
    class Meta:
        model = Holiday
        fields = ["date", "country", "name"]
        widgets = {"date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}

    def clean_country(self) -> str:
        return _country(self.cleaned_data.get("country", ""), blank=True)

    def validate_constraints(self) -> None:
        # The unique day, said as what to change.
        country, day = self.cleaned_data.get("country"), self.cleaned_data.get("date")
        taken = None
        if day is not None and country is not None:
            taken = Holiday.objects.filter(country=country, date=day).exclude(pk=self.instance.pk).first()
        if taken is not None:
            where = country or "every country"
            self.add_error("date", f"{day:%d %b %Y} is already a holiday for {where} ({taken.name}): edit that one.")
            return
        super().validate_constraints()


@admin.register(Holiday)
class HolidayAdmin(BoundedSearch, admin.ModelAdmin):
    form = HolidayForm
    list_display = ["date", "country_shown", "name"]
    list_filter = ["country"]
    search_fields = ["name", "country"]
    date_hierarchy = "date"

    @admin.display(description="country", ordering="country")
    def country_shown(self, obj: Holiday) -> str:
        return obj.country or "every country"
