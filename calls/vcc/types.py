"""Typed requests and results. Every result keeps VCC's JSON in `raw` for the log."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

CONSENT_VALUES = ("Unknown", "OneParty", "TwoParty")
RECORDING_VALUES = ("Paused", "Started")


@dataclass(frozen=True, kw_only=True)
class CallRequest:
    """The body of `POST calls`: exactly one `from_*` and one `to_*` selector (see `validate_call_request`)."""

    from_agent_id: str | None = None
    from_groups: tuple[str, ...] = ()
    presented_clid: str | None = None
    consent: str | None = None
    to_number: str | None = None
    to_agent_id: str | None = None
    to_consent: str | None = None
    reference: str | None = None
    application: str | None = None

    def __post_init__(self) -> None:
        # Accept any sequence from callers but keep the dataclass hashable.
        object.__setattr__(self, "from_groups", tuple(self.from_groups))

    def to_json(self) -> Json:
        source: Json = {}
        if self.from_agent_id:
            source["agentId"] = self.from_agent_id
        if self.from_groups:
            source["groups"] = list(self.from_groups)
        if self.presented_clid:
            source["presentedCLID"] = self.presented_clid
        if self.consent:
            source["consent"] = self.consent
        target: Json = {}
        if self.to_number:
            target["telephoneNumber"] = self.to_number
        if self.to_agent_id:
            target["agentId"] = self.to_agent_id
        if self.to_consent:
            target["consent"] = self.to_consent
        body: Json = {"from": source, "to": target}
        if self.reference:
            body["regarding"] = {"reference": self.reference}
        if self.application:
            body["application"] = self.application
        return body


@dataclass(frozen=True)
class PlacedCall:
    call_id: str
    location: str | None
    status: str | None
    recording_status: str | None
    disposition_code: str | None
    presented_clid: str | None
    raw: Json = field(repr=False)


# VCC documents only "Active" and null for a call's status; accept a few obvious end words too.
_ENDED_STATUSES = {"ended", "completed", "complete", "finished", "failed", "disconnected"}


@dataclass(frozen=True)
class CallDetail:
    call_id: str
    status: str | None
    recording_status: str | None
    result_code: str | None
    result_party: str | None
    result_reason: str | None
    disposition_code: str | None
    presented_clid: str | None
    raw: Json = field(repr=False)
    agent_id: str | None = None  # from.agentId: for a group call, the agent who took it (absent until one does)
    from_groups: tuple[str, ...] = ()  # from.groups: the call was placed via these groups
    sandbox_phase: str | None = None  # vccsim only ("simulator.phase"): real VCC sends no such field

    @property
    def agent_answered(self) -> bool:
        """Whether the agent's phone was answered and VCC went on to ring the destination.

        VCC documents no field for it: its status is "Active" and recordingStatus "Stopped" while either phone
        rings. Two signs are read: a group call's from.agentId, which VCC fills in once an agent of the groups takes
        the call; and the simulator's own phase. For a call from one agent against real VCC, neither exists, so
        such a call reads as ringing the agent until it connects."""
        if self.sandbox_phase is not None:
            return self.sandbox_phase in ("ringingDestination", "connected")
        return bool(self.from_groups and self.agent_id)

    @property
    def has_ended(self) -> bool:
        return self.result_code is not None or self.status is None or self.status.lower() in _ENDED_STATUSES

    @property
    def is_live(self) -> bool:
        return not self.has_ended


@dataclass(frozen=True)
class AgentDetail:
    agent_id: str
    current_call_id: str | None
    raw: Json = field(repr=False)


@dataclass(frozen=True)
class Availability:
    count: int
    agent_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class VCCUser:
    user_id: str
    name: str
    username: str
    email: str
    active: bool
    agent_display_id: str | None


@dataclass(frozen=True)
class VCCGroup:
    group_id: str
    name: str
    display_id: str | None


@dataclass(frozen=True)
class VCCCallbackNumber:
    callback_number_id: str
    name: str
    clid: str
