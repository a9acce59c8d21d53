"""The call bar: the person's calls still going on or waiting for a wrap-up, shown on every page.

Read from the database only (one query, one more to count the person's callbacks due, plus the disposition codes
and the groups a callback may be promised to when a wrap-up is due): VCC is asked about a
live call by `follow`, which the bar's view calls and which claims at most one look per call per FOLLOW_INTERVAL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from django.db.models import Case, IntegerField, Sum, Value, When, Window

from calls import callbacks
from calls import permissions as perms
from calls.calling.placing import LIVE_CALL_WINDOW
from calls.models import AgentGroup, Call, DispositionCode

if TYPE_CHECKING:
    from django.contrib.auth.models import User

BAR_WINDOW = timedelta(hours=12)  # calls older than this waiting for a wrap-up are left to the call log
BAR_SIZE = 3  # calls shown; the rest are "and N more", with a link to the call log


def with_whom(call: Call) -> str:
    """Who the call is with, in words: the contact, the colleague, or the number."""
    if call.contact_id and call.contact is not None:
        return call.contact.name
    return call.destination


def on_call_words(call: Call) -> str:
    return f"You are on a call with {with_whom(call)}."


def holds_phone(call: Call, user: User, *, now: datetime) -> bool:
    """Whether this call, still going on, rings or holds the user's own phone (so another click would be refused)."""
    agents = (call.from_agent if call.from_agent_id else None, call.answered_by if call.answered_by_id else None)
    mine = any(agent is not None and agent.user_id == user.pk for agent in agents)  # theirs, or a group call they took
    return mine and call.in_progress and call.requested_at >= now - LIVE_CALL_WINDOW


@dataclass
class BarItem:
    """One call in the bar, with what the bar says about it."""

    call: Call
    phase: str  # the panel's words (calls/views/calling.py: panel_context)
    recording: str  # VCC's recording status, or a change asked for moments ago
    now: datetime

    @property
    def with_whom(self) -> str:
        return with_whom(self.call)

    @property
    def lost(self) -> bool:
        """VCC could not be asked about this live call: its state is unknown (no timer, pulse or recording buttons,
        as on the panel)."""
        return self.call.is_live and self.call.lost_contact_since is not None

    @property
    def talk_since(self) -> str:
        """When talk began, ISO 8601 in UTC, for app.js's timer (data-talk-since); "" before it began, or while
        contact with VCC is lost."""
        at = self.call.connected_at
        if at is None or not self.call.is_live or self.lost:
            return ""
        return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    @property
    def talked(self) -> str:
        """The talk time so far as the timer shows it (m:ss, h:mm:ss), for the first paint and without JavaScript."""
        at = self.call.connected_at
        seconds = max(0, int((self.now - at).total_seconds())) if at is not None else 0
        hours, rest = divmod(seconds, 3600)
        return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@dataclass
class Bar:
    calls: list[Call] = field(default_factory=list)
    more: int = 0  # own calls of the bar's kind beyond the ones shown
    on_call: Call | None = None  # the one holding the user's phone now, if any
    items: list[BarItem] = field(default_factory=list)  # the calls with their words, filled by the view
    dispositions: list[DispositionCode] = field(default_factory=list)  # for the wrap-up, when one is due
    callback_groups: list[AgentGroup] = field(default_factory=list)  # who a wrap-up may promise a callback to
    callbacks_due: int = 0  # the person's callbacks whose time has come ("N callbacks due")

    @property
    def in_progress(self) -> bool:
        """Whether the bar should ask again soon (a call may change without a click)."""
        return any(call.in_progress for call in self.calls)

    @property
    def on_call_words(self) -> str:
        return on_call_words(self.on_call) if self.on_call is not None else ""


def bar_calls(user: User, *, now: datetime) -> Bar:
    """The user's own calls going on, and those ended in the last BAR_WINDOW without a wrap-up, newest first."""
    if not user.is_authenticated:
        return Bar()
    rows: list[Call] = list(
        # Going on, or to wrap up, by the model's own rules (Call.objects.in_progress, to_wrap_up).
        ((Call.objects.in_progress() | Call.objects.to_wrap_up()) & Call.objects.changeable_by(user))
        .filter(requested_at__gte=now - BAR_WINDOW)
        .with_parties()
        .annotate(
            # How many there are in all, in the same query: a sum of ones over every row the filter keeps.
            bar_total=Window(Sum(Value(1), output_field=IntegerField())),
            bar_going_on=Case(When(state__in=Call.IN_PROGRESS, then=Value(0)), default=Value(1)),
        )
        .order_by("bar_going_on", "-requested_at", "-pk")[:BAR_SIZE]  # what is going on first
    )
    total = getattr(rows[0], "bar_total", 0) if rows else 0
    on_call = next((call for call in rows if holds_phone(call, user, now=now)), None)
    due = callbacks.due_count(user, now) if user.has_perm(perms.VIEW_CALLBACK) else 0
    return Bar(calls=rows, more=max(0, total - len(rows)), on_call=on_call, callbacks_due=due)
