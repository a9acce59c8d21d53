"""VCC's events on the integration health page, subscribing them, pruning them, and faults in applying them."""

from __future__ import annotations

import base64
from datetime import timedelta
from io import StringIO

import pytest
from django.core import checks
from django.utils import timezone

from calls import tasks
from calls.calling import events as applying
from calls.models import Call, CallEvent, VccEvent
from tests import _vcc_events
from tests._jobs import queued
from tests._vcc_events import ANSWERED, KEY, deliver, event, foreign, stored

pytestmark = pytest.mark.django_db

secrets, sim = _vcc_events.secrets, _vcc_events.sim  # fixtures (secrets: autouse)


# --- On the integration health page --------------------------------------------------------------------------------


def test_the_health_page_shows_events_flowing_and_refusals(admin_client):
    deliver(event(interactionId="x"))
    deliver(event(), key=b"w" * 32)  # refused
    applying.process_pending()
    page = admin_client.get("/health/").content.decode()
    assert "<span data-events-received>1</span> received" in page
    assert "<span data-events-refused>1</span> delivery" in page
    assert "calls that had events are followed by them" in page
    assert "1 delivery(ies) of VCC events refused in the last hour." in page


def test_when_events_stop_while_calls_are_placed_the_health_page_lists_it_as_a_problem(admin_client, agent_user):
    """VCC dropped the subscription: the page said only "Flowing: no", as on any quiet minute."""
    now = timezone.now()
    VccEvent.objects.create(
        event_id="last", type="channel.disconnected.v1", source="s", received_at=now - timedelta(minutes=10),
        processed_at=now - timedelta(minutes=10), result="applied",
    )  # fmt: skip
    says = "VCC&#x27;s events have stopped: the last came"
    assert says not in admin_client.get("/health/").content.decode()  # quiet: nobody called since

    Call.objects.create(
        created_by=agent_user, from_agent=agent_user.agent, to_number="+447400123456", vcc_call_id="c-1",
        state=Call.State.LIVE, requested_at=now - timedelta(minutes=3),
    )  # fmt: skip
    page = admin_client.get("/health/").content.decode()

    assert says in page and "1 call(s) placed since had none" in page and "vcc_webhooks list" in page
    VccEvent.objects.create(event_id="again", type="channel.alerted.v1", source="s", received_at=now)
    assert says not in admin_client.get("/health/").content.decode()


def test_an_admin_subscribes_vccs_events_with_one_button(admin_client, settings, monkeypatch):
    from calls.vcc import webhooks

    settings.SITE_URL, settings.VCC_SYNC_ENABLED = "https://crm.example.com", True
    settings.VCC_WEBHOOK_SECRETS = [base64.b64encode(KEY).decode()]
    made = []

    def subscribe(self, **kwargs):
        made.append(kwargs)
        return {"id": "sub-1"}

    monkeypatch.setattr(webhooks.WebhooksClient, "subscribe", subscribe)
    monkeypatch.setattr(webhooks.WebhooksClient, "subscriptions", lambda self: [{"id": "s", "url": "https://x/"}])
    page = admin_client.get("/health/").content.decode()
    assert "Subscribe VCC's events to https://crm.example.com/vcc/events/" in page

    response = admin_client.post("/health/vcc-events/subscribe/", follow=True)

    assert made == [
        {"name": "vccweb", "url": "https://crm.example.com/vcc/events/", "secret": settings.VCC_WEBHOOK_SECRETS[0]}
    ]  # fmt: skip
    assert (
        "Subscribed (sub-1): VCC delivers its events to https://crm.example.com/vcc/events/"
        in response.content.decode()
    )


def test_without_site_url_the_page_says_what_to_set(admin_client, settings):
    settings.SITE_URL = ""
    page = admin_client.get("/health/").content.decode()
    assert "To subscribe with one button, set" in page and "SITE_URL" in page


def test_applied_events_are_pruned_after_two_days_and_waiting_ones_kept(monkeypatch):
    old = timezone.now() - tasks.KEEP_EVENTS - timedelta(hours=1)
    for i, processed in enumerate([old, None, timezone.now()]):
        VccEvent.objects.create(event_id=f"e{i}", type="t", source="s", received_at=old, processed_at=processed)
    VccEvent.objects.create(
        event_id="new", type="t", source="s", received_at=timezone.now(), processed_at=timezone.now()
    )
    monkeypatch.setattr(tasks, "PRUNE_BATCH", 1)  # batch after batch

    assert tasks.prune_vcc_events.func(timestamp=0) == 2

    assert sorted(VccEvent.objects.values_list("event_id", flat=True)) == ["e1", "new"]


