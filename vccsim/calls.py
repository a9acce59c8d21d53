"""A placed call and its life, derived from the clock: nothing runs in the background."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from vccsim.clock import isoformat

RECORDING_DELAY = 1.0  # clock seconds before a recording change shows on GET (VCC applies it asynchronously)
RETENTION = 24 * 3600  # clock seconds a call stays visible after it ends

SUCCESS = {"code": "Success", "party": "Destination", "reason": "Answered"}


@dataclass(frozen=True)
class Outcome:
    """How a call ends and how long each phase takes, in clock seconds."""

    name: str
    ring_agent: float
    ring_destination: float
    talk: float
    result: dict[str, str]


OUTCOMES = {
    outcome.name: outcome
    for outcome in (
        Outcome("answered", 3, 5, 60, SUCCESS),
        Outcome("no_answer", 3, 30, 0, {"code": "Failure", "party": "Destination", "reason": "NoAnswer"}),
        Outcome("busy", 3, 2, 0, {"code": "Failure", "party": "Destination", "reason": "Busy"}),
        Outcome("failed", 3, 1, 0, {"code": "Failure", "party": "Destination", "reason": "Failed"}),
        Outcome("agent_no_answer", 30, 0, 0, {"code": "Failure", "party": "Originator", "reason": "NoAnswer"}),
    )
}
# The last two digits of the dialled number (or agent id) pick the outcome; anything else is answered.
OUTCOME_BY_LAST_DIGITS = {"91": "agent_no_answer", "92": "no_answer", "93": "busy", "94": "failed"}


def outcome_for(destination: str) -> Outcome:
    digits = re.sub(r"\D", "", destination)
    return OUTCOMES[OUTCOME_BY_LAST_DIGITS.get(digits[-2:], "answered")]


# An inbound call rings only the agent, who is its destination: answered, or not answered by the agent.
INBOUND_OUTCOMES = {
    "answered": Outcome("answered", 3, 0, 60, SUCCESS),
    "agent_no_answer": Outcome(
        "agent_no_answer", 30, 0, 0, {"code": "Failure", "party": "Destination", "reason": "NoAnswer"}
    ),
}

OUTBOUND = "Outbound"
INBOUND = "Inbound"
# Who started the call: vccweb through the Calls API, the agent on their own phone, or a caller from outside.
ORIGINS = ("CallsApi", "AgentPhone", "Caller")


@dataclass(frozen=True)
class ChannelStep:
    """A moment in a call's life as VCC's webhooks tell it: one channel (leg) alerted, connected, ended, wrapping."""

    at: float
    event: str  # "alerted", "connected", "disconnected" or "wrapstarted"
    leg: str  # "agent" (the agent's phone) or "other" (the dialled number, dialled agent or inbound caller)


@dataclass
class Call:
    id: str
    agent_id: str  # the agent whose phone rings first
    dialled_agent_id: str | None
    from_party: dict[str, Any]  # as shown in responses
    to_party: dict[str, Any]
    regarding: dict[str, str] | None
    application: str | None
    placed_at: float
    outcome: Outcome
    recording_changes: list[tuple[float, str]] = field(default_factory=list)  # (effective at, status)
    disposition_code: str | None = None
    direction: str = OUTBOUND
    origin: str = "CallsApi"  # one of ORIGINS

    @property
    def answered_at(self) -> float | None:
        if not self.outcome.talk:
            return None
        return self.placed_at + self.outcome.ring_agent + self.outcome.ring_destination

    @property
    def ended_at(self) -> float:
        outcome = self.outcome
        return self.placed_at + outcome.ring_agent + outcome.ring_destination + outcome.talk

    def phase(self, now: float) -> str:
        if now >= self.ended_at:
            return "ended"
        if now < self.placed_at + self.outcome.ring_agent:
            return "ringingAgent"
        if self.answered_at is None or now < self.answered_at:
            return "ringingDestination"
        return "connected"

    def is_live(self, now: float) -> bool:
        return now < self.ended_at

    def request_recording(self, status: str, now: float) -> None:
        self.recording_changes.append((now + RECORDING_DELAY, status))

    def recording_status(self, now: float) -> str | None:
        phase = self.phase(now)
        if phase == "ended":
            return None
        if phase != "connected":
            return "Stopped"
        applied = [status for effective_at, status in self.recording_changes if effective_at <= now]
        return applied[-1] if applied else "Started"

    def talk_seconds(self, now: float) -> float:
        if self.answered_at is None or now < self.answered_at:
            return 0.0
        return min(now, self.ended_at) - self.answered_at

    def agent_answered(self, now: float) -> bool:
        """The agent's phone was answered (VCC then rings the destination)."""
        return self.outcome.name != "agent_no_answer" and now >= self.placed_at + self.outcome.ring_agent

    def shown_from(self, now: float) -> dict[str, Any]:
        """`from` as VCC shows it: a group call names the agent who took it (agentId) once that agent answers."""
        if "groups" in self.from_party and not self.agent_answered(now):
            return {key: value for key, value in self.from_party.items() if key != "agentId"}
        return self.from_party

    def channel_steps(self) -> list[ChannelStep]:
        """The call's channel events in the order they happen (ties keep this order), derived from the outcome."""
        start, answered, ended = self.placed_at, self.answered_at, self.ended_at
        if self.direction == INBOUND:
            # VCC answers the caller and queues them, then rings the agent.
            steps = [ChannelStep(start, "connected", "other"), ChannelStep(start, "alerted", "agent")]
            if answered is None:
                return [
                    *steps,
                    ChannelStep(ended, "disconnected", "agent"),
                    ChannelStep(ended, "disconnected", "other"),
                ]
            return [
                *steps,
                ChannelStep(answered, "connected", "agent"),
                ChannelStep(ended, "disconnected", "other"),
                ChannelStep(ended, "disconnected", "agent"),
                ChannelStep(ended, "wrapstarted", "agent"),
            ]
        steps = [ChannelStep(start, "alerted", "agent")]
        if self.outcome.name == "agent_no_answer":
            return [*steps, ChannelStep(ended, "disconnected", "agent")]
        agent_answered_at = start + self.outcome.ring_agent
        steps += [
            ChannelStep(agent_answered_at, "connected", "agent"),
            ChannelStep(agent_answered_at, "alerted", "other"),
        ]
        if answered is not None:
            steps.append(ChannelStep(answered, "connected", "other"))
        steps += [
            ChannelStep(ended, "disconnected", "other"),
            ChannelStep(ended, "disconnected", "agent"),
            ChannelStep(ended, "wrapstarted", "agent"),
        ]
        if self.dialled_agent_id and answered is not None:
            steps.append(ChannelStep(ended, "wrapstarted", "other"))
        return steps

    def to_json(self, base_url: str, account_key: str, now: float) -> dict[str, Any]:
        live = self.is_live(now)
        return {
            "id": self.id,
            "links": [{"href": f"{base_url}/V0/{account_key}/Calls/{self.id}", "rel": "_self"}],
            "from": self.shown_from(now),
            "to": self.to_party,
            "regarding": self.regarding,
            "status": "Active" if live else None,
            "recordingStatus": self.recording_status(now),
            "result": None if live else self.outcome.result,
            "application": self.application,
            "dispositionCode": self.disposition_code,
            "simulator": {
                "phase": self.phase(now),
                "outcome": self.outcome.name,
                "direction": self.direction,
                "origin": self.origin,
                "placedAt": isoformat(self.placed_at),
                "answeredAt": isoformat(self.answered_at) if self.answered_at and self.answered_at <= now else None,
                "endedAt": None if live else isoformat(self.ended_at),
                "durationSeconds": round(self.talk_seconds(now)),
            },
        }
