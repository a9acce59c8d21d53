"""Bring agents, groups and callback numbers in line with VCC's User Admin API.

VCC is the truth for who exists and which numbers are configured; vccweb keeps its own links (login users,
defaults, restrictions). Nothing is deleted: calls refer to agents, groups and numbers, so what VCC no longer has is
marked inactive instead (and active again when VCC has it again).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from calls import directory, phones
from calls.models import Agent, AgentGroup, CallbackNumber
from calls.vcc import UserAdminClient, VCCError
from calls.vcc.types import VCCCallbackNumber, VCCGroup, VCCUser


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return (
            [f"created {item}" for item in self.created]
            + [f"updated {item}" for item in self.updated]
            + [f"deactivated {item}" for item in self.deactivated]
            + [f"problem: {item}" for item in self.problems]
        )


def sync_from_vcc(client: UserAdminClient, *, dry_run: bool = False, now: datetime | None = None) -> SyncReport:
    """Read everything first (VCC errors raise before anything changes), then apply it in one transaction."""
    users = [u for u in client.users(include="All") if u.agent_display_id]
    if not users and Agent.objects.filter(is_active=True).exists():
        # Every agent retired at once is a wrong account or credentials that see nobody, not a company that left.
        raise VCCError(
            "no users with an agent display ID",
            user_message="VCC listed no agents, so every agent would be retired: check the account and the "
            "credentials' access to its users",
        )
    groups = client.groups()
    members = {g.group_id: client.group_members(g.group_id) for g in groups}
    numbers = {u.user_id: client.callback_numbers(u.user_id) for u in users if u.active}
    report = SyncReport()
    with transaction.atomic():
        agents = _sync_agents(users, report)
        _sync_groups(groups, members, agents, report)
        by_user = {u.user_id: agents[u.agent_display_id] for u in users if u.agent_display_id in agents}
        _sync_callback_numbers(numbers, by_user, report, now=now or timezone.now())
        if dry_run:
            transaction.set_rollback(True)
    return report


# Bookkeeping saved with a change but not a change of its own to report: "retired by the sync" goes with "active".
_UNSAID = {"retired_by_sync"}


def _apply(obj: Model, values: dict[str, object], label: str, report: SyncReport) -> None:
    changed = [name for name, value in values.items() if getattr(obj, name) != value]
    # In words for the preview: "active: yes → no", not the field's name.
    words = [_change_in_words(obj, name, getattr(obj, name), values[name]) for name in changed if name not in _UNSAID]
    for name in changed:
        setattr(obj, name, values[name])
    if obj.pk is None:
        obj.save()
        report.created.append(label)
    elif changed:
        obj.save(update_fields=changed)
        if words:
            report.updated.append(f"{label} ({'; '.join(words)})")


def _change_in_words(obj: Model, name: str, old: object, new: object) -> str:
    field_name = str(getattr(obj._meta.get_field(name), "verbose_name", name))

    def said(value: object) -> str:
        if isinstance(value, bool):
            return "yes" if value else "no"
        if value in (None, ""):
            return "none"
        return f"“{value}”"

    return f"{field_name}: {said(old)} → {said(new)}"


def _sync_agents(users: list[VCCUser], report: SyncReport) -> dict[str, Agent]:
    agents: dict[str, Agent] = {}
    for user in users:
        display_id = user.agent_display_id
        assert display_id, "sync_from_vcc passes only the users with a display ID"
        agent = Agent.objects.filter(display_id=display_id).first() or Agent(display_id=display_id)
        name = user.name or agent.name or user.username or ""
        values: dict[str, object] = {"name": name, "vcc_user_id": user.user_id, "is_active": bool(user.active)}
        _apply(agent, values, f"agent {display_id} {name}", report)
        agents[agent.display_id] = agent
    for agent in Agent.objects.filter(is_active=True).exclude(display_id__in=agents):
        agent.is_active = False
        agent.save(update_fields=["is_active"])
        report.deactivated.append(f"agent {agent.display_id} {agent.name} (not in VCC)")
    return agents


def _sync_groups(
    groups: list[VCCGroup], members: dict[str, list[VCCUser]], agents: dict[str, Agent], report: SyncReport
) -> None:
    seen: set[str] = set()
    for group in groups:
        if not group.display_id:
            report.problems.append(f"group “{group.name}” has no display ID in VCC, so it cannot be called via")
            continue
        seen.add(group.display_id)
        row = AgentGroup.objects.filter(display_id=group.display_id).first() or AgentGroup(display_id=group.display_id)
        values: dict[str, object] = {"name": group.name or row.name, "vcc_group_id": group.group_id, "is_active": True}
        _apply(row, values, f"group {group.display_id}", report)
        wanted = {agents[u.agent_display_id].pk for u in members[group.group_id] if u.agent_display_id in agents}
        if set(row.members.values_list("pk", flat=True)) != wanted:
            row.members.set(wanted)
            report.updated.append(f"group {group.display_id} (members: now {len(wanted)})")
    # A call via a group VCC no longer has fails every time: the group is no longer offered (its members are kept).
    for row in AgentGroup.objects.filter(is_active=True).exclude(display_id__in=seen):
        row.is_active = False
        row.save(update_fields=["is_active"])
        report.deactivated.append(f"group {row.display_id} {row.name} (not in VCC)")
        if defaulting := list(Agent.objects.filter(default_group=row).values_list("display_id", flat=True)):
            report.problems.append(
                f"group {row.display_id} {row.name} is retired but is the default group of agent"
                f"{'s' if len(defaulting) > 1 else ''} {', '.join(sorted(defaulting))}: their calls via it are "
                "refused, pick another default group on their admin page"
            )


def _sync_callback_numbers(
    numbers: dict[str, list[VCCCallbackNumber]], by_user: dict[str, Agent], report: SyncReport, *, now: datetime
) -> None:
    """Create numbers VCC has configured; deactivate the ones it no longer has (they would fail every call).

    Also store which agents VCC lists each number for: vccweb never offers a number to an agent VCC does not list
    it for (`CallbackNumberQuerySet.usable_by`).
    """
    seen: set[str] = set()
    listed: dict[str, set[int]] = defaultdict(set)
    rows = CallbackNumber.objects.in_bulk(field_name="number")  # one query, however many numbers VCC has
    for user_id, user_numbers in numbers.items():
        for item in user_numbers:
            try:
                number = phones.to_e164(item.clid or "")
            except ValidationError:  # VCC's data: reported rather than trusted
                report.problems.append(
                    f"callback number “{item.name}” has a number VCC gives that is not one: “{item.clid}”"
                )
                continue
            if user_id in by_user:
                listed[number].add(by_user[user_id].pk)
            if number in seen:
                continue
            seen.add(number)
            row = rows.get(number) or CallbackNumber(number=number)
            # Only the sync's own retirement is undone by the sync: a number an admin deactivated stays inactive.
            values: dict[str, object] = {
                "label": row.label or item.name or number,
                "vcc_callback_number_id": item.callback_number_id,
                # VCC's own form, sent back as presentedCLID: whether VCC compares it as a string is not known.
                "vcc_clid": item.clid.strip(),
                "is_active": row.is_active or row.retired_by_sync,
                "retired_by_sync": False,
            }
            _apply(row, values, f"callback number {number}", report)
    for row in CallbackNumber.objects.filter(is_active=True).exclude(number__in=seen):
        if row.is_default:
            report.problems.append(f"the account default {row} is not configured in VCC: pick another default")
            continue
        row.is_active, row.retired_by_sync = False, True
        row.save(update_fields=["is_active", "retired_by_sync"])
        report.deactivated.append(f"callback number {row.number} (not configured in VCC)")
    _sync_listing(listed, report)
    CallbackNumber.objects.update(vcc_listing_synced_at=now)
    directory.changed()  # update() sends no signal; the click caches usable numbers


def _sync_listing(listed: dict[str, set[int]], report: SyncReport) -> None:
    """Set each number's `vcc_listed_for` to the agents VCC lists it for (nobody, for numbers VCC lacks)."""
    rows = CallbackNumber.objects.prefetch_related("vcc_listed_for")
    display_ids = dict(Agent.objects.values_list("pk", "display_id"))
    for row in rows:
        had = {a.pk for a in row.vcc_listed_for.all()}
        wanted = listed.get(row.number, set())
        if had == wanted:
            continue
        row.vcc_listed_for.set(wanted)
        if row.vcc_listing_synced_at is None and not had:
            continue  # the first listing of a number is not a change worth a line
        added = sorted(display_ids[pk] for pk in wanted - had)
        removed = sorted(display_ids[pk] for pk in had - wanted)
        change = "; ".join(
            part
            for part in (
                f"now offered to agent{'s' if len(added) > 1 else ''} {', '.join(added)}" if added else "",
                f"no longer to agent{'s' if len(removed) > 1 else ''} {', '.join(removed)}" if removed else "",
            )
            if part
        )
        report.updated.append(f"callback number {row.number} (VCC: {change})")
