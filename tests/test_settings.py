"""Settings come from the environment; malformed values stop the app with a message naming the variable."""

from __future__ import annotations

import os
import re
import runpy
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.exceptions import ImproperlyConfigured

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ROOT / "vccweb" / "settings.py"
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "x" * 60 + "-not-a-real-key-0123456789",
    "ALLOWED_HOSTS": "crm.example.com",
}


def load(monkeypatch, **env: str) -> dict:
    for name in [
        "DEBUG",
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "DATABASE_URL",
        "REDIS_URL",
        "VCC_ACCOUNT_KEY",
        "VCC_API_TOKEN",
        "VCC_REGION",
        "VCC_BASE_URL",
        "VCC_AUTH_URL",
        "VCC_GATEWAY_URL",
        "VCCSIM_URL",
        "DB_POOL",
        "DB_POOL_MIN_SIZE",
        "DB_POOL_MAX_SIZE",
        "DB_POOL_TIMEOUT",
        "DB_CONN_MAX_AGE",
        "LOG_FORMAT",
        "REDIS_TIMEOUT_MS",
        "VCC_SYNC_EVERY",
    ]:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS))


@pytest.mark.parametrize("value", ["true", "TRUE", "1", "True"])
def test_it_reads_true_booleans_in_any_case(monkeypatch, value):
    assert load(monkeypatch, DEBUG=value)["DEBUG"] is True


@pytest.mark.parametrize("value", ["false", "FALSE", "0"])
def test_it_reads_false_booleans_in_any_case(monkeypatch, value):
    assert load(monkeypatch, **{**PRODUCTION, "DEBUG": value})["DEBUG"] is False


@pytest.mark.parametrize("value", ["yes", "on", "2", "tru"])
def test_it_refuses_other_booleans_naming_the_variable(monkeypatch, value):
    with pytest.raises(ImproperlyConfigured, match="DEBUG must be true, false, 1 or 0"):
        load(monkeypatch, DEBUG=value)


