"""The fixture world: users in each role, agents, groups, callback numbers and contacts, built with objects.create."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client

from calls.models import Agent, AgentGroup, AuditEntry, CallbackNumber, Contact, ContactPhone
from calls.roles import ADMIN, AGENT, SUPERVISOR, assign_role
from calls.vcc import budget as vcc_budget
from calls.vcc import stats as vcc_stats

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hasher(django_test_environment):
    """Tests make many users: hash their passwords cheaply (the real hasher costs ~0.6 s a user)."""
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _is_superuser(connection) -> bool:
    """Whether the tests' database user may set `session_replication_role` (asked once per connection)."""
    if not hasattr(connection, "_tests_superuser"):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('is_superuser') = 'on'")
            connection._tests_superuser = cursor.fetchone()[0]
    return connection._tests_superuser


@pytest.fixture(autouse=True, scope="session")
def _flush_by_delete(django_test_environment):
    """After a test with transaction=True (live_server, real processes), Django empties every table with one
    TRUNCATE; on PostgreSQL that makes new files for each of the ~40 tables and their indexes, about 0.4 s a test
    on a busy machine. A DELETE of every row leaves the same empty tables and waits for no lock a reader still
    holds. Run as a superuser (CI's `postgres`), it runs with `session_replication_role = replica` for its
    transaction: neither the foreign keys' checks nor the audit triggers fire for rows that are all going, and the
    DELETEs take some 20 ms instead of 90 (the whole flush, its post_migrate included, 0.11 s against 0.18 s).
    Otherwise the foreign keys are checked at its end (Django makes them DEFERRABLE), and the audit trail's table
    is emptied last, of the entries its triggers wrote meanwhile too (tests/test_suite_flush.py). Sequences are not
    reset either way (TRUNCATE without RESTART IDENTITY); a flush that asks for a reset or a cascade keeps Django's
    statement.

    Content types and permissions are kept: the flush's post_migrate would only write them again, the same (some
    0.1 s a test, for a hundred-odd permissions). The role groups are emptied and made again by sync_roles."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush
    kept = {"django_content_type", "auth_permission"}

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or allow_cascade or not tables:
            return truncate(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        audit = AuditEntry._meta.db_table
        emptied = sorted((table for table in tables if table not in kept), key=lambda table: table == audit)
        unchecked = _is_superuser(self.connection)
        first = "SET LOCAL session_replication_role = replica" if unchecked else "SET CONSTRAINTS ALL DEFERRED"
        return [first] + [f"DELETE FROM {self.quote_name(table)}" for table in emptied]

    DatabaseOperations.sql_flush = sql_flush
    yield
    DatabaseOperations.sql_flush = truncate


@pytest.fixture(autouse=True)
def _cached_entries_outlive_a_slow_test(monkeypatch):
    """Entries cached under a generation live as long in the tests' local cache as in a shared one, not 5 s.

    The suite has one process, and each test starts with an empty cache. With 5 s, a test that read a page once to
    warm the cache and then counted the next read's queries saw the entries expire in between whenever a busy
    machine made the two reads 5 s apart (test_call_log's test_query_count_does_not_grow_with_rows: 11 queries for
    7)."""
    import math

    from calls import cache as tolerant

    monkeypatch.setattr(tolerant, "LOCAL_SECONDS", math.inf)


@pytest.fixture(autouse=True)
def vcc_waits(monkeypatch):
    """What the VCC client waits for (a sync waiting for room in the request budget, a 429's Retry-After) passes
    on the budget's clock instead of the wall clock: the wait is counted in `vcc_waits` (a list of seconds) and
    the test goes on at once. Waits no longer than a lock poll (50 ms, waiting for another thread) stay real."""
    import asyncio
    import time

    from calls.vcc import core

    waited: list[float] = []
    real_clock = vcc_budget.wall_clock
    monkeypatch.setattr(vcc_budget, "wall_clock", lambda: real_clock() + sum(waited))

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        time.sleep(min(seconds, core.LOCK_POLL))

    async def asleep(seconds: float) -> None:
        waited.append(seconds)
        await asyncio.sleep(min(seconds, core.LOCK_POLL))

    monkeypatch.setattr(core, "sleep", sleep)
    monkeypatch.setattr(core, "asleep", asleep)
    return waited


@pytest.fixture(autouse=True)
def _calls_allowed_at_any_hour(request, monkeypatch):
    """Numbers without calling hours of their own country may be called at any hour, every day, so that tests
    placing calls on the wall clock pass whenever they run (a Sunday, at night). Tests marked `calling_hours` keep
    the real defaults (08:00 to 21:00, Monday to Saturday); rows an admin adds (CallingHours, Holiday) always count.
    """
    if request.node.get_closest_marker("calling_hours") is None:
        import datetime as dt

        from calls.calling import hours

        monkeypatch.setattr(hours, "DEFAULT_RULE", hours.Rule(dt.time(0), dt.time(0), "0123456"))


@pytest.fixture(autouse=True)
def jobs():
    """Jobs queued by the code under test wait in memory (procrastinate.testing.InMemoryConnector): a test runs
    them with tests._jobs.run_jobs, or looks at them (`jobs.jobs`)."""
    from procrastinate.contrib.django import app
    from procrastinate.testing import InMemoryConnector

    connector = InMemoryConnector()
    with app.replace_connector(connector):
        yield connector


@pytest.fixture(autouse=True)
def _clear_cache():
    from calls.webhooks import outbox

    outbox.forget()  # whether a webhook endpoint exists: each test's database starts without one
    cache.clear()
    vcc_stats.reset()  # what this process recorded of VCC requests: kept in memory beside the local cache
    vcc_budget.reset()  # and what it drew from the VCC request budget
    _fresh_vcc_minute()
    yield
    cache.clear()
    vcc_stats.reset()
    vcc_budget.reset()


def _fresh_vcc_minute() -> None:
    """The sandbox simulator counts requests against VCC's fair-use limit (about 160 a minute) as VCC would; each
    test starts on a minute of its own, as it starts with an empty budget, so tests run in a row do not share it."""
    from vccsim.transport import sandbox_transport

    sim = sandbox_transport().sim
    sim.set_fair_use(sim.account.fair_use_limit)


# The world's people and objects, as plain functions too: module-scoped fixtures (tests/_security.py) build them
# once for many tests.


def create_user(username: str, role: str | None = None, **extra):
    user = get_user_model().objects.create_user(username=username, password=PASSWORD, **extra)
    if role:
        assign_role(user, role)
    return user


def create_person(username: str, role: str, name: str, display_id: str):
    """A user in role with their own VCC agent (display_id: one of the simulator account's agents)."""
    first, last = name.split(" ", 1)
    user = create_user(username, role, first_name=first, last_name=last)
    Agent.objects.create(display_id=display_id, name=name, user=user)
    return user


def create_agent_user():
    return create_person("alex", AGENT, "Alex Morgan", "1001")


def create_other_agent_user():
    return create_person("tom", AGENT, "Tom Okafor", "1003")


def create_supervisor_user():
    return create_person("priya", SUPERVISOR, "Priya Shah", "1002")


def create_admin_role_user():
    return create_user("ada", ADMIN)


def create_london() -> CallbackNumber:
    return CallbackNumber.objects.create(number="+442079460100", label="London main", is_default=True)


def create_support() -> AgentGroup:
    return AgentGroup.objects.create(display_id="200", name="Support")


def create_manchester(support: AgentGroup) -> CallbackNumber:
    number = CallbackNumber.objects.create(number="+441614960200", label="Manchester support")
    number.allowed_groups.add(support)
    return number


def create_sales() -> AgentGroup:
    """Sales UK: Alex and Tom (create_agent_user and create_other_agent_user first)."""
    group = AgentGroup.objects.create(display_id="030", name="Sales UK")
    group.members.set(Agent.objects.filter(display_id__in=["1001", "1003"]))
    return group


def create_contact() -> Contact:
    contact = Contact.objects.create(name="Grace Hopper", company="Cobalt Dental", email="grace@example.com")
    ContactPhone.objects.create(contact=contact, label="mobile", number="+447400123456", is_primary=True)
    ContactPhone.objects.create(contact=contact, label="work", number="+442079460123")
    return contact


@pytest.fixture
def make_user(db):
    return create_user


@pytest.fixture
def london(db) -> CallbackNumber:
    return create_london()


@pytest.fixture
def manchester(db, support) -> CallbackNumber:
    return create_manchester(support)


@pytest.fixture
def agent_user(db):
    return create_agent_user()


@pytest.fixture
def other_agent_user(db):
    return create_other_agent_user()


@pytest.fixture
def supervisor_user(db):
    return create_supervisor_user()


@pytest.fixture
def admin_role_user(db):
    return create_admin_role_user()


@pytest.fixture
def sales(db, agent_user, other_agent_user) -> AgentGroup:
    return create_sales()


@pytest.fixture
def support(db) -> AgentGroup:
    return create_support()


@pytest.fixture
def contact(db) -> Contact:
    return create_contact()


def _logged_in(user) -> Client:
    # A client of its own: tests that use two roles at once must not share one session.
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def agent_client(agent_user) -> Client:
    return _logged_in(agent_user)


@pytest.fixture
def supervisor_client(supervisor_user) -> Client:
    return _logged_in(supervisor_user)


@pytest.fixture
def admin_role_client(admin_role_user) -> Client:
    """Logged in with the admin role (pytest-django's own `admin_client` is a superuser's)."""
    return _logged_in(admin_role_user)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI a skipped test is a gap, not a pass: report it as a failure."""
    report = yield
    if os.environ.get("CI", "").lower() in {"1", "true"} and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"Skipped in CI, which must run everything: {report.longrepr}"
    return report


def pytest_configure(config):
    """More xdist workers than TEST_REDIS_URL's number leaves room for: one clear message before any runs, not a
    failure per Redis test. Checked once, by the process that starts the workers, for the last of them."""
    from tests._redis import DEFAULT, for_worker, out_of_range

    workers = getattr(config.option, "numprocesses", None)
    if hasattr(config, "workerinput") or not isinstance(workers, int) or workers < 1:
        return
    last = for_worker(os.environ.get("TEST_REDIS_URL", DEFAULT), f"gw{workers - 1}")
    if problem := out_of_range(last):
        raise pytest.UsageError(problem)


@pytest.fixture
def redis_cache(settings):
    """Redis as the cache (this xdist worker's own database), emptied before and after."""
    import redis

    from tests._redis import TEST_REDIS_URL as url

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        pytest.skip(f"Redis is not running at {url} (CI starts one)")
    settings.CACHES = {
        "default": {"BACKEND": "calls.cache.TolerantRedisCache", "LOCATION": url, "KEY_PREFIX": "vccweb"}
    }
    cache.clear()
    yield cache
    cache.clear()


@pytest.fixture
def placed(agent_client, contact, london):
    """A call the agent placed to the contact from the London number; the test module installs the simulator
    (`tests._sim.fresh_simulator`)."""
    from tests._sim import place_call

    return place_call(agent_client, contact)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """On PostgreSQL each test database is made as a copy of the checkout's migrated template (bench/_migrated.py,
    made once for all test processes): 0.3 s instead of some 8 s of `migrate` in each. Django's own `migrate` then
    finds nothing to apply. TEST_DB_TEMPLATE=off makes them by migrating, as Django does."""
    import importlib.util
    from pathlib import Path

    from django.conf import settings
    from django.db import connections

    database = settings.DATABASES["default"]
    if connections["default"].vendor != "postgresql" or os.environ.get("TEST_DB_TEMPLATE", "on") == "off":
        return
    path = Path(__file__).resolve().parent.parent / "bench" / "_migrated.py"
    spec = importlib.util.spec_from_file_location("bench_migrated", path)
    migrated = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migrated)
    database.setdefault("TEST", {})["TEMPLATE"] = migrated.template(migrated.admin_url(database))


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database commits without waiting for its WAL to reach the disk (synchronous_commit off, for this
    database only): tests that commit (transaction=True, the live server's requests, real workers) otherwise wait
    for an fsync at each commit. A crash of PostgreSQL could lose the last commits, which a test database can.

    It also plans without JIT compilation (jit off, this database only). Over the tests' few thousand rows the
    planner still costs some queries above `jit_above_cost` (a contact search's query at 477,654 over the search
    tests' 10,000 contacts), and each compiled 30 to 40 functions, which took longer than running them: auto_explain
    counted 71 compilations in the search, call log, report, admin list and cursor tests, and PostgreSQL's CPU in
    them went from 19.5 to 16.7 s. JIT changes how a plan runs, never what it returns."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return django_db_setup
    parameters = {"jit": "off"}
    if os.environ.get("TEST_SYNCHRONOUS_COMMIT", "off") == "off":
        parameters["synchronous_commit"] = "off"
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        name = connection.ops.quote_name(connection.settings_dict["NAME"])
        for setting, value in parameters.items():
            cursor.execute(f"ALTER DATABASE {name} SET {setting} TO {value}")
            cursor.execute(f"SET {setting} TO {value}")
    return django_db_setup
