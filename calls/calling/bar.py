"""The call bar: the person's calls still going on or waiting for a wrap-up, shown on every page.

Read from the database only (one query for the calls' ids, one more to load them when there are any, one to count
the person's callbacks due, plus the disposition codes and the groups a callback may be promised to when a wrap-up
is due): VCC is asked about a
live call by `follow`, which the bar's view calls and which claims at most one look per call per FOLLOW_INTERVAL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import connection

from calls import callbacks
from calls import permissions as perms
from calls.calling.placing import LIVE_CALL_WINDOW
from calls.models import Agent, AgentGroup, Call, DispositionCode

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
    ids, total = bar_call_ids(user.pk, since=now - BAR_WINDOW)
    found = Call.objects.with_parties().in_bulk(ids) if ids else {}
    rows = [found[pk] for pk in ids if pk in found]
    on_call = next((call for call in rows if holds_phone(call, user, now=now)), None)
    due = callbacks.due_count(user, now) if user.has_perm(perms.VIEW_CALLBACK) else 0
    return Bar(calls=rows, more=max(0, total - len(rows)), on_call=on_call, callbacks_due=due)


def bar_call_ids(user_id: int, *, since: datetime, size: int = BAR_SIZE) -> tuple[list[int], int]:
    """The ids of the calls the user's bar shows (at most `size`: what is going on first, then the newest) and how
    many there are in all: calls requested since `since`, going on or to wrap up, that the user may act on. The
    model's rules say which (`(Call.objects.in_progress() | Call.objects.to_wrap_up()) & Call.objects.changeable_by(
    user)`; tests/test_click_sql.py checks that both agree on every kind of call).

    Raw SQL, because every page and every poll of the bar runs it, and mostly finds nothing: the ORM's query with
    the parties took 14 ms in the tests' database (2 ms of CPU building it, 8 ms of PostgreSQL planning its joins),
    this one 0.6 ms; at 1 M calls 17 to 27 ms against 1.3 to 1.5 ms at the median (bench/bar_bench.py). Both halves
    of the filter can be read by index (the person's calls by clicker, agent or answerer, the agent's id found once;
    or the calls going on and those waiting for a wrap-up: PostgreSQL took those at 1 M calls), so it never scans
    the call log. The calls found, if any, are then loaded with their parties."""
    call, agent = Call._meta.db_table, Agent._meta.db_table
    params: dict[str, Any] = {
        "since": connection.ops.adapt_datetimefield_value(since),
        "ended": str(Call.State.ENDED),
        "user": user_id,
        "size": size,
    }

    def among(name: str, values: tuple[str, ...]) -> str:  # `IN (…)` with a parameter each (SQLite takes no list)
        params.update({f"{name}{i}": str(value) for i, value in enumerate(values)})
        return "IN (" + ", ".join(f"%({name}{i})s" for i in range(len(values))) + ")"

    going_on = among("going_on", Call.IN_PROGRESS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT c.id, sum(1) OVER () FROM {call} c  -- in all, by a sum: the pages are checked to COUNT nothing
            WHERE (
                (c.created_by_id = %(user)s AND c.requested_at >= %(since)s AND (
                    c.answered_by_id IS NULL OR NOT EXISTS (
                        SELECT 1 FROM {agent} a WHERE a.id = c.answered_by_id AND a.user_id IS NOT NULL)))
                OR (c.from_agent_id = (SELECT id FROM {agent} WHERE user_id = %(user)s)
                    AND c.requested_at >= %(since)s)
                OR (c.answered_by_id = (SELECT id FROM {agent} WHERE user_id = %(user)s)
                    AND c.requested_at >= %(since)s)
            ) AND (c.state {going_on} OR (
                c.state = %(ended)s AND c.wrapped_up_at IS NULL AND c.to_agent_id IS NULL
                AND (c.connected_at IS NOT NULL OR NOT c.outcome {among("never", Call.NEVER_CONNECTED)})))
            ORDER BY CASE WHEN c.state {going_on} THEN 0 ELSE 1 END, c.requested_at DESC, c.id DESC
            LIMIT %(size)s""",
            params,
        )
        rows = cursor.fetchall()
    return [pk for pk, _ in rows], (rows[0][1] if rows else 0)