def test_an_event_that_cannot_be_applied_is_marked_failed_and_the_others_go_on(sim, placed, monkeypatch):
    start = timezone.now() - timedelta(minutes=1)
    bad = stored("channel.alerted.v1", placed, at=start, party="agent")
    stored("channel.connected.v1", placed, at=start + timedelta(seconds=5), party="external")
    real = applying._apply_to_live

    def broken_once(call, name, data, **kw):
        if name == "channel.alerted":
            raise ValueError("a fault in vccweb")
        return real(call, name, data, **kw)

    monkeypatch.setattr(applying, "_apply_to_live", broken_once)

    done = applying.process_pending()

    assert (done.failed, done.applied) == (1, 1)
    bad.refresh_from_db()
    assert bad.processed_at and bad.result == "failed: ValueError: a fault in vccweb"
    placed.refresh_from_db()
    assert placed.connected_at is not None


def test_a_fault_after_changing_the_call_leaves_the_batchs_next_event_the_call_as_stored(sim, placed, monkeypatch):
    """The batch reads its calls once; an event whose changes rolled back must not leave them in the call the next
    event of the same call is applied to."""
    start = timezone.now() - timedelta(minutes=1)
    bad = stored("channel.alerted.v1", placed, at=start, party="agent")
    good = stored("channel.connected.v1", placed, at=start + timedelta(seconds=5), party="external")
    real = applying._apply_to_live

    def ends_it_then_fails(call, name, data, **kw):
        if name == "channel.alerted":
            call.state, call.ended_at = Call.State.ENDED, start  # in memory only: the savepoint rolls back
            raise ValueError("a fault in vccweb")
        return real(call, name, data, **kw)

    monkeypatch.setattr(applying, "_apply_to_live", ends_it_then_fails)

    done = applying.process_pending()

    assert (done.failed, done.applied, done.late) == (1, 1, 0)
    good.refresh_from_db()
    assert good.result == f"applied to call {placed.pk}"
    placed.refresh_from_db()
    assert placed.state == Call.State.LIVE and placed.connected_at == start + timedelta(seconds=5)
    bad.refresh_from_db()
    assert bad.result == "failed: ValueError: a fault in vccweb"


@pytest.mark.parametrize("calls", [2, 6])
def test_a_batch_reads_its_calls_and_writes_its_events_and_history_in_one_statement_each(agent_user, contact, calls):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    start = timezone.now() - timedelta(minutes=1)
    live = [
        Call.objects.create(
            created_by=agent_user,
            from_agent=agent_user.agent,
            to_number="+447400123456",
            contact=contact,
            vcc_call_id=f"guid-{i}",
            state=Call.State.LIVE,
            requested_at=start,
        )
        for i in range(calls)
    ]
    for call in live:
        stored("channel.alerted.v1", call, at=start + timedelta(seconds=1), party="external")
        stored("channel.connected.v1", call, at=start + timedelta(seconds=2), party="external")
        stored("channel.disconnected.v1", call, at=start + timedelta(seconds=9), party="external", result=ANSWERED)

    with CaptureQueriesContext(connection) as queries:
        done = applying.process_pending()

    assert done.applied == 3 * calls
    statements = [q["sql"] for q in queries.captured_queries]
    assert sum(sql.startswith('SELECT "calls_call".') for sql in statements) == 1
    assert sum(sql.startswith('INSERT INTO "calls_callevent"') for sql in statements) == 1
    assert sum(sql.startswith('UPDATE "calls_vccevent"') for sql in statements) == 1
    # Each event: its savepoint and release, and one UPDATE of its call.
    assert len(statements) <= 10 + 3 * 3 * calls
    assert Call.objects.filter(state=Call.State.ENDED, outcome=Call.Outcome.ANSWERED).count() == calls
    assert CallEvent.objects.filter(detail__endswith="(webhook)").count() == 3 * calls


def test_one_job_applies_events_at_a_time_and_a_process_queues_it_at_most_once_a_second(jobs):
    assert tasks.process_vcc_events.lock == "process_vcc_events"
    for _ in range(3):
        deliver(event(interactionId="x"))
    assert len(queued(jobs)) == 1


