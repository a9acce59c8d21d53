"""Who is ready: whether VCC has the caller's agent ready for a phone call, and how many are ready per group
(cached briefly)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.core.cache import cache

from calls.calling.common import log
from calls.models import Agent, AgentGroup
from calls.vcc import VCCError, budget, get_async_client

READY_SECONDS = 5  # how long VCC's ready-agent answers are reused


@dataclass
class Readiness:
    me: bool | None  # whether VCC has the caller's agent ready for a phone call (None: unknown)
    groups: dict[int, int | None]  # ready agents per group pk (None: unknown)
    error: str = ""


async def ready_agent_ids() -> tuple[set[str] | None, str]:
    """Which agents VCC has ready for a phone call now (cached briefly), or None and why not."""
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
    if groups:
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
