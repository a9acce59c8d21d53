"""Where a delivery connects (calls/webhooks/delivery.py): the endpoint's host resolved and checked by
`safety.safe_addresses` once a pass, in a thread pool of its own; the request goes to an address it returned, never
to the name (a DNS rebind after the URL was checked cannot reach the inside).

A host may resolve to several addresses, and the first may not be reachable (an IPv6 one on a network without IPv6):
when connecting to one fails, the next checked one is tried, up to MAX_TRIED, within the attempt's own timeout. Only
then: once the request may have been sent (an answer, a read timeout, a connection closed under it), the receiver
may have acted on it, and trying another address could deliver it twice."""

from __future__ import annotations

import asyncio
import concurrent.futures

import httpx

from calls.webhooks import safety

MAX_TRIED = 3  # addresses tried in one attempt, at most
CONNECT_TIMEOUT = 3.0  # seconds to connect to an address when another is left to try (the last one gets the client's)

# Name lookups of the passes run here, not in the event loop's default executor, where the worker's sync jobs run
# (Procrastinate's sync_to_async): a pass never waits for a thread behind process_vcc_events or the fan-out.
_LOOKUPS = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook-lookup")


class Addresses:
    """The endpoint's host resolved and checked once a pass (not once a request), shared by its attempts, which try
    first the address one of them reached."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, int], asyncio.Future[list[str]]] = {}
        self._reached: dict[tuple[str, int], str] = {}

    async def of(self, host: str, port: int) -> list[str]:
        """The checked addresses, the one last reached first; ValidationError (safety.Unsafe) when one is refused."""
        if (host, port) not in self._found:
            loop = asyncio.get_running_loop()
            self._found[(host, port)] = loop.run_in_executor(_LOOKUPS, safety.safe_addresses, host, port)
        found = await asyncio.shield(self._found[(host, port)])
        reached = self._reached.get((host, port))
        return sorted(found, key=lambda address: address != reached)  # stable: the resolver's order otherwise

    async def post(
        self, client: httpx.AsyncClient, url: httpx.URL, host: str, *, content: bytes, headers: dict[str, str]
    ) -> httpx.Response:
        """POST to the host's checked addresses in turn, the next only when connecting to one failed; the response
        is streamed (the caller reads and closes it). `host` is the name as saved, in ASCII, for TLS (SNI)."""
        port = url.port or safety.default_port(url.scheme)
        tried = (await self.of(host, port))[:MAX_TRIED]
        timeout = client.timeout
        sooner = httpx.Timeout(
            connect=min(CONNECT_TIMEOUT, timeout.connect or CONNECT_TIMEOUT),
            read=timeout.read,
            write=timeout.write,
            pool=timeout.pool,
        )
        failed: list[str] = []
        for n, address in enumerate(tried):
            last = n == len(tried) - 1
            request = client.build_request(
                "POST",
                url.copy_with(host=address),
                content=content,
                headers=headers,
                extensions={"sni_hostname": host},
                timeout=timeout if last else sooner,
            )
            try:
                response = await client.send(request, stream=True, follow_redirects=False)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # nothing was sent: another address may do
                failed.append(f"{address}: {_why(exc)}")
                if last and len(tried) > 1:
                    raise httpx.ConnectError(f"no address could be reached ({'; '.join(failed)})") from exc
                if last:
                    raise
                continue
            self._reached[(host, port)] = address
            return response
        raise AssertionError("safe_addresses returns at least one address")  # pragma: no cover


def _why(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "no connection within the timeout"
    return str(exc) or type(exc).__name__
