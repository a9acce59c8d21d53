"""Who is ready: whether VCC has the caller's agent ready for a phone call, and how many are ready per group.

While VCC's events flow (calls/calling/events.py keeps each agent's presence from `agent.presencechanged`), this is
read from them: ready means presence Ready and on no live call vccweb knows of. Otherwise VCC is asked (cached
briefly), as before the events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache
from django.utils import timezone

from calls.calling.common import _db, log
from calls.models import Agent, AgentGroup, Call
from calls.vcc import VCCError, budget, get_async_client

READY_SECONDS = 5  # how long VCC's ready-agent answers are reused


@dataclass
class Readiness:
    me: bool | None  # whether VCC has the caller's agent ready for a phone call (None: unknown)
    groups: dict[int, int | None]  # ready agents per group pk (None: unknown)
    error: str = ""


PRESENCE_READY = "Ready"


def presence_known(*, now: datetime | None = None) -> bool:
    """Whether readiness is read from VCC's presence events: they flow (calls.calling.following.events_flowing),
    and every active agent has had one (VCC sends one only on a change: an agent who has not changed since events
    began is unknown, so VCC is asked)."""
    from calls.calling.following import events_flowing

    if not events_flowing(now=now or timezone.now()):
        return False
    return not Agent.objects.filter(is_active=True, presence_since__isnull=True).exists()


def ready_by_presence(group: AgentGroup | None = None) -> set[str]:
    """Agents whose presence (VCC's events) is Ready and who are on no live call vccweb knows of; of one group."""
    agents = Agent.objects.filter(is_active=True, presence=PRESENCE_READY)
    if group is not None:
        agents = agents.filter(groups=group)
    busy = Call.objects.filter(state__in=Call.IN_PROGRESS)
    agents = agents.exclude(pk__in=busy.exclude(from_agent=None).values("from_agent"))
    agents = agents.exclude(pk__in=busy.exclude(answered_by=None).values("answered_by"))
    return set(agents.values_list("display_id", flat=True))


async def _presence_current() -> bool:
    flowing = await cache.aget("calls:events-flowing")
    if flowing is None:
        flowing = await _db(presence_known)()
        await cache.aset("calls:events-flowing", flowing, READY_SECONDS)
    return bool(flowing)


async def ready_agent_ids() -> tuple[set[str] | None, str]:
    """Which agents are ready for a phone call now: from VCC's presence events while they flow, else asked of VCC
    (cached briefly); or None and why not."""
    if await _presence_current():
        return await _db(ready_by_presence)(), ""
    ready = await cache.aget("calls:ready-agents")
    if ready is not None:
        return ready, ""
    try:
        with budget.priority(budget.READINESS):  # refused when the budget is tight: "unknown" is shown
            async with get_async_client() as client:
                ready = set((await client.agents_ready(count_only=False)).agent_ids)
    except VCCError as exc:
        log.warning("agent availability failed: %s (status %s)", exc.message, exc.status)
        return None, exc.user_message
    await cache.aset("calls:ready-agents", ready, READY_SECONDS)
    return ready, ""


async def readiness(*, agent: Agent | None, groups: Sequence[AgentGroup]) -> Readiness:
    """Before the click: is the caller ready, and how many are ready in each group (VCC, cached briefly)."""
    result = Readiness(me=None, groups={})
    if agent is not None:
        ready, result.error = await ready_agent_ids()
        result.me = None if ready is None else agent.display_id in ready
    if groups and await _presence_current():
        for group in groups:
            result.groups[group.pk] = len(await _db(ready_by_presence)(group))
    elif groups:
        with budget.priority(budget.READINESS):
            async with get_async_client() as client:
                for group in groups:
                    key = f"calls:ready:{group.display_id}"
                    count = await cache.aget(key)
                    if count is None:
                        try:
                            count = (await client.agents_ready([group.display_id])).count
                            await cache.aset(key, count, READY_SECONDS)
                        except VCCError as exc:
                            result.error = exc.user_message
                    result.groups[group.pk] = count
    return result
