"""VCC's Webhooks API on the gateway: event types and subscriptions (vcc-api.md §10.3).

Request and response bodies are not documented beyond the subscription's fields; the shapes here are the
simulator's (see README). Changes apply at once, where VCC says they take up to 30 seconds.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from vccsim.clock import isoformat
from vccsim.gateway import check_version
from vccsim.wire import NOT_FOUND, SimError, SimRequest, SimResponse, json_response

if TYPE_CHECKING:
    from vccsim.simulator import Simulator

# The event types VCC lists, each in versions v0 and v1. The simulator emits both versions, each to the subscriptions
# that ask for it (a copy of its own, with its own id: the v0 data is the simulator's invention, see events.v0_data),
# and never channel.held (it does not model holding a call); subscribing to it is accepted but delivers nothing.
EVENT_TYPES = {
    "agent.presencechanged": "An agent's presence changed (Ready, Away, Extended Away, Logged Out).",
    "channel.alerted": "A channel (one party's leg of a call) started ringing.",
    "channel.connected": "A channel was answered.",
    "channel.disconnected": "A channel ended.",
    "channel.wrapstarted": "The agent's channel ended and the agent started wrap-up.",
    "channel.held": "A channel was put on hold or taken off hold.",
}
VERSIONS = ("v0", "v1")
KNOWN_TYPES = tuple(f"{name}.{version}" for name in EVENT_TYPES for version in VERSIONS)
MIN_SECRET_BYTES = 32
API_VERSION = 1  # Accept: application/vnd.newvoicemedia.v1+json (the version is the simulator's choice)
MAX_NAME_LENGTH = 255
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")  # http allowed to these: a simulator-only allowance
_PATTERN = re.compile(r"[a-z0-9*]+(\.[a-z0-9*]+)*")


@dataclass(frozen=True)
class Subscription:
    id: str
    name: str
    url: str
    events: tuple[str, ...]  # event types, possibly with * wildcards: "channel.*", "*.v1"
    enabled: bool
    secret: str  # base64 text; the signing key is the decoded bytes
    created_at: float

    def wants(self, event_type: str) -> bool:
        return self.enabled and any(fnmatchcase(event_type, pattern) for pattern in self.events)

    def key(self) -> bytes:
        return base64.b64decode(self.secret)

    def to_json(self) -> dict[str, Any]:
        """The subscription as the API shows it: never the secret."""
        return {
            "id": self.id,
            "name": self.name,
            "url": self.url,
            "events": list(self.events),
            "enabled": self.enabled,
            "createdAt": isoformat(self.created_at),
        }


def new_subscription(data: Any, now: float) -> Subscription:
    """Validate a ``POST /webhooks/subscriptions`` body; 400 with a message saying what is wrong."""
    if not isinstance(data, Mapping):
        raise bad_request("The body must be a JSON object with name, url, events, enabled and secret")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise bad_request(f"name is required: text of 1 to {MAX_NAME_LENGTH} characters")
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise bad_request("enabled must be true or false")
    return Subscription(
        id=str(uuid.uuid4()),
        name=name.strip(),
        url=_url(data.get("url")),
        events=_events(data.get("events")),
        enabled=enabled,
        secret=_secret(data.get("secret")),
        created_at=now,
    )


def _url(url: Any) -> str:
    if not isinstance(url, str) or not url.strip():
        raise bad_request("url is required: an https URL")
    parts = urlsplit(url.strip())
    if not parts.hostname:
        raise bad_request(f"url must be an absolute https URL, not {url!r}")
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS):
        return url.strip()
    raise bad_request("url must use https (the simulator also allows http to 127.0.0.1, localhost or ::1)")


def _events(events: Any) -> tuple[str, ...]:
    if not isinstance(events, list) or not events or not all(isinstance(event, str) for event in events):
        raise bad_request('events is required: a list of event types such as "channel.connected.v1" or "channel.*"')
    patterns = tuple(dict.fromkeys(event.strip().lower() for event in events))
    for pattern in patterns:
        if not _PATTERN.fullmatch(pattern) or not any(fnmatchcase(known, pattern) for known in KNOWN_TYPES):
            raise bad_request(
                f"Unknown event type {pattern!r}: expected a type with its version, such as "
                f'"channel.connected.v1", or a wildcard such as "channel.*"; known types: {list(KNOWN_TYPES)}'
            )
    return patterns


def _secret(secret: Any) -> str:
    message = f"secret is required: base64 text that decodes to at least {MIN_SECRET_BYTES} bytes"
    if not isinstance(secret, str):
        raise bad_request(message)
    try:
        key = base64.b64decode(secret.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"{message}; it is not base64") from None
    if len(key) < MIN_SECRET_BYTES:
        raise bad_request(f"{message}; it decodes to {len(key)}")
    return secret.strip()


def bad_request(message: str) -> SimError:
    """A 400 in the gateway's shape (the one User Admin uses for its version errors)."""
    return SimError(400, payload={"statusCode": 400, "error": "Bad Request", "message": message})


# Endpoints ------------------------------------------------------------------------------------------------------


def event_types(sim: Simulator, request: SimRequest) -> SimResponse:
    _authorize(sim, request, write=False)
    body = [
        {"name": name, "versions": list(VERSIONS), "description": description}
        for name, description in EVENT_TYPES.items()
    ]
    return json_response(200, {"eventTypes": body})


def list_subscriptions(sim: Simulator, request: SimRequest) -> SimResponse:
    _authorize(sim, request, write=False)
    return json_response(200, {"subscriptions": [item.to_json() for item in sim.subscriptions.values()]})


def get_subscription(sim: Simulator, request: SimRequest, subscription_id: str) -> SimResponse:
    _authorize(sim, request, write=False)
    return json_response(200, _find(sim, subscription_id).to_json())


def subscribe(sim: Simulator, request: SimRequest) -> SimResponse:
    _authorize(sim, request, write=True)
    if request.media_type() != "application/json":
        raise SimError(415, f"The requested resource does not support content type '{request.media_type()}'.")
    subscription = sim.add_subscription(new_subscription(request.json(), sim.now()))
    location = f"{request.base_url}/webhooks/subscriptions/{subscription.id}"
    return json_response(201, subscription.to_json(), {"Location": location})


def unsubscribe(sim: Simulator, request: SimRequest, subscription_id: str) -> SimResponse:
    _authorize(sim, request, write=True)
    sim.remove_subscription(_find(sim, subscription_id).id)
    return SimResponse(204, {}, b"")


def _find(sim: Simulator, subscription_id: str) -> Subscription:
    subscription = sim.subscriptions.get(subscription_id.lower())
    if subscription is None:
        raise SimError(404, NOT_FOUND)
    return subscription


def _authorize(sim: Simulator, request: SimRequest, *, write: bool) -> None:
    """A gateway token with admin:write, or admin:read for reads (admin:write covers reads too: the docs do not say
    which request needs which scope), then the versioned Accept, as User Admin checks them."""
    token = sim.authorize(request, "gateway")
    wanted = ("admin:write",) if write else ("admin:read", "admin:write")
    if not token.scopes.intersection(wanted):
        raise SimError(403, f"The access token does not have the {wanted[0]} scope")
    check_version(request, API_VERSION)
