"""An httpx transport that answers from a Simulator in-process: no socket, same bytes."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable

import httpx

from vccsim.clock import Clock
from vccsim.simulator import Simulator
from vccsim.state import load_account
from vccsim.wire import SimResponse


class SimTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Serve httpx requests, sync or async, from ``sim``.

    Injected latency counts against the request's read timeout as it would on a network: past it, the request
    raises ``httpx.ReadTimeout`` (after the simulator has handled it). A connection dropped before handling raises
    ``httpx.ConnectError``; one dropped after handling raises ``httpx.RemoteProtocolError``.
    """

    def __init__(
        self,
        sim: Simulator,
        *,
        sleep: Callable[[float], object] = time.sleep,
        asleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.sim = sim
        # How the latency is waited out, sync and async: tests give functions that note it and return at once.
        self.sleep, self.asleep = sleep, asleep

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.sim.handle(request.method, str(request.url), request.headers, request.read())
        wait, timed_out = _wait(request, response)
        self.sleep(wait)
        return _to_httpx(request, response, timed_out)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = self.sim.handle(request.method, str(request.url), request.headers, await request.aread())
        wait, timed_out = _wait(request, response)
        await self.asleep(wait)
        return _to_httpx(request, response, timed_out)


def _wait(request: httpx.Request, response: SimResponse) -> tuple[float, bool]:
    """How long to wait before answering, and whether the read timeout runs out first."""
    timeout = request.extensions.get("timeout", {}).get("read")
    if timeout is not None and response.delay > timeout:
        return timeout, True
    return response.delay, False


def _to_httpx(request: httpx.Request, response: SimResponse, timed_out: bool) -> httpx.Response:
    if timed_out:
        raise httpx.ReadTimeout("Simulated latency exceeded the read timeout", request=request)
    if response.drop == "before":
        raise httpx.ConnectError("Simulated dropped connection", request=request)
    if response.drop == "after":
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
    return httpx.Response(response.status, headers=response.headers, content=response.body, request=request)


_sandbox: SimTransport | None = None
_sandbox_lock = threading.Lock()


def sandbox_transport() -> SimTransport:
    """The process-wide transport over one Simulator with the sample account, at speed ``VCCSIM_SPEED``."""
    global _sandbox
    with _sandbox_lock:
        if _sandbox is None:
            speed = os.environ.get("VCCSIM_SPEED", "1.0")
            try:
                clock = Clock(speed=float(speed))
            except ValueError as error:
                raise ValueError(f"VCCSIM_SPEED must be a positive number, not {speed!r}") from error
            sim = Simulator(load_account(), clock=clock)
            sim.start_delivery()  # idle until something subscribes to its webhooks
            _sandbox = SimTransport(sim)
        return _sandbox
