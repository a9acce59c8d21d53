from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from calls import dialing
from calls.forms import ContactForm, ContactPhoneFormSet
from calls.models import Agent, AgentGroup, Call, Contact, ContactPhone, DispositionCode
from calls.vcc import VCCError, get_async_client

log = logging.getLogger(__name__)

CONTACTS_PER_PAGE = 25


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("contact_list")


def _wants_fragment(request: HttpRequest) -> bool:
    # htmx asks for a page when it restores history it no longer holds: that gets the whole page.
    return bool(request.htmx) and not request.htmx.boosted and not request.htmx.history_restore_request


@require_GET
@login_required
@permission_required("calls.view_contact", raise_exception=True)
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
        "can_call": _can_call(request.user),
        "blocked_numbers": dialing.numbers_blocked_anywhere(numbers),
    }
    return render(request, template, context)


@require_GET
@login_required
@permission_required("calls.view_contact", raise_exception=True)
@vary_on_headers("HX-Request")
def contact_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The contact, their numbers with call buttons, and their calls. `?call=<signed id>` (the regarding link
    VCC shows) opens that call's panel."""
    contact = get_object_or_404(Contact.objects.select_related("owner"), pk=pk)
    call = None
    if token := request.GET.get("call"):
        call_pk = dialing.call_from_regarding(token)
        call = Call.objects.visible_to(request.user).filter(pk=call_pk, contact=contact).first() if call_pk else None
        if call is None:
            messages.error(request, "That call link is not one you can open: it is damaged, or the call is not yours.")
    template = "calls/contact_detail.html"
    if _wants_fragment(request) and request.htmx.target == "timeline":
        template += "#timeline"
    return render(request, template, _dialer_context(request, request.user, contact, call))


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


# --- Click-to-call ----------------------------------------------------------------------------------
# The click views are async: they write the row, await VCC, and write the outcome without holding a worker.
# Database work happens in the sync helpers of calls.dialing, run through sync_to_async.

AVAILABILITY_SECONDS = 5  # how long a group's ready-agent count is reused
RECORDING_PENDING_SECONDS = 5  # how long a requested recording change is shown before VCC confirms it


async def _render(request: HttpRequest, template: str, context: dict[str, object]) -> HttpResponse:
    # Rendering may read related objects lazily, which only sync code may do.
    return await sync_to_async(render)(request, template, context)


def _base_url(request: HttpRequest) -> str:
    return settings.SITE_URL or request.build_absolute_uri("/")


def _visible_call(user, pk: int) -> Call:
    return get_object_or_404(Call.objects.visible_to(user).with_parties(), pk=pk)


def _own_call(user, pk: int) -> Call:
    """A call this user may change (recording, wrap-up): their own, whoever else may see it."""
    return get_object_or_404(Call.objects.changeable_by(user).with_parties(), pk=pk)


def _panel_context(call: Call, *, user, **extra: object) -> dict[str, object]:
    return {
        "call": call,
        "can_change": call.is_changeable_by(user),
        "phase": dialing.phase(call),
        "live": call.state in (Call.State.REQUESTED, Call.State.PLACED),
        "dispositions": DispositionCode.objects.filter(is_active=True),
        **extra,
    }


def _dialer_context(request: HttpRequest, user, contact: Contact, call: Call | None = None) -> dict[str, object]:
    phones = list(contact.phones.all())
    for phone in phones:
        phone.contact = contact  # spare a query per number
    groups = dialing.callable_groups(user)
    preselected = {g.pk for g in dialing.default_groups(user)} & {g.pk for g in groups}
    facts = {"rules": dialing.consent_rules(), "blocked": dialing.numbers_blocked_anywhere([p.number for p in phones])}
    me = dialing.plan_for_phone(user=user, phone=phones[0], **facts) if phones else None
    group_plan = (
        dialing.plan_for_phone(user=user, phone=phones[0], groups=[g for g in groups if g.pk in preselected], **facts)
        if phones and preselected
        else None
    )
    rows = [(phone, dialing.number_facts(phone, **facts)) for phone in phones]
    return {
        "contact": contact,
        "rows": rows,
        "me": me,
        "group_plan": group_plan,
        "groups": groups,
        "preselected": preselected,
        "can_override_dnc": user.has_perm("calls.override_do_not_call"),
        "timeline": Call.objects.visible_to(user)
        .filter(contact=contact)
        .select_related("created_by", "from_agent", "to_agent")
        .prefetch_related("from_groups")[:50],
        **(_panel_context(call, user=user) if call else {}),
    }


