"""The simulator on a manual clock, and an httpx client already holding a V0 token, for vccsim's own tests."""

from __future__ import annotations

import httpx
import pytest

from vccsim import Clock, Simulator, load_account
from vccsim.transport import SimTransport


@pytest.fixture
def clock() -> Clock:
    return Clock(manual=True)


@pytest.fixture
def sim(clock: Clock) -> Simulator:
    return Simulator(load_account(), clock=clock)


@pytest.fixture
def waits() -> list[float]:
    """The latencies the vcc fixture's transport would have waited out: noted, not waited for."""
    return []


@pytest.fixture
def vcc(sim: Simulator, waits: list[float]):
    with httpx.Client(transport=SimTransport(sim, sleep=waits.append), base_url="http://vccsim.test") as client:
        log_in(client)
        yield client


def log_in(client: httpx.Client) -> None:
    """Fetch a V0 token (they last an hour of clock time) and send it from now on."""
    answer = client.post(
        "/v0/oauth2/token", data={"grant_type": "client_credentials"}, auth=("sandbox01", "sandbox-api-token")
    )
    client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
