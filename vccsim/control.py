"""The simulator's own control endpoints under ``/_sim/``: inspect, reset, faults, availability and presence,
outcomes, calls vccweb did not place, webhook faults and deliveries, clock."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vccsim.clock import isoformat
from vccsim.delivery import WebhookFault
from vccsim.faults import Fault
from vccsim.wire import SimError, SimRequest, SimResponse, json_response

if TYPE_CHECKING:
    from vccsim.simulator import Simulator


def state(sim: Simulator, request: SimRequest) -> SimResponse:
    return json_response(200, sim.snapshot(request.base_url))


def reset(sim: Simulator, request: SimRequest) -> SimResponse:
    sim.reset()
    return json_response(200, sim.snapshot(request.base_url))


def faults(sim: Simulator, request: SimRequest) -> SimResponse:
    return json_response(200, sim.faults.to_json())


def set_fault(sim: Simulator, request: SimRequest, endpoint: str) -> SimResponse:
    fault = Fault.from_json(_body(request))
    sim.set_fault(endpoint, **vars(fault))
    return json_response(200, sim.faults.to_json())


def clear_faults(sim: Simulator, request: SimRequest, endpoint: str | None = None) -> SimResponse:
    sim.clear_faults(endpoint)
    return json_response(200, sim.faults.to_json())


def set_fair_use(sim: Simulator, request: SimRequest) -> SimResponse:
    body = _body(request)
    limit, window = body.get("limit"), body.get("windowSeconds", 60)
    if not (limit is None or isinstance(limit, int)) or not isinstance(window, int | float):
        raise SimError(400, 'Expected {"limit": integer or null, "windowSeconds": number}')
    sim.set_fair_use(limit, window_seconds=window)
    return json_response(200, sim.faults.to_json())


def set_availability(sim: Simulator, request: SimRequest, agent_id: str) -> SimResponse:
    sim.set_availability(agent_id, str(_body(request).get("availability")))
    return json_response(200, {"agentId": agent_id, "availability": sim.agent_availability(agent_id)})


def set_presence(sim: Simulator, request: SimRequest, agent_id: str) -> SimResponse:
    body = _body(request)
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise SimError(400, "description must be text")
    sim.set_presence(agent_id, str(body.get("category")), description)
    category, description = sim.presence[agent_id]
    return json_response(
        200,
        {
            "agentId": agent_id,
            "presence": {"category": category, "description": description},
            "availability": sim.agent_availability(agent_id),
        },
    )


def start_call(sim: Simulator, request: SimRequest) -> SimResponse:
    body = _body(request)
    agent_id, number = body.get("agentId"), body.get("telephoneNumber")
    direction, outcome, clid = body.get("direction", "Outbound"), body.get("outcome"), body.get("presentedClid")
    talk_seconds = body.get("talkSeconds")
    if not (
        isinstance(agent_id, str)
        and isinstance(number, str)
        and isinstance(direction, str)
        and all(value is None or isinstance(value, str) for value in (outcome, clid))
        and (talk_seconds is None or (isinstance(talk_seconds, int | float) and not isinstance(talk_seconds, bool)))
    ):
        raise SimError(
            400,
            'Expected {"direction": "Outbound" or "Inbound", "agentId": "1001", "telephoneNumber": "+44...", '
            '"presentedClid", "outcome" and "talkSeconds" optional}',
        )
    call = sim.start_call(agent_id, number, direction=direction, outcome=outcome, talk_seconds=talk_seconds, clid=clid)
    return json_response(201, call.to_json(request.base_url, sim.account.account_key, sim.now()))


def webhook_state(sim: Simulator, request: SimRequest) -> SimResponse:
    return json_response(200, sim.webhook_state())


def set_webhook_fault(sim: Simulator, request: SimRequest) -> SimResponse:
    fault = WebhookFault.from_json(_body(request))
    sim.set_webhook_fault(**vars(fault))
    return json_response(200, sim.webhook_state())


def clear_webhook_fault(sim: Simulator, request: SimRequest) -> SimResponse:
    sim.clear_webhook_fault()
    return json_response(200, sim.webhook_state())


def force_next_outcome(sim: Simulator, request: SimRequest) -> SimResponse:
    body = _body(request)
    talk_seconds = body.get("talkSeconds")
    if talk_seconds is not None and not isinstance(talk_seconds, int | float):
        raise SimError(400, "talkSeconds must be a number")
    sim.force_next_outcome(str(body.get("outcome")), talk_seconds=talk_seconds)
    return json_response(200, {"nextOutcomes": [outcome.name for outcome in sim.next_outcomes]})


def advance_clock(sim: Simulator, request: SimRequest) -> SimResponse:
    seconds = _body(request).get("seconds")
    if not isinstance(seconds, int | float) or seconds < 0:
        raise SimError(400, "seconds must be a number, at least 0")
    sim.clock.advance(seconds)
    return json_response(200, {"now": isoformat(sim.now())})


def _body(request: SimRequest) -> dict[str, Any]:
    data = request.json()
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SimError(400, "Expected a JSON object")
    return data
