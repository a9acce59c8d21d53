"""Where a delivery connects (calls/webhooks/delivery.py): the endpoint's host resolved and checked by
`safety.safe_addresses` once a pass, in a thread pool of its own; the request goes to an address it returned, never
to the name (a DNS rebind after the URL was checked cannot reach the inside)."""

from __future__ import annotations

import asyncio
import concurrent.futures

from calls.webhooks import safety

# Name lookups of the passes run here, not in the event loop's default executor, where the worker's sync jobs run
# (Procrastinate's sync_to_async): a pass never waits for a thread behind process_vcc_events or the fan-out.
_LOOKUPS = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook-lookup")


class Addresses:
    """The endpoint's host resolved and checked once a pass (not once a request), shared by its attempts."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, int], asyncio.Future[list[str]]] = {}

    async def of(self, host: str, port: int) -> list[str]:
        if (host, port) not in self._found:
            loop = asyncio.get_running_loop()
            self._found[(host, port)] = loop.run_in_executor(_LOOKUPS, safety.safe_addresses, host, port)
        return await asyncio.shield(self._found[(host, port)])
