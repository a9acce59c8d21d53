"""`manage.py webhook_endpoint add|list|disable|delete`: what the Webhooks page does, refused as the page refuses."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from standardwebhooks.webhooks import Webhook

from calls.models.webhooks import WebhookEndpoint
from calls.webhooks import safety, signing

pytestmark = pytest.mark.django_db
ADDRESSES = {"hooks.example.com": ["93.184.215.14"], "rebind.example": ["10.0.0.7"]}


@pytest.fixture(autouse=True)
def resolver(monkeypatch, settings):
    settings.DEBUG = False
    settings.WEBHOOK_ALLOWED_HOSTS = []
    monkeypatch.setattr(safety, "resolve", lambda host, port: ADDRESSES[host])


def run(*args: str) -> str:
    out = StringIO()
    call_command("webhook_endpoint", *args, stdout=out)
    return out.getvalue()


def test_add_prints_the_secret_once_and_logs(caplog):
    with caplog.at_level(logging.INFO, logger="calls.webhooks.endpoints"):
        events = ["--events", "call.*", "--events", "contact.created,contact.deleted"]
        out = run("add", "https://Hooks.example.com/in", *events, "--description", "Helpdesk")
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.url == "https://hooks.example.com/in" and endpoint.description == "Helpdesk"
    assert endpoint.event_types == ["call.*", "contact.created", "contact.deleted"]
    assert out.splitlines()[-1].split()[-1] == endpoint.secret
    assert "added by manage.py webhook_endpoint" in caplog.text and endpoint.secret not in caplog.text


def test_add_takes_a_given_secret():
    secret = signing.new_secret()
    run("add", "https://hooks.example.com/in", "--events", "*", "--secret", secret)
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret == secret
    body = b'{"type":"webhook.test"}'
    Webhook(secret).verify(body, signing.headers(endpoint, "msg_1", datetime.now(UTC), body))


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["http://hooks.example.com/in", "--events", "*"], "https://"),
        (["https://rebind.example/in", "--events", "*"], "10.0.0.7, a private address"),
        (["https://u:p@hooks.example.com/", "--events", "*"], "user name"),
        (["https://hooks.example.com/in", "--events", "calls.*"], "matches no event"),
        (["https://hooks.example.com/in", "--events", "*", "--secret", "hunter2"], "whsec_"),
    ],
)
def test_add_refuses_what_the_page_refuses(args, says):
    with pytest.raises(CommandError, match=says.replace(".", r"\.").replace("*", r"\*")):
        run("add", *args)
    assert not WebhookEndpoint.objects.exists()


def test_a_refusal_exits_non_zero(capsys):
    """From the shell: the reason on stderr and a non-zero exit status."""
    from calls.management.commands.webhook_endpoint import Command

    with pytest.raises(SystemExit) as exited:
        Command().run_from_argv(["manage.py", "webhook_endpoint", "add", "ftp://x.example/", "--events", "*"])
    assert exited.value.code == 1
    assert "https://" in capsys.readouterr().err


def test_list_disable_delete(caplog):
    run("add", "https://hooks.example.com/in", "--events", "call.*")
    endpoint = WebhookEndpoint.objects.get()
    assert f"{endpoint.pk}\ton\tcall.*\thttps://hooks.example.com/in" in run("list")
    with caplog.at_level(logging.INFO, logger="calls.webhooks.endpoints"):
        assert "Paused" in run("disable", str(endpoint.pk))
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    assert "\tpaused\t" in run("list")
    assert "already off" in run("disable", str(endpoint.pk))
    endpoint.disabled_reason = "410 Gone from the receiver"
    endpoint.save()
    assert "disabled: 410 Gone from the receiver" in run("list")
    with caplog.at_level(logging.INFO, logger="calls.webhooks.endpoints"):
        assert "Deleted" in run("delete", str(endpoint.pk))
    assert not WebhookEndpoint.objects.exists()
    assert "paused by manage.py webhook_endpoint" in caplog.text
    assert "deleted by manage.py webhook_endpoint" in caplog.text
    assert run("list").strip() == "No webhook endpoints."
    with pytest.raises(CommandError, match="no webhook endpoint 99"):
        run("delete", "99")
