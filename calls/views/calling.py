from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from calls import dialing
from calls.models import AgentGroup, Call, Contact, ContactPhone, DispositionCode
from calls.vcc import VCCError, get_async_client

log = logging.getLogger(__name__)

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


def panel_context(call: Call, *, user, **extra: object) -> dict[str, object]:
    return {
        "call": call,
        "can_change": call.is_changeable_by(user),
        "phase": dialing.phase(call),
        "live": call.state in (Call.State.REQUESTED, Call.State.LIVE),
        "dispositions": DispositionCode.objects.filter(is_active=True),
        **extra,
    }


def dialer_context(request: HttpRequest, user, contact: Contact, call: Call | None = None) -> dict[str, object]:
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
        **(panel_context(call, user=user) if call else {}),
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
        context = await sync_to_async(dialer_context)(request, user, contact, call)
        response = await _render(request, "calls/contact_detail.html#dialer", context)
    else:
        context = await sync_to_async(_list_click_context)(user, call)
        response = await _render(request, "calls/contact_list.html#list_call", context)
    return trigger_client_event(response, "calls-changed")


def _list_click_context(user, call: Call) -> dict[str, object]:
    contact = call.contact
    return {
        **panel_context(call, user=user),
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
    if call.state == Call.State.LIVE and call.vcc_call_id and await cache.aadd(f"vcc-detail:{call.pk}", 1, 1):
        detail, error = None, None
        try:
            async with get_async_client() as client:
                detail = await client.get_call(call.vcc_call_id)
        except VCCError as exc:
            error = exc
        call, refresh_error = await sync_to_async(dialing.record_refresh)(call, detail=detail, error=error)
    pending = await cache.aget(f"recording-pending:{call.pk}")
    if pending and call.state == Call.State.LIVE and call.recording_status != pending:
        # VCC applies recording changes asynchronously: show what was asked for until VCC reports it.
        call.recording_status = pending
    context = await sync_to_async(panel_context)(call, user=user, refresh_error=refresh_error)
    response = await _render(request, "calls/call_panel.html", context)
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
    elif call.state != Call.State.LIVE or not call.vcc_call_id:
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
    context = await sync_to_async(panel_context)(call, user=user, action_error=error)
    return await _render(request, "calls/call_panel.html", context)


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
    context = await sync_to_async(panel_context)(
        call,
        user=user,
        action_error=error,
        changed=changed,
        chosen=disposition.pk if disposition else None,
        notes=notes,
    )
    response = await _render(request, "calls/call_panel.html", context)
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
