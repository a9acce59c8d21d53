"""The outgoing webhooks' pages (calls/views/webhooks.py): admins add, edit, pause, resume, re-key and delete
endpoints, each change logged; each endpoint's delivery log, filtered, and its three resending buttons."""

from __future__ import annotations

import itertools
import logging
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from calls.models.webhooks import (
    MAX_PREVIOUS_SECRETS,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from calls.webhooks import safety, signing
from tests._jobs import queued, run_jobs

LOGGER = "calls.webhooks.endpoints"
NUMBERS = itertools.count(1)
ADDRESSES = {
    "hooks.example.com": ["93.184.215.14"],
    "other.example.com": ["93.184.215.15"],
    "sneaky.example": ["127.0.0.1"],
}


@pytest.fixture(autouse=True)
def resolver(monkeypatch, settings):
    settings.DEBUG = False
    settings.WEBHOOK_ALLOWED_HOSTS = []
    monkeypatch.setattr(safety, "resolve", lambda host, port: ADDRESSES[host])


@pytest.fixture
def endpoint(admin_role_user) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        url="https://hooks.example.com/in",
        description="Helpdesk",
        event_types=["call.*"],
        secret=signing.new_secret(),
        created_by=admin_role_user,
    )


def add(client: Client, **data: object):
    return client.post(
        "/integrations/webhooks/new/", {"url": "https://hooks.example.com/in", "event_types": ["call.*"], **data}
    )


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(admin_role_client, admin_role_user, caplog):
    with caplog.at_level(logging.INFO, logger=LOGGER):
        response = add(admin_role_client, description="Helpdesk", event_types=["call.*", "contact.created"])
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.url == "https://hooks.example.com/in"
    assert endpoint.event_types == ["call.*", "contact.created"]
    assert endpoint.enabled and endpoint.created_by == admin_role_user
    assert endpoint.secret.startswith("whsec_") and endpoint.secret in response.content.decode()
    assert "only time it is shown" in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert f"webhook endpoint #{endpoint.pk} hooks.example.com added by ada" in caplog.text
    assert endpoint.secret not in caplog.text
    listed = admin_role_client.get("/integrations/webhooks/").content.decode()
    assert "Helpdesk" in listed and endpoint.secret not in listed
    assert endpoint.secret not in admin_role_client.get(f"/integrations/webhooks/{endpoint.pk}/").content.decode()


@pytest.mark.parametrize(
    ("url", "events", "says"),
    [
        ("http://hooks.example.com/in", ["call.*"], "https://"),
        ("https://sneaky.example/in", ["call.*"], "127.0.0.1, a loopback address"),
        ("https://me:pw@hooks.example.com/in", ["call.*"], "user name"),
        ("https://hooks.example.com/in", [], "Tick at least one event"),
        ("https://hooks.example.com/in", ["calls.*"], "not an event type"),
    ],
)
def test_the_page_refuses_what_is_unsafe_or_unknown(admin_role_client, url, events, says):
    response = add(admin_role_client, url=url, event_types=events)
    assert response.status_code == 200
    assert says in response.content.decode()
    assert "The endpoint was not added" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_an_admin_edits_an_endpoint(admin_role_client, endpoint, caplog):
    data = {"url": "https://other.example.com/x", "description": "Helpdesk", "event_types": ["*"]}
    with caplog.at_level(logging.INFO, logger=LOGGER):
        response = admin_role_client.post(f"/integrations/webhooks/{endpoint.pk}/edit/", data)
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.url == "https://other.example.com/x" and endpoint.event_types == ["*"]
    assert "changed by ada: url, event_types" in caplog.text
    refused = admin_role_client.post(
        f"/integrations/webhooks/{endpoint.pk}/edit/", {**data, "url": "https://sneaky.example/"}
    )
    assert "loopback" in refused.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.url == "https://other.example.com/x"


def test_the_edit_form_keeps_a_pattern_the_page_does_not_offer(admin_role_client, endpoint):
    endpoint.event_types = ["call.*ed"]
    endpoint.save()
    page = admin_role_client.get(f"/integrations/webhooks/{endpoint.pk}/edit/").content.decode()
    assert 'value="call.*ed"' in page and "checked" in page


