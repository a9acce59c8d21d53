"""The simulator's core: account state, tokens, calls and faults behind one ``handle()`` used by both front doors."""

from __future__ import annotations

import re
import secrets
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Any

from vccsim import control, gateway, v0
from vccsim.calls import OUTCOMES, Call, Outcome, outcome_for
from vccsim.clock import Clock, isoformat
from vccsim.faults import ALL_ENDPOINTS, Fault, Faults
from vccsim.state import AVAILABILITIES, Account
from vccsim.wire import INVALID_TOKEN, NOT_FOUND, SimError, SimRequest, SimResponse

Handler = Callable[..., SimResponse]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    name: str  # the endpoint name faults are set for; "control" endpoints never fail
    handler: Handler


def _route(method: str, path: str, name: str, handler: Handler) -> Route:
    """A route whose ``{param}`` segments match one path segment; case-insensitive, trailing slash optional."""
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path.rstrip("/"))
    return Route(method, re.compile(regex + "/?", re.IGNORECASE), name, handler)


ROUTES = (
    _route("POST", "/v0/oauth2/token", "v0_token", v0.token),
    _route("POST", "/v0/{account_key}/calls/", "place_call", v0.place_call),
    _route("GET", "/v0/{account_key}/calls/{call_id}", "get_call", v0.get_call),
    _route("POST", "/v0/{account_key}/calls/{call_id}", "recording", v0.control_recording),
    _route("POST", "/v0/{account_key}/calls/{call_id}/dispositionCode", "disposition", v0.set_disposition),
    _route("GET", "/v0/{account_key}/agents/", "agents", v0.ready_agents),
    _route("GET", "/v0/{account_key}/agents/{agent_id}", "agent", v0.agent_detail),
    _route("POST", "/Auth/connect/token", "gateway_token", gateway.token),
    _route("GET", "/useradmin/users", "users", gateway.users),
    _route("GET", "/useradmin/groups", "groups", gateway.groups),
    _route("GET", "/useradmin/groups/{group_id}/users", "group_users", gateway.group_users),
    _route("GET", "/useradmin/users/{user_id}/callbackNumbers", "callback_numbers", gateway.callback_numbers),
    _route("GET", "/_sim/state", "control", control.state),
    _route("POST", "/_sim/reset", "control", control.reset),
    _route("GET", "/_sim/faults", "control", control.faults),
    _route("DELETE", "/_sim/faults", "control", control.clear_faults),
    _route("POST", "/_sim/faults/{endpoint}", "control", control.set_fault),
    _route("DELETE", "/_sim/faults/{endpoint}", "control", control.clear_faults),
    _route("POST", "/_sim/fair-use", "control", control.set_fair_use),
    _route("POST", "/_sim/agents/{agent_id}/availability", "control", control.set_availability),
    _route("POST", "/_sim/next-outcome", "control", control.force_next_outcome),
    _route("POST", "/_sim/clock/advance", "control", control.advance_clock),
)
ENDPOINTS = tuple(dict.fromkeys(route.name for route in ROUTES if route.name != "control"))


@dataclass
class Token:
    kind: str  # "v0" or "gateway"
    account_key: str
    scopes: frozenset[str]
    expires_at: float


