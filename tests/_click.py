"""The fixture the click's test modules share: a fresh VCC simulator for every test (autouse where assigned)."""

from __future__ import annotations

import pytest

from tests._sim import fresh_simulator


@pytest.fixture(autouse=True)
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)
