"""Retention (calls/privacy/retention.py): the policy's page, the job on an injected clock (notes gone, numbers
masked, reports' figures equal before and after), and what the health page says of it."""

from __future__ import annotations

import threading
from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from calls import reports
from calls.models import Agent, AuditEntry, Call, CallEvent, CallRollup, RetentionPolicy, RetentionRun
from calls.privacy import audit, mask_number
from calls.privacy import retention as retention_module
from calls.privacy.retention import apply_retention
from tests._calls import make_call

pytestmark = pytest.mark.django_db

URL = "/privacy/retention/"
NOW = timezone.make_aware(timezone.datetime(2026, 11, 20, 12, 0))


def figures(now):
    """Every figure a year's report shows (everyone's, and one agent's), as plain data."""

    def plain(report: reports.Report) -> dict:
        return {
            "total": report.total,
            "facets": {facet: dict(keys) for facet, keys in report.facets.items()},
            "per_day": dict(report.per_day),
            "per_agent": dict(report.per_agent),
            "per_agent_day": dict(report.per_agent_day),
        }

    first, last = (now - timedelta(days=400)).date(), now.date()
    agent = Agent.objects.order_by("pk").first()
    return plain(reports.build_report(first=first, last=last, now=now)), plain(
        reports.build_report(first=first, last=last, agent=agent, now=now)
    )


