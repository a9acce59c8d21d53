"""The agent directory: colleagues with VCC's readiness, and agent-to-agent calls."""

from __future__ import annotations

from django.contrib.auth.decorators import permission_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from calls import calling
from calls import permissions as perms
from calls.forms import ClickForm, first_error
from calls.models import Agent, Call
from calls.views.access import login_required
from calls.views.calling import _refusal, _render, _user, base_url, panel_context, refusals_as_400, render_panel
from calls.views.http import AuthedRequest


@require_GET
@login_required
@permission_required(perms.VIEW_AGENT, raise_exception=True)
def agent_directory(request: AuthedRequest) -> HttpResponse:
    agents = Agent.objects.filter(is_active=True).select_related("user").prefetch_related("groups")
    caller = calling.caller_for(request.user)
    context: dict[str, object] = {"agents": agents, "me": caller.agent, "can_call": caller.may_call}
    if (token := request.GET.get("call")) and (request_id := calling.request_id_from_regarding(token)):
        call = Call.objects.visible_to(request.user).with_parties().with_request_id(request_id).first()
        if call is not None and call.to_agent_id:
            context |= panel_context(call, user=request.user)
    return render(request, "calls/agent_directory.html", context)


@require_GET
@login_required
@permission_required(perms.VIEW_AGENT, raise_exception=True)
async def agent_availability(request: AuthedRequest) -> HttpResponse:
    """Which agents VCC has ready for a phone call now; swapped into the directory's badges out of band."""
    ready, error = await calling.ready_agent_ids()
    agents = [a async for a in Agent.objects.filter(is_active=True).only("display_id")]
    statuses = [(a.display_id, None if ready is None else a.display_id in ready) for a in agents]
    return await _render(request, "calls/agent_directory.html#availability", {"statuses": statuses, "error": error})


@require_POST
@login_required
@permission_required(perms.VIEW_AGENT, raise_exception=True)
@refusals_as_400
async def call_agent(request: AuthedRequest, pk: int) -> HttpResponse:
    form = ClickForm(request.POST)
    if not form.is_valid():
        return _refusal(first_error(form))
    user = await _user(request)
    call = await calling.place_agent_call(
        user=user, request_id=str(form.cleaned_data["request_id"]), base_url=base_url(request), to_agent_pk=pk
    )
    if not request.htmx:
        return redirect(reverse("agent_directory") + f"?call={calling.regarding_token(call)}")
    # The call rang the caller's own agent first: that is "me" for the fresh Call button.
    return await render_panel(
        request, "calls/agent_directory.html#agent_call", call, user, me=call.from_agent, can_call=True
    )
