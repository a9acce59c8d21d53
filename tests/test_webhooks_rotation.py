"""Rotating a webhook endpoint's secret (calls/webhooks/endpoints.py rotate, WebhookEndpoint.previous_secrets): every
secret a rotation replaced signs until its own end, whatever rotations follow, five at most; the ended ones are
dropped; and migration 0043 carries the one previous secret endpoints had before into the list, and back."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from calls.models import AuditEntry, WebhookEndpoint
from calls.models.webhooks import MAX_PREVIOUS_SECRETS
from calls.webhooks import endpoints, signing

pytestmark = pytest.mark.django_db

BEFORE = ("calls", "0042_callqueue_live_seen")
URL = "https://hooks.example.com/in"


def new_endpoint() -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(url=URL, event_types=["*"], secret=signing.new_secret())


def test_each_replaced_secret_signs_until_its_own_end():
    start = timezone.now()
    hook = new_endpoint()
    original = hook.secret
    endpoints.rotate(hook, by="test", now=start)
    first = hook.secret
    endpoints.rotate(hook, by="test", now=start + timedelta(hours=6))

    assert hook.signing_until(start + timedelta(hours=7)) == [start + timedelta(hours=30), start + timedelta(hours=24)]
    assert hook.signing_secrets(start + timedelta(hours=7)) == [hook.secret, first, original]
    assert hook.signing_secrets(start + timedelta(hours=24)) == [hook.secret, first]
    assert hook.signing_secrets(start + timedelta(hours=30)) == [hook.secret]


def test_a_rotation_drops_the_secrets_that_ended():
    start = timezone.now()
    hook = new_endpoint()
    original = hook.secret
    endpoints.rotate(hook, by="test", now=start)
    first = hook.secret
    endpoints.rotate(hook, by="test", now=start + timedelta(hours=1))
    second = hook.secret
    assert [previous["secret"] for previous in hook.previous_secrets] == [first, original]

    endpoints.rotate(hook, by="test", now=start + timedelta(hours=24, minutes=30))  # the original's day is over
    assert [previous["secret"] for previous in hook.previous_secrets] == [second, first]

    third = hook.secret
    endpoints.rotate(hook, by="test", now=start + timedelta(days=3))  # so are the first's and the second's
    assert [previous["secret"] for previous in hook.previous_secrets] == [third]


def test_at_most_five_previous_secrets_sign_and_a_rotation_beyond_stops_the_oldest(caplog):
    start = timezone.now()
    hook = new_endpoint()
    shown = [hook.secret]
    for hour in range(MAX_PREVIOUS_SECRETS):
        assert hook.stopped_by_rotation(start + timedelta(hours=hour)) == []
        endpoints.rotate(hook, by="test", now=start + timedelta(hours=hour))
        shown.insert(0, hook.secret)
    now = start + timedelta(hours=MAX_PREVIOUS_SECRETS)
    assert hook.signing_secrets(now) == shown  # the current one and five before it, newest first
    assert hook.stopped_by_rotation(now) == [start + timedelta(hours=24)]  # the first replaced: the page warns

    with caplog.at_level(logging.INFO, logger="calls.webhooks.endpoints"):
        endpoints.rotate(hook, by="test", now=now)

    assert hook.signing_secrets(now) == [hook.secret, *shown[:MAX_PREVIOUS_SECRETS]]
    assert shown[-1] not in {previous["secret"] for previous in hook.previous_secrets}
    assert "the oldest, due to sign until" in caplog.text
    assert "stopped now (at most 5 previous secrets sign)" in caplog.text
    assert not set(shown) & set(caplog.text.split())


def test_no_more_than_five_previous_secrets_sign_whatever_the_row_holds():
    """Written by something other than a rotation (the admin, a restore), the list still signs six at most."""
    now = timezone.now()
    many = [{"secret": signing.new_secret(), "until": (now + timedelta(hours=n)).isoformat()} for n in range(1, 9)]
    hook = new_endpoint()
    hook.previous_secrets = many
    newest = [previous["secret"] for previous in reversed(many)][:MAX_PREVIOUS_SECRETS]
    assert hook.signing_secrets(now) == [hook.secret, *newest]
    assert signing.signature_header(hook.signing_secrets(now), "msg_1", now, b"{}").count("v1,") == 6


def _migrate(to: tuple[str, str] | None = None):
    """Migrate calls to `to` (None: the latest); return the apps of that state."""
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    target = [to] if to else executor.loader.graph.leaf_nodes("calls")
    executor.migrate(target)
    executor.loader.build_graph()
    return executor.loader.project_state(target).apps


@pytest.mark.django_db(transaction=True)
def test_the_migration_carries_the_previous_secret_over_and_back(admin_role_user):
    """An endpoint rotated before 0043 keeps its previous secret signing until its end; one never rotated has none.
    Back before 0043, the newest previous secret is the previous one; the audit trail records neither move, and
    records a rotation on either side without a secret."""
    old_apps = _migrate(BEFORE)
    Endpoint = old_apps.get_model("calls", "WebhookEndpoint")
    ends = timezone.now().replace(microsecond=0) + timedelta(hours=5)
    old_secret, new_secret = signing.new_secret(), signing.new_secret()
    rotated = Endpoint.objects.create(
        url=URL, event_types=["*"], secret=new_secret, previous_secret=old_secret, previous_secret_until=ends
    )
    never = Endpoint.objects.create(url=URL, event_types=["*"], secret=signing.new_secret())
    audited = AuditEntry.objects.count()

    _migrate()

    hook = WebhookEndpoint.objects.get(pk=rotated.pk)
    assert hook.previous_secrets == [{"secret": old_secret, "until": ends.isoformat()}]
    assert hook.signing_secrets(ends - timedelta(seconds=1)) == [new_secret, old_secret]
    assert hook.signing_secrets(ends) == [new_secret]
    assert WebhookEndpoint.objects.get(pk=never.pk).previous_secrets == []
    assert AuditEntry.objects.count() == audited

    endpoints.rotate(hook, by="test", now=ends - timedelta(hours=1))  # the previous ones: new_secret, old_secret
    newest = hook.signing_until(ends - timedelta(hours=1))[0]
    if connection.vendor == "postgresql":
        entry = AuditEntry.objects.filter(kind="webhook.update", object_id=str(hook.pk)).get()
        assert entry.after == {"secret": "(secret, changed)", "previous_secrets": "(secret, changed)"}
    audited = AuditEntry.objects.count()

    old_apps = _migrate(BEFORE)

    back = old_apps.get_model("calls", "WebhookEndpoint").objects.get(pk=rotated.pk)
    assert (back.secret, back.previous_secret, back.previous_secret_until) == (hook.secret, new_secret, newest)
    assert old_apps.get_model("calls", "WebhookEndpoint").objects.get(pk=never.pk).previous_secret == ""
    assert AuditEntry.objects.count() == audited
    if connection.vendor == "postgresql":  # 0027's trigger is back, masking previous_secret
        back.previous_secret = signing.new_secret()
        back.save(update_fields=["previous_secret"])
        entry = AuditEntry.objects.latest("id")
        assert entry.before == {"previous_secret": "(secret)"}
        assert entry.after == {"previous_secret": "(secret, changed)"}

    _migrate()
    assert WebhookEndpoint.objects.get(pk=rotated.pk).previous_secrets == [
        {"secret": back.previous_secret, "until": newest.isoformat()}
    ]
