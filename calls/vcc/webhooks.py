"""VCC's Webhooks API on the regional gateway (vcc-api.md §10.3): the event types, and the subscriptions that make
VCC push events to POST /vcc/events/. Needs `VCC_CLIENT_ID`/`VCC_CLIENT_SECRET` of a user allowed `admin:read` and
`admin:write` (admins get every scope).

FACT: `GET /webhooks/event-types`, `POST /webhooks/subscriptions` with {name, url (https), events, enabled, secret
(≥ 32 bytes)}; changes take up to 30 s; the scopes are `admin:read` and `admin:write` (which request needs which is
not said: both are asked for, in one token); the gateway's APIs are versioned with
`Accept: application/vnd.newvoicemedia.vN+json` (§1.3) and answer 400 without it (§9). INFERRED: the version (1,
`VCC_WEBHOOKS_API_VERSION`), the list is `GET /webhooks/subscriptions`, a subscription is removed with
`DELETE /webhooks/subscriptions/{id}`, and the answers' shapes: a list is read as a top-level array or under
`subscriptions`/`items` (`eventTypes`/`items` for the types), and any 2xx to the POST is a subscription made, with
or without a body.
"""

from __future__ import annotations

import base64
import functools
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from django.core.cache import cache

from .config import VCCConfig, http_client
from .core import authorized, error_from_response, json_body, last_segment, run_sync
from .errors import VCCError
from .types import Json

MIN_SECRET_BYTES = 32  # FACT (§10.3): what VCC asks of a new subscription's secret, decoded
SCOPE = "admin:read admin:write"  # space-separated scopes (§3.2): one token for the reads and the writes
# What vccweb uses (calls/calling/events.py), in v1 only: every type also comes in v0 (§10.3), which `channel.*` would
# match too. Named one by one: the docs allow wildcards without saying how they match. The held state's type is not
# named in the docs, so it is not asked for (vccweb would only note it in the call's history).
EVENTS = [
    "channel.alerted.v1",
    "channel.connected.v1",
    "channel.disconnected.v1",
    "channel.wrapstarted.v1",
    "agent.presencechanged.v1",
]


def _build(config: VCCConfig, method: str, path: str, body: Json | None, token: str) -> httpx.Request:
    accept = f"application/vnd.newvoicemedia.v{config.webhooks_api_version}+json"
    headers = {"Authorization": f"Bearer {token}", "Accept": accept}
    return httpx.Request(method, f"{config.gateway_url}/webhooks/{path}", json=body, headers=headers)


class WebhooksClient:
    def __init__(self, *, transport: httpx.BaseTransport | None = None, **overrides: Any) -> None:
        self.config = VCCConfig.from_settings(**overrides)
        self._http = http_client(self.config, transport)

    def _send(self, method: str, path: str, body: Json | None = None) -> httpx.Response:
        def flow():  # type: ignore[no-untyped-def]
            build = functools.partial(_build, self.config, method, path, body)
            response = yield from authorized(self.config.gateway_token_for(SCOPE), build)
            if not response.is_success:
                raise error_from_response(response)
            return response

        return run_sync(flow(), self._http, cache)

    def event_types(self) -> list[Json]:
        return _listed(self._send("GET", "event-types"), "eventTypes", "items")

    def subscriptions(self) -> list[Json]:
        return _listed(self._send("GET", "subscriptions"), "subscriptions", "items")

    def subscribe(self, *, name: str, url: str, secret: str, events: list[str] | None = None) -> Json:
        """The subscription made: VCC's answer when it is a JSON object, else what was asked for (never the secret),
        with the id from `Location` (or None). A local VCCError, and nothing sent, for a secret under 32 bytes."""
        if len(key := base64.b64decode(secret)) < MIN_SECRET_BYTES:  # VCC would refuse it: say why, sending nothing
            raise VCCError(
                f"the secret decodes to {len(key)} bytes, fewer than the {MIN_SECRET_BYTES} VCC asks of a subscription",
                user_message=f"VCC wants a new subscription's secret to decode to at least {MIN_SECRET_BYTES} bytes; "
                f"this one decodes to {len(key)}: put a longer one first in VCC_WEBHOOK_SECRETS.",
                local=True,
            )
        body = {"name": name, "url": url, "events": events or EVENTS, "enabled": True, "secret": secret}
        response = self._send("POST", "subscriptions", body)
        try:
            made = response.json()
        except ValueError:  # no body, or not JSON: the 2xx says it was made
            made = None
        if isinstance(made, dict):
            return made
        asked = {key: value for key, value in body.items() if key != "secret"}
        return {"id": last_segment(response.headers.get("Location")), **asked}

    def ensure_subscribed(self, *, name: str, url: str, secret: str) -> tuple[Json, bool, list[str]]:
        """The subscription delivering to `url`, made unless an enabled one exists (VCC would otherwise deliver each
        event once per subscription); True when made now; and the ids of the disabled ones to `url`, which deliver
        nothing (no update endpoint is documented to enable one again: a new one is made beside them)."""
        disabled = []
        for existing in self.subscriptions():
            if str(existing.get("url") or "").rstrip("/") != url.rstrip("/"):
                continue
            if existing.get("enabled", True) is False:
                disabled.append(str(existing.get("id")))
                continue
            return existing, False, disabled
        return self.subscribe(name=name, url=url, secret=secret), True, disabled

    def unsubscribe(self, subscription_id: str) -> None:
        self._send("DELETE", f"subscriptions/{quote(subscription_id, safe='')}")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WebhooksClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def disabled_note(ids: list[str]) -> str:
    """What to say of the disabled subscriptions to vccweb's URL that ensure_subscribed found, if any."""
    if not ids:
        return ""
    return (
        f" VCC also had {', '.join(ids)} to this URL, disabled (it delivered nothing): remove it with "
        "manage.py vcc_webhooks unsubscribe ID."
    )


def _listed(response: httpx.Response, *keys: str) -> list[Json]:
    """The objects of a list answer: a top-level array, or the array under the first of `keys` that holds one (none:
    an empty list); a VCCError when the answer is not JSON."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, list):
        found = json_body(response)
        body = next((found[key] for key in keys if isinstance(found.get(key), list)), [])
    return [item for item in body if isinstance(item, dict)]


def check_url(url: str, *, allow_http: bool) -> str:
    """Where VCC should deliver, or ValueError saying what to fix: absolute, https (VCC's rule), ending in
    /vcc/events/. http is allowed in sandbox mode or with DEBUG, and to this machine (a simulator's deliveries)."""
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"The URL must be absolute (https://…/vcc/events/), not {url!r}: set SITE_URL or --url.")
    loopback = urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")  # a simulator on this machine
    if url.startswith("http://") and not (allow_http or loopback):
        raise ValueError(f"VCC delivers only to https: {url!r} is http (allowed in sandbox mode or with DEBUG).")
    return url