def _contact_click(user, request: HttpRequest, pk: int) -> dialing.Click:
    contact = get_object_or_404(Contact, pk=pk)
    choice = request.POST.get("call", "")
    via, _, phone_pk = choice.partition(":")
    if via not in ("me", "group") or not phone_pk.isdigit():
        raise dialing.Refused("Pick a number to call.")
    phone = get_object_or_404(ContactPhone, pk=int(phone_pk), contact=contact)
    groups: list[AgentGroup] = []
    if via == "group":
        if not user.has_perm("calls.place_group_call"):
            raise PermissionDenied("You may not call via groups.")
        wanted = [int(g) for g in request.POST.getlist("groups") if g.isdigit()]
        # Keep the order the person gave: VCC takes the groups in order.
        groups = sorted(AgentGroup.objects.filter(pk__in=wanted), key=lambda g: wanted.index(g.pk))
    request_id = _request_id(request)
    # The caller ID menu offers the numbers the user may present; a group call resolves its own (group default).
    chosen_clid = request.POST.get("clid") if via == "me" else None
    try:
        plan = dialing.plan_for_phone(user=user, phone=phone, groups=groups, chosen_clid=chosen_clid)
    except dialing.Refused as refused:
        plan = dialing.plan_for_phone(user=user, phone=phone, groups=groups)
        plan.problems.insert(0, str(refused))
    if via == "group" and not groups:
        plan.problems.insert(0, "Tick at least one group to call via.")
    return dialing.start_click(
        user=user,
        plan=plan,
        request_id=request_id,
        base_url=_base_url(request),
        dnc_reason=request.POST.get(f"dnc_reason_{phone.pk}", ""),
    )


def _refusals_as_400(view):
    """A click refused before anything is sent answers 400 with the reason as plain text, which the page shows."""

    @functools.wraps(view)
    async def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        try:
            return await view(request, *args, **kwargs)
        except dialing.Refused as refused:
            return HttpResponseBadRequest(str(refused), content_type="text/plain; charset=utf-8")

    return wrapper


def _request_id(request: HttpRequest) -> str:
    try:
        return str(uuid.UUID(request.POST.get("request_id", "")))
    except ValueError:
        raise dialing.Refused("This page is out of date: reload it and click again.") from None


async def _send(click: dialing.Click) -> Call:
    """Ask VCC to place the click's call (unless there is nothing to send) and record the answer.

    A browser that goes away mid-click cancels the view, but the phone may already be ringing: the request and
    the recording of its answer run as their own task, which the cancellation does not reach.
    """
    if click.request is None:
        return click.call
    return await asyncio.shield(asyncio.ensure_future(_place_and_record(click)))


async def _place_and_record(click: dialing.Click) -> Call:
    started = time.monotonic()
    placed, error = None, None
    try:
        async with get_async_client() as client:
            placed = await client.place_call(click.request)
    except Exception as exc:  # every failure, expected or not, must end up on the row and in front of the person
        error = exc
    return await sync_to_async(dialing.finish_click)(click, placed=placed, error=error, started=started)


@require_POST
@login_required
@permission_required("calls.view_contact", raise_exception=True)
@_refusals_as_400
async def call_contact(request: HttpRequest, pk: int) -> HttpResponse:
    user = await request.auser()
    click = await sync_to_async(_contact_click)(user, request, pk)
    call = await _send(click)
    if not request.htmx:
        return redirect(f"{reverse('contact_detail', args=[pk])}?call={dialing.regarding_token(call)}")
    if request.htmx.target == "dialer":
        contact = await Contact.objects.aget(pk=pk)
        context = await sync_to_async(_dialer_context)(request, user, contact, call)
        response = await _render(request, "calls/contact_detail.html#dialer", context)
    else:
        context = await sync_to_async(_list_click_context)(user, call)
        response = await _render(request, "calls/contact_list.html#list_call", context)
    return trigger_client_event(response, "calls-changed")


