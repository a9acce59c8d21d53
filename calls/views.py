from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from calls.forms import ContactForm, ContactPhoneFormSet
from calls.models import Contact, ContactPhone

CONTACTS_PER_PAGE = 25


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("contact_list")


@require_GET
@login_required
@permission_required("calls.view_contact", raise_exception=True)
def contact_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:100]
    contacts = Contact.objects.search(query).prefetch_related(
        Prefetch("phones", queryset=ContactPhone.objects.order_by("-is_primary", "pk"))
    )
    page = Paginator(contacts, CONTACTS_PER_PAGE).get_page(request.GET.get("page"))
    template = "calls/contact_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#results"
    return render(request, template, {"page": page, "query": query})


@require_GET
@login_required
@permission_required("calls.view_contact", raise_exception=True)
def contact_detail(request: HttpRequest, pk: int) -> HttpResponse:
    contact = get_object_or_404(Contact.objects.select_related("owner"), pk=pk)
    return render(request, "calls/contact_detail.html", {"contact": contact, "phones": contact.phones.all()})


def _save_contact(request: HttpRequest, contact: Contact | None) -> HttpResponse:
    """Shared by create and edit: a contact form and its numbers, saved together or not at all."""
    form = ContactForm(request.POST or None, instance=contact)
    formset = ContactPhoneFormSet(request.POST or None, instance=form.instance, prefix="phones")
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        with transaction.atomic():
            saved = form.save()
            formset.instance = saved
            numbers = formset.save(commit=False)
            for phone in formset.deleted_objects:
                phone.delete()
            # Non-primary numbers first, so moving the primary flag never meets the one-primary constraint.
            for phone in sorted(numbers, key=lambda p: p.is_primary):
                phone.contact = saved
                phone.save()
        messages.success(request, f"Saved {saved.name}.")
        return redirect(saved)
    return render(request, "calls/contact_form.html", {"form": form, "formset": formset, "contact": contact})


@require_http_methods(["GET", "POST"])
@login_required
@permission_required("calls.add_contact", raise_exception=True)
def contact_create(request: HttpRequest) -> HttpResponse:
    return _save_contact(request, None)


@require_http_methods(["GET", "POST"])
@login_required
@permission_required("calls.change_contact", raise_exception=True)
def contact_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _save_contact(request, get_object_or_404(Contact, pk=pk))


@require_http_methods(["GET", "POST"])
@login_required
@permission_required("calls.delete_contact", raise_exception=True)
def contact_delete(request: HttpRequest, pk: int) -> HttpResponse:
    contact = get_object_or_404(Contact, pk=pk)
    if request.method == "POST":
        name = contact.name
        contact.delete()
        messages.success(request, f"Deleted {name}. Their call log stays, without the link to the contact.")
        return redirect("contact_list")
    return render(
        request, "calls/contact_confirm_delete.html", {"contact": contact, "call_count": contact.calls.count()}
    )