def test_pause_and_resume(admin_role_client, endpoint, caplog):
    with caplog.at_level(logging.INFO, logger=LOGGER):
        response = admin_role_client.post(f"/integrations/webhooks/{endpoint.pk}/pause/")
    assert response.status_code == 302 and response["Location"] == "/integrations/webhooks/"
    endpoint.refresh_from_db()
    assert not endpoint.enabled and endpoint.disabled_reason == "" and endpoint.disabled_at
    assert "paused by ada" in caplog.text
    listed = admin_role_client.get("/integrations/webhooks/").content.decode()
    assert "paused" in listed and "Resume" in listed

    endpoint.disabled_reason = "410 Gone from the receiver"  # as the engine disables one
    endpoint.failing_since = timezone.now()
    endpoint.retry_at, endpoint.failures = timezone.now() + timedelta(minutes=5), 6  # waiting for a probe
    endpoint.save()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        response = admin_role_client.post(f"/integrations/webhooks/{endpoint.pk}/resume/", {"next": "detail"})
    assert response["Location"] == f"/integrations/webhooks/{endpoint.pk}/"
    endpoint.refresh_from_db()
    assert endpoint.enabled and not endpoint.disabled_reason and not endpoint.failing_since
    assert endpoint.retry_at is None and endpoint.failures == 0  # its deliveries go at once, not at a probe's time
    assert "resumed by ada (it was disabled: 410 Gone from the receiver)" in caplog.text


def test_rotating_shows_the_new_secret_once_and_both_sign_for_a_day(admin_role_client, endpoint, caplog):
    old = endpoint.secret
    with caplog.at_level(logging.INFO, logger=LOGGER):
        response = admin_role_client.post(f"/integrations/webhooks/{endpoint.pk}/rotate/")
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.secret in response.content.decode()
    assert old not in response.content.decode()
    assert "with the new secret and the previous one, until" in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    now = timezone.now()
    assert endpoint.signing_secrets(now) == [endpoint.secret, old]
    assert endpoint.signing_secrets(now + timedelta(hours=25)) == [endpoint.secret]
    headers = signing.headers(endpoint, "msg_x", now, b"{}")
    Webhook(old).verify(b"{}", headers)
    Webhook(endpoint.secret).verify(b"{}", headers)
    assert "secret rotated by ada; the one it replaced signs too until" in caplog.text
    assert old not in caplog.text and endpoint.secret not in caplog.text


def test_the_add_form_sent_twice_adds_one_endpoint(admin_role_client):
    """A reload of the answer that shows the new secret sends the form again: nothing more is added."""
    page = admin_role_client.get("/integrations/webhooks/new/").content.decode()
    once = re.search(r'name="once" value="([0-9a-f-]+)"', page)[1]
    data = {"url": "https://hooks.example.com/a", "event_types": ["call.*"], "description": "", "once": once}
    before = WebhookEndpoint.objects.count()

    first = admin_role_client.post("/integrations/webhooks/new/", data)
    again = admin_role_client.post("/integrations/webhooks/new/", data, follow=True)

    assert WebhookEndpoint.objects.count() == before + 1
    assert "whsec_" in first.content.decode() and "whsec_" not in again.content.decode()
    assert "added already" in again.content.decode()


def test_rotating_again_within_a_day_keeps_every_replaced_secret_signing_for_its_own_day(
    admin_role_client, endpoint, caplog
):
    """A second rotation is one like any other: the secret it replaces, shown at the first and maybe installed
    already, keeps signing for 24 hours, and so does the one from before the first, until its own end."""
    original = endpoint.secret
    admin_role_client.post(f"/integrations/webhooks/{endpoint.pk}/rotate/")
    endpoint.refresh_from_db()
    first = endpoint.secret
    page = admin_role_client.get(f"/integrations/webhooks/{endpoint.pk}/").content.decode()
    assert "The previous one keeps signing until its own end." in page

    with caplog.at_level(logging.INFO, logger=LOGGER):
        response = admin_role_client.post(f"/integrations/webhooks/{endpoint.pk}/rotate/")

    endpoint.refresh_from_db()
    now = timezone.now()
    assert endpoint.secret not in (original, first) and endpoint.secret in response.content.decode()
    first_ends, original_ends = endpoint.signing_until(now)
    assert now + timedelta(hours=23) < original_ends < first_ends <= now + timedelta(hours=24)
    assert endpoint.signing_secrets(now) == [endpoint.secret, first, original]
    headers = signing.headers(endpoint, "msg_y", now, b"{}")
    for secret in (endpoint.secret, first, original):
        Webhook(secret).verify(b"{}", headers)
    # The page shows each one's end, never a secret; the log says both ends.
    page = response.content.decode()
    assert "with the new secret and 2 previous ones, each until its own end" in page
    assert page.count("<time datetime=", page.index("2 previous ones"), page.index("<dt>Added")) == 2
    assert first not in page and original not in page
    assert "the one it replaced signs too until" in caplog.text and ", older ones until " in caplog.text
    assert not {original, first, endpoint.secret} & set(caplog.text.split())
    # The original stops at its own end, a day after the first rotation; the first at its own, a day after this one.
    assert endpoint.signing_secrets(original_ends) == [endpoint.secret, first]
    assert endpoint.signing_secrets(first_ends) == [endpoint.secret]


