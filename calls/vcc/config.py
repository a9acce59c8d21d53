"""Settings for the VCC clients, and the one place that builds their httpx clients."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import ssl
import weakref
from dataclasses import dataclass, field
from typing import Any

import certifi
import httpx
from django.conf import settings
from django.utils.module_loading import import_string

from .core import TokenSource

GATEWAY_SCOPE = "users:read"


@dataclass(frozen=True)
class VCCConfig:
    base_url: str
    account_key: str
    api_token: str = field(repr=False)
    api_version: int
    webhooks_api_version: int
    connect_timeout: float
    read_timeout: float
    transport: str
    auth_url: str
    gateway_url: str
    client_id: str
    client_secret: str = field(repr=False)

    @classmethod
    def from_settings(cls, **overrides: Any) -> VCCConfig:
        """Read the `VCC_*` settings; `overrides` use the field names (`base_url=...`), mainly for tests."""
        names = {f.name for f in dataclasses.fields(cls)}
        if unknown := set(overrides) - names:
            raise TypeError(f"Unknown VCC settings: {', '.join(sorted(unknown))}")
        values = {name: getattr(settings, f"VCC_{name.upper()}") for name in names - set(overrides)}
        config = cls(**values, **overrides)
        return dataclasses.replace(
            config,
            base_url=config.base_url.rstrip("/"),
            auth_url=config.auth_url.rstrip("/"),
            gateway_url=config.gateway_url.rstrip("/"),
        )

    @property
    def lock_wait(self) -> float:
        # Long enough for another process's token request to finish or time out.
        return self.connect_timeout + self.read_timeout + 2

    @property
    def v0_token(self) -> TokenSource:
        return TokenSource(
            url=f"{self.base_url}/v0/oauth2/token",
            form={"grant_type": "client_credentials"},
            basic_auth=(self.account_key, self.api_token),
            default_expires_in=3600,
            lock_wait=self.lock_wait,
            identity=f"v0|{self.base_url}|{self.account_key}",
        )

    @property
    def gateway_token(self) -> TokenSource:
        return self.gateway_token_for(GATEWAY_SCOPE)

    def gateway_token_for(self, scope: str) -> TokenSource:
        """A gateway token with `scope`, scopes separated by spaces (users:read for the sync, admin:read and admin:write
        for the Webhooks API)."""
        return TokenSource(
            url=f"{self.auth_url}/Auth/connect/token",
            form={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "scope": scope,
            },
            basic_auth=None,
            default_expires_in=7200,
            lock_wait=self.lock_wait,
            identity=f"gateway|{self.auth_url}|{self.client_id}|{scope}",
        )


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~15 ms of CPU: do it once per process, not once per click.
    return ssl.create_default_context(cafile=certifi.where())


def _transport_from_settings(config: VCCConfig) -> Any:
    # An in-process transport (the sandbox's simulator) is chosen by settings, so `calls` never imports it.
    return import_string(config.transport)() if config.transport else None


def _client_options(config: VCCConfig) -> dict[str, Any]:
    return {
        "timeout": httpx.Timeout(config.read_timeout, connect=config.connect_timeout),
        "headers": {"User-Agent": "vccweb"},
        "follow_redirects": False,
    }


def http_client(config: VCCConfig, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """Build the sync httpx client. Retries live in one place, `core.exchange`, which knows what is safe to resend."""
    transport = transport or _transport_from_settings(config) or httpx.HTTPTransport(verify=_ssl_context())
    return httpx.Client(transport=transport, **_client_options(config))


def async_http_client(config: VCCConfig, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    transport = transport or _transport_from_settings(config) or _loop_pool()
    return httpx.AsyncClient(transport=transport, **_client_options(config))


# One connection pool per event loop: under uvicorn each worker keeps its connections to VCC open across clicks
# and panel polls, instead of a new TCP and TLS handshake each time. Pools die with their loop.
# A click holds a connection for as long as VCC takes to answer, so a worker needs one per click in flight: with
# httpx's default of 100, the 101st of a burst of clicks on a slow VCC waited for another click's whole answer (2 s
# more in issue 10's bench). Idle connections kept: enough that a burst's connections outlive it.
POOL_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncHTTPTransport] = weakref.WeakKeyDictionary()


class _LentPool(httpx.AsyncBaseTransport):
    """The loop's pool, lent to one client: closing the client leaves the pool open for the next."""

    def __init__(self, pool: httpx.AsyncHTTPTransport) -> None:
        self.pool = pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.pool.handle_async_request(request)

    async def aclose(self) -> None:
        pass


def _loop_pool() -> httpx.AsyncBaseTransport:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # built outside a loop: nothing to share it with
        return httpx.AsyncHTTPTransport(verify=_ssl_context())
    pool = _pools.get(loop)
    if pool is None:
        pool = _pools[loop] = httpx.AsyncHTTPTransport(verify=_ssl_context(), limits=POOL_LIMITS)
    return _LentPool(pool)
