"""What every admin page here shares: a bounded search, date drill-downs that cannot overflow, and a phone
number field that takes any format."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from calls import phones

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin
    from django.contrib.admin.filters import ListFilter

    # For mypy a mixin here is a ModelAdmin (its super() calls are ModelAdmin's); at run time it is a plain class
    # before the ModelAdmin in the admin's bases.
    AdminMixin = ModelAdmin
else:
    AdminMixin = object

# Django's admin search makes one AND clause per word of `q`, each an OR over the search fields: 40,000 words were
# a query PostgreSQL worked on for over ten minutes. Every admin here searches for at most this many characters.
SEARCH_MAX_CHARS = 100


class SaneDatesChangeList(ChangeList):
    """Django's change list, refusing a date drill-down out of any calendar (?created_at__year=10**30) as it
    refuses other bad lookups, instead of answering 500 (Django catches ValueError there, not OverflowError)."""

    def get_filters(self, request: HttpRequest) -> tuple[list[ListFilter], bool, dict[str, bool | str], bool, bool]:
        try:
            return super().get_filters(request)
        except OverflowError as error:
            raise IncorrectLookupParameters(error) from error

    def get_results(self, request: HttpRequest) -> None:
        # Without a date_hierarchy, ?requested_at__year=10**30 (or -1) is a filter like any other, which fails when
        # its SQL is made (OverflowError, ValueError: year out of range): counting the page, here.
        try:
            super().get_results(request)
        except (OverflowError, ValueError) as error:
            raise IncorrectLookupParameters(error) from error


class BoundedSearch(AdminMixin):
    """Admin search on a bounded search term (see SEARCH_MAX_CHARS), and date drill-downs that cannot overflow."""

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        return super().get_search_results(request, queryset, search_term[:SEARCH_MAX_CHARS])

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # The page echoes `q` in its search box and in every row's link back to the list: searched for what
        # it searches for, not the 80,000 characters someone pasted (which took half a second to render).
        term = request.GET.get("q", "")
        if len(term) > SEARCH_MAX_CHARS:
            params = request.GET.copy()
            params["q"] = term[:SEARCH_MAX_CHARS]
            # django-stubs type GET as the immutable QueryDict Django builds; Django lets a view replace it.
            request.GET = params  # type: ignore[assignment]
        return super().changelist_view(request, extra_context)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return SaneDatesChangeList


class PhoneNumberField(forms.CharField):
    """A number typed in any format, cleaned to E.164 and shown as people write it. `has_notes`: its record has
    notes that can keep an extension (phones.to_e164)."""

    def __init__(self, *args: Any, has_notes: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.has_notes = has_notes

    def prepare_value(self, value: object) -> object:
        if isinstance(value, str) and value.startswith("+"):
            return phones.display(value)
        return value

    def to_python(self, value: object) -> str | None:
        text = super().to_python(value)
        return phones.to_e164(text, has_notes=self.has_notes) if text else text
