"""What admins set for calls: wrap-up dispositions and recording consent defaults."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from calls.admin.base import BoundedSearch
from calls.admin.hours import _country
from calls.models import (
    ConsentRule,
    DispositionCode,
)


@admin.register(DispositionCode)
class DispositionCodeAdmin(BoundedSearch, admin.ModelAdmin):
    list_display = ["code", "description", "action", "is_active", "position"]
    list_editable = ["is_active", "position"]
    list_filter = ["is_active", "action"]
    search_fields = ["code", "description"]


class ConsentRuleForm(forms.ModelForm):
    """A country code phonenumbers knows (GB, not UK): the click looks rules up by the dialled number's country."""

    class Meta:
        model = ConsentRule
        fields = ["country", "consent", "note"]

    def clean_country(self) -> str:
        return _country(self.cleaned_data.get("country", ""))


@admin.register(ConsentRule)
class ConsentRuleAdmin(BoundedSearch, admin.ModelAdmin):
    form = ConsentRuleForm
    list_display = ["country", "consent", "note"]
    list_filter = ["consent"]
    search_fields = ["country", "note"]