def test_it_requires_a_secret_key_without_debug(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY"):
        load(monkeypatch, DEBUG="false", ALLOWED_HOSTS="x.example.com")


def test_it_requires_allowed_hosts_without_debug(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="ALLOWED_HOSTS"):
        load(monkeypatch, DEBUG="false", SECRET_KEY=PRODUCTION["SECRET_KEY"])


def test_it_reads_secrets_from_files(monkeypatch, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-a-file-" + "k" * 50 + "\n")
    settings = load(monkeypatch, DEBUG="true", SECRET_KEY_FILE=str(secret))
    assert settings["SECRET_KEY"] == "from-a-file-" + "k" * 50


def test_it_uses_sqlite_by_default_and_postgres_from_database_url(monkeypatch):
    assert load(monkeypatch, DEBUG="true")["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    db = load(monkeypatch, DEBUG="true", DATABASE_URL="postgres://root@127.0.0.1:5432/test")["DATABASES"]["default"]
    assert db["ENGINE"] == "calls.dbbackend"  # Django's, failing at once while PostgreSQL is down
    assert db["NAME"] == "test"


def test_it_refuses_a_database_url_it_cannot_read(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        load(monkeypatch, DEBUG="true", DATABASE_URL="nosuchdb://whatever")


def test_it_uses_redis_only_when_configured(monkeypatch):
    assert load(monkeypatch, DEBUG="true")["CACHES"]["default"]["BACKEND"] == "calls.cache.InProcessCache"
    caches = load(monkeypatch, DEBUG="true", REDIS_URL="redis://127.0.0.1:6379/1")["CACHES"]
    assert caches["default"]["BACKEND"] == "calls.cache.TolerantRedisCache"
    with pytest.raises(ImproperlyConfigured, match="REDIS_URL"):
        load(monkeypatch, DEBUG="true", REDIS_URL="127.0.0.1:6379")


def test_sandbox_mode_is_on_without_an_account_key(monkeypatch):
    settings = load(monkeypatch, DEBUG="true")
    assert settings["VCC_SANDBOX"] is True
    assert settings["VCC_TRANSPORT"] == "vccsim.transport.sandbox_transport"


def test_a_real_account_uses_the_region_hosts(monkeypatch):
    settings = load(monkeypatch, DEBUG="true", VCC_ACCOUNT_KEY="a1b2c3d4e5", VCC_API_TOKEN="t", VCC_REGION="NAM")
    assert settings["VCC_SANDBOX"] is False
    assert settings["VCC_BASE_URL"] == "https://nam.cc.vonage.com"
    assert settings["VCC_AUTH_URL"] == "https://nam.cc.vonage.com"  # /Auth/connect/token, vcc-api.md §3.2
    assert settings["VCC_GATEWAY_URL"] == "https://nam.api.cc.vonage.com"
    assert settings["VCC_TRANSPORT"] == ""


def test_vcc_base_url_alone_moves_the_token_and_gateway_hosts_with_it(monkeypatch):
    settings = load(
        monkeypatch, DEBUG="true", VCC_ACCOUNT_KEY="k", VCC_API_TOKEN="t", VCC_BASE_URL="http://127.0.0.1:8025/"
    )
    assert settings["VCC_BASE_URL"] == "http://127.0.0.1:8025"
    assert settings["VCC_AUTH_URL"] == "http://127.0.0.1:8025"
    assert settings["VCC_GATEWAY_URL"] == "http://127.0.0.1:8025"  # a simulator serves the gateway APIs too


@pytest.mark.parametrize(
    ("base", "gateway"),
    [
        ("https://apac.cc.vonage.com", "https://apac.api.cc.vonage.com"),
        ("https://NAM.cc.vonage.com:443/", "https://nam.api.cc.vonage.com:443"),
        ("https://emea.newvoicemedia.com", "https://emea.api.newvoicemedia.com"),  # the legacy hosts
    ],
)
def test_a_vcc_base_url_puts_the_gateway_on_its_regions_api_host(monkeypatch, base, gateway):
    settings = load(monkeypatch, DEBUG="true", VCC_ACCOUNT_KEY="k", VCC_API_TOKEN="t", VCC_BASE_URL=base)
    assert settings["VCC_AUTH_URL"] == settings["VCC_BASE_URL"] == base.rstrip("/")
    assert settings["VCC_GATEWAY_URL"] == gateway


def test_explicit_token_and_gateway_urls_win_over_the_base_url(monkeypatch):
    settings = load(
        monkeypatch,
        DEBUG="true",
        VCC_ACCOUNT_KEY="k",
        VCC_API_TOKEN="t",
        VCC_BASE_URL="http://127.0.0.1:8025",
        VCC_AUTH_URL="https://emea.cc.vonage.com/",
        VCC_GATEWAY_URL="https://emea.api.newvoicemedia.com",
    )
    assert settings["VCC_AUTH_URL"] == "https://emea.cc.vonage.com"
    assert settings["VCC_GATEWAY_URL"] == "https://emea.api.newvoicemedia.com"


def test_blank_vcc_urls_mean_their_defaults(monkeypatch):
    """.env.example leaves them blank: a copy with only the account filled in must reach VCC, not the empty URL."""
    blank = {"VCC_BASE_URL": "", "VCC_AUTH_URL": " ", "VCC_GATEWAY_URL": ""}
    settings = load(monkeypatch, DEBUG="true", VCC_ACCOUNT_KEY="k", VCC_API_TOKEN="t", VCC_REGION="apac", **blank)
    assert settings["VCC_BASE_URL"] == settings["VCC_AUTH_URL"] == "https://apac.cc.vonage.com"
    assert settings["VCC_GATEWAY_URL"] == "https://apac.api.cc.vonage.com"


@pytest.mark.parametrize(
    ("name", "default"),
    [
        ("TIME_ZONE", "Europe/London"),
        ("JOBS_STALLED_CHECK_CRON", "* * * * * */10"),
        ("VCC_SYNC_EVERY", "1h"),
        ("VCC_APPLICATION", "vccweb"),
        ("DEFAULT_PHONE_REGION", "GB"),
        ("DEMO_PASSWORD", "demo"),
    ],
)
def test_a_blank_text_setting_means_its_default(monkeypatch, name, default):
    """A copy of .env.example with `TIME_ZONE=` emptied passed every check, then each page showing a time failed
    (ZoneInfo("")); a blank cron stopped the worker's periodic jobs."""
    assert load(monkeypatch, DEBUG="true", **{name: " "})[name] == default


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VCC_REGION": "mars"}, "VCC_REGION must be one of emea, nam, apac"),
        ({"VCC_ACCOUNT_KEY": "k"}, "VCC_API_TOKEN must be set"),
        ({"VCC_APPLICATION": "my app!"}, "VCC_APPLICATION must be 1 to 32 letters or digits"),
        ({"VCC_API_VERSION": "six"}, "VCC_API_VERSION must be a whole number"),
        ({"VCC_WEBHOOKS_API_VERSION": "0"}, "VCC_WEBHOOKS_API_VERSION must be at least 1"),
        ({"VCC_BASE_URL": "emea.cc.vonage.com"}, "VCC_BASE_URL must be an http"),
        ({"DEFAULT_PHONE_REGION": "Britain"}, "DEFAULT_PHONE_REGION must be a two-letter"),
        ({"DEFAULT_PHONE_REGION": "XX"}, "DEFAULT_PHONE_REGION must be a two-letter"),
        ({"SECURE_HSTS_SECONDS": "-5"}, "SECURE_HSTS_SECONDS must be at least 0"),
        ({"VCC_SYNC_EVERY": "45m"}, "VCC_SYNC_EVERY must be off, or minutes or hours that divide"),
        ({"VCC_SYNC_EVERY": "hourly"}, "VCC_SYNC_EVERY must be off"),
        ({"PROCRASTINATE_LOG_LEVEL": "verbose"}, "PROCRASTINATE_LOG_LEVEL must be one of debug, info, warning"),
        ({"JOBS_STALLED_CHECK_CRON": "every 10s"}, "JOBS_STALLED_CHECK_CRON must be a cron line"),
        ({"JOBS_STALLED_CHECK_CRON": "* * * * * 70"}, "JOBS_STALLED_CHECK_CRON must be a cron line"),
    ],
)
def test_it_refuses_malformed_values_with_a_message_naming_the_variable(monkeypatch, env, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        load(monkeypatch, DEBUG="true", **env)


def test_production_defaults_apply_without_debug_and_each_can_be_switched_off(monkeypatch):
    settings = load(monkeypatch, **PRODUCTION)
    assert settings["SECURE_SSL_REDIRECT"] is True
    assert settings["SESSION_COOKIE_SECURE"] is True
    assert settings["CSRF_COOKIE_SECURE"] is True
    assert settings["SECURE_HSTS_SECONDS"] == 31536000
    assert settings["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    relaxed = load(monkeypatch, **PRODUCTION, SECURE_SSL_REDIRECT="false", SECURE_PROXY_SSL_HEADER="0")
    assert relaxed["SECURE_SSL_REDIRECT"] is False
    assert "SECURE_PROXY_SSL_HEADER" not in relaxed


@pytest.mark.parametrize(
    ("every", "cron"),
    [(None, "0 */1 * * *"), ("30m", "*/30 * * * *"), ("6h", "0 */6 * * *"), ("24h", "0 0 * * *"), ("OFF", "")],
)
def test_the_sync_from_vcc_runs_as_often_as_vcc_sync_every_says(monkeypatch, every, cron):
    settings = load(monkeypatch, DEBUG="true", **({"VCC_SYNC_EVERY": every} if every else {}))
    assert settings["VCC_SYNC_CRON"] == cron


def test_the_job_queue_is_on_postgres_only(monkeypatch):
    assert load(monkeypatch, DEBUG="true")["JOBS_DATABASE"] is False
    assert load(monkeypatch, DEBUG="true", DATABASE_URL="postgres://u@db:5432/x")["JOBS_DATABASE"] is True


def test_the_csp_is_strict(monkeypatch):
    csp = load(monkeypatch, DEBUG="true")["SECURE_CSP"]
    flat = " ".join(" ".join(v) for v in csp.values())
    assert "unsafe-inline" not in flat
    assert "unsafe-eval" not in flat
    assert csp["script-src"] == ["'self'", "<CSP_NONCE_SENTINEL>"]


@pytest.fixture
def database_url_for_checks(db) -> str:
    """DATABASE_URL naming this worker's test database, which exists while the suite runs.

    `manage.py check` runs the model checks against every database, and a GeneratedField's check asks PostgreSQL
    its version: pointed at the developer's DATABASE_URL, the check failed whenever that database did not exist
    (a clean clone, or each helper's own name). Empty when the suite runs on SQLite (nothing to connect to)."""
    from django.db import connection

    url = os.environ.get("DATABASE_URL", "")
    if not url or connection.vendor != "postgresql":  # SQLite's test database is in this process's memory
        return ""
    return urlunsplit(urlsplit(url)._replace(path="/" + connection.settings_dict["NAME"]))


def check_deploy(database_url: str, **extra: str) -> subprocess.CompletedProcess:
    drop = ("DEBUG", "SECURE_", "SESSION_", "CSRF_", "DJANGO_ALLOW_ASYNC_UNSAFE", "DATABASE_URL", "REDIS_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    # No pool (its first connection is preceded by a direct one with a 2 s timeout) and a long connect timeout: a
    # loaded machine can keep PostgreSQL from answering within a few seconds, and these tests are about settings.
    env.update(PRODUCTION, DB_POOL="false", DB_CONNECT_TIMEOUT="60", **extra)
    if database_url:
        env["DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_reports_no_issues_with_production_settings(database_url_for_checks):
    result = check_deploy(database_url_for_checks, REDIS_URL="redis://127.0.0.1:6379/0")  # not asked: not connected
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_of_production_without_redis(database_url_for_checks):
    """Without Redis each process (the worker beside each web process) spent VCC's whole request budget alone, and
    make serve warned only with several web processes, of "login counts" (kept in PostgreSQL now)."""
    result = check_deploy(database_url_for_checks)
    assert result.returncode == 1
    assert "(calls.W003) REDIS_URL is not set: each app process" in result.stderr
    assert "with all of it (150 a minute)" in result.stderr


def test_check_deploy_still_sees_the_settings_the_middleware_subclasses_depend_on(database_url_for_checks):
    # Django's checks look for its own middleware paths; calls.middleware_check asks them of the subclasses.
    result = check_deploy(
        database_url_for_checks, SECURE_HSTS_SECONDS="0", CSRF_COOKIE_SECURE="false", SESSION_COOKIE_SECURE="false"
    )
    assert result.returncode == 1
    for check in ("security.W004", "security.W016", "security.W012"):
        assert check in result.stderr + result.stdout, check


def test_no_check_is_silenced_so_check_deploy_stays_meaningful(monkeypatch):
    settings = load(monkeypatch, **PRODUCTION)
    # Only Django's three checks for its middleware class names, which calls.W001 asks of the subclasses instead.
    assert settings.get("SILENCED_SYSTEM_CHECKS") == ["security.W001", "security.W002", "security.W003"]
    assert settings["X_FRAME_OPTIONS"] == "DENY"
    assert settings["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert settings["SESSION_COOKIE_HTTPONLY"] is True


@pytest.mark.parametrize(
    "key",
    ["short-" + "k" * 20, "a" * 60, "django-insecure-" + "0123456789abcdef" * 4],
)
def test_it_refuses_a_secret_key_that_is_not_a_real_secret_without_debug(monkeypatch, key):
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY is not a real secret.*token_urlsafe"):
        load(monkeypatch, **{**PRODUCTION, "SECRET_KEY": key})


def test_postgres_gets_a_bounded_connection_pool_from_the_environment(monkeypatch):
    db = load(
        monkeypatch,
        DEBUG="true",
        DATABASE_URL="postgres://root@127.0.0.1:5432/test",
        DB_POOL_MIN_SIZE="1",
        DB_POOL_MAX_SIZE="7",
        DB_POOL_TIMEOUT="3",
    )["DATABASES"]["default"]
    assert db["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 7, "timeout": 3}
    assert db["OPTIONS"]["connect_timeout"] == 5
    assert db["CONN_MAX_AGE"] == 0


def test_the_pool_has_defaults_and_can_be_switched_off(monkeypatch):
    url = "postgres://root@127.0.0.1:5432/test"
    pooled = load(monkeypatch, DEBUG="true", DATABASE_URL=url)["DATABASES"]["default"]
    assert pooled["OPTIONS"]["pool"] == {"min_size": 2, "max_size": 10, "timeout": 10}
    plain = load(monkeypatch, DEBUG="true", DATABASE_URL=url, DB_POOL="false", DB_CONN_MAX_AGE="60")
    assert "pool" not in plain["DATABASES"]["default"]["OPTIONS"]
    assert plain["DATABASES"]["default"]["CONN_MAX_AGE"] == 60


def test_sqlite_gets_no_pool(monkeypatch):
    assert "OPTIONS" not in load(monkeypatch, DEBUG="true")["DATABASES"]["default"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DB_CONN_MAX_AGE": "60"}, "DB_CONN_MAX_AGE must be 0 while the connection pool is on"),
        ({"DB_POOL_MIN_SIZE": "5", "DB_POOL_MAX_SIZE": "4"}, r"DB_POOL_MAX_SIZE \(4\) must be at least"),
        ({"DB_POOL_MAX_SIZE": "0"}, "DB_POOL_MAX_SIZE must be at least 1"),
        ({"DB_POOL_TIMEOUT": "soon"}, "DB_POOL_TIMEOUT must be a whole number"),
        ({"DB_POOL": "maybe"}, "DB_POOL must be true, false"),
    ],
)
def test_it_refuses_a_malformed_pool(monkeypatch, env, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        load(monkeypatch, DEBUG="true", DATABASE_URL="postgres://root@127.0.0.1:5432/test", **env)


def test_redis_gets_short_timeouts_and_a_breaker(monkeypatch):
    options = load(monkeypatch, DEBUG="true", REDIS_URL="redis://127.0.0.1:6379/1", REDIS_TIMEOUT_MS="250")["CACHES"][
        "default"
    ]["OPTIONS"]
    assert options == {"socket_connect_timeout": 0.25, "socket_timeout": 0.25, "breaker_seconds": 10}


def test_static_files_get_hashed_names_only_without_debug(monkeypatch):
    production = load(monkeypatch, **PRODUCTION)
    assert production["STORAGES"]["staticfiles"]["BACKEND"] == (
        "whitenoise.storage.CompressedManifestStaticFilesStorage"
    )
    assert production["WHITENOISE_USE_FINDERS"] is False
    development = load(monkeypatch, DEBUG="true")
    assert development["STORAGES"]["staticfiles"]["BACKEND"] == "django.contrib.staticfiles.storage.StaticFilesStorage"
    assert development["WHITENOISE_USE_FINDERS"] is True


def test_logs_are_json_in_production_and_text_in_development(monkeypatch):
    assert load(monkeypatch, **PRODUCTION)["LOGGING"]["handlers"]["console"]["formatter"] == "json"
    assert load(monkeypatch, DEBUG="true")["LOGGING"]["handlers"]["console"]["formatter"] == "text"
    assert load(monkeypatch, **PRODUCTION, LOG_FORMAT="TEXT")["LOGGING"]["handlers"]["console"]["formatter"] == "text"
    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT must be one of json, text"):
        load(monkeypatch, DEBUG="true", LOG_FORMAT="xml")


def test_health_checks_are_exempt_from_the_https_redirect(monkeypatch):
    assert load(monkeypatch, **PRODUCTION)["SECURE_REDIRECT_EXEMPT"] == [r"^healthz$", r"^readyz$"]


def test_make_serve_refuses_to_start_without_a_real_secret_key_and_says_why():
    drop = ("DEBUG", "SECRET_KEY", "SECURE_", "SESSION_", "CSRF_", "DJANGO_ALLOW_ASYNC_UNSAFE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env |= {"ALLOWED_HOSTS": "crm.example.com", "SECRET_KEY": "changeme", "PY": sys.executable}
    result = subprocess.run(
        ["sh", "bin/serve"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 1
    assert result.stderr.startswith("make serve: refusing to start: SECRET_KEY is not a real secret")
    assert "Traceback" not in result.stderr


def test_make_serve_reads_the_database_url_from_a_file_as_the_settings_do(tmp_path, database_url_for_checks):
    """README: secrets can be read from files (NAME_FILE). DATABASE_URL holds the database's password, but make
    serve looked at $DATABASE_URL itself and refused DATABASE_URL_FILE as "not PostgreSQL"."""
    if not database_url_for_checks:
        pytest.skip("make serve needs PostgreSQL: the suite runs on SQLite")
    # PostgreSQL's own maintenance database: it answers, and is not migrated.
    url = urlunsplit(urlsplit(database_url_for_checks)._replace(path="/postgres"))
    (tmp_path / "db").write_text(url + "\n")
    drop = ("DEBUG", "DATABASE_URL", "SECURE_", "SESSION_", "CSRF_", "DJANGO_ALLOW_ASYNC_UNSAFE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env |= PRODUCTION | {"PY": sys.executable, "DB_POOL": "false", "DATABASE_URL_FILE": str(tmp_path / "db")}
    env["REDIS_URL"] = "redis://127.0.0.1:6379/0"  # or the deploy checks' warning comes first
    result = subprocess.run(
        ["sh", "bin/serve"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 1
    assert result.stderr.startswith("make serve: the database is not migrated (or not reachable)"), result.stderr


def test_make_serve_says_in_one_line_that_the_database_is_not_answering():
    """With PostgreSQL down at start, make serve printed "manage.py check --deploy says:" and a page of tracebacks
    and connection-pool warnings (the deploy checks' model checks connect)."""
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEBUG", "DATABASE_URL", "DJANGO_ALLOW"))}
    env |= PRODUCTION | {"PY": sys.executable, "DATABASE_URL": f"postgres://vccweb:hunter2@127.0.0.1:{port}/vccweb"}
    result = subprocess.run(
        ["sh", "bin/serve"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("make serve: refusing to start: the database (DATABASE_URL) is not answering: "), line
    assert f"port {port} failed: Connection refused" in line
    assert "hunter2" not in line


def demo_database(*args: str, **env: str) -> subprocess.CompletedProcess:
    """bin/demo-database, which `make run` and `make test` ask for their DATABASE_URL."""
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DEMO_PGHOST", "DEMO_PGPORT")}
    return subprocess.run(
        [sys.executable, "bin/demo-database", *args],
        cwd=ROOT,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_make_test_runs_on_the_database_url_it_is_given_and_otherwise_says_how_to_get_postgresql():
    given = demo_database("vccweb_test", "make test", DATABASE_URL="postgres://u@db.example.com:5432/mine")
    assert (given.returncode, given.stdout) == (0, "postgres://u@db.example.com:5432/mine\n")

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    none = demo_database("vccweb_test", "make test", DEMO_PGPORT=str(port))
    assert none.returncode == 1 and none.stdout == ""
    assert none.stderr.startswith(
        f"make test needs PostgreSQL (the job queue lives there), and none let us in at 127.0.0.1:{port}"
    )
    assert "DATABASE_URL=postgres://user:password@host:5432/vccweb_test make test" in none.stderr
    assert "Traceback" not in none.stderr


@pytest.mark.parametrize("processes", ["0", "two", "-1"])
def test_make_serve_refuses_a_worker_count_that_is_not_a_whole_number_of_one_or_more(processes):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"))}
    env |= {"WORKER_PROCESSES": processes, "PY": sys.executable}
    result = subprocess.run(
        ["sh", "bin/serve"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 1
    assert result.stderr == "make serve: refusing to start: WORKER_PROCESSES must be a whole number, 1 or more\n"


@pytest.mark.parametrize(
    ("left_out", "words"),
    [
        ("calls.middleware.SecurityMiddleware", "No SecurityMiddleware"),
        ("calls.middleware.XFrameOptionsMiddleware", "No XFrameOptionsMiddleware"),
        ("calls.middleware.CsrfViewMiddleware", "No CsrfViewMiddleware"),
    ],
)
def test_the_silenced_middleware_checks_are_still_asked_of_the_subclasses(settings, left_out, words):
    from calls.middleware import middleware_check

    def missing() -> list:
        return [message for message in middleware_check() if message.id == "calls.W001"]

    assert missing() == []
    settings.MIDDLEWARE = [path for path in settings.MIDDLEWARE if path != left_out]
    (warning,) = missing()
    assert warning.id == "calls.W001"
    assert words in warning.msg


# Read by bin/serve, bin/sandbox-sim or uvicorn rather than the settings.
SERVING = ("WEB_CONCURRENCY", "WORKER_PROCESSES", "HOST", "PORT", "FORWARDED_ALLOW_IPS", "SIM_PORT", "VCCSIM_SPEED")
BENCH_ONLY = {"VCCWEB_BENCH_DISABLE"}  # bench/private_bench.py's, not for running vccweb


def test_env_example_and_readme_name_every_variable_the_app_reads():
    """README says .env.example lists them all: API_RATE_PER_MINUTE, the worker's heartbeat and stall, and
    LOGIN_CHECK_WAIT_SECONDS were read and listed nowhere there, CSRF_TRUSTED_ORIGINS explained nowhere in README."""
    read = set(re.findall(r'env_(?:str|bool|int|list|choice|url)\(\s*"([A-Z0-9_]+)"', SETTINGS.read_text()))
    assert {"SECRET_KEY", "TIME_ZONE", "WORKER_STALLED_SECONDS"} <= read  # the pattern still finds them
    example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    wanted = sorted((read | set(SERVING)) - BENCH_ONLY)
    assert [name for name in wanted if not re.search(rf"^(# ?)?{name}=", example, re.MULTILINE)] == []
    assert [name for name in wanted if not re.search(rf"`{name}[`=]", readme)] == []


def test_the_sandbox_simulator_refuses_a_port_something_else_answers_on():
    """bin/sandbox-sim (make run, make serve) waited until its port answered: with another server already there, it
    reported that one as the simulator (its own had failed to listen), and every click went to it."""
    env = {k: v for k, v in os.environ.items() if k not in ("VCC_ACCOUNT_KEY", "VCC_ACCOUNT_KEY_FILE", "VCCSIM_URL")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            ["sh", "bin/sandbox-sim"],
            cwd=ROOT,
            env=env | {"PY": sys.executable, "SIM_PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    assert (result.returncode, result.stdout) == (1, "")
    assert (
        result.stderr == f"port {port} is in use: the VCC simulator cannot listen there; set SIM_PORT to a free port\n"
    )


def test_the_sandbox_simulator_is_not_started_beside_an_account_key_read_from_a_file(tmp_path):
    """The settings read VCC_ACCOUNT_KEY_FILE as the key (a live account), but bin/sandbox-sim looked at
    VCC_ACCOUNT_KEY only: make run then started a simulator beside the live account and asked that account to send its
    events to the demo's http://127.0.0.1:8000 (8f2e20e taught make serve, not make run)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VCC_ACCOUNT_KEY", "VCC_ACCOUNT_KEY_FILE", "VCCSIM_URL")}
    key = tmp_path / "key"
    key.write_text("AC1234")
    with socket.socket() as taken:  # were it to start one, it would say so: the port is in use
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = subprocess.run(
            ["sh", "bin/sandbox-sim"],
            cwd=ROOT,
            env=env | {"PY": sys.executable, "SIM_PORT": str(taken.getsockname()[1]), "VCC_ACCOUNT_KEY_FILE": str(key)},
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