def failing_at_call(n: int, real, message: str):
    """real, except that its n-th call raises RuntimeError(message): a window's work failing half-way."""
    calls = 0

    def wrapper(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == n:
            raise RuntimeError(message)
        return real(*args, **kwargs)

    return wrapper


def policy(**days) -> RetentionPolicy:
    p = RetentionPolicy.current()
    for name, value in days.items():
        setattr(p, name, value)
    p.save()
    return p


@pytest.fixture
def year_of_calls(agent_user, other_agent_user):
    """Calls from 300 days ago to yesterday, each with notes, an override reason and a number, some failed with
    VCC's reason."""
    calls = []
    outcomes = ["answered", "no_answer", "busy", "failed", "answered"]
    for n, days_ago in enumerate([300, 200, 120, 95, 91, 89, 60, 31, 29, 10, 1]):
        user = agent_user if n % 2 else other_agent_user
        call = make_call(
            user=user,
            agent=user.agent,
            outcome=outcomes[n % len(outcomes)],
            at=NOW - timedelta(days=days_ago, hours=n),
            to_number=f"+4420794601{n:02d}",
            notes=f"Spoke to Grace about invoice {n}",
            dnc_override_reason="She asked us to call back" if n % 3 == 0 else "",
            hours_override_reason="She asked for a late call" if n % 4 == 0 else "",
            disposition_code="Sale" if n % 2 else "Callback",
            request_body={"from": {"agentId": "1001"}, "to": {"telephoneNumber": f"+4420794601{n:02d}"}},
        )
        calls.append(call)
    reports.refresh_rollup(now=NOW)
    return calls


# --- Masking ------------------------------------------------------------------------------------------------------


def test_a_masked_number_keeps_its_country_its_grouping_and_its_last_three_digits():
    assert mask_number("+442079460100") == "+44 20 •••• •100"  # a fixed line keeps its area code: a place
    assert mask_number("+447400123456") == "+44 •••• •••456"  # a mobile has none
    assert mask_number("+16502530000") == "+1 650-•••-•000"
    assert mask_number("+4930123456") == "+49 •• •••456"  # too short to keep Berlin's 30 as well
    assert mask_number("+44 20 •••• •100") == "+44 20 •••• •100"  # masked already: as it is
    assert mask_number("") == ""
    assert mask_number("12345") == "••345"  # not a number: only its last three digits stay


# --- The job ------------------------------------------------------------------------------------------------------


def test_retention_deletes_old_notes_masks_old_numbers_and_leaves_reports_equal(year_of_calls):
    before = figures(NOW)
    policy(notes_days=30, mask_days=90)

    run = apply_retention(now=NOW, batch=3)

    for call in year_of_calls:
        row = Call.objects.get(pk=call.pk)
        age = NOW - row.requested_at
        if age > timedelta(days=30):
            assert row.notes == "" and row.dnc_override_reason == "" and row.hours_override_reason == "", age
        else:
            assert row.notes == call.notes and row.dnc_override_reason == call.dnc_override_reason
            assert row.hours_override_reason == call.hours_override_reason
        if age > timedelta(days=90):
            assert row.to_number == mask_number(call.to_number) and "•" in row.to_number
            assert row.request_body["to"]["telephoneNumber"] == row.to_number
            assert row.request_body["from"] == {"agentId": "1001"}
        else:
            assert row.to_number == call.to_number and row.request_body == call.request_body
        # What reports count is untouched, and so is the stamp that makes the roll-up rebuild a day.
        assert (row.outcome, row.duration_seconds, row.disposition_code) == (
            call.outcome,
            call.duration_seconds,
            call.disposition_code,
        )
        assert row.changed_at == call.changed_at
    assert run.notes_cleared == 8 and run.numbers_masked == 5 and run.error == ""
    assert run.batches == 3  # 3 calls a window at most: the 8 calls older than the later cutoff (30 days)
    assert figures(NOW) == before
    assert reports.refresh_rollup(now=NOW) == [] and figures(NOW) == before


def test_a_later_run_reads_only_what_aged_since_and_a_blank_keeps_everything(year_of_calls):
    policy(notes_days=30, mask_days=None)
    apply_retention(now=NOW)
    p = RetentionPolicy.current()
    assert p.notes_done_before == NOW - timedelta(days=30) and p.masked_done_before is None
    assert not Call.objects.filter(to_number__contains="•").exists()  # blank: numbers kept

    again = apply_retention(now=NOW)
    assert again.notes_cleared == 0 and again.batches == 0  # nothing aged since: no window read

    # Two days on, the call made 29 days before NOW is due; the one of 10 days ago is not.
    later = apply_retention(now=NOW + timedelta(days=2))
    assert later.notes_cleared == 1
    assert Call.objects.exclude(notes="").count() == 2


def test_a_run_killed_half_way_starts_where_it_stopped(year_of_calls, monkeypatch):
    policy(mask_days=90)
    real = retention_module._apply
    monkeypatch.setattr(retention_module, "_apply", failing_at_call(3, real, "worker killed"))
    with pytest.raises(RuntimeError):
        apply_retention(now=NOW, batch=2)
    failed = RetentionRun.objects.get()
    assert failed.error == "RuntimeError: worker killed" and failed.numbers_masked == 4
    assert RetentionPolicy.current().masked_done_before is not None  # the two windows done are remembered

    monkeypatch.setattr(retention_module, "_apply", real)
    run = apply_retention(now=NOW, batch=2)
    assert run.numbers_masked == 1  # the fifth old call; the first four are not read again
    assert Call.objects.filter(to_number__contains="•").count() == 5


def test_a_window_shrinks_when_its_transaction_is_slow_and_grows_back_when_quick():
    from calls.privacy.retention import MIN_BATCH, WINDOW_SECONDS, next_size

    assert next_size(5000, WINDOW_SECONDS * 3, 5000) == 2500
    assert next_size(150, WINDOW_SECONDS * 3, 5000) == MIN_BATCH
    assert next_size(1000, WINDOW_SECONDS * 0.75, 5000) == 1000
    assert next_size(1000, 0.0, 5000) == 1501
    assert next_size(4000, 0.0, 5000) == 5000  # never past the batch
    assert next_size(3, WINDOW_SECONDS * 3, 3) == 3  # nor past the size it has


def test_audit_entries_are_handed_to_the_audit_trail_with_their_cutoff(year_of_calls, monkeypatch):
    asked = []
    monkeypatch.setattr(audit, "delete_audit_entries_before", lambda cutoff: asked.append(cutoff) or 7)
    policy(audit_days=365)
    run = apply_retention(now=NOW)
    assert asked == [NOW - timedelta(days=365)] and run.audit_deleted == 7
    assert "deleted 7 audit entries" in run.summary


def test_call_history_and_wrap_ups_keep_no_free_text_once_notes_are_due(agent_user):
    call = make_call(user=agent_user, agent=agent_user.agent, at=NOW - timedelta(days=40))
    call.record_wrap_up(code="Sale", notes="Grace wants the blue one", now=NOW - timedelta(days=40), confirmed=True)
    policy(notes_days=30)
    apply_retention(now=NOW)
    call.refresh_from_db()
    assert call.notes == "" and call.disposition_code == "Sale"
    assert "Grace" not in " ".join(CallEvent.objects.values_list("detail", flat=True))


def test_a_masked_number_is_masked_where_vccs_words_quote_it_too(agent_user):
    # VCC's refusal quotes the number verbatim (vccsim: "telephoneNumber '…' is not a valid number"); the history
    # and the reports' failure reasons keep those words.
    quoted = "telephoneNumber '+447400123456' is not a valid number"
    old = make_call(
        user=agent_user, agent=agent_user.agent, outcome="failed", at=NOW - timedelta(days=40),
        error_message=quoted, error_status=400, error_display=f"VCC did not accept this number: {quoted}",
    )  # fmt: skip
    CallEvent.objects.create(call=old, at=old.requested_at, kind="error", detail=f"HTTP 400: {quoted}")
    CallEvent.objects.create(call=old, at=old.requested_at, kind="progress", detail="VCC: ringing 07400 123456")
    recent = make_call(
        user=agent_user, agent=agent_user.agent, outcome="failed", at=NOW - timedelta(days=10),
        error_message=quoted, error_status=400, error_display=quoted,
    )  # fmt: skip
    reports.refresh_rollup(now=NOW)
    before = figures(NOW)
    policy(mask_days=30)

    apply_retention(now=NOW)

    masked = "telephoneNumber '+44 •••• •••456' is not a valid number"
    old.refresh_from_db()
    assert old.to_number == "+44 •••• •••456"
    assert (old.error_message, old.error_display) == (masked, f"VCC did not accept this number: {masked}")
    assert sorted(old.events.values_list("detail", flat=True)) == [
        f"HTTP 400: {masked}",
        "VCC: ringing +44 •••• •••456",
    ]
    recent.refresh_from_db()
    assert recent.error_message == quoted  # not due yet
    # The reports' failure reasons: the old call's masked, the same counts.
    keys = dict(CallRollup.objects.filter(facet="error", scope="everyone").values_list("day", "key"))
    assert keys == {
        timezone.localdate(old.requested_at): f"400|{masked}",
        timezone.localdate(recent.requested_at): f"400|{quoted}",
    }
    after = figures(NOW)
    assert {key: n.calls for key, n in before[0]["facets"]["error"].items()} == {f"400|{quoted}": 2}
    assert {key: n.calls for key, n in after[0]["facets"]["error"].items()} == {f"400|{quoted}": 1, f"400|{masked}": 1}
    # The roll-up says what the calls say: building it again from them changes nothing.
    reports.rebuild_rollup(now=NOW)
    assert figures(NOW) == after


def test_the_job_is_periodic_on_the_maintenance_queue():
    from procrastinate.contrib.django import app

    from calls import tasks

    periodic = {pid: p for (_, pid), p in app.periodic_registry.periodic_tasks.items()}
    assert periodic["apply_retention"].cron == retention_module.CRON
    assert tasks.apply_retention.queue == tasks.MAINTENANCE


# --- The page -----------------------------------------------------------------------------------------------------


def test_admins_set_the_days_on_one_page(admin_role_client, admin_role_user):
    page = admin_role_client.get(URL)
    assert page.status_code == 200
    assert "Delete call notes after (days)" in page.content.decode()

    response = admin_role_client.post(URL, {"notes_days": "30", "mask_days": "90", "audit_days": ""})
    assert response.status_code == 302
    p = RetentionPolicy.current()
    assert (p.notes_days, p.mask_days, p.audit_days) == (30, 90, None)
    assert p.updated_by == admin_role_user


def test_a_change_of_the_policy_is_in_the_audit_trail_with_who_and_what(admin_role_client, admin_role_user):
    """Setting audit entries to go after a day deletes the trail: that it was set, by whom, is in the trail."""
    admin_role_client.post(URL, {"notes_days": "30", "mask_days": "", "audit_days": ""})

    admin_role_client.post(URL, {"notes_days": "30", "mask_days": "", "audit_days": "1"})
    admin_role_client.post(URL, {"notes_days": "30", "mask_days": "", "audit_days": "1"})  # no change: no entry

    entries = list(AuditEntry.objects.filter(kind="retention.update").order_by("pk"))
    assert [(e.actor_id, e.before, e.after) for e in entries] == [
        (admin_role_user.pk, {"notes_days": None}, {"notes_days": 30}),
        (admin_role_user.pk, {"audit_days": None}, {"audit_days": 1}),
    ]
    assert admin_role_client.get("/audit/", {"kind": "retention.update"}).status_code == 200


@pytest.mark.parametrize("value", ["0", "-3", "abc", "²", "99999999"])
def test_a_bad_number_of_days_is_a_400_that_says_what_to_fix(admin_role_client, value):
    response = admin_role_client.post(URL, {"notes_days": value})
    assert response.status_code == 400
    assert "Nothing was saved" in response.content.decode()
    assert RetentionPolicy.current().notes_days is None


def test_only_admins_may_see_or_change_it(client, agent_client, supervisor_client):
    assert client.get(URL).status_code == 302  # to the login page
    for someone in (agent_client, supervisor_client):
        assert someone.get(URL).status_code == 403
        assert someone.post(URL, {"notes_days": "1"}).status_code == 403
    assert RetentionPolicy.current().notes_days is None


def test_it_rejects_other_methods(admin_role_client):
    assert admin_role_client.put(URL).status_code == 405


def test_the_health_page_says_what_the_last_run_did_and_when_the_next_is(supervisor_client, year_of_calls):
    policy(notes_days=30, mask_days=90)
    apply_retention(now=NOW)
    html = supervisor_client.get("/health/").content.decode()
    assert "Retention" in html
    assert "cleared the notes of 8 calls, masked 5 numbers, deleted 0 audit entries" in html
    assert "Next run" in html


def test_the_health_page_flags_a_failed_run(supervisor_client):
    RetentionRun.objects.create(started_at=timezone.now(), error="OperationalError: lock timeout")
    html = supervisor_client.get("/health/").content.decode()
    assert "The retention job failed: OperationalError: lock timeout" in html


def test_masked_numbers_show_as_they_are_in_the_call_log(supervisor_client, agent_user):
    make_call(user=agent_user, agent=agent_user.agent, to_number=mask_number("+442079460100"))
    html = supervisor_client.get("/calls/").content.decode()
    assert "+44 20 •••• •100" in html


# --- Reading ahead: the job's own way on PostgreSQL, outside any transaction ------------------------------------


needs_postgres = pytest.mark.skipif(
    __import__("django.db").db.connection.vendor != "postgresql", reason="the job reads ahead on PostgreSQL only"
)


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_the_job_reads_the_next_window_in_a_thread_while_it_writes_one_and_does_the_same(year_of_calls, monkeypatch):
    threads = set()
    changes = retention_module._changes

    def noted(*args, **kwargs):
        import threading

        threads.add(threading.current_thread().name)
        return changes(*args, **kwargs)

    monkeypatch.setattr(retention_module, "_changes", noted)
    lowered = []  # the reading ahead yields the CPU to the process's other threads (the call log's readers, on a host)
    monkeypatch.setattr(retention_module.os, "setpriority", lambda *args: lowered.append(args), raising=False)
    before = figures(NOW)
    policy(notes_days=30, mask_days=90)

    run = apply_retention(now=NOW, batch=3)

    assert threads == {"retention-read-ahead"}  # every window read there, none here
    [(which, who, niceness)] = lowered
    assert which == getattr(retention_module.os, "PRIO_PROCESS", 0) and niceness == retention_module.NICENESS
    assert who != threading.get_native_id()  # the thread's own, not the process's (Linux: a thread's id)
    assert run.notes_cleared == 8 and run.numbers_masked == 5 and run.batches == 3 and run.error == ""
    for call in year_of_calls:
        row = Call.objects.get(pk=call.pk)
        old = NOW - row.requested_at > timedelta(days=90)
        assert row.to_number == (mask_number(call.to_number) if old else call.to_number)
    assert Call.objects.exclude(notes="").count() == 3
    p = RetentionPolicy.current()
    assert p.notes_done_before == NOW - timedelta(days=30) and p.masked_done_before == NOW - timedelta(days=90)
    assert figures(NOW) == before


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_an_error_reading_ahead_fails_the_run_after_the_windows_before_it(year_of_calls, monkeypatch):
    monkeypatch.setattr(retention_module, "_changes", failing_at_call(3, retention_module._changes, "the read failed"))
    policy(mask_days=90)
    with pytest.raises(RuntimeError, match="the read failed"):
        apply_retention(now=NOW, batch=2)
    failed = RetentionRun.objects.get()
    assert failed.error == "RuntimeError: the read failed" and failed.numbers_masked == 4 and failed.batches == 2
    assert Call.objects.filter(to_number__contains="•").count() == 4


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_an_error_writing_a_window_stops_the_reading_ahead(year_of_calls, monkeypatch):
    import threading

    apply, changes = retention_module._apply, retention_module._changes
    read = 0
    third_read = threading.Event()

    def counted(*args, **kwargs):
        nonlocal read
        read += 1
        found = changes(*args, **kwargs)
        if read == 3:
            third_read.set()
        return found

    monkeypatch.setattr(retention_module, "_changes", counted)

    def fails_on_the_second(table, plan):
        if RetentionRun.objects.get().batches == 1:
            # Once the thread has read the third window (it reads while the second is written): without this wait a
            # busy machine could fail the write before the thread ran, and the test saw 2 reads instead of 3.
            assert third_read.wait(timeout=30), "the thread did not read ahead while the second window was written"
            raise RuntimeError("the write failed")
        return apply(table, plan)

    monkeypatch.setattr(retention_module, "_apply", fails_on_the_second)
    policy(mask_days=90)
    with pytest.raises(RuntimeError, match="the write failed"):
        apply_retention(now=NOW, batch=1)
    assert RetentionRun.objects.get().batches == 1
    assert Call.objects.filter(to_number__contains="•").count() == 1
    assert "retention-read-ahead" not in {t.name for t in threading.enumerate()}  # the thread has ended
    # It read the two windows taken and the one after (while the second was written), and no further: the walk has
    # six (five calls due, one a window, then an empty last one).
    assert read == 3


def test_notes_written_on_an_old_call_after_its_window_was_passed_go_at_the_next_run(agent_user):
    """A wrap-up can be edited any time after the call (the page and the API): notes written on a call the job has
    passed already (before `notes_done_before`) go at the next run too, with their audit entries' copies."""
    old = make_call(user=agent_user, agent=agent_user.agent, at=NOW - timedelta(days=40), notes="Grace, first")
    untouched = make_call(user=agent_user, agent=agent_user.agent, at=NOW - timedelta(days=50))
    policy(notes_days=30)
    apply_retention(now=NOW)
    assert RetentionPolicy.current().notes_done_before == NOW - timedelta(days=30)

    from calls import audit as trail

    with trail.acting(user_id=agent_user.pk, request_id="req-late"):  # half an hour after that run
        Call.objects.filter(pk=old.pk).update(notes="Grace's new address is 1 Mill Lane")
    AuditEntry.objects.filter(request_id="req-late").update(at=NOW + timedelta(minutes=30))

    run = apply_retention(now=NOW + timedelta(hours=1))

    assert Call.objects.get(pk=old.pk).notes == ""
    assert run.notes_cleared == 1 and run.error == ""
    assert "Mill Lane" not in str(list(AuditEntry.objects.values_list("before", "after")))
    assert Call.objects.get(pk=untouched.pk).notes == ""


def test_notes_an_agent_wrote_then_removed_go_from_the_audit_trail_once_due(agent_user):
    """The call's notes are empty now, so it has nothing to clear; its audit entries still hold what they said."""
    from calls import audit as trail

    call = make_call(user=agent_user, agent=agent_user.agent, at=NOW - timedelta(days=40))
    recent = make_call(user=agent_user, agent=agent_user.agent, at=NOW - timedelta(days=2))
    with trail.acting(user_id=agent_user.pk, request_id="req-wrap"):
        for pk in (call.pk, recent.pk):
            Call.objects.filter(pk=pk).update(notes="Grace's PIN is 4412")
            Call.objects.filter(pk=pk).update(notes="")
    policy(notes_days=30)

    apply_retention(now=NOW)

    old = AuditEntry.objects.filter(object_type="call", object_id=str(call.pk))
    assert old.count() == 2 and "4412" not in str([(e.before, e.after) for e in old])
    kept = AuditEntry.objects.filter(object_type="call", object_id=str(recent.pk))
    assert "4412" in str([(e.before, e.after) for e in kept])  # not due yet


def test_the_last_runs_time_is_shown_with_its_own_time_zone_not_called_utc(admin_role_client, settings):
    settings.TIME_ZONE = "Europe/London"
    summer = timezone.make_aware(timezone.datetime(2026, 7, 1, 11, 0), timezone=UTC)  # 12:00 in London (BST)
    RetentionRun.objects.create(started_at=summer, finished_at=summer)

    html = admin_role_client.get(URL).content.decode()

    assert "1 Jul 12:00 BST" in html and "12:00</time> UTC" not in html and "11:00" not in html
