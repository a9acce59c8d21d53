"""The regional API gateway: its token endpoint and the User Admin reads vccweb syncs from (vcc-api.md §3.2, §10.1)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vccsim.state import Agent
from vccsim.wire import NOT_FOUND, SimError, SimRequest, SimResponse, client_credentials, form_fields, json_response

if TYPE_CHECKING:
    from vccsim.simulator import Simulator

SCOPES = frozenset(
    {
        "agents-availability:read",
        "users:read",
        "users:write",
        "interaction-content:read",
        "interaction-content:delete",
        "stats",
        "interactions:write",
        "globalpci",
        "admin:read",
        "admin:write",
    }
)
USER_ADMIN_VERSION = 4
MAX_LIMIT = 5000


def token(sim: Simulator, request: SimRequest) -> SimResponse:
    form = form_fields(request)
    if form.get("grant_type") != "client_credentials":
        raise SimError.oauth("unsupported_grant_type", "Invalid grant_type")
    account = sim.account
    if client_credentials(request, form) != (account.gateway_client_id, account.gateway_client_secret):
        raise SimError.oauth("invalid_client", "Invalid client credentials")
    scopes = form.get("scope", "").split()
    if not scopes:
        raise SimError.oauth("invalid_scope", "You must specify a scope")
    for scope in scopes:
        if scope not in SCOPES:
            raise SimError.oauth("invalid_scope", f'"{scope}" is an invalid scope')
    expires_in = account.gateway_token_expires_in
    access_token = sim.issue_token("gateway", frozenset(scopes), expires_in)
    body = {"access_token": access_token, "expires_in": sim.clock.real_seconds(expires_in), "token_type": "Bearer"}
    return json_response(200, body, {"Cache-Control": "no-store"})


def users(sim: Simulator, request: SimRequest) -> SimResponse:
    _authorize(sim, request)
    include = request.query.get("include", "Active").lower()
    if include not in ("active", "archived", "all"):
        raise SimError(400, "include must be one of Active, Archived, All")
    # Every simulated user is active.
    agents = [] if include == "archived" else list(sim.account.agents.values())
    page, meta = _paginate(sim, request, agents)
    body = {"users": [_user(agent) for agent in page]}
    return json_response(200, {"meta": meta, **body} if sim.account.users_meta else body)


def groups(sim: Simulator, request: SimRequest) -> SimResponse:
    _authorize(sim, request)
    page, meta = _paginate(sim, request, list(sim.account.groups.values()))
    body = [
        {
            "groupId": group.group_id,
            "groupName": group.name,
            "groupMaxUnexpectedTime": None,
            "groupMaxWrapUpTime": None,
            "groupDisplayId": group.display_id,
        }
        for group in page
    ]
    return json_response(200, {"meta": meta, "groups": body})


def group_users(sim: Simulator, request: SimRequest, group_id: str) -> SimResponse:
    _authorize(sim, request)
    group = next((item for item in sim.account.groups.values() if item.group_id.lower() == group_id.lower()), None)
    if group is None:
        raise SimError(404, NOT_FOUND)
    page, meta = _paginate(sim, request, [sim.account.agents[member] for member in group.members])
    body = [
        {"userId": agent.user_id, "username": agent.username, "name": agent.name, "agentDisplayId": agent.display_id}
        for agent in page
    ]
    return json_response(200, {"meta": meta, "groupId": group.group_id, "users": body})


def callback_numbers(sim: Simulator, request: SimRequest, user_id: str) -> SimResponse:
    _authorize(sim, request)
    agent = sim.account.user(user_id)
    if agent is None:
        raise SimError(404, NOT_FOUND)
    usable = [number for number in sim.account.callback_numbers if number.allows(agent.display_id)]
    page, meta = _paginate(sim, request, usable)
    body = [
        {
            "callbackNumberId": number.callback_number_id,
            "callbackNumberName": number.name,
            "callbackNumberClid": number.clid,
        }
        for number in page
    ]
    return json_response(
        200, {"meta": meta, "userId": agent.user_id, "agentDisplayId": agent.display_id, "callbackNumbers": body}
    )


def _authorize(sim: Simulator, request: SimRequest) -> None:
    token = sim.authorize(request, "gateway")
    if "users:read" not in token.scopes and "users:write" not in token.scopes:
        raise SimError(403, "The access token does not have the users:read scope")
    check_version(request, USER_ADMIN_VERSION)


def check_version(request: SimRequest, version: int) -> None:
    """The gateway's versioning (vcc-api.md §1.3, §9): ``Accept: application/vnd.newvoicemedia.v{version}+json``."""
    match = re.search(r"vnd\.newvoicemedia\.v(\d+)\+json", request.header("accept"), re.IGNORECASE)
    if match is None:
        raise _version_error("Version missing from Accept header!")
    if int(match.group(1)) != version:
        raise _version_error(f"Invalid api-version! Valid values: {version}")


def _version_error(message: str) -> SimError:
    return SimError(400, payload={"statusCode": 400, "error": "Bad Request", "message": message})


def _paginate(sim: Simulator, request: SimRequest, items: Sequence[Any]) -> tuple[Sequence[Any], dict[str, int]]:
    """One page of ``items`` (``page`` from the account's first page, 1 or 0; ``limit`` 1-5000, default 25) and the
    ``meta`` block."""
    first = sim.account.first_page
    try:
        page = int(request.query.get("page", str(first)))
        limit = int(request.query.get("limit", "25"))
    except ValueError:
        raise SimError(400, "page and limit must be whole numbers") from None
    if page < first or not 1 <= limit <= MAX_LIMIT:
        raise SimError(400, f"page must be at least {first} and limit between 1 and {MAX_LIMIT}")
    chunk = items[(page - first) * limit : (page - first + 1) * limit]
    meta = {"page": page, "count": len(chunk), "pageCount": math.ceil(len(items) / limit), "totalCount": len(items)}
    return chunk, meta


def _user(agent: Agent) -> dict[str, Any]:
    return {
        "userId": agent.user_id,
        "username": agent.username,
        "name": agent.name,
        "email": agent.email,
        "lastLoginTime": None,
        "active": True,
        "locked": False,
        "ssoExternalId": None,
        "userAccountConfiguration": {
            "role": "Agent",
            "chargeable": True,
            "actAsAgent": True,
            "agentConfiguration": {"agentDisplayId": agent.display_id},
        },
    }
