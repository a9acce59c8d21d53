"""/healthz, /readyz, the error pages (403, 404, 500 with the database down) and the response headers on them."""

from __future__ import annotations

from contextlib import contextmanager
from unittest.mock import patch

import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, OperationalError, connection
from django.test import Client, RequestFactory
from django.views.defaults import permission_denied

from calls import cache as tolerant_cache
from tests._database_down import PostgresComesBack, closed_port, default_database_at

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1: refused at once


# A pool as in production, but a request that queues for a connection gives up after half a second, not 10: code
# that queues while PostgreSQL is down fails these tests quickly. Nothing here waits for it otherwise.
POOL = {"min_size": 1, "max_size": 2, "timeout": 0.5}


@contextmanager
def database_down():
    """The database not answering. On PostgreSQL, for real: requests use a pool pointed at a port nothing listens
    on. SQLite cannot be unreachable: there every query fails as it does when PostgreSQL is."""
    if connection.vendor == "postgresql":
        with default_database_at(closed_port(), pool=POOL):
            yield
        return

    def refuse(*args, **kwargs):
        raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')

    with patch.object(connection, "cursor", refuse):
        yield


def asks_directly(wrapper) -> list[float]:
    """Record when requests through wrapper ask PostgreSQL directly (calls/dbbackend), by its injected clock."""
    asked: list[float] = []
    ask = wrapper.ask_directly

    def recorded():
        asked.append(wrapper.reachability.clock())
        ask()

    wrapper.ask_directly = recorded
    return asked


@pytest.fixture
def cache_down(settings):
    tolerant_cache._breakers.clear()
    settings.CACHES = {
        "default": {
            "BACKEND": "calls.cache.TolerantRedisCache",
            "LOCATION": DEAD_REDIS,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    yield
    tolerant_cache._breakers.clear()


def test_healthz_answers_without_any_query(client, db, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert "no-cache" in response["Cache-Control"]


def test_healthz_answers_while_the_database_is_down(client, db):
    with database_down():
        assert client.get("/healthz").status_code == 200


def test_healthz_rejects_post(client):
    assert client.post("/healthz").status_code == 405


def test_readyz_says_ok_when_database_and_cache_answer(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "cache": "ok"}


def test_readyz_names_the_database_when_it_is_down(client, db):
    with database_down():
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "down: database", "database": "not answering", "cache": "ok"}


def test_readyz_stays_ready_when_redis_is_down_and_names_the_cache(client, db, cache_down):
    """One Redis shared by every host: a 503 would take them all out of the load balancer at once."""
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "degraded: cache", "database": "ok", "cache": "not answering"}


def test_readyz_answers_503_when_both_are_down(client, db, cache_down):
    with database_down():
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "down: database, cache", "database": "not answering", "cache": "not answering"}


def test_readyz_tells_nobody_hosts_ports_or_errors_but_logs_them(client, admin_client, db, cache_down, caplog):
    """Only "ok" or "not answering" per part, for anyone and for admins alike; the details go to the log."""
    for asker in (client, admin_client):
        with database_down():
            body = asker.get("/readyz").content.decode()
        for detail in ("127.0.0.1", ":1", "port", "Error", "refused", "Operational", "("):
            assert detail not in body
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("readyz:")]
    assert any("database not answering: OperationalError" in line for line in logged)
    assert any("cache not answering (ConnectionError" in line and "127.0.0.1:1" in line for line in logged)


