"""The client factories and their settings, the async VCC client, and the event loop's connection pool."""

from __future__ import annotations

import httpx
import pytest

from calls.vcc import AsyncVCCClient, CallRequest, VCCClient, VCCError, get_async_client, get_client
from tests import _vcc_client
from tests._vcc_client import CALL_ID, CALLS_URL, DOCUMENTED_CALLS, PLACED_BODY, FakeVCC, created, message, sent_json

vcc_settings = _vcc_client.vcc_settings  # autouse fixture


# --- Factory and settings -------------------------------------------------------------------------

_module_fake = FakeVCC(created())


def module_transport() -> httpx.MockTransport:
    return httpx.MockTransport(_module_fake)


def test_get_client_uses_the_transport_named_in_settings(vcc_settings):
    vcc_settings.VCC_TRANSPORT = f"{__name__}.module_transport"
    _module_fake.requests.clear()
    with get_client() as client:
        client.place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))
    assert str(_module_fake.request.url) == CALLS_URL


def test_get_client_has_explicit_timeouts_and_one_retry_layer(vcc_settings):
    vcc_settings.VCC_CONNECT_TIMEOUT = 2.0
    vcc_settings.VCC_READ_TIMEOUT = 7.0
    with get_client() as client:
        assert client._http.timeout == httpx.Timeout(7.0, connect=2.0)
        assert isinstance(client._http._transport, httpx.HTTPTransport)
        # Retries live only in core.exchange (one more try when safe): the transport itself never retries,
        # so a closed port costs two connection attempts, not six.
        assert client._http._transport._pool._retries == 0


def test_settings_can_be_overridden_per_client():
    fake = FakeVCC(created())
    VCCClient(transport=httpx.MockTransport(fake), base_url="http://other.test/", account_key="k2").place_call(
        CallRequest(from_agent_id="1234", to_number="02072068888")
    )
    assert str(fake.request.url) == "http://other.test/v0/k2/calls/"
    assert str(fake.token_requests[0].url) == "http://other.test/v0/oauth2/token"


def test_unknown_overrides_are_refused():
    with pytest.raises(TypeError):
        VCCClient(base_uri="http://typo.test")


# --- The async client -----------------------------------------------------------------------------


def async_client_for(fake: FakeVCC) -> AsyncVCCClient:
    return AsyncVCCClient(transport=httpx.MockTransport(fake))


@pytest.mark.parametrize(("req", "body"), DOCUMENTED_CALLS[:3])
async def test_async_it_places_documented_calls(req, body):
    fake = FakeVCC(created())
    async with async_client_for(fake) as client:
        placed = await client.place_call(req)
    assert placed.call_id == CALL_ID and placed.presented_clid == "123456789"
    assert str(fake.request.url) == CALLS_URL
    assert fake.request.headers["Accept"] == "application/json;version=6"
    assert fake.request.headers["Authorization"] == "Bearer token-1"
    assert sent_json(fake.request) == body


async def test_async_it_runs_every_operation_with_one_token():
    fake = FakeVCC(
        httpx.Response(200, json=PLACED_BODY),
        httpx.Response(202, json={"recordingStatus": "Paused"}),
        httpx.Response(200, json={"dispositionCode": "Sale"}),
        httpx.Response(200, json={"count": 2}),
        httpx.Response(200, json={"id": "1001", "currentCallGuid": CALL_ID}),
    )
    async with async_client_for(fake) as client:
        assert (await client.get_call(CALL_ID)).is_live
        assert await client.set_recording(CALL_ID, "Paused") == "Paused"
        assert await client.set_disposition(CALL_ID, "Sale", "1001") == "Sale"
        assert (await client.agents_ready(["030"])).count == 2
        assert (await client.get_agent("1001")).current_call_id == CALL_ID
    assert len(fake.token_requests) == 1
    assert [r.method for r in fake.requests] == ["GET", "POST", "POST", "GET", "GET"]


async def test_async_it_refreshes_the_token_once_on_401():
    fake = FakeVCC(message(401, "The access token is invalid or has expired"), created())
    async with async_client_for(fake) as client:
        await client.place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))
    assert [r.headers["Authorization"] for r in fake.requests] == ["Bearer token-1", "Bearer token-2"]


async def test_async_a_read_timeout_on_a_call_request_is_not_retried():
    fake = FakeVCC(httpx.ReadTimeout("timed out"), created())
    async with async_client_for(fake) as client:
        with pytest.raises(VCCError) as caught:
            await client.place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))
    assert caught.value.may_have_placed and len(fake.requests) == 1


async def test_async_it_explains_a_busy_agent():
    async with async_client_for(FakeVCC(message(400, "Unable to place call - Agent number busy"))) as client:
        with pytest.raises(VCCError) as caught:
            await client.place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))
    assert caught.value.user_message == "Your phone is busy: finish your current call, then try again."


async def test_async_it_retries_a_get_after_a_short_429():
    fake = FakeVCC(message(429, "Too Many Requests", **{"Retry-After": "0"}), httpx.Response(200, json={"count": 1}))
    async with async_client_for(fake) as client:
        assert (await client.agents_ready()).count == 1
    assert len(fake.requests) == 2


async def test_async_validation_sends_nothing():
    fake = FakeVCC(created())
    async with async_client_for(fake) as client:
        with pytest.raises(VCCError, match="Agent Id must be specified"):
            await client.place_call(CallRequest(to_number="02072068888"))
    assert fake.requests == [] and fake.token_requests == []


async def test_get_async_client_uses_the_transport_named_in_settings(vcc_settings):
    vcc_settings.VCC_TRANSPORT = f"{__name__}.module_transport"
    _module_fake.requests.clear()
    async with get_async_client() as client:
        await client.place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))
    assert str(_module_fake.request.url) == CALLS_URL


# --- The event loop's connection pool, over real sockets -------------------------------------------------------


async def test_the_loops_pool_keeps_more_clicks_in_flight_than_httpxs_default_of_100():
    """On a slow VCC every click in flight holds a connection: the 101st must not wait for another's answer."""
    import asyncio

    from calls.vcc.config import _loop_pool

    in_flight, wanted = 0, 101
    all_in = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal in_flight
        await reader.readuntil(b"\r\n\r\n")
        in_flight += 1
        if in_flight == wanted:
            all_in.set()
        await all_in.wait()  # VCC answers nobody until all of them are asking at once
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=256)
    port = server.sockets[0].getsockname()[1]
    async with server, httpx.AsyncClient(transport=_loop_pool(), trust_env=False) as client:
        try:
            # A pool that holds the 101st back fails it with PoolTimeout after httpx's 5 s.
            answers = await asyncio.gather(*(client.get(f"http://127.0.0.1:{port}/") for _ in range(wanted)))
        finally:
            all_in.set()  # lets the server's handlers end either way
    assert [a.status_code for a in answers] == [200] * wanted
