"""The shapes of the API's calls (calls/api/calls.py): the call resource, which outgoing webhooks reuse, one call
with its history, a page of the log, and the log's filters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from ninja import Field, Schema
from pydantic import AfterValidator, ConfigDict, StrictInt

from calls.api.paging import DEFAULT_LIMIT, MAX_LIMIT

BIGINT_MAX = 2**63 - 1


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]  # text PostgreSQL can store
Id = Annotated[StrictInt, Field(ge=1, le=BIGINT_MAX)]  # a database id


class CallOut(Schema):
    """A call as the API shows it (outgoing webhooks reuse this shape)."""

    id: int
    state: str = Field(description="requested, live, ended, failed (not placed) or unconfirmed (may have been placed)")
    outcome: str = Field(description="in_progress, answered, no_answer, agent_no_answer, busy, failed, …")
    to: str | None = Field(description="The number called, E.164; null for a call to a colleague")
    to_agent: str | None = Field(description="The colleague called (agent display id), or null")
    contact: int | None
    agent: str | None = Field(description="The agent who took the call (display id): the caller's, or who answered")
    answered_by: str | None = Field(description="For a call via groups: the agent who answered it, once known")
    via_groups: list[int] = Field(description="The groups (ids) a call via groups was offered to, by their names")
    caller_id: str | None = Field(description="The number presented to the contact (E.164), or null for VCC's own")
    placed_by: str | None = Field(description="The username of who placed it")
    requested_at: datetime
    connected_at: datetime | None
    ended_at: datetime | None
    duration_seconds: int | None = Field(description="Talk time; null while live, and for a call that never connected")
    disposition: str | None
    notes: str
    wrapped_up_at: datetime | None
    error: str | None = Field(description="What went wrong, in plain words, or null")
    vcc_call_id: str | None
    url: str = Field(description="The call's page in vccweb")


class HistoryLine(Schema):
    at: datetime
    what: str
    detail: str


class CallEventOut(Schema):
    at: datetime
    kind: str = Field(description="progress, error, recording, wrap_up or closed")
    detail: str


class CallbackIn(Schema):
    """A callback promised at a wrap-up (POST /api/v1/calls/{id}/wrap-up), checked as the call panel checks it."""

    model_config = ConfigDict(extra="forbid")

    at: Text = Field(
        max_length=64,
        description="When to call back, ISO 8601 (2026-12-07T15:30:00+00:00); without an offset, in the site's time "
        "zone. From now to 90 days ahead.",
    )
    group: Id | None = Field(None, description="A group (id) to call back, or null for the token's owner")
    note: Text = Field("", max_length=200)


class CallbackOut(Schema):
    """A callback promised on a call (calls/callbacks.py)."""

    id: int
    due_at: datetime
    assigned_to: str | None = Field(description="The username of who is to call back, or null for a group")
    group: int | None = Field(description="The group (id) to call back, or null")
    note: str
    state: str = Field(description="open, done or cancelled")


class CallDetailOut(CallOut):
    history: list[HistoryLine] = Field(description="Everything that happened, oldest first, as the call's page says")
    events: list[CallEventOut] = Field(description="The stored events behind the history, oldest first")
    callbacks: list[CallbackOut] = Field(description="The open callbacks promised at this call's wrap-up")


class CallPage(Schema):
    items: list[CallOut]
    next: str | None = Field(description="The next page's address, or null on the last page")


class CallFilters(Schema):
    """The call log's filters (as its page has them), the sort and the page; all optional."""

    start: str | None = Field(None, description="From this day (YYYY-MM-DD), in vccweb's time zone")
    end: str | None = Field(None, description="To this day, included")
    agent: str | None = Field(None, description="Calls taken by this agent (id)")
    group: str | None = Field(None, description="Calls via this group (id)")
    via: str | None = Field(
        None, description="agent: from one agent's phone; group: via groups; unanswered: via groups, nobody answered"
    )
    outcome: str | None = Field(None, description="answered, no_answer, agent_no_answer, busy, failed, …")
    disposition: str | None = Field(None, description="A disposition code; '-' for none")
    clid: str | None = Field(None, description="The presented caller ID (E.164); '-' for VCC's default")
    has_error: str | None = Field(None, description="yes or no")
    wrap_up: str | None = Field(None, description="on: only calls that wait for a wrap-up")
    contact: str | None = Field(None, description="Calls to this contact (id)")
    hour: str | None = Field(None, description="Calls placed in this hour of the day (0-23)")
    error: str | None = Field(None, description="Calls whose VCC message starts with this")
    error_status: str | None = Field(None, description="Calls VCC answered with this HTTP status")
    sort: str | None = Field(None, description="-time (default), time, -duration or duration")
    after: str | None = Field(None, description="The cursor of the page to read, from a `next` link")
    limit: str | None = Field(None, description=f"Calls per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})")
