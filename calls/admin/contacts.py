"""Contacts and their numbers in Django's admin.

Both lists open within a second at a million contacts: nothing counts the tables (calls.admin.paging), searches go
through the contact search's indexes (ContactQuerySet.search), sorts through an index, and a filter on a column
without an index is one measured under a second (bench/admin_bench.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django import forms
from django.contrib import admin
from django.db.models import Q, QuerySet
from django.db.models.functions import Reverse
from django.http import HttpRequest

from calls import phones
from calls.admin.base import SEARCH_MAX_CHARS, BoundedSearch, PhoneNumberField
from calls.admin.paging import BigListAdmin
from calls.models import (
    Contact,
    ContactPhone,
)
from calls.webhooks import changes

if TYPE_CHECKING:
    from calls.models.contacts import ContactQuerySet


# Clearing do-not-call asks for a reason (calls/audit/dnc.py): the contact's own form asks it, the admin does not.
CLEAR_ON_THE_CONTACT_PAGE = (
    "Do-not-call is cleared on the contact's page (Edit), which asks why: the reason is kept in the audit trail."
)


class ContactPhoneForm(forms.ModelForm):
    number = PhoneNumberField(
        max_length=phones.MAX_INPUT, help_text="Any format: 020 7946 0123, +44 20 7946 0123. Stored in E.164."
    )

    class Meta:
        model = ContactPhone
        fields = ["contact", "number", "label", "is_primary", "do_not_call"]

    def clean(self) -> dict:
        data = super().clean() or {}
        marked = self.instance.pk and self.initial.get("do_not_call")
        if marked and (not data.get("do_not_call") or data.get("number", self.instance.number) != self.instance.number):
            raise forms.ValidationError(CLEAR_ON_THE_CONTACT_PAGE, code="dnc_clear")
        return data


class ContactPhoneInlineFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        if any(form.instance.pk and form.initial.get("do_not_call") for form in self.deleted_forms):
            raise forms.ValidationError(CLEAR_ON_THE_CONTACT_PAGE, code="dnc_clear")


class ContactAdminForm(forms.ModelForm):
    class Meta:
        model = Contact
        fields = [
            "name",
            "company",
            "email",
            "owner",
            "do_not_call",
            "consent_override",
            "time_zone",
            "notes",
            "external_id",
        ]

    def clean_do_not_call(self) -> bool:
        marked: bool = self.cleaned_data.get("do_not_call", False)
        if self.instance.pk and self.initial.get("do_not_call") and not marked:
            raise forms.ValidationError(CLEAR_ON_THE_CONTACT_PAGE, code="dnc_clear")
        return marked


class ContactPhoneInline(admin.TabularInline):
    model = ContactPhone
    form = ContactPhoneForm
    formset = ContactPhoneInlineFormSet
    extra = 0


@admin.register(Contact)
class ContactAdmin(BigListAdmin, BoundedSearch, admin.ModelAdmin):
    form = ContactAdminForm
    list_display = ["name", "company", "email", "owner", "do_not_call", "consent_override", "updated_at"]
    # No date_hierarchy: its links are a DISTINCT over the dates of every contact listed; the date filter is a
    # range on the created_at index.
    # Not recording consent: no index, and a value no contact has reads all of them, twice (0.8 to 1.1 s at a
    # million). Do not call has none either, but its rows are common enough (1 in 100) that a page finds them early.
    list_filter = [("created_at", admin.DateFieldListFilter), "do_not_call", "owner"]
    sortable_by = ["name"]  # by company (ORDER BY company, id DESC): 0.9 s at a million contacts; others sort them all
    search_fields = ["name", "company", "email", "phones__number"]  # the box; get_search_results searches
    search_help_text = "Words of the name, company or email, or a number in any format (as on the contacts page)."
    list_select_related = ["owner"]
    autocomplete_fields = ["owner"]
    inlines = [ContactPhoneInline]

    # Outgoing webhooks: the admin's changes are events too (in the transaction the admin's view holds).
    def save_model(self, request: HttpRequest, obj: Contact, form: forms.ModelForm, change: bool) -> None:
        request._contact_dnc_before = changes.dnc_of([obj.pk]) if change else {}  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: list, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        changes.contacts_saved([form.instance.pk], before=getattr(request, "_contact_dnc_before", {}))

    def delete_model(self, request: HttpRequest, obj: Contact) -> None:
        with changes.contact_deletion([obj.pk]):
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Contact]) -> None:
        with changes.contact_deletion(list(queryset.values_list("pk", flat=True))):
            super().delete_queryset(request, queryset)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Contact], search_term: str
    ) -> tuple[QuerySet[Contact], bool]:
        """The contacts page's search (trigram and number indexes), not Django's LIKE '%word%' on four columns."""
        # The change list's queryset comes from get_queryset: Contact.objects, a ContactQuerySet.
        contacts = cast("ContactQuerySet", queryset)
        return contacts.search(search_term[:SEARCH_MAX_CHARS]), False


@admin.register(ContactPhone)
class ContactPhoneAdmin(BigListAdmin, BoundedSearch, admin.ModelAdmin):
    form = ContactPhoneForm
    list_display = ["number", "label", "contact", "is_primary", "do_not_call"]
    # Not by label: no index, and a label no number has reads all 1.3 million (0.8 to 1 s).
    list_filter = ["is_primary", "do_not_call"]
    ordering = ["-pk"]  # the model's order (primary first) has no index: sorting 1.5 million numbers a page
    sortable_by = ["number"]
    search_fields = ["number"]  # the box; get_search_results searches
    search_help_text = "A number in any format: its start or its end. (Names: search the contacts.)"
    list_select_related = ["contact"]
    autocomplete_fields = ["contact"]

    def has_delete_permission(self, request: HttpRequest, obj: ContactPhone | None = None) -> bool:
        # A do-not-call number goes on the contact's page, with a reason (CLEAR_ON_THE_CONTACT_PAGE); deleting its
        # whole contact (the admin asks this of each number the contact's deletion takes along) stays as allowed as
        # on the contact's page.
        own_page = (getattr(request.resolver_match, "url_name", "") or "").startswith("calls_contactphone_")
        refused = own_page and obj is not None and obj.do_not_call
        return super().has_delete_permission(request, obj) and not refused

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ContactPhone]) -> None:
        kept = queryset.filter(do_not_call=True).count()
        if kept:
            self.message_user(request, f"{kept} do-not-call numbers kept. {CLEAR_ON_THE_CONTACT_PAGE}", "warning")
        with changes.contact_change(*set(queryset.values_list("contact_id", flat=True))):
            super().delete_queryset(request, queryset.filter(do_not_call=False))

    # Outgoing webhooks: a number's change is its contact's (both contacts', when it moves to another).
    def save_model(self, request: HttpRequest, obj: ContactPhone, form: forms.ModelForm, change: bool) -> None:
        was = ContactPhone.objects.filter(pk=obj.pk).values_list("contact_id", flat=True).first() if change else None
        with changes.contact_change(*{was, obj.contact_id}):
            super().save_model(request, obj, form, change)

    def delete_model(self, request: HttpRequest, obj: ContactPhone) -> None:
        with changes.contact_change(obj.contact_id):
            super().delete_model(request, obj)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[ContactPhone], search_term: str
    ) -> tuple[QuerySet[ContactPhone], bool]:
        """A number by its start or end (the number and reversed-number indexes); nothing else. By a contact's name
        ("smith": thousands of contacts, each of their numbers counted) took 1.1 to 1.4 s at a million contacts."""
        term = search_term[:SEARCH_MAX_CHARS].strip()
        if not term:
            return queryset, False
        prefixes, endings = phones.search_patterns(term) if phones.looks_like_number(term) else ([], [])
        match = Q(pk__in=[])
        for prefix in prefixes:
            match |= Q(number__startswith=prefix)
        for ending in endings:
            match |= Q(reversed_number__startswith=ending[::-1])
        return queryset.alias(reversed_number=Reverse("number")).filter(match), False
