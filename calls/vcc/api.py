"""VCC's V0 API: one request builder, one response parser and one flow per operation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from .config import VCCConfig
from .core import Flow, authorized, error_from_response, json_body, last_segment, text
from .errors import VCCError
from .types import AgentDetail, Availability, CallDetail, CallRequest, Json, PlacedCall
from .validation import (
    validate_agent_id,
    validate_call_id,
    validate_call_request,
    validate_disposition_code,
    validate_recording_status,
)

# --- Requests -------------------------------------------------------------------------------------


def _url(config: VCCConfig, path: str) -> str:
    return f"{config.base_url}/v0/{quote(config.account_key, safe='')}/{path}"


def _headers(config: VCCConfig, token: str, *, versioned: bool = True) -> dict[str, str]:
    accept = f"application/json;version={config.api_version}" if versioned else "application/json"
    return {"Authorization": f"Bearer {token}", "Accept": accept}


def _post(config: VCCConfig, token: str, path: str, body: Json) -> httpx.Request:
    headers = _headers(config, token) | {"Content-Type": "application/json"}
    return httpx.Request("POST", _url(config, path), headers=headers, json=body)


def build_place_call(config: VCCConfig, token: str, req: CallRequest) -> httpx.Request:
    return _post(config, token, "calls/", req.to_json())


def build_get_call(config: VCCConfig, token: str, call_id: str) -> httpx.Request:
    return httpx.Request("GET", _url(config, f"calls/{call_id}"), headers=_headers(config, token))


def build_set_recording(config: VCCConfig, token: str, call_id: str, status: str) -> httpx.Request:
    return _post(config, token, f"calls/{call_id}", {"recordingStatus": status})


def build_set_disposition(
    config: VCCConfig, token: str, call_id: str, code: str, agent_id: str | None
) -> httpx.Request:
    body = {"dispositionCode": code} | ({"agentId": agent_id} if agent_id else {})
    return _post(config, token, f"calls/{call_id}/dispositionCode", body)


def build_agents_ready(config: VCCConfig, token: str, groups: Sequence[str], count_only: bool) -> httpx.Request:
    params = {"availability": "readyForPhoneCall"}
    if groups:
        params["groups"] = ",".join(groups)
    if count_only:
        params["fields"] = "count"
    headers = _headers(config, token, versioned=False)
    return httpx.Request("GET", _url(config, "agents/"), params=params, headers=headers)


def build_get_agent(config: VCCConfig, token: str, agent_id: str) -> httpx.Request:
    return httpx.Request("GET", _url(config, f"agents/{agent_id}"), headers=_headers(config, token, versioned=False))


# --- Responses ------------------------------------------------------------------------------------


def _ok_body(response: httpx.Response, *, places_call: bool = False) -> Json:
    if not response.is_success:
        raise error_from_response(response, places_call=places_call)
    return json_body(response, places_call=places_call)


def _object(body: Json, key: str) -> Json:
    value = body.get(key)
    return value if isinstance(value, dict) else {}


def _presented_clid(body: Json) -> str | None:
    # Responses spell it presentedClid; older revisions echoed the request's presentedCLID.
    source = _object(body, "from")
    return text(source.get("presentedClid", source.get("presentedCLID")))


def parse_placed_call(response: httpx.Response) -> PlacedCall:
    body = _ok_body(response, places_call=True)
    location = response.headers.get("Location")
    # Older revisions answered with an echo of the request, so fall back to the id in Location.
    call_id = text(body.get("id")) or last_segment(location)
    if not call_id:
        raise VCCError(
            f"VCC answered {response.status_code} without a call id (body keys: {', '.join(body)})",
            status=response.status_code,
            user_message="VCC accepted the call request but did not say which call it placed: check your phone "
            "and the call log before trying again.",
            may_have_placed=True,
        )
    return PlacedCall(
        call_id=call_id,
        location=location,
        status=text(body.get("status")),
        recording_status=text(body.get("recordingStatus")),
        disposition_code=text(body.get("dispositionCode")),
        presented_clid=_presented_clid(body),
        raw=body,
    )


def parse_call_detail(response: httpx.Response, call_id: str) -> CallDetail:
    body = _ok_body(response)
    result, source = _object(body, "result"), _object(body, "from")
    return CallDetail(
        call_id=text(body.get("id")) or call_id,
        status=text(body.get("status")),
        recording_status=text(body.get("recordingStatus")),
        result_code=text(result.get("code")),
        result_party=text(result.get("party")),
        result_reason=text(result.get("reason")),
        disposition_code=text(body.get("dispositionCode")),
        presented_clid=_presented_clid(body),
        raw=body,
        agent_id=text(source.get("agentId")),
        from_groups=tuple(g for g in (text(item) for item in _list(source.get("groups"))) if g),
        sandbox_phase=text(_object(body, "simulator").get("phase")),
    )


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _acknowledged(response: httpx.Response, key: str, sent: str) -> str:
    # VCC accepts these asynchronously (202/200, docs disagree); any 2xx is success, and the echo is optional.
    if not response.is_success:
        raise error_from_response(response)
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    return (text(body.get(key)) if isinstance(body, dict) else None) or sent


def parse_availability(response: httpx.Response) -> Availability:
    body = _ok_body(response)
    agents = body.get("agents")
    agent_ids = tuple(
        agent_id
        for agent in (agents if isinstance(agents, list) else [])
        if isinstance(agent, dict) and (agent_id := text(agent.get("id")))
    )
    count = body.get("count")
    return Availability(count=count if isinstance(count, int) else len(agent_ids), agent_ids=agent_ids)


def parse_agent(response: httpx.Response, agent_id: str) -> AgentDetail:
    body = _ok_body(response)
    current = text(body.get("currentCallGuid"))
    if not current:
        links = body.get("links")
        for link in links if isinstance(links, list) else []:
            if isinstance(link, dict) and str(link.get("rel", "")).lower() == "currentcall":
                current = last_segment(text(link.get("href")))
    return AgentDetail(agent_id=text(body.get("id")) or agent_id, current_call_id=current, raw=body)


# --- Flows ----------------------------------------------------------------------------------------


def place_call(config: VCCConfig, req: CallRequest) -> Flow[PlacedCall]:
    validate_call_request(req, api_version=config.api_version)
    response = yield from authorized(
        config.v0_token, lambda token: build_place_call(config, token, req), places_call=True
    )
    return parse_placed_call(response)


def get_call(config: VCCConfig, call_id: str) -> Flow[CallDetail]:
    validate_call_id(call_id)
    response = yield from authorized(config.v0_token, lambda token: build_get_call(config, token, call_id))
    return parse_call_detail(response, call_id)


def set_recording(config: VCCConfig, call_id: str, status: str) -> Flow[str]:
    validate_call_id(call_id)
    validate_recording_status(status)
    response = yield from authorized(config.v0_token, lambda token: build_set_recording(config, token, call_id, status))
    return _acknowledged(response, "recordingStatus", status)


def set_disposition(config: VCCConfig, call_id: str, code: str, agent_id: str | None) -> Flow[str]:
    validate_call_id(call_id)
    validate_disposition_code(code)
    if agent_id:
        validate_agent_id(agent_id)
    response = yield from authorized(
        config.v0_token, lambda token: build_set_disposition(config, token, call_id, code, agent_id)
    )
    return _acknowledged(response, "dispositionCode", code)


def agents_ready(config: VCCConfig, groups: Sequence[str], count_only: bool) -> Flow[Availability]:
    if isinstance(groups, str):
        raise TypeError("groups must be a sequence of group display IDs, not a string")
    if any(not group.strip() or "," in group for group in groups):
        raise VCCError.invalid("Group Id must not be blank or contain commas")
    response = yield from authorized(
        config.v0_token, lambda token: build_agents_ready(config, token, groups, count_only)
    )
    return parse_availability(response)


def get_agent(config: VCCConfig, agent_id: str) -> Flow[AgentDetail]:
    validate_agent_id(agent_id)
    response = yield from authorized(config.v0_token, lambda token: build_get_agent(config, token, agent_id))
    return parse_agent(response, agent_id)