def test_the_page_warns_before_a_rotation_stops_the_oldest_previous_secret(admin_role_client, endpoint):
    """Five previous secrets sign at most: the page says so before the rotation that stops the oldest."""
    warning = "At most 5 previous secrets sign beside the current one: rotating now stops the oldest at once"
    original = endpoint.secret
    for _ in range(MAX_PREVIOUS_SECRETS - 1):
        page = admin_role_client.post(f"/integrations/webhooks/{endpoint.pk}/rotate/").content.decode()
        assert warning not in page
    page = admin_role_client.post(f"/integrations/webhooks/{endpoint.pk}/rotate/").content.decode()
    endpoint.refresh_from_db()
    now = timezone.now()
    (oldest_ends,) = endpoint.stopped_by_rotation(now)
    oldest_ends = timezone.localtime(oldest_ends)  # as the page shows it
    assert endpoint.signing_secrets(now)[-1] == original and len(endpoint.signing_secrets(now)) == 6
    assert warning in page and f'(it would sign until <time datetime="{oldest_ends:%Y-%m-%dT%H:%M}' in page
    assert "with the new secret and 5 previous ones" in page

    page = admin_role_client.post(f"/integrations/webhooks/{endpoint.pk}/rotate/").content.decode()

    endpoint.refresh_from_db()
    assert original not in endpoint.signing_secrets(timezone.now()) and len(endpoint.signing_secrets(now)) == 6
    assert warning in page  # the next one would stop the next oldest


def test_a_reload_of_the_rotation_answer_rotates_nothing(admin_role_client, endpoint):
    """A reload of the answer that shows the new secret sends the form again: the secret shown stays the one."""
    original = endpoint.secret
    page = admin_role_client.get(f"/integrations/webhooks/{endpoint.pk}/").content.decode()
    once = re.search(r'name="once" value="([0-9a-f-]+)"', page)[1]

    first = admin_role_client.post(f"/integrations/webhooks/{endpoint.pk}/rotate/", {"once": once})
    endpoint.refresh_from_db()
    shown = endpoint.secret
    again = admin_role_client.post(f"/integrations/webhooks/{endpoint.pk}/rotate/", {"once": once}, follow=True)

    endpoint.refresh_from_db()
    assert shown in first.content.decode() and shown not in again.content.decode()
    assert "rotated already" in again.content.decode()
    assert endpoint.signing_secrets(timezone.now()) == [shown, original]
    Webhook(shown).verify(b"{}", signing.headers(endpoint, "msg_z", timezone.now(), b"{}"))


def test_messages_and_titles_name_an_endpoint_without_a_description_by_its_host_not_its_url(admin_role_client):
    """A receiver's URL often holds its token; a message waits in a cookie until shown, a title stays in history."""
    hook = WebhookEndpoint.objects.create(
        url="https://hooks.example.com/services/T0/SECRETPATH?key=SECRETKEY", event_types=["*"], secret="whsec_x"
    )
    base = f"/integrations/webhooks/{hook.pk}"

    said = [
        str(message)
        for path in ("pause", "pause", "resume", "delete")
        for message in admin_role_client.post(f"{base}/{path}/", follow=True).context["messages"]
    ]

    assert said == [
        f"Paused hooks.example.com (#{hook.pk}): nothing is sent to it until you resume it.",
        f"hooks.example.com (#{hook.pk}) was already paused; nothing changed.",
        f"Resumed hooks.example.com (#{hook.pk}): new events are sent to it (Replay since … sends what it missed).",
        f"Deleted hooks.example.com (#{hook.pk}) and its delivery log.",
    ]


