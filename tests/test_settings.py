"""Settings come from the environment; malformed values stop the app with a message naming the variable."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

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
        load(monkeypatch, DEBUG="false", SECRET_KEY="s" * 60)


def test_it_reads_secrets_from_files(monkeypatch, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-a-file-" + "k" * 50 + "\n")
    settings = load(monkeypatch, DEBUG="true", SECRET_KEY_FILE=str(secret))
    assert settings["SECRET_KEY"] == "from-a-file-" + "k" * 50


def test_it_uses_sqlite_by_default_and_postgres_from_database_url(monkeypatch):
    assert load(monkeypatch, DEBUG="true")["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    db = load(monkeypatch, DEBUG="true", DATABASE_URL="postgres://root@127.0.0.1:5432/test")["DATABASES"]["default"]
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert db["NAME"] == "test"


def test_it_refuses_a_database_url_it_cannot_read(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        load(monkeypatch, DEBUG="true", DATABASE_URL="nosuchdb://whatever")


def test_it_uses_redis_only_when_configured(monkeypatch):
    assert "LocMemCache" in load(monkeypatch, DEBUG="true")["CACHES"]["default"]["BACKEND"]
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
    assert settings["VCC_GATEWAY_URL"] == "https://nam.api.cc.vonage.com"
    assert settings["VCC_TRANSPORT"] == ""


def test_vcc_base_url_overrides_the_region(monkeypatch):
    settings = load(
        monkeypatch, DEBUG="true", VCC_ACCOUNT_KEY="k", VCC_API_TOKEN="t", VCC_BASE_URL="http://127.0.0.1:8025/"
    )
    assert settings["VCC_BASE_URL"] == "http://127.0.0.1:8025"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VCC_REGION": "mars"}, "VCC_REGION must be one of emea, nam, apac"),
        ({"VCC_ACCOUNT_KEY": "k"}, "VCC_API_TOKEN must be set"),
        ({"VCC_APPLICATION": "my app!"}, "VCC_APPLICATION must be 1 to 32 letters or digits"),
        ({"VCC_API_VERSION": "six"}, "VCC_API_VERSION must be a whole number"),
        ({"VCC_BASE_URL": "emea.cc.vonage.com"}, "VCC_BASE_URL must be an http"),
        ({"DEFAULT_PHONE_REGION": "Britain"}, "DEFAULT_PHONE_REGION must be a two-letter"),
        ({"DEFAULT_PHONE_REGION": "XX"}, "DEFAULT_PHONE_REGION must be a two-letter"),
        ({"SECURE_HSTS_SECONDS": "-5"}, "SECURE_HSTS_SECONDS must be at least 0"),
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


def test_the_csp_is_strict(monkeypatch):
    csp = load(monkeypatch, DEBUG="true")["SECURE_CSP"]
    flat = " ".join(" ".join(v) for v in csp.values())
    assert "unsafe-inline" not in flat
    assert "unsafe-eval" not in flat
    assert csp["script-src"] == ["'self'", "<CSP_NONCE_SENTINEL>"]


def test_check_deploy_reports_no_issues_with_production_settings():
    drop = ("DEBUG", "SECURE_", "SESSION_", "CSRF_", "DJANGO_ALLOW_ASYNC_UNSAFE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(PRODUCTION)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