def test_an_inbound_call_is_logged_at_once_while_another_agent_waits_for_vcc(agent_user, contact, make_user):
    """Only a click of the same agent (or a group's) can be the call an unknown id names."""
    from calls.models import Agent

    other = Agent.objects.create(display_id="1002", name="Priya Shah")
    Call.objects.create(created_by=agent_user, from_agent=other, to_number="+447400123999")  # asking VCC
    number = contact.phones.first().number
    foreign("channel.alerted", "in-2", agent=agent_user.agent.display_id, number=number, direction="Inbound")
    assert applying.process_pending().applied == 1
    assert Call.objects.get(vcc_call_id="in-2").origin == Call.Origin.INBOUND


def test_a_second_subscription_to_the_same_url_is_not_made(admin_client, settings, monkeypatch):
    from calls.vcc import webhooks

    settings.SITE_URL, settings.VCC_SYNC_ENABLED = "https://crm.example.com", True
    settings.VCC_WEBHOOK_SECRETS = [base64.b64encode(KEY).decode()]
    listed = [{"id": "sub-1", "url": "https://crm.example.com/vcc/events/"}]
    monkeypatch.setattr(webhooks.WebhooksClient, "subscriptions", lambda self: listed)
    monkeypatch.setattr(webhooks.WebhooksClient, "subscribe", lambda self, **kw: pytest.fail("subscribed twice"))

    response = admin_client.post("/health/vcc-events/subscribe/", follow=True)

    assert "Already subscribed (sub-1)" in response.content.decode()


def test_a_subscription_vcc_has_disabled_is_not_taken_for_one_that_delivers(admin_client, settings, monkeypatch):
    """A subscription to vccweb's URL that VCC lists disabled delivers nothing: the button said "Already subscribed"
    and events stayed stopped."""
    from calls.vcc import webhooks

    settings.SITE_URL, settings.VCC_SYNC_ENABLED = "https://crm.example.com", True
    settings.VCC_WEBHOOK_SECRETS = [base64.b64encode(KEY).decode()]
    listed = [{"id": "sub-1", "url": "https://crm.example.com/vcc/events/", "enabled": False}]
    monkeypatch.setattr(webhooks.WebhooksClient, "subscriptions", lambda self: listed)
    monkeypatch.setattr(webhooks.WebhooksClient, "subscribe", lambda self, **kw: {"id": "sub-2", **kw})

    page = admin_client.post("/health/vcc-events/subscribe/", follow=True).content.decode()

    assert "Subscribed (sub-2)" in page and "Already subscribed" not in page
    assert "VCC also had sub-1 to this URL, disabled" in page and "vcc_webhooks unsubscribe" in page
    out = StringIO()
    from django.core.management import call_command

    call_command("vcc_webhooks", "subscribe", stdout=out)
    assert "Subscribed sub-2" in out.getvalue() and "VCC also had sub-1" in out.getvalue()


@pytest.mark.parametrize(
    ("url", "allow_http", "says"),
    [
        ("crm.example.com/vcc/events/", False, "must be absolute"),
        ("http://crm.example.com/vcc/events/", False, "only to https"),
    ],
)
def test_vcc_delivers_only_to_an_absolute_https_url(url, allow_http, says):
    from calls.vcc.webhooks import check_url

    with pytest.raises(ValueError, match=says):
        check_url(url, allow_http=allow_http)
    assert check_url("http://127.0.0.1:8000/vcc/events/", allow_http=False)  # a simulator on this machine


def test_a_hang_up_that_does_not_say_how_asks_vcc_once(sim, placed):
    from asgiref.sync import async_to_sync

    from calls import calling

    stored("channel.connected.v1", placed, at=timezone.now() - timedelta(seconds=30), party="external")
    stored("channel.disconnected.v1", placed, at=timezone.now(), party="external")  # no result in it
    applying.process_pending()
    placed.refresh_from_db()
    assert placed.state == Call.State.LIVE and placed.last_event_at is None  # not ended "unknown"

    sim.clock.advance(120)  # VCC knows how it ended
    # Asked at once even while the worker is behind: an event about something else waits, received just before.
    VccEvent.objects.create(
        event_id="behind", type="t", source="s", data={}, received_at=timezone.now() - timedelta(seconds=30)
    )
    assert async_to_sync(calling.follow_due)(clock=timezone.now).asked == 1
    placed.refresh_from_db()
    assert placed.state == Call.State.ENDED and placed.outcome == Call.Outcome.ANSWERED