def test_the_endpoints_page_titles_it_by_its_host_and_shows_its_url_below(admin_role_client):
    hook = WebhookEndpoint.objects.create(
        url="https://hooks.example.com/services/T0/SECRETPATH", event_types=["*"], secret="whsec_x"
    )
    page = admin_role_client.get(f"/integrations/webhooks/{hook.pk}/").content.decode()
    assert re.search(rf"<title>hooks\.example\.com \(#{hook.pk}\): webhooks", page)
    assert f"<h1>hooks.example.com (#{hook.pk})</h1>" in page
    assert '<code class="url">https://hooks.example.com/services/T0/SECRETPATH</code>' in page  # asked for here


def test_delete_takes_the_delivery_log_with_it(admin_role_client, endpoint, caplog):
    other = WebhookEndpoint.objects.create(url="https://other.example.com/", event_types=["*"], secret="whsec_x")
    for each in (endpoint, other):
        WebhookAttempt.objects.create(delivery=delivery(each), status_code=200)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        response = admin_role_client.post(f"/integrations/webhooks/{endpoint.pk}/delete/")
    assert response.status_code == 302
    assert list(WebhookEndpoint.objects.all()) == [other]
    assert list(WebhookDelivery.objects.values_list("endpoint", flat=True)) == [other.pk]
    assert list(WebhookAttempt.objects.values_list("delivery__endpoint", flat=True)) == [other.pk]
    assert WebhookEvent.objects.count() == 2  # the events stay: other endpoints may still be sent them
    assert f"webhook endpoint #{endpoint.pk} hooks.example.com deleted by ada" in caplog.text


def delivery(endpoint, type="call.ended", subject="call:1", status=WebhookDelivery.Status.DELIVERED):
    event = WebhookEvent.objects.create(
        msg_id=f"msg_{next(NUMBERS):04d}_{type}", type=type, subject=subject, payload={"type": type, "data": {}}
    )
    return WebhookDelivery.objects.create(event=event, endpoint=endpoint, subject=subject, status=status, attempts=1)


def test_the_delivery_log_shows_attempts_and_filters(admin_role_client, endpoint):
    ok = delivery(endpoint, "call.ended", "call:1")
    WebhookAttempt.objects.create(delivery=ok, status_code=200, duration_ms=42, response_snippet="thanks <b>")
    bad = delivery(endpoint, "contact.created", "contact:7", WebhookDelivery.Status.FAILED)
    WebhookAttempt.objects.create(delivery=bad, status_code=None, duration_ms=10000, error="timed out after 10 s")
    WebhookAttempt.objects.create(delivery=bad, status_code=500, duration_ms=12, response_snippet="boom")
    page = admin_role_client.get(f"/integrations/webhooks/{endpoint.pk}/").content.decode()
    assert "42 ms" in page and "thanks &lt;b&gt;" in page
    assert "timed out after 10 s" in page and "Earlier attempts (1)" in page
    assert ok.event.msg_id in page and bad.event.msg_id in page

    def shown(query: str) -> set[str]:
        page = admin_role_client.get(f"/integrations/webhooks/{endpoint.pk}/?{query}").content.decode()
        return {d.event.msg_id for d in (ok, bad) if d.event.msg_id in page}

    assert shown("status=failed") == {bad.event.msg_id}
    assert shown("type=call.ended") == {ok.event.msg_id}
    assert shown("subject=contact:7") == {bad.event.msg_id}
    assert shown("subject=call:99") == set()
    assert shown("status=nonsense") == {ok.event.msg_id, bad.event.msg_id}  # an unknown value filters nothing


def test_the_log_pages_by_fifty(admin_role_client, endpoint):
    made = [delivery(endpoint, subject=f"call:{i}") for i in range(52)]
    page = admin_role_client.get(f"/integrations/webhooks/{endpoint.pk}/")
    assert len(page.context["deliveries"]) == 50 and page.context["older"]
    older = admin_role_client.get(f"/integrations/webhooks/{endpoint.pk}/?{page.context['older']}")
    assert [d.pk for d in older.context["deliveries"]] == [made[1].pk, made[0].pk]