def test_health_checks_need_no_login_and_no_https(client, db, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/contacts/").status_code == 301  # everything else goes to HTTPS


def test_a_missing_page_looks_like_the_app_and_says_what_happened(agent_client, settings):
    settings.DEBUG = False
    response = agent_client.get("/no/such/page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "Page not found" in page
    assert 'class="brand"' in page and "css/app.css" in page
    assert "Log out" in page  # the usual top bar, for the logged-in user
    assert f"Reference: <code>{response['X-Request-ID']}</code>" in page


def test_a_forbidden_page_looks_like_the_app_and_says_what_happened(db):
    request = RequestFactory().get("/groups/availability/")
    request.request_id = "abcdef0123456789"
    response = permission_denied(request, PermissionDenied("You may not call via groups."))
    assert response.status_code == 403
    page = response.content.decode()
    assert "You can't do that" in page
    assert 'class="brand"' in page
    assert "Reference: <code>abcdef0123456789</code>" in page


def test_a_request_for_an_unknown_host_gets_the_apps_400_page(client, db, settings):
    settings.DEBUG = False
    response = client.get("/login/", HTTP_HOST="evil.example.net")
    assert response.status_code == 400
    assert "That request could not be read" in response.content.decode()
    assert "evil.example.net" not in response.content.decode()


def test_an_expired_form_says_so(agent_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent_user)
    response = client.post("/contacts/new/", {"name": "x"})
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()


def test_with_the_database_down_the_500_page_says_so_and_needs_no_query(agent_user, settings):
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    client.force_login(agent_user)
    with database_down():
        response = client.get("/contacts/", HTTP_X_REQUEST_ID="trace-0123456789")
    assert response.status_code == 500
    page = response.content.decode()
    assert "The database is not answering" in page
    assert 'class="brand"' in page and "css/app.css" in page
    assert "Reference: <code>trace-0123456789</code>" in page
    assert "refused" not in page and "5432" not in page  # the error's own text stays in the log
    assert response["X-Request-ID"] == "trace-0123456789"
    assert "Content-Security-Policy" in response


def test_with_every_pooled_connection_busy_the_500_page_says_so(agent_user, settings):
    from psycopg_pool import PoolTimeout

    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    client.force_login(agent_user)

    def busy(*args, **kwargs):
        try:
            raise PoolTimeout("couldn't get a connection after 10.00 sec")
        except PoolTimeout as error:
            raise OperationalError(str(error)) from error

    with patch.object(connection, "cursor", busy):
        response = client.get("/contacts/")
    assert response.status_code == 500
    assert "vccweb is too busy right now" in response.content.decode()


# --- PostgreSQL really down (calls/dbbackend): at once, in the right words, and back as soon as it is -----------


def test_readyz_names_an_unreachable_postgresql_without_queueing_for_the_pool(client, db):
    with default_database_at(closed_port(), pool=POOL) as down:
        response = client.get("/readyz")
        stats = down.pool.get_stats()
    assert response.status_code == 503
    assert response.json() == {"status": "down: database", "database": "not answering", "cache": "ok"}
    assert "requests_num" not in stats  # asked PostgreSQL itself: no request for a pooled connection


@pytest.mark.parametrize("pool", [POOL, None], ids=["pool", "no-pool"])
def test_with_postgresql_unreachable_a_page_says_so_at_once(agent_user, settings, pool):
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    client.force_login(agent_user)
    with default_database_at(closed_port(), pool=pool) as down:
        response = client.get("/contacts/")
        stats = down.pool.get_stats() if pool else {}
    assert response.status_code == 500
    page = response.content.decode()
    assert "The database is not answering" in page
    assert "too busy" not in page
    assert "requests_num" not in stats  # it did not queue for a pooled connection that could never come


@pytest.mark.django_db(transaction=True)  # the user must be visible to the connections the pool makes
def test_postgresql_is_asked_at_most_once_a_second_and_pages_work_as_soon_as_it_is_back(agent_user, settings):
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    client.force_login(agent_user)
    port, now = closed_port(), [1000.0]
    with PostgresComesBack(port) as postgres, default_database_at(port, pool=POOL) as down:
        down.reachability.clock = lambda: now[0]
        asked = asks_directly(down)

        first = client.get("/contacts/")
        assert first.status_code == 500
        assert "The database is not answering" in first.content.decode()
        second = client.get("/contacts/")
        ready = client.get("/readyz")
        assert second.status_code == 500 and "The database is not answering" in second.content.decode()
        assert ready.status_code == 503
        assert asked == [1000.0]  # one direct attempt answered all three

        postgres.start()
        now[0] += 0.9
        assert client.get("/contacts/").status_code == 500  # the last answer stands for a second
        assert asked == [1000.0]
        now[0] += 0.1
        back = client.get("/contacts/")
        assert back.status_code == 200
        assert "Alex" in back.content.decode()
        assert asked == [1000.0, 1001.0]
        assert client.get("/readyz").status_code == 200
        assert client.get("/contacts/").status_code == 200
        assert asked == [1000.0, 1001.0]  # PostgreSQL answered: the pool is trusted again, nobody asks


def test_with_every_pooled_connection_lent_out_a_page_is_too_busy_and_postgresql_is_not_asked(agent_user, settings):
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    client.force_login(agent_user)
    # The test database itself, with a pool of one connection that another request holds. That request waits as
    # long as connecting takes (a loaded machine took more than 50 ms); the page's request then gives up at 50 ms.
    with default_database_at(None, pool={"min_size": 0, "max_size": 1, "timeout": 60}) as pooled:
        other_request = type(pooled)(pooled.settings_dict, pooled.alias)
        other_request.ensure_connection()
        pooled.pool.timeout = 0.05
        try:
            asked = asks_directly(pooled)
            response = client.get("/contacts/")
        finally:
            other_request.close()
    assert response.status_code == 500
    assert "vccweb is too busy right now" in response.content.decode()
    assert asked == []


def test_a_query_that_fails_on_its_own_is_not_called_an_outage(agent_client, monkeypatch, settings):
    settings.DEBUG = False
    agent_client.raise_request_exception = False

    def bug(*args, **kwargs):
        raise IntegrityError("duplicate key value violates unique constraint")

    monkeypatch.setattr("calls.context_processors.vccweb", bug)
    response = agent_client.get("/contacts/")
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()


def test_any_other_fault_gets_the_plain_500_page(agent_client, monkeypatch, settings):
    settings.DEBUG = False
    agent_client.raise_request_exception = False

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("calls.context_processors.vccweb", broken)  # the 500 page must not need these
    response = agent_client.get("/no/such/page/")  # a 404 whose page cannot render
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong on our side" in page
    assert "a bug" not in page


# settings.PERMISSIONS_POLICY as browsers get it (django-permissions-policy sorts the features).
PERMISSIONS_POLICY = (
    "accelerometer=(), autoplay=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), midi=(), payment=(), publickey-credentials-get=(), screen-wake-lock=(), serial=(), usb=(), "
    "xr-spatial-tracking=()"
)


def test_pages_send_the_permissions_policy_and_keep_the_strict_csp(client, db):
    response = client.get("/login/")
    assert response["Permissions-Policy"] == PERMISSIONS_POLICY
    csp = response["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "script-src 'self' 'nonce-" in csp
    assert client.get("/healthz")["Permissions-Policy"] == PERMISSIONS_POLICY


async def test_async_views_get_the_headers_too(async_client):
    response = await async_client.get("/healthz")  # a sync view, through the middleware chain in async mode
    assert response["Permissions-Policy"] == PERMISSIONS_POLICY
    assert len(response["X-Request-ID"]) == 32
    response = await async_client.get("/agents/availability/")  # an async view, sending a stranger to log in
    assert response.status_code == 302
    assert response["Permissions-Policy"] == PERMISSIONS_POLICY


def test_readyz_names_a_hung_cache_after_one_short_timeout_then_without_waiting(client, db, settings, caplog):
    from tests.test_cache import HungRedis

    hung = HungRedis()
    tolerant_cache._breakers.clear()
    settings.CACHES = {
        "default": {
            "BACKEND": "calls.cache.TolerantRedisCache",
            "LOCATION": f"redis://127.0.0.1:{hung.port}/0",
            "OPTIONS": {"socket_connect_timeout": 0.05, "socket_timeout": 0.05},
        }
    }
    try:
        first = client.get("/readyz")
        asked = hung.bytes_received
        second = client.get("/readyz")
    finally:
        hung.close()
        tolerant_cache._breakers.clear()
    assert first.status_code == second.status_code == 200
    assert first.json()["cache"] == second.json()["cache"] == "not answering"
    assert any(r.getMessage().startswith("readyz: cache not answering (TimeoutError") for r in caplog.records)
    assert hung.bytes_received == asked  # the breaker answered the second time


def test_a_postgresql_that_is_full_is_answering_and_requests_wait_their_turn():
    """'Too many clients' is PostgreSQL answering: requests queue for the pool as before, never 'not answering'."""
    import psycopg

    from calls.dbbackend.base import Reachability

    def full() -> None:
        raise psycopg.OperationalError("connection failed: FATAL:  sorry, too many clients already")

    def down() -> None:
        raise psycopg.OperationalError("connection failed: Connection refused")

    now = [0.0]
    reachability = Reachability(clock=lambda: now[0])
    assert reachability.problem(full, pool_errors=3) == ""
    assert reachability.errors_seen == 3  # the pool's failures so far were PostgreSQL being full
    now[0] += 1
    assert "Connection refused" in reachability.problem(down, pool_errors=4)
