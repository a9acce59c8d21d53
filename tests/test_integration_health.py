"""The integration health page: who may see it, and what it says (never a secret)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from calls import health
from calls.models import Call, CallbackNumber, SyncRun
from calls.vcc import VCCConfig, get_client
from calls.vcc import stats as vcc_stats
from tests._sim import fresh_simulator

pytestmark = pytest.mark.django_db
URL = "/health/"


@pytest.fixture
def sim():
    yield from fresh_simulator()


def test_anonymous_people_are_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_agents_may_not_see_it(agent_client):
    assert agent_client.get(URL).status_code == 403
    assert 'href="/health/"' not in agent_client.get("/contacts/").content.decode()


def test_supervisors_see_it_and_find_it_in_the_navigation(supervisor_client):
    response = supervisor_client.get(URL)
    assert response.status_code == 200
    assert "Integration health" in response.content.decode()
    assert 'href="/health/"' in supervisor_client.get("/contacts/").content.decode()


def test_admins_see_it(admin_role_client):
    assert admin_role_client.get(URL).status_code == 200


def test_it_rejects_post(admin_role_client):
    assert admin_role_client.post(URL).status_code == 405


def test_it_shows_the_mode_and_hosts_but_no_secret(admin_role_client, settings):
    page = admin_role_client.get(URL).content.decode()
    assert "Sandbox" in page
    assert "http://vccsim.sandbox" in page
    assert "emea" in page
    assert settings.VCC_API_TOKEN not in page
    assert settings.VCC_CLIENT_SECRET not in page
    assert "set (hidden)" in page


def test_it_counts_requests_and_shows_the_last_failure_with_its_error(admin_role_client, sim, settings):
    with get_client() as client:
        client.agents_ready(["030"])
        sim.set_fault("agents", status=503, count=1)
        with pytest.raises(Exception):  # noqa: B017 (any error: the page must show it)
            client.agents_ready(["030"])
    snapshot = vcc_stats.snapshot(cache, timezone.now())
    assert snapshot.requests == 3  # the token, then two availability requests
    assert snapshot.failures == 1
    page = admin_role_client.get(URL).content.decode()
    assert "<span data-requests>3</span>" in page
    assert "<span data-failures>1</span>" in page
    assert "HTTP 503: Service Unavailable" in page
    assert "/v0/{accountKey}/agents/" in page  # the account key is not shown in paths
    assert "sandbox01/agents" not in page
    assert "token" not in (snapshot.last_success or {}).get("error", "")


async def test_requests_from_the_async_client_count_too(sim):
    from calls.vcc import get_async_client

    async with get_async_client() as client:
        await client.agents_ready(["030"])
    snapshot = vcc_stats.snapshot(cache, timezone.now())
    assert (snapshot.requests, snapshot.failures) == (2, 0)
    assert snapshot.last_success["path"] == "/v0/{accountKey}/agents/"


def test_requests_older_than_an_hour_drop_out():
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    old = vcc_stats.exchanged("GET", "/v0/key/calls/x", at=(now - timedelta(minutes=61)).timestamp(), status=200)
    recent = vcc_stats.exchanged(
        "GET", "/v0/key/calls/x", at=(now - timedelta(minutes=5)).timestamp(), status=500, error="HTTP 500: Boom"
    )
    vcc_stats.record(cache, [old, recent])
    snapshot = vcc_stats.snapshot(cache, now)
    assert (snapshot.requests, snapshot.failures) == (1, 1)
    assert snapshot.last_failure["path"] == "/v0/{accountKey}/calls/x"


def test_it_shows_when_the_v0_token_expires_never_the_token(admin_role_client, sim):
    with get_client() as client:
        client.agents_ready(["030"])
    config = VCCConfig.from_settings()
    token = cache.get(config.v0_token.cache_key)
    report = health.integration_health(now=timezone.now())
    assert report.v0_token_expires is not None
    page = admin_role_client.get(URL).content.decode()
    assert "cached, expires" in page
    assert token not in page


def test_without_a_cached_token_it_says_so(admin_role_client):
    assert "none cached: fetched with the next request" in admin_role_client.get(URL).content.decode()


def test_it_lists_calls_not_confirmed_and_calls_live_too_long(agent_user, contact):
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    Call.objects.create(
        created_by=agent_user,
        to_number="+447400123456",
        state="unconfirmed",
        error_message="ReadTimeout",
        requested_at=now - timedelta(hours=1),
    )
    Call.objects.create(  # too old to check with VCC: no longer on the page
        created_by=agent_user, to_number="+447400123456", state="unconfirmed", requested_at=now - timedelta(days=2)
    )
    Call.objects.create(
        created_by=agent_user, to_number="+447400123456", state="live", requested_at=now - timedelta(hours=3)
    )
    Call.objects.create(
        created_by=agent_user, to_number="+447400123456", state="live", requested_at=now - timedelta(minutes=3)
    )
    report = health.integration_health(now=now)
    assert report.unconfirmed_count == 1
    assert report.long_live_count == 1
    assert report.long_live[0].requested_at == now - timedelta(hours=3)
    assert any("not confirmed" in p for p in report.problems)
    assert any("live for more than 2 hours" in p for p in report.problems)


def test_the_page_shows_calls_that_need_a_look(admin_role_client, agent_user):
    Call.objects.create(
        created_by=agent_user, to_number="+447400123456", state="unconfirmed", error_message="ReadTimeout"
    )
    page = admin_role_client.get(URL).content.decode()
    assert "Not confirmed in the last 24 hours: 1" in page
    assert "ReadTimeout" in page


def test_it_lists_caller_ids_vcc_lists_for_nobody(admin_role_client, london, manchester, agent_user):
    london.vcc_listing_synced_at = manchester.vcc_listing_synced_at = timezone.now()
    london.save()
    manchester.save()
    london.vcc_listed_for.add(agent_user.agent)
    report = health.integration_health(now=timezone.now())
    assert report.not_listed == [manchester]
    assert "Manchester support" in admin_role_client.get(URL).content.decode()


def test_it_says_when_the_sync_and_the_worker_last_ran(admin_role_client, admin_role_user):
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    SyncRun.objects.create(
        started_at=now - timedelta(hours=1), finished_at=now - timedelta(hours=1), by=admin_role_user, created=2
    )
    health.record_heartbeat("follow_calls", now - timedelta(seconds=30))
    report = health.integration_health(now=now)
    assert report.last_sync.created == 2
    assert report.workers[0].last_seen == now - timedelta(seconds=30)
    assert not report.workers[0].late
    assert health.integration_health(now=now + timedelta(minutes=10)).workers[0].late
    page = admin_role_client.get(URL).content.decode()
    assert "2 created, 0 updated" in page


def test_a_worker_never_seen_is_a_problem():
    report = health.integration_health(now=timezone.now())
    assert report.workers[0].last_seen is None
    assert any("not running" in p for p in report.problems)


def test_numbers_added_since_the_last_sync_are_marked_not_checked(london):
    now = timezone.now()
    SyncRun.objects.create(started_at=now, finished_at=now)
    assert health.integration_health(now=now).never_checked == [london]
    CallbackNumber.objects.update(vcc_listing_synced_at=now)
    assert health.integration_health(now=now).never_checked == []


# --- With Redis: every process's requests count, at one round trip each ------------------------------


def test_with_redis_a_request_is_recorded_in_one_round_trip(redis_cache, monkeypatch):
    import redis

    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    commands, pipelines = [], []
    real_execute = redis.client.Pipeline.execute
    monkeypatch.setattr(redis.Redis, "execute_command", lambda self, *a, **k: commands.append(a))
    monkeypatch.setattr(redis.client.Pipeline, "execute", lambda self, *a: pipelines.append(1) or real_execute(self))
    event = vcc_stats.exchanged("POST", "/v0/key/calls/", at=now.timestamp(), status=503, error="HTTP 503: Busy")
    vcc_stats.record(redis_cache, [event])
    assert (len(pipelines), commands) == (1, [])
    monkeypatch.undo()
    snapshot = vcc_stats.snapshot(redis_cache, now + timedelta(minutes=1))
    assert (snapshot.requests, snapshot.failures) == (1, 1)
    assert snapshot.last_failure["error"] == "HTTP 503: Busy"
    assert snapshot.last_success is None


async def test_with_redis_an_async_request_is_recorded_from_a_thread(redis_cache):
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    ok = vcc_stats.exchanged("GET", "/v0/key/calls/1", at=now.timestamp(), status=200)
    failed = vcc_stats.exchanged("POST", "/v0/key/calls/", at=now.timestamp(), status=503, error="HTTP 503: Busy")
    await vcc_stats.arecord(redis_cache, [ok, failed])
    snapshot = vcc_stats.snapshot(redis_cache, now + timedelta(minutes=1))
    assert (snapshot.requests, snapshot.failures) == (2, 1)
    assert snapshot.last_failure["error"] == "HTTP 503: Busy"
    assert snapshot.last_success["status"] == 200


def test_with_redis_the_page_shows_the_token_expiry_and_counts(redis_cache, admin_role_client, sim):
    with get_client() as client:
        client.agents_ready(["030"])
    report = health.integration_health(now=timezone.now())
    assert report.v0_token_expires is not None
    assert (report.requests_last_hour, report.failures_last_hour) == (2, 0)
    assert report.shared_counts


def test_a_redis_outage_never_fails_a_request(settings, sim):
    settings.CACHES = {
        "default": {
            "BACKEND": "calls.cache.TolerantRedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2},
        }
    }
    with get_client() as client:
        assert client.agents_ready(["030"]).count == 3


# --- Redis down: the page says so first, and what works differently meanwhile ------------------------------


@pytest.fixture
def redis_down(settings):
    """Redis configured (with a password in its URL) at a port of 127.0.0.1 nothing listens on."""
    from calls import cache as tolerant
    from tests._database_down import closed_port

    port = closed_port()
    tolerant._breakers.clear()
    settings.CACHES = {
        "default": {
            "BACKEND": "calls.cache.TolerantRedisCache",
            "LOCATION": f"redis://:s3cret-pw@127.0.0.1:{port}/3",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5, "breaker_seconds": 7},
        }
    }
    yield port
    tolerant._breakers.clear()


def test_with_redis_down_the_page_opens_with_an_alert_saying_what_degrades(admin_role_client, redis_down):
    response = admin_role_client.get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    start = page.index("data-cache-down")
    alert = page[start : page.index("</section>", start)]
    assert start < page.index('id="summary-head"')  # before everything else
    assert "The shared cache is not answering" in alert
    assert f"<code>redis://127.0.0.1:{redis_down}/3</code>" in alert
    assert "ConnectionError" in alert and "Connection refused" in alert
    assert "every 7 s" in alert
    for degraded in ("Login limits are not enforced", "dialling locks live in PostgreSQL", "fetches a new token"):
        assert degraded in alert
    assert "s3cret-pw" not in page


def test_with_redis_down_the_report_names_it_and_does_not_call_the_worker_dead(redis_down):
    now = timezone.now()
    health.record_heartbeat("follow_calls", now - timedelta(seconds=30))  # in the database, whatever the cache
    report = health.integration_health(now=now)
    assert report.cache.down
    assert report.problems[0].startswith("Redis (the shared cache) is not answering")
    [worker] = report.workers
    assert worker.last_seen == now - timedelta(seconds=30) and not worker.late
    assert not any("not running" in problem for problem in report.problems)


def test_supervisors_see_the_redis_alert_and_anonymous_people_are_still_sent_to_log_in(
    client, supervisor_client, redis_down
):
    assert "The shared cache is not answering" in supervisor_client.get(URL).content.decode()
    response = client.get(URL)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_with_redis_answering_the_page_says_so_without_an_alert(redis_cache, admin_role_client):
    page = admin_role_client.get(URL).content.decode()
    assert "data-cache-down" not in page
    assert '<span class="badge ok">answering</span>' in page
    assert not health.integration_health(now=timezone.now()).cache.down


def test_without_redis_the_page_says_each_process_keeps_its_own_cache(admin_role_client):
    page = admin_role_client.get(URL).content.decode()
    assert "data-cache-down" not in page
    assert "not configured (<code>REDIS_URL</code> unset)" in page


def test_a_redis_address_is_shown_without_its_user_or_password():
    assert health.without_credentials("rediss://user:pw@cache-1:6380/2") == "rediss://cache-1:6380/2"
    assert health.without_credentials("redis://:pw@a:6379/0,redis://b/0") == "redis://a:6379/0,redis://b/0"
