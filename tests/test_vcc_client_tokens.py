"""The VCC client's bearer token cache, and no secret in its logs or its config."""

from __future__ import annotations

import logging
import threading
import time

import httpx
import pytest
from django.core.cache import cache, caches

from calls.vcc import CallRequest, VCCClient, VCCError
from tests import _vcc_client
from tests._vcc_client import API_TOKEN, CALL_ID, DOC_BASIC, PLACED_BODY, FakeVCC, client_for, created, message

vcc_settings = _vcc_client.vcc_settings  # autouse fixture


# --- The token cache ------------------------------------------------------------------------------


def test_it_reuses_the_cached_token():
    fake = FakeVCC(httpx.Response(200, json=PLACED_BODY))
    client_for(fake).get_call(CALL_ID)
    client_for(fake).get_call(CALL_ID)
    assert len(fake.token_requests) == 1
    assert [r.headers["Authorization"] for r in fake.requests] == ["Bearer token-1", "Bearer token-1"]


def test_it_refetches_the_token_before_it_expires(monkeypatch):
    from django.core.cache.backends import locmem

    fake = FakeVCC(httpx.Response(200, json=PLACED_BODY), expires_in=100)
    client = client_for(fake)
    client.get_call(CALL_ID)
    client.get_call(CALL_ID)
    assert len(fake.token_requests) == 1
    now = time.time()
    monkeypatch.setattr(locmem.time, "time", lambda: now + 89)  # the cache's clock: not yet 90% of expires_in
    client.get_call(CALL_ID)
    assert len(fake.token_requests) == 1
    monkeypatch.setattr(locmem.time, "time", lambda: now + 91)  # past 90%, though the token has not expired
    client.get_call(CALL_ID)
    assert len(fake.token_requests) == 2
    assert fake.requests[-1].headers["Authorization"] == "Bearer token-2"


def test_it_assumes_an_hour_when_expires_in_is_missing(monkeypatch):
    lifetimes = []
    real_set = cache.set

    def recording_set(key, value, timeout):
        lifetimes.append(timeout)
        real_set(key, value, timeout)

    monkeypatch.setattr(cache, "set", recording_set)
    client_for(FakeVCC(httpx.Response(200, json=PLACED_BODY), expires_in=None)).get_call(CALL_ID)
    assert lifetimes == [pytest.approx(3600 * 0.9)]


def test_the_token_cache_is_per_account(vcc_settings):
    fake = FakeVCC(httpx.Response(200, json=PLACED_BODY))
    client_for(fake).get_call(CALL_ID)
    vcc_settings.VCC_ACCOUNT_KEY = "otheraccount"
    client_for(fake).get_call(CALL_ID)
    assert len(fake.token_requests) == 2


def test_concurrent_callers_fetch_one_token(monkeypatch):
    # The token endpoint answers only once every caller has tried the fetch lock: all six are then waiting on
    # the one fetch in flight.
    gate, lock, callers = threading.Event(), threading.Lock(), set()
    # On the backend's class: `cache` is a per-thread proxy, so patching it would reach this thread only, and the
    # gate would open by its timeout instead of by the six callers.
    backend = type(caches["default"])
    real_add = backend.add

    def counting_add(self, key, *args, **kwargs):
        if key.endswith(":lock"):
            with lock:
                callers.add(threading.current_thread().name)
                if len(callers) == 6:
                    gate.set()
        return real_add(self, key, *args, **kwargs)

    monkeypatch.setattr(backend, "add", counting_add)
    fake = FakeVCC(httpx.Response(200, json=PLACED_BODY), token_gate=gate)
    errors: list[Exception] = []

    def call() -> None:
        try:
            client_for(fake).get_call(CALL_ID)
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(callers) == 6  # every caller went for the fetch lock while the one fetch was in flight
    assert len(fake.token_requests) == 1
    assert len(fake.requests) == 6


def test_a_failed_token_fetch_releases_the_lock():
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"message": "down"})

    with pytest.raises(VCCError):
        VCCClient(transport=httpx.MockTransport(refuse)).get_call(CALL_ID)
    fake = FakeVCC(httpx.Response(200, json=PLACED_BODY))
    client_for(fake).get_call(CALL_ID)  # would wait for the lock if it had been left behind
    assert len(fake.token_requests) == 1


# --- Logging --------------------------------------------------------------------------------------


def test_no_log_record_contains_a_secret(caplog):
    caplog.set_level(logging.DEBUG)
    fake = FakeVCC(
        message(401, "The access token is invalid or has expired"),
        created(),
        message(400, "Unable to place call - Agent number busy"),
        httpx.ReadTimeout("timed out"),
    )
    client = client_for(fake)
    client.place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))
    for _ in range(2):
        with pytest.raises(VCCError):
            client.place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))

    assert caplog.records, "the client logs its requests"
    secrets = ["token-1", "token-2", API_TOKEN, DOC_BASIC, DOC_BASIC.split()[1], "Bearer"]
    for record in caplog.records:
        logged = record.getMessage() + repr(record.args) + repr(getattr(record, "exc_info", ""))
        for secret in secrets:
            assert secret not in logged


def test_the_client_config_does_not_show_secrets():
    assert API_TOKEN not in repr(VCCClient(transport=httpx.MockTransport(FakeVCC(created()))).config)
