from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers

from calls import calling
from calls import permissions as perms
from calls.forms import ContactForm, ContactPhoneFormSet
from calls.models import Call, Contact, ContactPhone
from calls.views.calling import dialer_context, panel_context

log = logging.getLogger(__name__)

CONTACTS_PER_PAGE = 25
TIMELINE_LENGTH = 50


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("contact_list")


def _wants_fragment(request: HttpRequest) -> bool:
    # htmx asks for a page when it restores history it no longer holds: that gets the whole page.
    return bool(request.htmx) and not request.htmx.boosted and not request.htmx.history_restore_request


@require_GET
@login_required
@permission_required(perms.VIEW_CONTACT, raise_exception=True)
@vary_on_headers("HX-Request")
def contact_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:100]
    contacts = Contact.objects.search(query).prefetch_related(
        Prefetch("phones", queryset=ContactPhone.objects.order_by("-is_primary", "pk"))
    )
    page = Paginator(contacts, CONTACTS_PER_PAGE).get_page(request.GET.get("page"))
    template = "calls/contact_list.html"
    if _wants_fragment(request):
        template += "#results"
    numbers = [phone.number for contact in page for phone in contact.phones.all()]
    context = {
        "page": page,
        "query": query,
        "can_call": calling.caller_for(request.user).own_phone_problem() == "",
        "blocked_numbers": calling.numbers_blocked_anywhere(numbers),
    }
    return render(request, template, context)


@require_GET
@login_required
@permission_required(perms.VIEW_CONTACT, raise_exception=True)
@vary_on_headers("HX-Request")
def contact_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The contact, their numbers with call buttons, and every call to them. `?call=<signed id>` (the regarding
    link VCC shows) opens that call's panel."""
    contact = get_object_or_404(Contact.objects.select_related("owner"), pk=pk)
    timeline = list(
        Call.objects.filter(contact=contact)
        .select_related("created_by", "from_agent", "to_agent")
        .prefetch_related("from_groups")[:TIMELINE_LENGTH]
    )
    mine = set(
        Call.objects.changeable_by(request.user).filter(pk__in=[c.pk for c in timeline]).values_list("pk", flat=True)
    )
    context: dict[str, object] = {"contact": contact, "timeline": timeline, "mine": mine}
    if _wants_fragment(request) and request.htmx.target == "timeline":
        return render(request, "calls/contact_detail.html#timeline", context)
    if token := request.GET.get("call"):
        request_id = calling.request_id_from_regarding(token)
        call = (
            Call.objects.visible_to(request.user).with_parties().filter(request_id=request_id, contact=contact).first()
            if request_id
            else None
        )
        if call is None:
            messages.error(request, "That call link is not one you can open: it is damaged, or the call is not yours.")
        else:
            context |= panel_context(call, user=request.user)
    context |= dialer_context(request.user, contact)
    return render(request, "calls/contact_detail.html", context)


def _save_contact(request: HttpRequest, contact: Contact | None) -> HttpResponse:
    """Shared by create and edit: a contact form and its numbers, saved together or not at all."""
    form = ContactForm(request.POST or None, instance=contact, user=request.user)
    formset = ContactPhoneFormSet(request.POST or None, instance=form.instance, prefix="phones", user=request.user)
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
            saved.ensure_primary_phone()
        messages.success(request, f"Saved {saved.name}.")
        return redirect(saved)
    return render(request, "calls/contact_form.html", {"form": form, "formset": formset, "contact": contact})


@require_http_methods(["GET", "POST"])
@login_required
@permission_required(perms.ADD_CONTACT, raise_exception=True)
def contact_create(request: HttpRequest) -> HttpResponse:
    return _save_contact(request, None)


@require_http_methods(["GET", "POST"])
@login_required
@permission_required(perms.CHANGE_CONTACT, raise_exception=True)
def contact_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _save_contact(request, get_object_or_404(Contact, pk=pk))


@require_http_methods(["GET", "POST"])
@login_required
@permission_required(perms.DELETE_CONTACT, raise_exception=True)
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