def _list_click_context(user, call: Call) -> dict[str, object]:
    contact = call.contact
    return {
        **_panel_context(call, user=user),
        "contact": contact,
        "phone": call.phone,
        "can_call": _can_call(user),
        "regarding_token": dialing.regarding_token(call),
    }


def _can_call(user) -> bool:
    return user.has_perm("calls.place_call") and dialing.user_agent(user) is not None


@require_GET
@login_required
@permission_required("calls.view_call", raise_exception=True)
async def call_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """The live call panel: htmx polls it while the call is live; it asks VCC for the call's detail."""
    user = await request.auser()
    call = await sync_to_async(_visible_call)(user, pk)
    was = call.state
    refresh_error = ""
    if call.state == Call.State.PLACED and call.vcc_call_id and await cache.aadd(f"vcc-detail:{call.pk}", 1, 1):
        detail, error = None, None
        try:
            async with get_async_client() as client:
                detail = await client.get_call(call.vcc_call_id)
        except VCCError as exc:
            error = exc
        call, refresh_error = await sync_to_async(dialing.record_refresh)(call, detail=detail, error=error)
    pending = await cache.aget(f"recording-pending:{call.pk}")
    if pending and call.state == Call.State.PLACED and call.recording_status != pending:
        # VCC applies recording changes asynchronously: show what was asked for until VCC reports it.
        call.recording_status = pending
    context = await sync_to_async(_panel_context)(call, user=user, refresh_error=refresh_error)
    response = await _render(request, "calls/contact_detail.html#call_panel", context)
    return trigger_client_event(response, "calls-changed") if call.state != was else response


@require_POST
@login_required
@permission_required("calls.view_call", raise_exception=True)
async def call_recording(request: HttpRequest, pk: int) -> HttpResponse:
    """Pause or resume recording of a connected call; VCC applies it asynchronously."""
    user = await request.auser()
    call = await sync_to_async(_own_call)(user, pk)
    status = request.POST.get("recording", "")
    error = ""
    if status not in ("Paused", "Started"):
        error = "Choose to pause or resume the recording."
    elif call.state != Call.State.PLACED or not call.vcc_call_id:
        error = "The call is not live, so its recording cannot change."
    else:
        try:
            async with get_async_client() as client:
                await client.set_recording(call.vcc_call_id, status)
            call.recording_status = status
            await call.asave(update_fields=["recording_status"])
            await cache.aset(f"recording-pending:{call.pk}", status, RECORDING_PENDING_SECONDS)
            log.info("call %s: recording set to %s", call.pk, status)
        except VCCError as exc:
            log.warning("call %s: recording change failed: %s (status %s)", call.pk, exc.message, exc.status)
            error = exc.user_message
    context = await sync_to_async(_panel_context)(call, user=user, action_error=error)
    return await _render(request, "calls/contact_detail.html#call_panel", context)


@require_POST
@login_required
@permission_required("calls.view_call", raise_exception=True)
async def call_wrapup(request: HttpRequest, pk: int) -> HttpResponse:
    """Store the disposition and notes; the disposition goes to VCC first, and nothing typed is lost if it fails."""
    user = await request.auser()
    call = await sync_to_async(_own_call)(user, pk)
    code_pk = request.POST.get("disposition", "")
    notes = request.POST.get("notes", "").strip()[:5000]
    disposition = await DispositionCode.objects.filter(is_active=True, pk=code_pk if code_pk.isdigit() else 0).afirst()
    error, changed = "", []
    if disposition is None:
        error = "Choose how the call went."
    elif call.state != Call.State.ENDED:
        error = "Wrap up once the call has ended."
    else:
        confirmed = False
        if call.vcc_call_id:
            try:
                async with get_async_client() as client:
                    await client.set_disposition(
                        call.vcc_call_id, disposition.code, call.from_agent.display_id if call.from_agent else None
                    )
                confirmed = True
            except VCCError as exc:
                log.warning("call %s: disposition failed: %s (status %s)", call.pk, exc.message, exc.status)
                if exc.status == 404:
                    # VCC keeps calls for 24 hours: past that, the outcome can only be kept here.
                    confirmed = True
                    changed.append("VCC no longer has this call, so the outcome is kept in vccweb only.")
                else:
                    error = f"{exc.user_message} Your notes are saved; send the outcome again."
        changed += await sync_to_async(dialing.wrap_up)(
            call, disposition=disposition, notes=notes, vcc_confirmed=confirmed
        )
    context = await sync_to_async(_panel_context)(
        call,
        user=user,
        action_error=error,
        changed=changed,
        chosen=disposition.pk if disposition else None,
        notes=notes,
    )
    response = await _render(request, "calls/contact_detail.html#call_panel", context)
    return response if error else trigger_client_event(response, "calls-changed")


