"""What admins set for calls: wrap-up dispositions and recording consent defaults."""

from __future__ import annotations

from django.contrib import admin

from calls.admin.base import BoundedSearch
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


@admin.register(ConsentRule)
class ConsentRuleAdmin(BoundedSearch, admin.ModelAdmin):
    list_display = ["country", "consent", "note"]
    list_filter = ["consent"]
    search_fields = ["country", "note"]
