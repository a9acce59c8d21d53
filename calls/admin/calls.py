"""The call log in Django's admin: read, never edited or deleted."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from calls.admin.base import BoundedSearch
from calls.models import (
    Call,
)


@admin.register(Call)
class CallAdmin(BoundedSearch, admin.ModelAdmin):
    """The call log is evidence: admins may read it here, never edit or delete it."""

    list_display = [
        "requested_at",
        "state",
        "outcome",
        "created_by",
        "from_agent",
        "destination",
        "contact",
        "presented_clid",
        "vcc_status",
        "result_reason",
        "disposition_code",
        "error_status",
        "latency_ms",
    ]
    list_filter = [
        "state", "outcome", "vcc_status", "result_code", "disposition_code", "from_agent", "from_groups", "consent",
    ]  # fmt: skip
    search_fields = ["to_number", "vcc_call_id", "contact__name", "error_message", "presented_clid", "notes"]
    list_select_related = ["created_by", "from_agent", "to_agent", "contact"]
    date_hierarchy = "requested_at"

    def get_readonly_fields(self, request: HttpRequest, obj: Call | None = None) -> list[str]:
        return [f.name for f in Call._meta.get_fields() if f.concrete]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Call | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Call | None = None) -> bool:
        return False
