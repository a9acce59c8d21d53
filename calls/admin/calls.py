"""The call log in Django's admin: read, never edited or deleted.

It opens within a second at 5 million calls: nothing counts the table (calls.admin.paging), and every filter,
search and sort it offers is answered through an index of Call (calls/models/calls.py) in the order of the page,
or, for a VCC call ID, through the table of those ids (calls/models/callkeys.py).
"""

from __future__ import annotations

from typing import cast

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from calls import phones
from calls.admin.base import SEARCH_MAX_CHARS, BoundedSearch
from calls.admin.paging import BigListAdmin
from calls.models import Call, CallQuerySet, DispositionCode


class DispositionFilter(admin.SimpleListFilter):
    """The wrap-up disposition, its choices from the dispositions table: Django's own filter for a text field
    lists every value found in the calls (a DISTINCT over millions of rows)."""

    title = "disposition"
    parameter_name = "disposition_code"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(code, code) for code in DispositionCode.objects.values_list("code", flat=True)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Call]) -> QuerySet[Call]:
        return queryset.filter(disposition_code=self.value()) if self.value() else queryset


def _prefix_range(prefix: str) -> Q:
    """to_number starts with prefix (an E.164 start, "+" and digits), as a range the number index reads."""
    return Q(to_number__gte=prefix, to_number__lt=prefix[:-1] + chr(ord(prefix[-1]) + 1))


@admin.register(Call)
class CallAdmin(BigListAdmin, BoundedSearch, admin.ModelAdmin):
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
    # Each filter leads an index that ends in the list's order (-requested_at). No date_hierarchy: its links are
    # a DISTINCT over the dates of every call listed (seconds at 5 million calls); the date filter is a range.
    list_filter = [("requested_at", admin.DateFieldListFilter), "state", "outcome", "from_agent", DispositionFilter]
    sortable_by = ["requested_at"]
    search_fields = ["vcc_call_id", "to_number"]  # shows the search box; get_search_results says how they match
    search_help_text = "A VCC call ID (all of it), or the start of the number called (+44 20 7946, 020 7946)."
    list_select_related = ["created_by", "from_agent", "to_agent", "contact"]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Call], search_term: str
    ) -> tuple[QuerySet[Call], bool]:
        """Calls to a number starting with the term when it looks like one, else the call of that VCC call ID:
        both through an index (Django's own search is a LIKE '%term%' on each field, reading every call)."""
        term = search_term[:SEARCH_MAX_CHARS].strip()
        if not term:
            return queryset, False
        if phones.looks_like_number(term):
            prefixes, _endings = phones.search_patterns(term)
            matching = Q()
            for prefix in prefixes:
                matching |= _prefix_range(prefix)
            return queryset.filter(matching), False
        return cast(CallQuerySet, queryset).with_vcc_call_id(term), False  # the model's own manager's

    def get_readonly_fields(self, request: HttpRequest, obj: Call | None = None) -> list[str]:
        return [f.name for f in Call._meta.get_fields() if f.concrete]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Call | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Call | None = None) -> bool:
        return False
