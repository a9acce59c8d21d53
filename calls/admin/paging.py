"""Paging Django's admin change lists of big tables (calls, contacts, their numbers) without counting them.

Django's admin counts the rows of a list (`paginator.count`) to show "5000000 calls" and its page links, and counts
the whole table again for "(N total)" beside a search. At 5 million calls each `COUNT(*)` reads every row: seconds.
Here instead:

- an unfiltered list on PostgreSQL shows the planner's estimate of the table's rows (`pg_class.reltuples`, kept by
  autovacuum), as "about 5,000,000";
- a filtered or searched list (and any list elsewhere, or a table never analysed) is counted exactly up to
  `COUNT_CAP` rows (`SELECT COUNT(*) FROM (SELECT ... LIMIT cap + 1)`: at most cap + 1 rows read) and shows
  "10,000+" beyond it;
- pages go to the `MAX_ROWS`-th row at most: a page further down is an OFFSET the database walks row by row, so
  the way to older rows is a filter (a date range) or a search, as the page says.

The count is an `int` (Django compares it with list_per_page and list_max_show_all) that prints as the page should
say it, so Django's own templates (the paginator, "N results", "Select all N") say "about" or "+" where it is not
exact.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin import ShowFacets
from django.contrib.admin.views.main import ORDER_VAR, ChangeList
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property

from calls.admin.base import AdminMixin, SaneDatesChangeList

# Counted exactly up to this many rows; the pages reach this far at most.
COUNT_CAP = 10_000
MAX_ROWS = 10_000


class RowCount(int):
    """A number of rows as the admin shows it: exact, at least (counted up to a cap), or about (an estimate)."""

    EXACT, AT_LEAST, ABOUT = "exact", "at least", "about"

    kind: str

    def __new__(cls, value: int, kind: str = EXACT) -> RowCount:
        count = super().__new__(cls, value)
        count.kind = kind
        return count

    @property
    def exact(self) -> bool:
        return self.kind == self.EXACT

    def __str__(self) -> str:
        if self.kind == self.ABOUT:
            return f"about {int(self):,}"
        if self.kind == self.AT_LEAST:
            return f"{int(self):,}+"
        return f"{int(self):,}"


def table_estimate(model: type[Model], using: str) -> int | None:
    """The planner's estimate of model's rows, or None where there is none (SQLite; a table never analysed)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table])
        row = cursor.fetchone()
    # reltuples is -1 until the table is first vacuumed or analysed (0 before PostgreSQL 14 for an empty table too)
    return int(row[0]) if row and row[0] > 0 else None


def capped_count(queryset: QuerySet, cap: int | None = None) -> RowCount:
    """queryset's rows counted exactly up to cap (COUNT_CAP), reading at most cap + 1 of them."""
    cap = COUNT_CAP if cap is None else cap
    found = queryset.order_by()[: cap + 1].count()
    return RowCount(cap, RowCount.AT_LEAST) if found > cap else RowCount(found)


class EstimatingPaginator(Paginator):
    """A Paginator for ModelAdmin.paginator that never counts a whole big table (see the module's docstring)."""

    @cached_property
    def count(self) -> RowCount:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return RowCount(len(queryset))
        if not queryset.query.where and not queryset.query.distinct:
            estimate = table_estimate(queryset.model, queryset.db)
            if estimate is not None and estimate > COUNT_CAP:
                return RowCount(estimate, RowCount.ABOUT)
        return capped_count(queryset)

    @cached_property
    def num_pages(self) -> int:
        return min(super().num_pages, self.reachable_pages)

    @property
    def reachable_pages(self) -> int:
        return max(1, MAX_ROWS // self.per_page)

    @property
    def reachable_rows(self) -> str:
        return f"{self.reachable_pages * self.per_page:,}"

    @property
    def pages_cut_short(self) -> bool:
        """Whether there are rows past the last page offered (the page says how to reach them)."""
        return Paginator.num_pages.func(self) > self.reachable_pages  # type: ignore[attr-defined]


class InStepChangeList(SaneDatesChangeList):
    """A ChangeList (refusing dates out of any calendar, as every admin's here) whose tiebreak, the primary key
    Django appends to an order that is not total, runs the way the first sort column does: `requested_at, id` reads
    an index on (requested_at DESC, id DESC) backwards, while Django's `requested_at, -id` cannot use it and sorts
    every row (minutes at 5 million calls, "oldest first")."""

    def get_ordering(self, request: HttpRequest, queryset: QuerySet) -> list:
        if self.params.get(ORDER_VAR):
            # Django offers sort links for sortable_by only, but sorts by any column an address names (?o=1):
            # columns no index serves are dropped, so a typed address cannot sort millions of rows either.
            sortable = [part for part in str(self.params[ORDER_VAR]).split(".") if self._sortable(part)]
            self.params[ORDER_VAR] = ".".join(sortable)
        ordering = list(super().get_ordering(request, queryset))
        first = ordering[0] if ordering else None
        if len(ordering) > 1 and ordering[-1] == "-pk" and isinstance(first, str) and not first.startswith("-"):
            ordering[-1] = "pk"
        return ordering

    def _sortable(self, part: str) -> bool:
        try:
            name = self.list_display[int(part.rpartition("-")[2])]
        except (IndexError, ValueError):
            return False
        return name in (self.sortable_by if self.sortable_by is not None else self.list_display)


class BigListAdmin(AdminMixin):
    """For a ModelAdmin of a table that grows to millions of rows: pages by EstimatingPaginator, never counts the
    whole table beside a search, and never counts each filter's choices (facets: a COUNT per choice)."""

    paginator = EstimatingPaginator
    list_per_page = 50  # rendering a row is most of a page's time on a busy machine (100: up to twice as long)
    show_full_result_count = False
    show_facets = ShowFacets.NEVER

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return InStepChangeList