def test_the_health_page_shows_the_vcc_request_budget_and_429s(admin_client, settings):
    from django.core.cache import cache

    from calls.vcc import budget

    budget.Budget(cache).limited(None)  # VCC answered 429, without Retry-After
    page = admin_client.get("/health/").content.decode()
    assert "VCC request budget" in page and f"of <strong>{settings.VCC_REQUESTS_PER_MINUTE}</strong> requests" in page
    assert "429s from VCC in the last hour: <span data-budget-429>1</span>" in page
    assert "holding back" in page
    assert "VCC answered 429 (too many requests) 1 time(s) in the last hour." in page


# --- A webhook secret shorter than 32 bytes -------------------------------------------------------------------------

SAMPLE_SECRET = "YqABRE18Vk2zfiVVMV7uag=="  # the secret of Vonage's sample receiver: 16 bytes


def test_a_secret_shorter_than_32_bytes_is_a_warning_at_start_not_a_refusal(settings):
    from django.core.management import call_command

    from calls.checks import webhook_secrets_check

    settings.VCC_WEBHOOK_SECRETS = [base64.b64encode(KEY).decode(), SAMPLE_SECRET]
    settings.VCC_WEBHOOK_KEYS = [KEY, base64.b64decode(SAMPLE_SECRET)]

    (warning,) = webhook_secrets_check()

    assert warning.id == "calls.W002" and warning.level == checks.WARNING
    assert "Secret 2 of VCC_WEBHOOK_SECRETS decodes to 16 bytes" in warning.msg
    out, err = StringIO(), StringIO()
    call_command("check", stdout=out, stderr=err)  # what `make serve`, runserver and the worker show as they start
    assert "calls.W002" in err.getvalue()
    settings.VCC_WEBHOOK_KEYS = [KEY]
    assert webhook_secrets_check() == []


def test_events_signed_with_a_short_secret_are_accepted(settings):
    settings.VCC_WEBHOOK_KEYS = [base64.b64decode(SAMPLE_SECRET)]
    assert deliver(event(), key=base64.b64decode(SAMPLE_SECRET)).status_code == 200


def test_vccweb_makes_no_subscription_with_a_secret_shorter_than_32_bytes(admin_client, settings, monkeypatch):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from calls.vcc import webhooks

    settings.SITE_URL, settings.VCC_SYNC_ENABLED = "https://crm.example.com", True
    settings.VCC_WEBHOOK_SECRETS = [SAMPLE_SECRET]
    monkeypatch.setattr(webhooks.WebhooksClient, "subscriptions", lambda self: [])
    monkeypatch.setattr(webhooks.WebhooksClient, "_send", lambda self, *a, **kw: pytest.fail("asked VCC"))

    with pytest.raises(CommandError, match="at least 32 bytes; this one decodes to 16.*VCC_WEBHOOK_SECRETS.*secrets"):
        call_command("vcc_webhooks", "subscribe", stdout=StringIO())
    response = admin_client.post("/health/vcc-events/subscribe/", follow=True)
    assert "at least 32 bytes; this one decodes to 16" in response.content.decode()

    # One that exists (made elsewhere with that secret) is left as it is.
    listed = [{"id": "sub-1", "url": "https://crm.example.com/vcc/events/"}]
    monkeypatch.setattr(webhooks.WebhooksClient, "subscriptions", lambda self: listed)
    out = StringIO()
    call_command("vcc_webhooks", "subscribe", stdout=out)
    assert "Already subscribed (sub-1)" in out.getvalue()


def test_a_batch_with_an_event_waiting_for_its_click_does_not_end_the_jobs_run(agent_user):
    """In a storm some event always waits for its click's answer; the job went on only after a batch with none, so
    it applied one batch a second, whatever arrived."""
    import uuid

    Call.objects.create(created_by=agent_user, from_agent=agent_user.agent, to_number="+447400123456")  # asking VCC
    now = timezone.now()
    VccEvent.objects.create(
        event_id="waits", type="channel.alerted.v1", source="s", received_at=now - timedelta(seconds=1),
        data={"interactionId": "not-yet", "agentDisplayId": agent_user.agent.display_id},
    )  # fmt: skip
    VccEvent.objects.bulk_create(
        VccEvent(event_id=str(uuid.uuid4()), type="channel.alerted.v1", source="s", data={}, received_at=now)
        for _ in range(applying.BATCH)
    )

    tasks.process_vcc_events.func()

    assert list(VccEvent.objects.filter(processed_at__isnull=True).values_list("event_id", flat=True)) == ["waits"]
