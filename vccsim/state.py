"""The account the simulator plays: agents, groups, callback numbers and credentials, loaded from a JSON file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import phonenumbers

from vccsim.faults import FAIR_USE_LIMIT

SAMPLE_ACCOUNT = Path(__file__).with_name("sample_account.json")
AVAILABILITIES = ("ready", "away", "busy")


@dataclass(frozen=True)
class Agent:
    display_id: str
    name: str
    availability: str
    user_id: str
    username: str
    email: str


@dataclass(frozen=True)
class AgentGroup:
    display_id: str
    group_id: str
    name: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class CallbackNumber:
    callback_number_id: str
    name: str
    clid: str  # as the account lists it: E.164 or national format (VCC's docs show both)
    agent_ids: tuple[str, ...] | None = None  # None: every agent may present it

    def allows(self, agent_id: str) -> bool:
        return self.agent_ids is None or agent_id in self.agent_ids


@dataclass(frozen=True)
class Account:
    account_key: str
    api_token: str
    gateway_client_id: str
    gateway_client_secret: str
    ccxml_enabled: bool = True
    default_region: str = "GB"
    agents: Mapping[str, Agent] = field(default_factory=dict)
    groups: Mapping[str, AgentGroup] = field(default_factory=dict)
    callback_numbers: tuple[CallbackNumber, ...] = ()
    v0_token_expires_in: int = 3600
    gateway_token_expires_in: int = 7200
    # How User Admin lists page (vcc-api.md §10.1 leaves both open): the first page's number, 1 or 0, and whether
    # GET /users sends the `meta` block (its documented reply is `{"users": [...]}` alone).
    first_page: int = 1
    users_meta: bool = True
    faults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    fair_use_limit: int | None = FAIR_USE_LIMIT  # requests a real minute, as VCC; None: no limit

    def callback_number(self, clid: str) -> CallbackNumber | None:
        """Find the callback number a presented CLID refers to, whatever format either is written in.

        VCC does not document whether it compares presentedCLID as a string or as a number: the simulator compares
        numbers, so a request in either form is accepted."""
        wanted = to_e164(clid, self.default_region)
        if wanted is None:
            return None
        return next(
            (number for number in self.callback_numbers if to_e164(number.clid, self.default_region) == wanted), None
        )

    def user(self, user_id: str) -> Agent | None:
        return next((agent for agent in self.agents.values() if agent.user_id.lower() == user_id.lower()), None)


def to_e164(number: str, region: str) -> str | None:
    """Read a number in E.164 or national format (for ``region``); None when it is not a valid number."""
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def load_account(
    path: str | Path | None = None, *, account_key: str | None = None, api_token: str | None = None
) -> Account:
    """Load an account file (the shipped sample when ``path`` is None), optionally overriding its V0 credentials."""
    data = json.loads(Path(path or SAMPLE_ACCOUNT).read_text(encoding="utf-8"))
    try:
        account = _account_from_json(data)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"Malformed account file {path or SAMPLE_ACCOUNT}: {error!r}") from error
    if account_key:
        account = replace(account, account_key=account_key)
    if api_token:
        account = replace(account, api_token=api_token)
    return account


def _account_from_json(data: Mapping[str, Any]) -> Account:
    agents = {str(item["agentId"]): _agent(item) for item in data.get("agents", [])}
    groups = {str(item["groupDisplayId"]): _group(item, agents) for item in data.get("groups", [])}
    gateway = data.get("gateway", {})
    region = str(data.get("defaultRegion", "GB"))
    return Account(
        account_key=str(data["accountKey"]),
        api_token=str(data["apiToken"]),
        gateway_client_id=str(gateway.get("clientId", "")),
        gateway_client_secret=str(gateway.get("clientSecret", "")),
        ccxml_enabled=bool(data.get("ccxmlEnabled", True)),
        default_region=region,
        agents=agents,
        groups=groups,
        callback_numbers=tuple(_callback_number(item, agents, region) for item in data.get("callbackNumbers", [])),
        v0_token_expires_in=int(data.get("tokenExpiresIn", 3600)),
        gateway_token_expires_in=int(gateway.get("tokenExpiresIn", 7200)),
        first_page=_first_page(gateway.get("firstPage", 1)),
        users_meta=_flag(gateway.get("usersMeta", True), "gateway.usersMeta"),
        faults=dict(data.get("faults") or {}),
        fair_use_limit=_fair_use_limit(data.get("fairUseLimit", FAIR_USE_LIMIT)),
    )


def _first_page(value: Any) -> int:
    if value not in (0, 1) or isinstance(value, bool):
        raise ValueError(f"gateway.firstPage must be 0 or 1, not {value!r}")
    return int(value)


def _fair_use_limit(value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"fairUseLimit must be a whole number of requests a minute, or null for none, not {value!r}")
    return value


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, not {value!r}")
    return value


def _agent(item: Mapping[str, Any]) -> Agent:
    availability = item.get("availability", "ready")
    if availability not in AVAILABILITIES:
        raise ValueError(f"agent {item['agentId']}: availability must be one of {AVAILABILITIES}")
    return Agent(
        display_id=str(item["agentId"]),
        name=item["name"],
        availability=availability,
        user_id=item["userId"],
        username=item.get("username", ""),
        email=item.get("email", ""),
    )


def _group(item: Mapping[str, Any], agents: Mapping[str, Agent]) -> AgentGroup:
    members = tuple(str(member) for member in item.get("members", []))
    unknown = [member for member in members if member not in agents]
    if unknown:
        raise ValueError(f"group {item['groupDisplayId']}: unknown members {unknown}")
    return AgentGroup(str(item["groupDisplayId"]), item["groupId"], item["name"], members)


def _callback_number(item: Mapping[str, Any], agents: Mapping[str, Agent], region: str) -> CallbackNumber:
    agent_ids = item.get("agents")
    if agent_ids is not None:
        agent_ids = tuple(str(agent_id) for agent_id in agent_ids)
        unknown = [agent_id for agent_id in agent_ids if agent_id not in agents]
        if unknown:
            raise ValueError(f"callback number {item['clid']}: unknown agents {unknown}")
    if to_e164(str(item["clid"]), region) is None:
        raise ValueError(f"callback number {item['clid']}: clid must be a valid number, E.164 or {region} national")
    return CallbackNumber(item["callbackNumberId"], item["name"], item["clid"], agent_ids)
