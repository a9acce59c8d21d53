from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, OuterRef, Prefetch, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers

from calls import audit, calling, calllog, phones
from calls import permissions as perms
from calls.audit import dnc, trail
from calls.forms import ContactForm, ContactListForm, ContactPhoneFormSet, TimelineForm, encode_cursor
from calls.forms.contacts import save_numbers
from calls.models import (
    CONTACT_SORTS,
    Call,
    Contact,
    ContactPhone,
    ContactQuerySet,
    is_number_search,
    search_windows,
)
from calls.queues import working
from calls.views import queues
from calls.views.calling import dialer_context, panel_context
from calls.views.http import AuthedRequest, HtmxRequest, is_id
from calls.webhooks import changes

log = logging.getLogger(__name__)

CONTACTS_PER_PAGE = 25
TIMELINE_LENGTH = 50


def _wants_fragment(request: HtmxRequest) -> bool:
    # htmx asks for a page when it restores history it no longer holds: that gets the whole page.
    return bool(request.htmx) and not request.htmx.boosted and not request.htmx.history_restore_request


@require_GET
@login_required
@permission_required(perms.VIEW_CONTACT, raise_exception=True)
@vary_on_headers("HX-Request")
def contact_list(request: AuthedRequest) -> HttpResponse:
    """Search, sort and filter contacts, a page at a time by keyset: nothing is counted, so a deep page of a
    million contacts costs what the first does."""
    form = ContactListForm(request.GET)
    form.is_valid()  # a damaged parameter is dropped (cleaned_data keeps the valid ones), never a 500
    # A damaged page link (the cursor) is a 400 that says so, with the first page to go on from.
    status = 400 if "after" in form.errors else 200
    opts = form.cleaned_data
    query, sort = (opts.get("q") or "").strip(), opts.get("sort") or "name"
    rows, next_cursor = _contacts_page(request.user, opts, query, sort)
    numbers = [phone.number for contact in rows for phone in contact.phones.all()]
    context = {
        "form": form,
        "contacts": rows,
        "query": query,
        "sort": sort,
        "filtered": bool(opts.get("mine") or opts.get("dnc") or opts.get("company")),
        "paged": opts.get("after") is not None,
        "next_url": f"?{form.params(after=encode_cursor(next_cursor))}" if next_cursor else "",
        "first_url": f"?{form.params()}",
        "queue_params": form.params(sort=None),
        "all_companies_url": f"?{form.params(company=None)}",
        "sort_urls": {key: f"?{form.params(sort=key)}" for key in CONTACT_SORTS},
        "can_call": calling.caller_for(request.user).own_phone_problem() == "",
        "blocked_numbers": calling.numbers_blocked_anywhere(numbers),
    }
    template = "calls/contact_list.html#results" if _wants_fragment(request) else "calls/contact_list.html"
    return render(request, template, context, status=status)


def list_filters(contacts: ContactQuerySet, user: User, opts: dict[str, Any]) -> ContactQuerySet:
    """The contact list's filters (ContactListForm's cleaned `mine`, `dnc`, `company`): the page's and the API's."""
    if opts.get("mine"):
        contacts = contacts.filter(owner=user)
    if dnc := opts.get("dnc"):
        marked = Q(do_not_call=True) | Exists(ContactPhone.objects.filter(contact=OuterRef("pk"), do_not_call=True))
        contacts = contacts.filter(marked) if dnc == "only" else contacts.exclude(marked)
    if company := opts.get("company"):
        contacts = contacts.filter(company=company)
    return contacts


def _contacts_page(
    user: User, opts: dict[str, Any], query: str, sort: str
) -> tuple[list[Contact], list[object] | None]:
    """One page of the contacts that match the search and the filters, each with the number to show."""
    contacts = list_filters(Contact.objects.search(query), user, opts)
    contacts = contacts.select_related("last_call").prefetch_related(
        Prefetch("phones", queryset=ContactPhone.objects.order_by("-is_primary", "pk"))
    )
    rows, next_cursor = contacts.keyset_page(
        sort=sort,
        after=opts.get("after"),
        size=CONTACTS_PER_PAGE,
        windows=search_windows(query),
        number_only=is_number_search(query),
    )
    for contact in rows:
        contact.shown_phone = contact.phone_matching(query)
    return rows, next_cursor


def _regarding_call(user: User, contact: Contact, token: str) -> Call | None:
    """The call of a regarding link (`?call=<signed id>`), if the token is sound and the call is this contact's and
    the user's to see."""
    request_id = calling.request_id_from_regarding(token)
    if not request_id:
        return None
    return Call.objects.visible_to(user).with_parties().with_request_id(request_id).filter(contact=contact).first()


@require_GET
@login_required
@permission_required(perms.VIEW_CONTACT, raise_exception=True)
@vary_on_headers("HX-Request", "HX-Target")  # the page, its timeline, or a page of older calls
def contact_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    """The contact, their numbers with call buttons, and every call to them. `?call=<signed id>` (the regarding
    link VCC shows) opens that call's panel."""
    contact = get_object_or_404(Contact.objects.select_related("owner"), pk=pk)
    page = TimelineForm(request.GET)
    # A damaged link to older calls is a 400 that says so, with the newest calls.
    status = 200 if page.is_valid() else 400
    context: dict[str, object] = {"contact": contact, "older_damaged": status == 400}
    context |= _timeline(request.user, contact, page.cleaned_data.get("older"))
    if _wants_fragment(request) and request.htmx.target in ("timeline", "timeline-more"):
        part = "timeline" if request.htmx.target == "timeline" else "timeline_items"
        return render(request, f"calls/contact_detail.html#{part}", context, status=status)
    if token := request.GET.get("call"):
        call = _regarding_call(request.user, contact, token)
        if call is None:
            messages.error(request, "That call link is not one you can open: it is damaged, or the call is not yours.")
        else:
            context |= panel_context(call, user=request.user)
    context |= dialer_context(request.user, contact)
    if is_id(queue_pk := request.GET.get("queue", "")):
        context["queue_bar"] = _queue_bar(request, int(queue_pk), contact)
    return render(request, "calls/contact_detail.html", context, status=status)