@require_GET
@login_required
async def group_availability(request: HttpRequest) -> HttpResponse:
    """How many agents are ready in each group the user may call via (VCC's availability query, cached briefly)."""
    user = await request.auser()
    if not await sync_to_async(user.has_perm)("calls.place_group_call"):
        raise PermissionDenied("You may not call via groups.")
    groups = await sync_to_async(dialing.callable_groups)(user)
    counts: dict[int, int | None] = {}
    error = ""
    async with get_async_client() as client:
        for group in groups:
            key = f"ready:{group.display_id}"
            count = await cache.aget(key)
            if count is None:
                try:
                    count = (await client.agents_ready([group.display_id])).count
                    await cache.aset(key, count, AVAILABILITY_SECONDS)
                except VCCError as exc:
                    error = exc.user_message
            counts[group.pk] = count
    wanted = {int(g) for g in request.GET.getlist("checked") if g.isdigit()}
    context = {
        "groups": [(g, counts.get(g.pk)) for g in groups],
        "preselected": wanted,
        "availability_error": error,
        "availability_loaded": True,
    }
    return await _render(request, "calls/contact_detail.html#group_choices", context)


@require_GET
@login_required
@permission_required("calls.view_agent", raise_exception=True)
def agent_directory(request: HttpRequest) -> HttpResponse:
    agents = Agent.objects.filter(is_active=True).select_related("user").prefetch_related("groups")
    context: dict[str, object] = {
        "agents": agents,
        "me": dialing.user_agent(request.user),
        "can_call": request.user.has_perm("calls.place_call"),
    }
    if (token := request.GET.get("call")) and (call_pk := dialing.call_from_regarding(token)):
        call = Call.objects.visible_to(request.user).filter(pk=call_pk, to_agent__isnull=False).first()
        if call:
            context |= _panel_context(call, user=request.user)
    return render(request, "calls/agent_directory.html", context)


@require_GET
@login_required
@permission_required("calls.view_agent", raise_exception=True)
async def agent_availability(request: HttpRequest) -> HttpResponse:
    """Which agents VCC has ready for a phone call now; swapped into the directory's badges out of band."""
    ready = await cache.aget("ready-agents")
    error = ""
    if ready is None:
        try:
            async with get_async_client() as client:
                ready = set((await client.agents_ready(count_only=False)).agent_ids)
            await cache.aset("ready-agents", ready, AVAILABILITY_SECONDS)
        except VCCError as exc:
            log.warning("agent availability failed: %s (status %s)", exc.message, exc.status)
            error = exc.user_message
    agents = [a async for a in Agent.objects.filter(is_active=True).only("display_id")]
    context = {"statuses": [(a.display_id, None if error else a.display_id in ready) for a in agents], "error": error}
    return await _render(request, "calls/agent_directory.html#availability", context)


def _agent_click(user, request: HttpRequest, pk: int) -> dialing.Click:
    to_agent = get_object_or_404(Agent, pk=pk)
    plan = dialing.plan_for_agent(user=user, to_agent=to_agent)
    return dialing.start_click(user=user, plan=plan, request_id=_request_id(request), base_url=_base_url(request))


@require_POST
@login_required
@permission_required("calls.view_agent", raise_exception=True)
@_refusals_as_400
async def call_agent(request: HttpRequest, pk: int) -> HttpResponse:
    user = await request.auser()
    click = await sync_to_async(_agent_click)(user, request, pk)
    call = await _send(click)
    if not request.htmx:
        return redirect(reverse("agent_directory") + f"?call={dialing.regarding_token(call)}")
    me = await sync_to_async(dialing.user_agent)(user)
    can_call = await sync_to_async(user.has_perm)("calls.place_call")
    context = await sync_to_async(_panel_context)(call, user=user, me=me, can_call=can_call)
    return await _render(request, "calls/agent_directory.html#agent_call", context)
