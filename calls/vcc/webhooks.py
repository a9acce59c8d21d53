"""VCC's Webhooks API on the regional gateway (vcc-api.md §10.3): the event types, and the subscriptions that make
VCC push events to POST /vcc/events/. Needs `VCC_CLIENT_ID`/`VCC_CLIENT_SECRET` of a user allowed `admin:write`.

FACT: `GET /webhooks/event-types`, `POST /webhooks/subscriptions` with {name, url (https), events, enabled, secret
(≥ 32 bytes)}; changes take up to 30 s. INFERRED (vccsim does the same): the list is `GET /webhooks/subscriptions`
({"subscriptions": [...]}), a subscription is removed with `DELETE /webhooks/subscriptions/{id}`, and the answers'
shapes.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from django.core.cache import cache

from .config import VCCConfig, http_client
from .core import authorized, error_from_response, json_body, run_sync
from .types import Json

SCOPE = "admin:write"
EVENTS = ["channel.*", "agent.presencechanged.v1"]  # what vccweb uses (calls/calling/events.py)


def _build(config: VCCConfig, method: str, path: str, body: Json | None, token: str) -> httpx.Request:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
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
        listed = json_body(self._send("GET", "event-types")).get("eventTypes")
        return [item for item in listed if isinstance(item, dict)] if isinstance(listed, list) else []

    def subscriptions(self) -> list[Json]:
        listed = json_body(self._send("GET", "subscriptions")).get("subscriptions")
        return [item for item in listed if isinstance(item, dict)] if isinstance(listed, list) else []

    def subscribe(self, *, name: str, url: str, secret: str, events: list[str] | None = None) -> Json:
        body = {"name": name, "url": url, "events": events or EVENTS, "enabled": True, "secret": secret}
        return json_body(self._send("POST", "subscriptions", body))

    def ensure_subscribed(self, *, name: str, url: str, secret: str) -> tuple[Json, bool]:
        """The subscription delivering to `url`, made unless one exists (VCC would otherwise deliver each event
        once per subscription); True when made now."""
        for existing in self.subscriptions():
            if str(existing.get("url") or "").rstrip("/") == url.rstrip("/"):
                return existing, False
        return self.subscribe(name=name, url=url, secret=secret), True

    def unsubscribe(self, subscription_id: str) -> None:
        self._send("DELETE", f"subscriptions/{quote(subscription_id, safe='')}")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WebhooksClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_url(url: str, *, allow_http: bool) -> str:
    """Where VCC should deliver, or ValueError saying what to fix: absolute, https (VCC's rule), ending in
    /vcc/events/. http is allowed in sandbox mode or with DEBUG, and to this machine (a simulator's deliveries)."""
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"The URL must be absolute (https://…/vcc/events/), not {url!r}: set SITE_URL or --url.")
    loopback = urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")  # a simulator on this machine
    if url.startswith("http://") and not (allow_http or loopback):
        raise ValueError(f"VCC delivers only to https: {url!r} is http (allowed in sandbox mode or with DEBUG).")
    return url
