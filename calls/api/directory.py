"""The API's reads of what admins keep: agents, groups (with ready counts), callback numbers, dispositions.

Readiness is what the pages show, read the way they read it (calls/calling/ready.py): from VCC's presence events
while they flow, else asked of VCC under the request budget's readiness share and cached for a few seconds, so
reading these as often as one likes never floods VCC."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from calls import calling, rules
from calls import permissions as perms
from calls.api.auth import require
from calls.api.paging import PageQuery, keyset
from calls.calling.common import _db
from calls.models import Agent, AgentGroup, CallbackNumber, DispositionCode

router = Router(tags=["directory"])

VIEW_GROUPS = "calls.view_agentgroup"
VIEW_CALLBACK_NUMBERS = "calls.view_callbacknumber"


class Disposition(Schema):
    code: str
    description: str
    action: str  # "", "number_dnc" or "contact_dnc": what choosing it also does
    active: bool


class DispositionList(Schema):
    items: list[Disposition]
    next: str | None = Field(description="The next page's address, or null on the last page")


@router.get("/dispositions", response=DispositionList, summary="The wrap-up dispositions, in the order agents see them")
def dispositions(request: HttpRequest, page: Query[PageQuery]) -> dict[str, Any]:
    require(request, "calls:read")
    rows, following = keyset(request, DispositionCode.objects.all(), (("position", "int"), ("code", "text")), page)
    items = [Disposition(code=d.code, description=d.description, action=d.action, active=d.is_active) for d in rows]
    return {"items": items, "next": following}


# --- Agents ------------------------------------------------------------------------------------------------


class AgentOut(Schema):
    id: int
    display_id: str = Field(description="VCC's agent display id")
    name: str
    groups: list[int] = Field(description="The groups (ids) the agent is in")
    ready: bool | None = Field(description="Whether VCC has the agent ready for a call now; null when unknown")


class AgentList(Schema):
    items: list[AgentOut]
    ready_error: str | None = Field(description="Why readiness is unknown, or null")
    next: str | None = Field(description="The next page's address, or null on the last page")


BY_NAME = (("name", "text"), ("id", "int"))


def _agents(request: HttpRequest, page: PageQuery) -> tuple[list[Agent], str | None]:
    return keyset(request, Agent.objects.filter(is_active=True).prefetch_related("groups"), BY_NAME, page)


@router.get(
    "/agents",
    response=AgentList,
    summary="Active agents, with whether each is ready",
    description="The agent directory page's agents and readiness.",
)
async def agents(request: HttpRequest, page: Query[PageQuery]) -> dict[str, Any]:
    await _db(require)(request, "calls:read", perms.VIEW_AGENT)
    rows, following = await _db(_agents)(request, page)
    ready, error = await calling.ready_agent_ids()
    items = [
        {
            "id": a.pk,
            "display_id": a.display_id,
            "name": a.name,
            "groups": sorted(g.pk for g in a.groups.all()),
            "ready": None if ready is None else a.display_id in ready,
        }
        for a in rows
    ]
    return {"items": items, "ready_error": error or None, "next": following}


# --- Groups ------------------------------------------------------------------------------------------------


class GroupOut(Schema):
    id: int
    display_id: str = Field(description="VCC's group display id")
    name: str
    members: list[str] = Field(description="The agents in it (display ids)")
    default_caller_id: str | None = Field(description="The callback number its calls present by default, or null")
    ready: int | None = Field(
        description="How many of its agents VCC has ready now, for those who may call via groups (as the contact "
        "page shows them); null when unknown or not yours to see"
    )


class GroupList(Schema):
    items: list[GroupOut]
    ready_error: str | None = Field(description="Why some ready counts are unknown, or null")
    next: str | None = Field(description="The next page's address, or null on the last page")


def _groups(request: HttpRequest, page: PageQuery) -> tuple[list[AgentGroup], list[AgentGroup], str | None]:
    """A page of the groups, those of them whose ready count this person sees (the groups they may call via), and
    the next page's address."""
    rows = AgentGroup.objects.filter(is_active=True).select_related("default_callback_number")
    rows = rows.prefetch_related("members")
    groups, following = keyset(request, rows, BY_NAME, page)
    return groups, rules.visible_groups(groups, calling.caller_for(request.user)), following  # type: ignore[arg-type]


@router.get(
    "/groups",
    response=GroupList,
    summary="Agent groups, with how many agents are ready in each",
    description="Ready counts are those the contact page shows a person who may call via groups.",
)
async def groups(request: HttpRequest, page: Query[PageQuery]) -> dict[str, Any]:
    await _db(require)(request, "calls:read", VIEW_GROUPS)
    everyone, counted, following = await _db(_groups)(request, page)
    ready = await calling.readiness(agent=None, groups=counted) if counted else calling.Readiness(me=None, groups={})
    items = [
        {
            "id": g.pk,
            "display_id": g.display_id,
            "name": g.name,
            "members": sorted(a.display_id for a in g.members.all()),
            "default_caller_id": g.default_callback_number.number if g.default_callback_number else None,
            "ready": ready.groups.get(g.pk),
        }
        for g in everyone
    ]
    return {"items": items, "ready_error": ready.error or None, "next": following}


# --- Callback numbers --------------------------------------------------------------------------------------


class CallbackNumberOut(Schema):
    id: int
    number: str = Field(description="E.164")
    label: str
    is_default: bool = Field(description="The account default")
    local_presence: bool = Field(description="Presented on calls to its own country unless another is chosen")
    may_present: bool = Field(
        description="Whether a call from your own phone may present it (as caller_id); via groups, the groups decide"
    )


class CallbackNumberList(Schema):
    items: list[CallbackNumberOut]
    next: str | None = Field(description="The next page's address, or null on the last page")


@router.get(
    "/callback-numbers",
    response=CallbackNumberList,
    summary="The active callback numbers (presented caller IDs)",
)
def callback_numbers(request: HttpRequest, page: Query[PageQuery]) -> dict[str, Any]:
    require(request, "calls:read", VIEW_CALLBACK_NUMBERS)
    caller = calling.caller_for(request.user)  # type: ignore[arg-type]  # the token's owner (calls.api.auth)
    usable = (
        set(CallbackNumber.objects.usable_by(agent=caller.agent).values_list("pk", flat=True))
        if caller.agent is not None
        else set()
    )
    rows, following = keyset(
        request, CallbackNumber.objects.filter(is_active=True), (("label", "text"), ("id", "int")), page
    )
    items = [
        {
            "id": n.pk,
            "number": n.number,
            "label": n.label,
            "is_default": n.is_default,
            "local_presence": n.local_presence,
            "may_present": n.pk in usable,
        }
        for n in rows
    ]
    return {"items": items, "next": following}