def test_send_again_replay_and_test_event(admin_role_client, endpoint, jobs):
    given_up = delivery(endpoint, status=WebhookDelivery.Status.FAILED)
    response = admin_role_client.post(f"/integrations/webhooks/{endpoint.pk}/deliveries/{given_up.pk}/send-again/")
    assert response.status_code == 302
    given_up.refresh_from_db()
    assert given_up.status == WebhookDelivery.Status.PENDING

    response = admin_role_client.post(f"/integrations/webhooks/{endpoint.pk}/test/")
    assert response.status_code == 302
    assert WebhookDelivery.objects.filter(endpoint=endpoint, event__type="webhook.test").count() == 1

    since = timezone.localtime() - timedelta(hours=1)
    before = WebhookDelivery.objects.filter(endpoint=endpoint).count()
    response = admin_role_client.post(
        f"/integrations/webhooks/{endpoint.pk}/replay/", {"since": f"{since:%Y-%m-%dT%H:%M}"}
    )
    assert response.status_code == 302
    # The replay is a job (a day's events may be millions), not work done in the request.
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == before
    [job] = queued(jobs, "replay_webhooks")
    assert job["args"]["endpoint_id"] == endpoint.pk
    assert "will be sent again" in admin_role_client.get(response.url).content.decode()
    run_jobs(jobs, "replay_webhooks")
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == before + 1  # the call.ended event again

    future = timezone.localtime() + timedelta(hours=1)
    refused = admin_role_client.post(
        f"/integrations/webhooks/{endpoint.pk}/replay/", {"since": f"{future:%Y-%m-%dT%H:%M}"}
    )
    assert refused.status_code == 400 and "moment in the past" in refused.content.decode()


def test_another_endpoints_delivery_is_not_found(admin_role_client, endpoint):
    other = WebhookEndpoint.objects.create(url="https://other.example.com/", event_types=["*"], secret="whsec_x")
    theirs = delivery(other)
    response = admin_role_client.post(f"/integrations/webhooks/{endpoint.pk}/deliveries/{theirs.pk}/send-again/")
    assert response.status_code == 404


@pytest.mark.parametrize("role", ["agent_user", "supervisor_user"])
def test_only_admins_get_in(request, role, endpoint):
    client = Client()
    client.force_login(request.getfixturevalue(role))
    for path in ("/integrations/webhooks/", "/integrations/webhooks/new/", f"/integrations/webhooks/{endpoint.pk}/"):
        assert client.get(path).status_code == 403
    assert client.post(f"/integrations/webhooks/{endpoint.pk}/delete/").status_code == 403
    assert "/integrations/webhooks/" not in client.get("/contacts/").content.decode()  # no link in the navigation
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_the_navigation_links_admins_to_the_page(admin_role_client):
    assert 'href="/integrations/webhooks/"' in admin_role_client.get("/contacts/").content.decode()


def test_the_health_page_says_which_endpoints_are_disabled_or_failing_and_why(
    admin_role_client, supervisor_user, endpoint
):
    assert "All 1 endpoint on and answering" in admin_role_client.get("/health/").content.decode()
    endpoint.enabled = False
    endpoint.disabled_reason = "failed for 24 hours: 503 Service Unavailable"
    endpoint.disabled_at = timezone.now()
    endpoint.save()
    failing = WebhookEndpoint.objects.create(
        url="https://other.example.com/", description="Warehouse", event_types=["*"], secret="whsec_x",
        failing_since=timezone.now() - timedelta(hours=3),
    )  # fmt: skip
    attempt_of = delivery(failing, status=WebhookDelivery.Status.PENDING)
    WebhookAttempt.objects.create(delivery=attempt_of, duration_ms=3, error="connection refused")
    WebhookEndpoint.objects.create(url="https://other.example.com/p", description="Paused one", event_types=["*"],
                                   secret="whsec_x", enabled=False)  # fmt: skip
    page = admin_role_client.get("/health/").content.decode()
    assert "Webhook endpoint Helpdesk was disabled: failed for 24 hours: 503 Service Unavailable" in page
    assert "Webhook endpoint Warehouse is failing: connection refused" in page
    assert "Paused one" in page and "Webhook endpoint Paused one" not in page  # shown, not a problem
    assert f'href="/integrations/webhooks/{endpoint.pk}/"' in page
    supervisor = Client()
    supervisor.force_login(supervisor_user)
    seen = supervisor.get("/health/").content.decode()
    assert "Webhook endpoint Helpdesk was disabled" in seen and "/integrations/webhooks/" not in seen
    # An endpoint without a description is named by its host: its path or query may hold the receiver's token.
    WebhookEndpoint.objects.filter(description="Warehouse").update(
        description="", url="https://hooks.slack.example/services/T0/B0/s3cr3t?token=abc"
    )
    seen = supervisor.get("/health/").content.decode()
    assert "hooks.slack.example (#" in seen and "s3cr3t" not in seen and "token=abc" not in seen
