"""vccsim as its own process (`python -m vccsim`), for tests that talk to it over a real socket: the browser tests,
the worker fault tests and the events end-to-end test. `Sim` drives its control API (`/_sim/`)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]


def start_vccsim() -> Iterator[str]:
    """Start vccsim on a port it picks; yield its base URL once it serves; stop it afterwards."""
    process = subprocess.Popen(
        [sys.executable, "-m", "vccsim", "--port", "0", "--quiet"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()  # blocks until vccsim serves, or exits
    found = re.search(r"vccsim serving (\S+)", first)
    if found is None:
        process.kill()
        raise RuntimeError(f"vccsim did not start: {first}{process.stderr.read()}")
    yield found.group(1)
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def vccsim_server() -> Iterator[str]:
    """One vccsim process for the session (each test resets it)."""
    yield from start_vccsim()


# One client for every Sim: httpx.post would make a client, and its TLS context (some 10 ms of CPU), at each call.
_client = httpx.Client(timeout=5, trust_env=False)


class Sim:
    def __init__(self, base: str) -> None:
        self.base = base

    def post(self, path: str, body: dict | None = None) -> dict:
        response = _client.post(f"{self.base}/_sim/{path}", json=body or {})
        response.raise_for_status()
        return response.json()

    def state(self) -> dict:
        return _client.get(f"{self.base}/_sim/state").json()

    def advance(self, seconds: float) -> None:
        self.post("clock/advance", {"seconds": seconds})
