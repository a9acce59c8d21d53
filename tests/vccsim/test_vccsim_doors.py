"""vccsim's front doors: the httpx transport (sync and async), the socket server, the sandbox singleton, the CLI."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys

import httpx
import pytest

from vccsim import Clock, Simulator, load_account, start_server
from vccsim import __main__ as vccsim_main
from vccsim.transport import SimTransport, sandbox_transport

TOKEN_FORM = {"grant_type": "client_credentials"}
CREDENTIALS = ("sandbox01", "sandbox-api-token")
CALL = {"from": {"agentId": "1001"}, "to": {"telephoneNumber": "02072068888"}}
ACCEPT = {"Accept": "application/json;version=6"}


def test_the_transport_serves_a_sync_client():
    sim = Simulator(load_account(), clock=Clock(manual=True))
    with httpx.Client(transport=SimTransport(sim), base_url="http://vccsim.sandbox") as client:
        token = client.post("/v0/oauth2/token", data=TOKEN_FORM, auth=CREDENTIALS).json()["access_token"]
        response = client.post(
            "/v0/sandbox01/calls/", json=CALL, headers={**ACCEPT, "Authorization": f"Bearer {token}"}
        )

    assert response.status_code == 201
    assert response.headers["Location"].startswith("http://vccsim.sandbox/v0/sandbox01/calls/")
    assert sim.calls_placed == 1


async def test_the_transport_serves_an_async_client_and_sleeps_without_blocking():
    sim = Simulator(load_account(), clock=Clock(manual=True))
    sim.set_fault("place_call", latency_ms=100)
    waits, answer = [], asyncio.Event()

    async def asleep(seconds: float) -> None:  # the latency, held until the test lets it end
        waits.append(seconds)
        if seconds:
            await answer.wait()

    async with httpx.AsyncClient(transport=SimTransport(sim, asleep=asleep), base_url="http://vccsim.sandbox") as c:
        token = (await c.post("/v0/oauth2/token", data=TOKEN_FORM, auth=CREDENTIALS)).json()["access_token"]
        headers = {**ACCEPT, "Authorization": f"Bearer {token}"}
        slow = asyncio.ensure_future(c.post("/v0/sandbox01/calls/", json=CALL, headers=headers))
        fast = await c.get("/v0/sandbox01/agents/1002", headers=headers)  # answered while the slow one waits
        assert fast.status_code == 200
        assert not slow.done()
        answer.set()
        assert (await slow).status_code == 201

    assert 0.1 in waits


async def test_the_async_transport_raises_the_same_network_errors():
    sim = Simulator(load_account(), clock=Clock(manual=True))
    sim.set_fault("v0_token", drop="before", count=1)
    sim.set_fault("agent", latency_ms=1000)
    waits = []

    async def asleep(seconds: float) -> None:
        waits.append(seconds)

    transport = SimTransport(sim, asleep=asleep)
    async with httpx.AsyncClient(transport=transport, base_url="http://vccsim.sandbox") as client:
        with pytest.raises(httpx.ConnectError):
            await client.post("/v0/oauth2/token", data=TOKEN_FORM, auth=CREDENTIALS)
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/v0/sandbox01/agents/1001", timeout=httpx.Timeout(1, read=0.05))
    assert waits[-1] == 0.05  # as long as the read timeout, not the second of latency


def test_the_sandbox_transport_is_one_simulator_for_the_whole_process():
    transport = sandbox_transport()

    assert sandbox_transport() is transport
    assert transport.sim.account.account_key == "sandbox01"


@pytest.fixture
def server():
    with start_server(Simulator(load_account(), clock=Clock(manual=True))) as running:
        yield running


def test_the_server_places_and_reads_back_a_call_over_a_socket(server):
    with httpx.Client(base_url=server.base_url, timeout=5) as client:
        token = client.post("/v0/oauth2/token", data=TOKEN_FORM, auth=CREDENTIALS).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        placed = client.post("/v0/sandbox01/calls/", json=CALL, headers=ACCEPT)
        server.sim.clock.advance(10)
        detail = client.get(placed.headers["Location"])
        by_link = client.get(placed.json()["links"][0]["href"])

    assert placed.status_code == 201
    assert placed.headers["Location"].startswith(f"{server.base_url}/v0/sandbox01/calls/")
    assert detail.json()["simulator"]["phase"] == "connected"
    assert by_link.status_code == 200
    assert server.sim.calls_placed == 1


def test_the_server_hangs_up_on_a_dropped_connection_fault(server):
    server.sim.set_fault("v0_token", drop="after", count=1)

    with httpx.Client(base_url=server.base_url, timeout=5) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/v0/oauth2/token", data=TOKEN_FORM, auth=CREDENTIALS)
        again = client.post("/v0/oauth2/token", data=TOKEN_FORM, auth=CREDENTIALS)

    assert again.status_code == 200


def test_the_server_exposes_the_control_endpoints(server):
    with httpx.Client(base_url=server.base_url, timeout=5) as client:
        client.post("/_sim/faults/place_call", json={"status": 502})
        state = client.get("/_sim/state").json()

    assert state["faults"]["endpoints"]["place_call"]["status"] == 502


def test_the_server_starts_with_a_fresh_sample_simulator_by_default():
    with start_server() as running, httpx.Client(base_url=running.base_url, timeout=5) as client:
        assert client.get("/_sim/state").json()["accountKey"] == "sandbox01"


def test_the_command_line_serves_until_stopped_and_never_prints_the_token():
    process = subprocess.Popen(
        [sys.executable, "-m", "vccsim", "--port", "0", "--account-key", "demo42", "--api-token", "hush", "--quiet"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        base_url = line.split()[2]
        with httpx.Client(base_url=base_url, timeout=5) as client:
            token = client.post("/v0/oauth2/token", data=TOKEN_FORM, auth=("demo42", "hush"))
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert "demo42" in line
    assert "hush" not in line
    assert token.status_code == 200


def test_the_command_line_sets_the_fair_use_limit_or_keeps_vccs():
    process = subprocess.Popen(
        [sys.executable, "-m", "vccsim", "--port", "0", "--fair-use-limit", "1", "--quiet"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = process.stdout.readline().split()[2]
        with httpx.Client(base_url=base_url, timeout=5) as client:
            statuses = [client.post("/v0/oauth2/token", data=TOKEN_FORM, auth=CREDENTIALS).status_code for _ in "ab"]
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert statuses == [200, 429]
    assert vccsim_main._fair_use_limit("off") is None
    with pytest.raises(argparse.ArgumentTypeError, match="whole number"):
        vccsim_main._fair_use_limit("-1")


def test_a_fast_clock_runs_calls_faster_than_real_time():
    real = [100.0]
    clock = Clock(speed=1000, real=lambda: real[0])
    before = clock.now()
    real[0] += 0.01

    assert clock.now() - before == pytest.approx(10)


def test_a_manual_clock_moves_only_when_told():
    real = [100.0]
    clock = Clock(manual=True, real=lambda: real[0])
    before = clock.now()
    real[0] += 10
    still = clock.now()
    clock.advance(90)

    assert still == before
    assert clock.now() == before + 90
