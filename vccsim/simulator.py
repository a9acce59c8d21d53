"""The simulator's core: account state, tokens, calls and faults behind one ``handle()`` used by both front doors."""

from __future__ import annotations

import heapq
import json
import math
import re
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Any

import httpx

from vccsim import control, delivery, events, gateway, v0, webhooks
from vccsim.calls import INBOUND, INBOUND_OUTCOMES, OUTBOUND, OUTCOMES, RETENTION, Call, Outcome, outcome_for
from vccsim.clock import Clock, isoformat
from vccsim.delivery import Deliverer, Delivery, Outbox, WebhookFault
from vccsim.faults import ALL_ENDPOINTS, Fault, Faults
from vccsim.state import AVAILABILITIES, Account, to_e164
from vccsim.webhooks import Subscription
from vccsim.wire import INVALID_TOKEN, NOT_FOUND, SimError, SimRequest, SimResponse

Handler = Callable[..., SimResponse]

PRESENCE_DESCRIPTIONS = {"Ready": "Ready", "Away": "Away", "ExtendedAway": "Extended Away", "LoggedOut": "Logged Out"}
READY = ("Ready", "Ready")
# An availability set at run time changes the agent's presence too; busy (on a call) is not a presence.
PRESENCE_OF_AVAILABILITY = {"ready": READY, "away": ("Away", "Away")}


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
    _route("GET", "/webhooks/event-types", "event_types", webhooks.event_types),
    _route("GET", "/webhooks/subscriptions", "subscriptions", webhooks.list_subscriptions),
    _route("POST", "/webhooks/subscriptions", "subscribe", webhooks.subscribe),
    _route("GET", "/webhooks/subscriptions/{subscription_id}", "subscription", webhooks.get_subscription),
    _route("DELETE", "/webhooks/subscriptions/{subscription_id}", "unsubscribe", webhooks.unsubscribe),
    _route("GET", "/_sim/state", "control", control.state),
    _route("POST", "/_sim/reset", "control", control.reset),
    _route("GET", "/_sim/faults", "control", control.faults),
    _route("DELETE", "/_sim/faults", "control", control.clear_faults),
    _route("POST", "/_sim/faults/{endpoint}", "control", control.set_fault),
    _route("DELETE", "/_sim/faults/{endpoint}", "control", control.clear_faults),
    _route("POST", "/_sim/fair-use", "control", control.set_fair_use),
    _route("POST", "/_sim/agents/{agent_id}/availability", "control", control.set_availability),
    _route("POST", "/_sim/agents/{agent_id}/presence", "control", control.set_presence),
    _route("POST", "/_sim/calls", "control", control.start_call),
    _route("GET", "/_sim/webhooks", "control", control.webhook_state),
    _route("POST", "/_sim/webhooks/fault", "control", control.set_webhook_fault),
    _route("DELETE", "/_sim/webhooks/fault", "control", control.clear_webhook_fault),
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
        # Where webhook deliveries go: None sends them over the network; tests may give an in-process transport.
        self.webhook_transport: httpx.BaseTransport | None = None
        self._deliverer: Deliverer | None = None
        self.reset()

    def reset(self) -> None:
        """Forget calls, tokens and run-time changes: back to the account file's state, start-up faults included."""
        with self._lock:
            self.calls: dict[str, Call] = {}
            # The calls each agent's phone is in (as the caller or the colleague dialled), and when each call
            # leaves `calls` (RETENTION after it ends), soonest first. Every request used to scan every call held:
            # a POST cost 3.2 ms of CPU with 10,800 calls held (a long bench's), 0.45 ms this way (sample account).
            self._calls_of: dict[str, list[Call]] = {}
            self._expiring: list[tuple[float, str]] = []
            self.tokens: dict[str, Token] = {}
            self.availability = {agent_id: agent.availability for agent_id, agent in self.account.agents.items()}
            self.calls_placed = 0
            self.next_outcomes: deque[Outcome] = deque()
            self.faults = Faults()
            for endpoint, fault in self.account.faults.items():
                self.faults.set(_endpoint(endpoint), Fault.from_json(fault))
            self.faults.set_fair_use(self.account.fair_use_limit)
            self.presence = {
                agent_id: PRESENCE_OF_AVAILABILITY.get(agent.availability, READY)
                for agent_id, agent in self.account.agents.items()
            }
            self.subscriptions: dict[str, Subscription] = {}
            self.outbox = Outbox()
            # Calls whose channel events are being followed, with the clock time up to which they were emitted.
            # Followed only while an enabled subscription exists: without one, no event is built at all.
            self._following: dict[str, float] = {}

    # Front door -------------------------------------------------------------------------------------------------

    def handle(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> SimResponse:
        request = SimRequest.build(method, url, headers, body)
        with self._lock:
            self._emit_call_events()  # what happened on the clock since the last request, before calls expire
            try:
                route, params = _match(request)
                if route.name == "control":
                    return route.handler(self, request, **params)
                return self._serve(route, request, params)
            except SimError as error:
                return error.response()
            finally:
                self._emit_call_events()

    def _serve(self, route: Route, request: SimRequest, params: dict[str, str]) -> SimResponse:
        now = self.now()
        self._expire(now)
        retry_after = self.faults.fair_use_retry_after(now, self.clock.seconds_per_real_second)
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
        return next((call for call in self._calls_of.get(agent_id, ()) if call.is_live(now)), None)

    def latest_call(self, agent_id: str) -> Call | None:
        return max(self._calls_of.get(agent_id, ()), key=lambda call: call.placed_at, default=None)

    def _expire(self, now: float) -> None:
        """Forget the calls that ended RETENTION ago (VCC no longer shows them)."""
        while self._expiring and self._expiring[0][0] <= now:
            _, call_id = heapq.heappop(self._expiring)
            call = self.calls.pop(call_id)
            for agent_id in _phones(call):
                self._calls_of[agent_id].remove(call)

    def agent_availability(self, agent_id: str) -> str:
        """``busy`` while on a call the simulator placed, else the availability set in the file or at run time."""
        return "busy" if self.live_call(agent_id) else self.availability[agent_id]

    def take_outcome(self, destination: str) -> Outcome:
        return self.next_outcomes.popleft() if self.next_outcomes else outcome_for(destination)

    def add_call(self, call: Call, *, placed: bool = True) -> None:
        """Hold a new call; ``placed``: it was placed through the Calls API (and counts in calls_placed)."""
        self.calls[call.id] = call
        for agent_id in _phones(call):
            self._calls_of.setdefault(agent_id, []).append(call)
        heapq.heappush(self._expiring, (call.ended_at + RETENTION, call.id))
        if placed:
            self.calls_placed += 1
        if self._webhooks_on():
            self._following[call.id] = -math.inf

    def start_call(
        self,
        agent_id: str,
        telephone_number: str,
        *,
        direction: str = OUTBOUND,
        outcome: str | None = None,
        talk_seconds: float | None = None,
        clid: str | None = None,
    ) -> Call:
        """A call vccweb did not place: the agent dialling from their own phone (outbound), or a caller ringing
        the agent (inbound, on ``clid``, the number they dialled). Outbound outcomes follow the number's last
        digits, as for placed calls; inbound calls are answered unless ``outcome`` is ``agent_no_answer``."""
        with self._lock:
            if agent_id not in self.account.agents:
                raise SimError(400, f"Unknown agent {agent_id!r}")
            if self.agent_availability(agent_id) == "busy":
                raise SimError(400, f"Agent {agent_id} is busy")
            if direction not in (OUTBOUND, INBOUND):
                raise SimError(400, f"direction must be {OUTBOUND} or {INBOUND}")
            number = to_e164(telephone_number, self.account.default_region)
            if number is None:
                raise SimError(400, f"telephoneNumber {telephone_number!r} is not a valid number")
            usable = [item.clid for item in self.account.callback_numbers if item.allows(agent_id)]
            if clid is not None and to_e164(clid, self.account.default_region) is None:
                raise SimError(400, f"presentedClid {clid!r} is not a valid number")
            line = clid or (usable[0] if usable else None)
            chosen = self._start_outcome(direction, outcome, telephone_number, talk_seconds)
            if direction == OUTBOUND:
                from_party = {"agentId": agent_id, "presentedClid": line}
                to_party: dict[str, Any] = {"telephoneNumber": telephone_number}
            else:
                from_party = {"telephoneNumber": telephone_number}
                to_party = {"agentId": agent_id, "telephoneNumber": line}
            call = Call(
                id=str(uuid.uuid4()),
                agent_id=agent_id,
                dialled_agent_id=None,
                from_party=from_party,
                to_party=to_party,
                regarding=None,
                application=None,
                placed_at=self.now(),
                outcome=chosen,
                direction=direction,
                origin="AgentPhone" if direction == OUTBOUND else "Caller",
            )
            self.add_call(call, placed=False)
            self._emit_call_events()
            return call

    def _start_outcome(self, direction: str, outcome: str | None, number: str, talk_seconds: float | None) -> Outcome:
        choices = OUTCOMES if direction == OUTBOUND else INBOUND_OUTCOMES
        if outcome is None:
            chosen = outcome_for(number) if direction == OUTBOUND else INBOUND_OUTCOMES["answered"]
        elif outcome in choices:
            chosen = choices[outcome]
        else:
            raise SimError(400, f"outcome of an {direction.lower()} call must be one of {list(choices)}")
        if talk_seconds is not None:
            if chosen.name != "answered" or talk_seconds <= 0:
                raise SimError(400, "talkSeconds applies to answered calls and must be positive")
            chosen = replace(chosen, talk=talk_seconds)
        return chosen

    # Webhooks ---------------------------------------------------------------------------------------------------

    def _webhooks_on(self) -> bool:
        return any(subscription.enabled for subscription in self.subscriptions.values())

    def add_subscription(self, subscription: Subscription) -> Subscription:
        """Subscribe at once (VCC takes up to 30 s): events from now on, none from before."""
        with self._lock:
            self._emit_call_events()
            if subscription.enabled and not self._webhooks_on():
                now = self.now()
                self._following = {call.id: now for call in self.calls.values() if call.is_live(now)}
            self.subscriptions[subscription.id] = subscription
            return subscription

    def subscribe(
        self, url: str, events: list[str], secret: str, *, name: str = "vccsim", enabled: bool = True
    ) -> Subscription:
        """The Python door to ``POST /webhooks/subscriptions``, with the same validation."""
        body = {"name": name, "url": url, "events": events, "enabled": enabled, "secret": secret}
        return self.add_subscription(webhooks.new_subscription(body, self.now()))

    def remove_subscription(self, subscription_id: str) -> None:
        """Unsubscribe at once; deliveries still queued for it are dropped."""
        with self._lock:
            self.subscriptions.pop(subscription_id, None)
            self.outbox.forget(subscription_id)
            if not self._webhooks_on():
                self._following.clear()

    def set_webhook_fault(self, **fault: Any) -> WebhookFault:
        """Make the next deliveries misbehave; keywords are WebhookFault's fields. Replaces the current fault."""
        with self._lock:
            self.outbox.set_fault(WebhookFault(**fault))
            assert self.outbox.fault is not None
            return self.outbox.fault

    def clear_webhook_fault(self) -> None:
        """Deliver normally again; deliveries a reorder fault held are released, last first."""
        with self._lock:
            self.outbox.set_fault(None)

    def deliver_pending(self, *, client: httpx.Client | None = None) -> list[dict[str, Any]]:
        """Send every delivery due on the clock now, one attempt each, and return the log of those attempts.

        Sending happens outside the simulator's lock, so requests are answered meanwhile.
        """
        with self._lock:
            self._emit_call_events()
            now = self.now()
            outbox = self.outbox  # a reset() meanwhile replaces it: these deliveries then settle into the old one
            due = outbox.take_due(now)
            for item in due:
                item.attempts += 1
        if not due:
            return []
        owned = client is None
        client = client or delivery.new_client(self.webhook_transport)
        try:
            results = [(item, *delivery.send(client, item)) for item in due]
        finally:
            if owned:
                client.close()
        with self._lock:
            now = self.now()
            return [outbox.settle(item, now, status, error) for item, status, error in results]

    def start_delivery(self, interval: float = 0.05) -> None:
        """Deliver on a background thread from now on (a served simulator does); idempotent."""
        with self._lock:
            if self._deliverer is None:
                self._deliverer = Deliverer(self, interval)

    def stop_delivery(self) -> None:
        with self._lock:
            deliverer, self._deliverer = self._deliverer, None
        if deliverer is not None:
            deliverer.stop()

    def _emit_call_events(self) -> None:
        """Queue the channel events of followed calls that happened on the clock since they were last looked at."""
        if not self._following:
            return
        now = self.now()
        happened = []
        for call_id, since in list(self._following.items()):
            call = self.calls.get(call_id)
            if call is None:
                del self._following[call_id]
                continue
            for index, step in enumerate(call.channel_steps()):
                if since < step.at <= now:
                    happened.append((step.at, call.placed_at, call.id, index, call, step))
            if now >= call.ended_at:
                del self._following[call_id]
            else:
                self._following[call_id] = now
        happened.sort(key=lambda item: item[:4])
        for at, _, _, _, call, step in happened:
            data = events.channel_data(self.account, call, step)
            self._emit(f"channel.{step.event}", subject=call.id, at=at, data=data)

    def _emit(self, event_type: str, *, subject: str, at: float, data: dict[str, Any]) -> None:
        """Queue the event for the subscriptions that want it: a copy per version asked for, each with its own id."""
        now = self.now()
        for version in webhooks.VERSIONS:
            wanting = [item for item in self.subscriptions.values() if item.wants(f"{event_type}.{version}")]
            if not wanting:
                continue
            versioned = data if version == "v1" else events.v0_data(event_type, data)
            body = events.cloud_event(
                event_type, version=version, source=self._source(), subject=subject, time=at, data=versioned
            )
            event_id = json.loads(body)["id"]
            for subscription in wanting:
                delivery = Delivery(
                    seq=self.outbox.next_seq(),
                    subscription_id=subscription.id,
                    url=subscription.url,
                    key=subscription.key(),
                    event_id=event_id,
                    event_type=f"{event_type}.{version}",
                    body=body,
                    due_at=now,
                )
                self.outbox.add(delivery, now)

    def _source(self) -> str:
        return f"/vcc/{self.account.account_key}"

    def set_presence(self, agent_id: str, category: str, description: str | None = None) -> None:
        """Change an agent's presence (``agent.presencechanged``); Ready makes them ready, anything else away."""
        if agent_id not in self.account.agents:
            raise SimError(404, NOT_FOUND)
        if category not in events.PRESENCE_CATEGORIES:
            raise SimError(400, f"category must be one of {list(events.PRESENCE_CATEGORIES)}")
        if description is not None and (not isinstance(description, str) or not description.strip()):
            raise SimError(400, "description must be non-blank text")
        with self._lock:
            self.availability[agent_id] = "ready" if category == "Ready" else "away"
            self._change_presence(agent_id, (category, description or PRESENCE_DESCRIPTIONS[category]))

    def _change_presence(self, agent_id: str, presence: tuple[str, str]) -> None:
        previous = self.presence[agent_id]
        if presence == previous:
            return
        self.presence[agent_id] = presence
        if self._webhooks_on():
            self._emit_call_events()  # keep the events in the order they happened
            data = events.presence_data(self.account.agents[agent_id], presence, previous)
            self._emit("agent.presencechanged", subject=self.account.agents[agent_id].user_id, at=self.now(), data=data)

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
            if availability in PRESENCE_OF_AVAILABILITY:
                self._change_presence(agent_id, PRESENCE_OF_AVAILABILITY[availability])

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
                    {
                        "agentId": agent_id,
                        "name": agent.name,
                        "availability": self.agent_availability(agent_id),
                        "presence": {"category": self.presence[agent_id][0], "description": self.presence[agent_id][1]},
                    }
                    for agent_id, agent in self.account.agents.items()
                ],
                "nextOutcomes": [outcome.name for outcome in self.next_outcomes],
                "faults": self.faults.to_json(),
                "webhooks": self.webhook_state(),
            }

    def webhook_state(self) -> dict[str, Any]:
        """Subscriptions, the queue, the fault and the latest attempts, for ``GET /_sim/webhooks`` and tests."""
        with self._lock:
            return {
                "subscriptions": [item.to_json() for item in self.subscriptions.values()],
                "pending": len(self.outbox.pending),
                "held": len(self.outbox.held),
                "fault": self.outbox.fault.to_json() if self.outbox.fault else None,
                "attempts": list(self.outbox.log)[-100:],
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


def _phones(call: Call) -> list[str]:
    """The agents whose phones are in the call: the one it rang first, and the colleague dialled, if any."""
    return [call.agent_id] + ([call.dialled_agent_id] if call.dialled_agent_id not in (None, call.agent_id) else [])
