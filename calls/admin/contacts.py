"""Contacts and their numbers in Django's admin."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from calls import phones
from calls.admin.base import BoundedSearch, PhoneNumberField
from calls.models import (
    Contact,
    ContactPhone,
)


class ContactPhoneForm(forms.ModelForm):
    number = PhoneNumberField(
        max_length=phones.MAX_INPUT, help_text="Any format: 020 7946 0123, +44 20 7946 0123. Stored in E.164."
    )

    class Meta:
        model = ContactPhone
        fields = ["contact", "number", "label", "is_primary", "do_not_call"]


class ContactPhoneInline(admin.TabularInline):
    model = ContactPhone
    form = ContactPhoneForm
    extra = 0


@admin.register(Contact)
class ContactAdmin(BoundedSearch, admin.ModelAdmin):
    list_display = ["name", "company", "email", "owner", "do_not_call", "consent_override", "updated_at"]
    list_filter = ["do_not_call", "consent_override", "owner"]
    search_fields = ["name", "company", "email", "phones__number"]
    list_select_related = ["owner"]
    autocomplete_fields = ["owner"]
    inlines = [ContactPhoneInline]
    date_hierarchy = "created_at"


@admin.register(ContactPhone)
class ContactPhoneAdmin(BoundedSearch, admin.ModelAdmin):
    form = ContactPhoneForm
    list_display = ["number", "label", "contact", "is_primary", "do_not_call"]
    list_filter = ["label", "is_primary", "do_not_call"]
    search_fields = ["number", "contact__name"]
    list_select_related = ["contact"]
    autocomplete_fields = ["contact"]
