"""The call-following worker's heartbeat lives in the database: the health page of any process sees it, with each
process's own local-memory cache (the demo) as with Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from django.core.cache import cache
from django.db import DatabaseError
from django.test import Client

from calls import calling, health, tasks
from calls.models import WorkerHeartbeat
from tests._sim import fresh_simulator

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 5, 13, 39, tzinfo=UTC)


@pytest.fixture(autouse=True)
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


@pytest.fixture(params=["local memory", "redis"])
def cache_setup(request, settings) -> str:
    if request.param == "redis":
        request.getfixturevalue("redis_cache")
    else:
        settings.CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "one-process"}
        }
        cache.clear()
    return request.param


def test_the_worker_heartbeat_is_seen_whatever_the_cache(cache_setup, admin_role_user, monkeypatch):
    monkeypatch.setattr(calling.common, "wall_clock", lambda: NOW)

    async_to_sync(tasks.follow_calls.func)(timestamp=0)
    cache.clear()  # another process's cache knows nothing of what the worker's process did

    assert WorkerHeartbeat.objects.get(name="follow_calls").seen_at == NOW
    [worker] = health.integration_health(now=NOW + timedelta(seconds=30)).workers
    assert worker.last_seen == NOW and not worker.late
    [stale] = health.integration_health(now=NOW + health.HEARTBEAT_LATE + timedelta(seconds=1)).workers
    assert stale.late


def test_the_health_page_shows_the_worker_running(cache_setup, admin_role_user, monkeypatch):
    health.record_heartbeat("follow_calls", datetime.now(UTC))
    cache.clear()
    client = Client()
    client.force_login(admin_role_user)

    page = client.get("/health/").content.decode()

    assert '<span class="badge ok">running</span>' in page
    assert "never seen" not in page


def test_a_database_error_noting_the_heartbeat_does_not_end_the_worker(monkeypatch, caplog):
    def broken(name: str, now: datetime) -> None:
        raise DatabaseError("the database is down")

    monkeypatch.setattr(health, "record_heartbeat", broken)

    async_to_sync(calling.worker_heartbeat)(clock=lambda: NOW)

    assert "noting the heartbeat failed" in caplog.text
