"""`VCCClient` and `AsyncVCCClient`: the same operations over the shared core; only the I/O differs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import httpx
from django.core.cache import cache

from . import api
from .config import VCCConfig, async_http_client, http_client
from .core import Flow, run_async, run_sync
from .types import AgentDetail, Availability, CallDetail, CallRequest, PlacedCall


class VCCClient:
    """Talk to VCC's V0 API. `overrides` replace settings by field name (`base_url=...`); see `VCCConfig`."""

    def __init__(self, *, transport: httpx.BaseTransport | None = None, **overrides: Any) -> None:
        self.config = VCCConfig.from_settings(**overrides)
        self._http = http_client(self.config, transport)

    def _run[T](self, flow: Flow[T]) -> T:
        return run_sync(flow, self._http, cache)

    def place_call(self, req: CallRequest) -> PlacedCall:
        """Place a call. Never retried once it may have reached VCC: check `VCCError.may_have_placed`."""
        return self._run(api.place_call(self.config, req))

    def get_call(self, call_id: str) -> CallDetail:
        return self._run(api.get_call(self.config, call_id))

    def set_recording(self, call_id: str, status: str) -> str:
        return self._run(api.set_recording(self.config, call_id, status))

    def set_disposition(self, call_id: str, code: str, agent_id: str | None = None) -> str:
        return self._run(api.set_disposition(self.config, call_id, code, agent_id))

    def agents_ready(self, groups: Sequence[str] = (), *, count_only: bool = True) -> Availability:
        return self._run(api.agents_ready(self.config, groups, count_only))

    def get_agent(self, agent_id: str) -> AgentDetail:
        return self._run(api.get_agent(self.config, agent_id))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncVCCClient:
    """The async twin of `VCCClient`, so a slow VCC does not hold a worker."""

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None, **overrides: Any) -> None:
        self.config = VCCConfig.from_settings(**overrides)
        self._http = async_http_client(self.config, transport)

    async def _run[T](self, flow: Flow[T]) -> T:
        return await run_async(flow, self._http, cache)

    async def place_call(self, req: CallRequest) -> PlacedCall:
        return await self._run(api.place_call(self.config, req))

    async def get_call(self, call_id: str) -> CallDetail:
        return await self._run(api.get_call(self.config, call_id))

    async def set_recording(self, call_id: str, status: str) -> str:
        return await self._run(api.set_recording(self.config, call_id, status))

    async def set_disposition(self, call_id: str, code: str, agent_id: str | None = None) -> str:
        return await self._run(api.set_disposition(self.config, call_id, code, agent_id))

    async def agents_ready(self, groups: Sequence[str] = (), *, count_only: bool = True) -> Availability:
        return await self._run(api.agents_ready(self.config, groups, count_only))

    async def get_agent(self, agent_id: str) -> AgentDetail:
        return await self._run(api.get_agent(self.config, agent_id))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def get_client() -> VCCClient:
    return VCCClient()


def get_async_client() -> AsyncVCCClient:
    return AsyncVCCClient()
