"""The CloudEvents vccsim delivers to webhook subscriptions: channel events from calls, presence changes of agents.

VCC does not publish the ``data`` of these events; the payloads here are INFERRED, designed from what a CRM needs
to follow its calls and log the ones it did not place (see README, "Webhook payloads"). Each event exists in
versions v0 and v1 (vcc-api.md §10.3); v0's ``data`` is invented to differ from v1's (see ``v0_data``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from vccsim.calls import INBOUND, Call, ChannelStep
from vccsim.clock import isoformat_ms
from vccsim.state import Account, Agent, to_e164

PRESENCE_CATEGORIES = ("Ready", "Away", "ExtendedAway", "LoggedOut")
# Channel ids are stable per call and leg, so every event of one leg names the same channel.
_CHANNELS = uuid.UUID("6f1d3c2e-8f5b-4c1a-9d7e-2b4a6c8e0f13")


def cloud_event(
    event_type: str, *, version: str, source: str, subject: str, time: float, data: dict[str, Any]
) -> bytes:
    """A CloudEvent in structured mode (``application/cloudevents+json``), as the exact bytes that are sent."""
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": source,
        "type": f"{event_type}.{version}",
        "time": isoformat_ms(time),
        "subject": subject,
        "datacontenttype": "application/json",
        "data": data,
    }
    return json.dumps(event, separators=(",", ":")).encode()


def v0_data(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """The ``data`` of an event's v0 copy, made from its v1 ``data``. VCC does not publish v0's shape: this one is
    invented, and deliberately not v1's (the ids of the call, channel and agent, and the state, but no ``party``,
    ``result`` or ``presence`` object), so that a receiver reading a v0 copy as v1 shows it."""
    kept: tuple[str, ...]
    if event_type == "agent.presencechanged":
        kept, state = ("userId", "agentDisplayId"), data["presence"]["category"]
    else:
        kept, state = ("interactionId", "channelId", "direction", "agentDisplayId"), event_type.removeprefix("channel.")
    return {**{name: data[name] for name in kept}, "state": state}


def channel_data(account: Account, call: Call, step: ChannelStep) -> dict[str, Any]:
    """The ``data`` of a ``channel.*`` event: the call (interaction) and the channel (leg) the step happened to."""
    leg_steps = [item for item in call.channel_steps() if item.leg == step.leg and item.at <= step.at]
    happened = {item.event: isoformat_ms(item.at) for item in leg_steps}
    ended = step.event in ("disconnected", "wrapstarted")
    return {
        "interactionId": call.id,
        "callGuid": call.id,
        "channelId": str(uuid.uuid5(_CHANNELS, f"{call.id}/{step.leg}")),
        "direction": call.direction,
        "origin": call.origin,
        "agentDisplayId": call.agent_id,
        "party": _party(account, call, step.leg),
        "from": _end(account, call, "from"),
        "to": _end(account, call, "to"),
        "groups": list(call.from_party.get("groups", [])),
        "reference": (call.regarding or {}).get("reference"),
        "application": call.application,
        "placedAt": isoformat_ms(call.placed_at),
        "alertedAt": happened.get("alerted"),
        "connectedAt": happened.get("connected"),
        "disconnectedAt": happened.get("disconnected"),
        "wrapStartedAt": happened.get("wrapstarted"),
        "result": call.outcome.result if ended else None,
        "disconnectedBy": disconnected_by(call) if ended else None,
    }


def disconnected_by(call: Call) -> str:
    """Who ended the call: ``Agent``, ``Customer`` or ``System`` (a ring timeout, a busy or failed line)."""
    if call.answered_at is None or call.outcome.name != "answered":
        return "System"
    if call.direction == INBOUND:
        return "Customer"
    return "Agent"


def presence_data(agent: Agent, presence: tuple[str, str], previous: tuple[str, str]) -> dict[str, Any]:
    """The ``data`` of an ``agent.presencechanged`` event."""
    return {
        "userId": agent.user_id,
        "agentDisplayId": agent.display_id,
        "name": agent.name,
        "presence": {"category": presence[0], "description": presence[1]},
        "previousPresence": {"category": previous[0], "description": previous[1]},
    }


def _agent_party(account: Account, agent_id: str) -> dict[str, Any]:
    agent = account.agents[agent_id]
    return {"role": "Agent", "agentDisplayId": agent_id, "userId": agent.user_id, "name": agent.name}


def _party(account: Account, call: Call, leg: str) -> dict[str, Any]:
    """Who is on the channel: an agent, or an outside number (``role: Customer``)."""
    if leg == "agent":
        party = _agent_party(account, call.agent_id)
        return {**party, "telephoneNumber": None}
    if call.dialled_agent_id:
        return {**_agent_party(account, call.dialled_agent_id), "telephoneNumber": None}
    end = "from" if call.direction == INBOUND else "to"
    number = _end(account, call, end)["telephoneNumber"]
    return {"role": "Customer", "agentDisplayId": None, "userId": None, "name": None, "telephoneNumber": number}


def _end(account: Account, call: Call, which: str) -> dict[str, str | None]:
    """``from`` or ``to`` of the call: an agent display id and a number in E.164, either possibly null."""
    party = call.from_party if which == "from" else call.to_party
    number = party.get("presentedClid") or party.get("telephoneNumber")
    if number:
        number = to_e164(number, account.default_region) or number
    return {"agentDisplayId": party.get("agentId"), "telephoneNumber": number}