def _queue_bar(request: AuthedRequest, queue_pk: int, contact: Contact) -> str:
    """The queue bar, when the person holds this contact in that queue (`?queue=<id>`), given to them; else nothing."""
    queue = working.workable(request.user, queue_pk)  # not a queue of someone else's, by changing the id
    bar = queues.bar_context(request.user, queue, contact.pk) if queue is not None else None
    return render_to_string("calls/queue_bar.html", bar, request=request) if bar else ""


def _timeline(user: User, contact: Contact, older: tuple[int, int] | None) -> dict[str, object]:
    """A page of the calls to contact, newest first (from `older` on, if given), which of them user may change,
    and the link to the page after it."""
    page = calllog.page_of(
        Call.objects.filter(contact=contact)
        .select_related("created_by", "from_agent", "to_agent")
        .prefetch_related("from_groups"),
        sort="-time",
        after=older,
        size=TIMELINE_LENGTH,
    )
    mine = set(Call.objects.changeable_by(user).filter(pk__in=[c.pk for c in page.calls]).values_list("pk", flat=True))
    older_url = f"{reverse('contact_detail', args=[contact.pk])}?older={page.older}" if page.older else ""
    # Do-not-call taken off the contact or a number: who, when and why, beside the calls (the audit trail's).
    above = calllog.EPOCH + older[0] * calllog.ONE_MICROSECOND if older else None
    cleared = trail.place_dnc_clearings(contact.pk, page.calls, newer_than=above, last_page=not page.older)
    return {
        "timeline": page.calls,
        "mine": mine,
        "older_url": older_url,
        "showing_older": older is not None,
        "dnc_cleared_earlier": cleared,
    }


def _save_contact(request: AuthedRequest, contact: Contact | None) -> HttpResponse:
    """Shared by create and edit: a contact form and its numbers, saved together or not at all."""
    form = ContactForm(request.POST or None, instance=contact, user=request.user)
    formset = ContactPhoneFormSet(request.POST or None, instance=form.instance, prefix="phones", user=request.user)
    valid = request.method == "POST" and form.is_valid() and formset.is_valid() and _reason_given(form, formset)
    if valid and (saved := _saved(form, formset, contact)) is not None:
        messages.success(request, f"Saved {saved.name}.")
        for phone_form in formset.forms:
            if phone_form.has_changed() and phone_form not in formset.deleted_forms:
                for other in phone_form.other_contacts():
                    number = phones.display(phone_form.cleaned_data["number"])
                    messages.warning(request, f"{number} is also a number of {other}.")
        return redirect(saved)
    if request.method == "POST":
        # Warn before saving too, so the person can decide while the form is still open.
        formset.is_valid()  # validated even when the contact's own fields were not, so each row says its errors
        for phone_form in formset.forms:
            if getattr(phone_form, "cleaned_data", None) and phone_form.has_changed():
                phone_form.warnings = [f"Also a number of {other}." for other in phone_form.other_contacts()]
    return render(request, "calls/contact_form.html", {"form": form, "formset": formset, "contact": contact})


def _saved(form: ContactForm, formset: Any, contact: Contact | None) -> Contact | None:
    """Save a valid contact form and its numbers together, unless someone else saved the contact since the form was
    opened (ContactForm.overtaken): then nothing, and the form says so."""
    with transaction.atomic():
        if problem := form.overtaken():
            form.add_error(None, problem)
            return None
        reason = audit.reason(form.cleaned_data.get("dnc_reason", ""))
        with reason, changes.contact_change(contact.pk if contact else None) as created:
            saved = form.save()
            save_numbers(formset, saved)
            created.extend([] if contact else [saved.pk])
    return saved


def _reason_given(form: ContactForm, formset: Any) -> bool:
    """Clearing do-not-call needs a reason: say so on the form if it is missing."""
    if problem := dnc.reason_problem(form, formset, form.cleaned_data.get("dnc_reason")):
        form.add_error("dnc_reason" if "dnc_reason" in form.fields else None, problem)
        return False
    return True


@require_http_methods(["GET", "POST"])
@login_required
@permission_required(perms.ADD_CONTACT, raise_exception=True)
def contact_create(request: AuthedRequest) -> HttpResponse:
    return _save_contact(request, None)


@require_http_methods(["GET", "POST"])
@login_required
@permission_required(perms.CHANGE_CONTACT, raise_exception=True)
def contact_edit(request: AuthedRequest, pk: int) -> HttpResponse:
    return _save_contact(request, get_object_or_404(Contact, pk=pk))


@require_http_methods(["GET", "POST"])
@login_required
@permission_required(perms.DELETE_CONTACT, raise_exception=True)
def contact_delete(request: AuthedRequest, pk: int) -> HttpResponse:
    contact = get_object_or_404(Contact, pk=pk)
    if request.method == "POST":
        name = contact.name
        with changes.contact_deletion([contact.pk]):
            contact.delete()
        messages.success(request, f"Deleted {name}. Their call log stays, without the link to the contact.")
        return redirect("contact_list")
    return render(
        request,
        "calls/contact_confirm_delete.html",
        {
            "contact": contact,
            "call_count": contact.calls.count(),
            "has_dnc": contact.phones.filter(do_not_call=True).exists(),  # kept blocked (calls/privacy/hashing.py)
        },
    )