class Simulator:
    """A stand-in for VCC's servers for one account. Thread-safe: every request runs under one lock."""

    def __init__(self, account: Account, *, clock: Clock | None = None) -> None:
        self.account = account
        self.clock = clock or Clock()
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget calls, tokens and run-time changes: back to the account file's state, start-up faults included."""
        with self._lock:
            self.calls: dict[str, Call] = {}
            self.tokens: dict[str, Token] = {}
            self.availability = {agent_id: agent.availability for agent_id, agent in self.account.agents.items()}
            self.calls_placed = 0
            self.next_outcomes: deque[Outcome] = deque()
            self.faults = Faults()
            for endpoint, fault in self.account.faults.items():
                self.faults.set(_endpoint(endpoint), Fault.from_json(fault))
            self.faults.set_fair_use(self.account.fair_use_limit)

    # Front door -------------------------------------------------------------------------------------------------

    def handle(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> SimResponse:
        request = SimRequest.build(method, url, headers, body)
        with self._lock:
            try:
                route, params = _match(request)
                if route.name == "control":
                    return route.handler(self, request, **params)
                return self._serve(route, request, params)
            except SimError as error:
                return error.response()

    def _serve(self, route: Route, request: SimRequest, params: dict[str, str]) -> SimResponse:
        now = self.now()
        self.calls = {call_id: call for call_id, call in self.calls.items() if not call.is_expired(now)}
        retry_after = self.faults.fair_use_retry_after(now)
        if retry_after is not None:
            headers = {"Retry-After": str(self.clock.real_seconds(retry_after))}
            raise SimError(429, "Too Many Requests", headers=headers)
        fault = self.faults.take(route.name)
        if fault is None:
            return self._run(route, request, params)
        delay = fault.latency_ms / 1000
        if fault.expire_tokens:
            self.expire_tokens()
        if fault.drop == "before":
            return SimResponse(0, {}, b"", delay=delay, drop="before")
        if fault.status is not None:
            retry = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            response = SimError(fault.status, _reason(fault.status), headers=retry).response()
        else:
            response = _spoil(self._run(route, request, params), fault.body)
        return replace(response, delay=delay, drop=fault.drop)

    def _run(self, route: Route, request: SimRequest, params: dict[str, str]) -> SimResponse:
        try:
            return route.handler(self, request, **params)
        except SimError as error:
            return error.response()

    # Time and tokens --------------------------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    def issue_token(self, kind: str, scopes: frozenset[str], expires_in: int) -> str:
        token = secrets.token_urlsafe(32)
        self.tokens[token] = Token(kind, self.account.account_key, scopes, self.now() + expires_in)
        return token

    def authorize(self, request: SimRequest, kind: str) -> Token:
        """The bearer token of the request, which must be a live token of ``kind``; 401 otherwise."""
        scheme, _, value = request.header("authorization").partition(" ")
        token = self.tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is None or token.kind != kind or token.expires_at <= self.now():
            raise SimError(401, INVALID_TOKEN, headers={"WWW-Authenticate": "Bearer"})
        return token

    def expire_tokens(self) -> None:
        now = self.now()
        for token in self.tokens.values():
            token.expires_at = min(token.expires_at, now)

    # Agents and calls -------------------------------------------------------------------------------------------

    def live_call(self, agent_id: str) -> Call | None:
        now = self.now()
        return next((call for call in self.calls.values() if call.involves(agent_id) and call.is_live(now)), None)

    def latest_call(self, agent_id: str) -> Call | None:
        calls = [call for call in self.calls.values() if call.involves(agent_id)]
        return max(calls, key=lambda call: call.placed_at, default=None)

    def agent_availability(self, agent_id: str) -> str:
        """``busy`` while on a call the simulator placed, else the availability set in the file or at run time."""
        return "busy" if self.live_call(agent_id) else self.availability[agent_id]

    def take_outcome(self, destination: str) -> Outcome:
        return self.next_outcomes.popleft() if self.next_outcomes else outcome_for(destination)

    def add_call(self, call: Call) -> None:
        self.calls[call.id] = call
        self.calls_placed += 1

    # Control ----------------------------------------------------------------------------------------------------

    def set_fault(self, endpoint: str = ALL_ENDPOINTS, **fault: Any) -> Fault:
        """Make requests to ``endpoint`` (a name from ENDPOINTS, or ``*``) fail; keywords are Fault's fields."""
        with self._lock:
            self.faults.set(_endpoint(endpoint), Fault(**fault))
            return self.faults.rules[endpoint]

    def clear_faults(self, endpoint: str | None = None) -> None:
        with self._lock:
            self.faults.clear(endpoint)

    def set_fair_use(self, limit: int | None, *, window_seconds: float = 60.0) -> None:
        """Answer 429 to every request past ``limit`` per window, across all endpoints (0: always; None: off)."""
        with self._lock:
            self.faults.set_fair_use(limit, window_seconds)

    def set_availability(self, agent_id: str, availability: str) -> None:
        if agent_id not in self.account.agents:
            raise SimError(404, NOT_FOUND)
        if availability not in AVAILABILITIES:
            raise SimError(400, f"availability must be one of {AVAILABILITIES}")
        with self._lock:
            self.availability[agent_id] = availability

    def force_next_outcome(self, outcome: str, *, talk_seconds: float | None = None) -> None:
        """Queue the outcome of the next placed call, overriding the dialled number's rule."""
        if outcome not in OUTCOMES:
            raise SimError(400, f"outcome must be one of {list(OUTCOMES)}")
        forced = OUTCOMES[outcome]
        if talk_seconds is not None:
            if outcome != "answered" or talk_seconds <= 0:
                raise SimError(400, "talkSeconds applies to answered calls and must be positive")
            forced = replace(forced, talk=talk_seconds)
        with self._lock:
            self.next_outcomes.append(forced)

    def snapshot(self, base_url: str = "http://vccsim") -> dict[str, Any]:
        """Everything the simulator holds, for ``GET /_sim/state`` and for tests."""
        with self._lock:
            now = self.now()
            key = self.account.account_key
            return {
                "now": isoformat(now),
                "accountKey": key,
                "callsPlaced": self.calls_placed,
                "calls": [call.to_json(base_url, key, now) for call in self.calls.values()],
                "agents": [
                    {"agentId": agent_id, "name": agent.name, "availability": self.agent_availability(agent_id)}
                    for agent_id, agent in self.account.agents.items()
                ],
                "nextOutcomes": [outcome.name for outcome in self.next_outcomes],
                "faults": self.faults.to_json(),
            }


def _match(request: SimRequest) -> tuple[Route, dict[str, str]]:
    allowed = []
    for route in ROUTES:
        match = route.pattern.fullmatch(request.path)
        if match is None:
            continue
        if route.method == request.method:
            return route, match.groupdict()
        allowed.append(route.method)
    if allowed:
        message = f"The requested resource does not support http method '{request.method}'."
        raise SimError(405, message, headers={"Allow": ", ".join(allowed)})
    raise SimError(404, NOT_FOUND)


def _endpoint(name: str) -> str:
    if name not in (*ENDPOINTS, ALL_ENDPOINTS):
        raise SimError(400, f"Unknown endpoint {name!r}; expected one of {[*ENDPOINTS, ALL_ENDPOINTS]}")
    return name


def _reason(status: int) -> str:
    # Faults may use any 400-599 status, standard or not (520 and friends).
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _spoil(response: SimResponse, how: str | None) -> SimResponse:
    if how == "empty":
        return replace(response, body=b"")
    if how == "truncated":
        return replace(response, body=response.body[: len(response.body) // 2] or b"{")
    return response
