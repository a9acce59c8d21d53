"""VCC's V0 API: the token endpoint, calls and agents (vcc-api.md §3.1, §5, §6)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from vccsim.calls import Call
from vccsim.placing import DEFAULT_VERSION, CallRequest, json_object, parse_call_request, text_field
from vccsim.state import to_e164
from vccsim.wire import (
    NOT_FOUND,
    SimError,
    SimRequest,
    SimResponse,
    client_credentials,
    form_fields,
    header_version,
    json_response,
)

if TYPE_CHECKING:
    from vccsim.simulator import Simulator

ACCOUNT_MISMATCH = "Authorization has been denied for this request."
NO_AGENT_IN_GROUPS = "Unable to place call to Agent. Please try again"
CLID_NOT_CONFIGURED = "Unable to place call - presented CLID is not a configured callback number"
CLID_NOT_ALLOWED = "Unable to place call - presented CLID is not available to this agent"
CALL_NOT_ACTIVE = "Unable to control recording - call is not active"
RECORDING_STATUSES = ("Paused", "Started")


def token(sim: Simulator, request: SimRequest) -> SimResponse:
    form = form_fields(request)
    if form.get("grant_type") != "client_credentials":
        raise SimError.oauth("unsupported_grant_type", "Invalid grant_type")
    account = sim.account
    if client_credentials(request, form) != (account.account_key, account.api_token):
        raise SimError.oauth("invalid_client", "Invalid client credentials")
    expires_in = account.v0_token_expires_in
    access_token = sim.issue_token("v0", frozenset(), expires_in)
    # Advertised in real seconds, so a client's cache lines up with the clock at any speed.
    body = {"access_token": access_token, "token_type": "bearer", "expires_in": sim.clock.real_seconds(expires_in)}
    return json_response(200, body, {"Cache-Control": "no-store"})


def place_call(sim: Simulator, request: SimRequest, account_key: str) -> SimResponse:
    _authorize(sim, request, account_key)
    _require_json(request)
    version = header_version(request.header("accept")) or header_version(request.header("content-type"))
    wanted = parse_call_request(request.json(), version or DEFAULT_VERSION)
    if not sim.account.ccxml_enabled:
        raise SimError(400, "Ccxml must be enabled for this account")
    agent_id = _calling_agent(sim, wanted) if wanted.agent_id else _group_agent(sim, wanted)
    if wanted.dialled_agent_id:
        _check_dialled_agent(sim, wanted.dialled_agent_id, agent_id)
    clid = _presented_clid(sim, wanted, agent_id)
    if wanted.telephone_number and not to_e164(wanted.telephone_number, sim.account.default_region):
        raise SimError(400, "Unable to place call - number is invalid")

    call = Call(
        id=str(uuid.uuid4()),
        agent_id=agent_id,
        dialled_agent_id=wanted.dialled_agent_id,
        from_party=_from_party(wanted, agent_id, clid),
        to_party=_to_party(wanted),
        regarding={"reference": wanted.reference} if wanted.reference else None,
        application=wanted.application,
        placed_at=sim.now(),
        outcome=sim.take_outcome(wanted.telephone_number or wanted.dialled_agent_id or ""),
    )
    sim.add_call(call)
    key = sim.account.account_key
    location = f"{request.base_url}/v0/{key}/calls/{call.id}"
    return json_response(201, call.to_json(request.base_url, key, sim.now()), {"Location": location})


def get_call(sim: Simulator, request: SimRequest, account_key: str, call_id: str) -> SimResponse:
    _authorize(sim, request, account_key)
    call = _find_call(sim, call_id)
    return json_response(200, call.to_json(request.base_url, sim.account.account_key, sim.now()))


def control_recording(sim: Simulator, request: SimRequest, account_key: str, call_id: str) -> SimResponse:
    _authorize(sim, request, account_key)
    _require_json(request)
    call = _find_call(sim, call_id)
    status = text_field(json_object(request.json()).get("recordingstatus"))
    if status not in RECORDING_STATUSES:
        raise SimError(400, "Recording status must be Paused or Started")
    if not call.is_live(sim.now()):
        raise SimError(400, CALL_NOT_ACTIVE)
    call.request_recording(status, sim.now())
    return json_response(202, {"recordingStatus": status})


def set_disposition(sim: Simulator, request: SimRequest, account_key: str, call_id: str) -> SimResponse:
    _authorize(sim, request, account_key)
    _require_json(request)
    call = _find_call(sim, call_id)
    code = text_field(json_object(request.json()).get("dispositioncode"))
    if code is None:
        raise SimError(400, "Disposition code field was expected. ")
    if len(code) > 255:
        raise SimError(400, "Disposition code excceeds 255 characters.")
    call.disposition_code = code
    return json_response(200, {"dispositionCode": code})


def ready_agents(sim: Simulator, request: SimRequest, account_key: str) -> SimResponse:
    _authorize(sim, request, account_key)
    if request.query.get("availability", "").lower() != "readyforphonecall":
        raise SimError(400, "The availability parameter must be readyForPhoneCall")
    wanted_groups = [group.strip() for group in request.query.get("groups", "").split(",") if group.strip()]
    if wanted_groups:
        groups = [sim.account.groups[group] for group in wanted_groups if group in sim.account.groups]
        candidates = {member for group in groups for member in group.members}
    else:
        candidates = set(sim.account.agents)
    ready = sorted(agent_id for agent_id in candidates if sim.agent_availability(agent_id) == "ready")
    if request.query.get("fields", "").lower() == "count":
        return json_response(200, {"count": len(ready)})
    return json_response(200, {"count": len(ready), "agents": [{"id": agent_id, "links": []} for agent_id in ready]})


def agent_detail(sim: Simulator, request: SimRequest, account_key: str, agent_id: str) -> SimResponse:
    _authorize(sim, request, account_key)
    if agent_id not in sim.account.agents:
        raise SimError(404, NOT_FOUND)
    base = f"{request.base_url}/V0/{sim.account.account_key}"
    links = [{"href": f"{base}/Agents/{agent_id}", "rel": "_self"}]
    live = sim.live_call(agent_id)
    if live:
        links.append({"href": f"{base}/Calls/{live.id}", "rel": "currentCall"})
    latest = live or sim.latest_call(agent_id)
    return json_response(200, {"id": agent_id, "links": links, "currentCallGuid": latest.id if latest else None})


def _authorize(sim: Simulator, request: SimRequest, account_key: str) -> None:
    token = sim.authorize(request, "v0")
    if account_key.lower() != token.account_key.lower():
        raise SimError(403, ACCOUNT_MISMATCH)


def _require_json(request: SimRequest) -> None:
    if request.media_type() != "application/json":
        raise SimError(415, f"The requested resource does not support content type '{request.media_type()}'.")


def _find_call(sim: Simulator, call_id: str) -> Call:
    call = sim.calls.get(call_id.lower())
    if call is None:
        raise SimError(404, NOT_FOUND)
    return call


def _calling_agent(sim: Simulator, wanted: CallRequest) -> str:
    agent_id = wanted.agent_id or ""
    if agent_id not in sim.account.agents:
        raise SimError(400, "Unable to place call - Agent Id is unknown")
    if sim.agent_availability(agent_id) == "busy":
        raise SimError(400, "Unable to place call - Agent number busy")
    return agent_id


def _group_agent(sim: Simulator, wanted: CallRequest) -> str:
    """The first ready member of the groups, in the order given; one who may present the CLID if any can."""
    groups = [sim.account.groups[group] for group in wanted.groups if group in sim.account.groups]
    ready = [member for group in groups for member in group.members if sim.agent_availability(member) == "ready"]
    if not ready:
        raise SimError(400, NO_AGENT_IN_GROUPS)
    number = sim.account.callback_number(wanted.presented_clid) if wanted.presented_clid else None
    allowed = [member for member in ready if number is None or number.allows(member)]
    return (allowed or ready)[0]


def _check_dialled_agent(sim: Simulator, dialled: str, agent_id: str) -> None:
    if dialled not in sim.account.agents:
        raise SimError(400, "Unable to place call - invalid Agent Id")
    if dialled == agent_id or sim.agent_availability(dialled) != "ready":
        raise SimError(400, "Unable to place call - dialed Agent is not currently available")


def _presented_clid(sim: Simulator, wanted: CallRequest, agent_id: str) -> str | None:
    """The CLID the call presents: the one asked for, else the first callback number the agent may use."""
    if wanted.presented_clid is None:
        usable = [number for number in sim.account.callback_numbers if number.allows(agent_id)]
        return usable[0].clid if usable else None
    number = sim.account.callback_number(wanted.presented_clid)
    if number is None:
        raise SimError(400, CLID_NOT_CONFIGURED)
    if not number.allows(agent_id):
        raise SimError(400, CLID_NOT_ALLOWED)
    return number.clid


def _from_party(wanted: CallRequest, agent_id: str, clid: str | None) -> dict[str, Any]:
    party: dict[str, Any] = {"groups": list(wanted.groups)} if wanted.groups else {}
    party |= {"agentId": agent_id, "presentedClid": clid}
    if wanted.from_consent:
        party["consent"] = wanted.from_consent
    return party


def _to_party(wanted: CallRequest) -> dict[str, Any]:
    if wanted.telephone_number:
        party: dict[str, Any] = {"telephoneNumber": wanted.telephone_number}
    else:
        party = {"agentId": wanted.dialled_agent_id}
    if wanted.to_consent:
        party["consent"] = wanted.to_consent
    return party
