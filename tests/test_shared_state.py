"""What several app processes share: VCC tokens and dialling locks in Redis, and one call per click in the database.

These run against a real Redis (CI starts one; TEST_REDIS_URL picks it, see tests/_redis.py) and a second Python
process running the app's own code, as a second app worker would.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection, connections
from django.test import Client

from calls import cache as tolerant
from calls.models import Call
from calls.vcc import get_client
from tests._redis import TEST_REDIS_URL
from tests._sim import click, fresh_simulator, only_call, primary
from vccsim import Simulator, load_account, start_server
from vccsim.transport import sandbox_transport

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = TEST_REDIS_URL  # this worker's own database


def other_process(code: str, **env: str) -> str:
    """Run code in a separate Python process with the app's settings, sharing this test's Redis."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("VCC_", "DJANGO_ALLOW_ASYNC"))}
    # REDIS_TIMEOUT_MS: wait for Redis's answers however late a loaded machine makes them. With the 500 ms default, a
    # slow write opened the other process's breaker and the token it fetched never reached Redis.
    environment |= {
        "DEBUG": "true",
        "REDIS_URL": REDIS_URL,
        "REDIS_TIMEOUT_MS": "30000",
        "DJANGO_SETTINGS_MODULE": "vccweb.settings",
        **env,
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_token_fetched_by_one_process_is_used_by_another(redis_cache, settings):
    with start_server(Simulator(load_account())) as server:
        credentials = {"VCC_ACCOUNT_KEY": "sandbox01", "VCC_API_TOKEN": "sandbox-api-token"}
        printed = other_process(
            "from calls.vcc import get_client; print(get_client().agents_ready(['030']).count)",
            VCC_BASE_URL=server.base_url,
            **credentials,
        )
        assert printed.splitlines()[-1] == "3"
        assert len(server.sim.tokens) == 1

        settings.VCC_TRANSPORT = ""
        settings.VCC_BASE_URL = server.base_url
        settings.VCC_ACCOUNT_KEY, settings.VCC_API_TOKEN = credentials.values()
        with get_client() as client:
            assert client.agents_ready(["030"]).count == 3
        assert len(server.sim.tokens) == 1  # no second token: this process used the one in Redis


@pytest.fixture
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


@pytest.mark.django_db(transaction=True)
def test_the_same_click_reaching_two_workers_at_once_places_one_call(redis_cache, agent_user, contact, sim):
    """Two workers get the same click (a retried request) while VCC is still answering the first."""
    if connection.vendor == "sqlite":
        pytest.skip("needs a database that takes concurrent writers (PostgreSQL, as CI and production use)")
    # VCC holds its answer to the first click until the other worker has answered: the two surely overlap.
    sim.set_fault("place_call", latency_ms=300)
    held, first_back = threading.Event(), threading.Event()

    async def hold(seconds: float) -> None:
        if seconds:
            await asyncio.to_thread(held.wait, 30)

    sandbox_transport().asleep = hold  # fresh_simulator puts its own back afterwards
    request_id = str(uuid.uuid4())
    responses = []
    clients = [Client(), Client()]
    for client in clients:
        client.force_login(agent_user)

    def worker(client: Client) -> None:
        try:
            responses.append(click(client, primary(contact), request_id=request_id))
            first_back.set()
        finally:
            connections.close_all()  # this thread's own connection, or the test database cannot be dropped

    threads = [threading.Thread(target=worker, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    assert first_back.wait(30), "neither worker answered while VCC held the first click"
    held.set()
    for thread in threads:
        thread.join(timeout=30)

    assert [r.status_code for r in responses] == [200, 200]
    assert Call.objects.count() == 1
    assert sim.calls_placed == 1
    assert Call.objects.get().state == Call.State.LIVE


def test_a_redis_outage_degrades_instead_of_failing_the_click(settings, agent_client, contact, sim, caplog):
    tolerant._breakers.clear()  # an earlier test's outage of the same address would not be logged again
    settings.CACHES = {
        "default": {
            "BACKEND": "calls.cache.TolerantRedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    assert cache.get("anything", "fallback") == "fallback"
    assert cache.add("lock", 1, 5) is True

    response = click(agent_client, primary(contact))

    assert response.status_code == 200
    assert only_call().state == Call.State.LIVE
    assert sim.calls_placed == 1
    assert "cache unavailable" in caplog.text
