from __future__ import annotations

import logging

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required, permission_required
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from calls import dialing
from calls.models import Agent, Call
from calls.vcc import VCCError, get_async_client
from calls.views.calling import (
    AVAILABILITY_SECONDS,
    _base_url,
    _refusals_as_400,
    _render,
    _request_id,
    _send,
    panel_context,
)

log = logging.getLogger(__name__)


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
            context |= panel_context(call, user=request.user)
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
    context = await sync_to_async(panel_context)(call, user=user, me=me, can_call=can_call)
    return await _render(request, "calls/agent_directory.html#agent_call", context)
