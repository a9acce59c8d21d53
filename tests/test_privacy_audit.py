"""Erasure and retention meet the audit trail: it keeps that they happened and by whom, never what they removed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from calls import audit
from calls.models import AuditEntry, Call, Contact, ContactPhone
from calls.privacy import audit as privacy_audit
from calls.privacy.erasure import erase_contact
from calls.privacy.retention import apply_retention
from tests._calls import make_call
from tests.conftest import create_contact

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the audit trail's row triggers are PostgreSQL's")


def test_an_erasure_is_one_entry_by_whom_and_the_earlier_entries_keep_who_and_when_not_what(
    supervisor_user, agent_user
):
    with audit.acting(user_id=agent_user.pk, request_id="req-made"):
        contact = create_contact()  # Grace Hopper, +447400123456, +442079460123
        phone = contact.phones.get(label="work")
        ContactPhone.objects.filter(pk=phone.pk).update(do_not_call=True)
    with audit.acting(user_id=supervisor_user.pk, request_id="req-cleared"), audit.reason("Grace asked, 14:02"):
        ContactPhone.objects.filter(pk=phone.pk).update(do_not_call=False)
    call = make_call(user=agent_user, agent=agent_user.agent, contact=contact, to_number="+447400123456")
    with audit.acting(user_id=agent_user.pk, request_id="req-wrap"):
        Call.objects.filter(pk=call.pk).update(notes="Grace Hopper bought two", disposition_code="Sale")
    searched = AuditEntry.objects.create(
        kind="export.calls", actor_name="priya", after={"filters": {"q": "+447400123456"}, "rows": 3}
    )
    other = AuditEntry.objects.create(kind="export.calls", after={"filters": {"q": "Ada"}, "rows": 1})
    earlier = {entry.pk: entry for entry in AuditEntry.objects.filter(contact_id=contact.pk)}
    assert {"contact.create", "number.create", "number.dnc_cleared", "call.update"} <= {
        e.kind for e in earlier.values()
    }

    with audit.acting(user_id=supervisor_user.pk, request_id="req-erase"):
        erase_contact(contact_pk=contact.pk, by=supervisor_user, now=timezone.now())

    [erased] = AuditEntry.objects.filter(kind="contact.erased")
    assert (erased.actor_id, erased.actor_name, erased.request_id) == (supervisor_user.pk, "priya", "req-erase")
    assert erased.object_id == str(contact.pk) and erased.after["numbers"] == 2 and erased.after["calls"] == 1
    # The erasure's own deletes and updates wrote no row-change entries.
    assert not AuditEntry.objects.filter(request_id="req-erase").exclude(pk=erased.pk).exists()
    for entry in AuditEntry.objects.filter(pk__in=earlier):
        assert (entry.before, entry.after, entry.reason) == (None, None, ""), entry.kind
        was = earlier[entry.pk]
        assert (entry.kind, entry.actor_id, entry.request_id, entry.at) == (
            was.kind,
            was.actor_id,
            was.request_id,
            was.at,
        )
    searched.refresh_from_db()
    other.refresh_from_db()
    assert searched.after == {"filters": "(erased)", "rows": 3}
    assert other.after == {"filters": {"q": "Ada"}, "rows": 1}


def test_retention_takes_cleared_notes_out_of_the_wrap_ups_entries_and_records_only_what_it_did(agent_user):
    from calls.models import RetentionPolicy

    old = make_call(user=agent_user, agent=agent_user.agent, at=NOW - timedelta(days=40), to_number="+442079460100")
    recent = make_call(user=agent_user, agent=agent_user.agent, at=NOW - timedelta(days=2), to_number="+442079460101")
    with audit.acting(user_id=agent_user.pk, request_id="req-wrap"):
        for call in (old, recent):
            Call.objects.filter(pk=call.pk).update(notes="Grace wants the blue one", disposition_code="Sale")
        Call.objects.filter(pk=old.pk).update(notes="Grace wants the red one")
    policy = RetentionPolicy.current()
    policy.notes_days, policy.mask_days = 30, 30
    policy.save()
    entries_before = AuditEntry.objects.count()

    apply_retention(now=NOW)

    # Its own writes are not recorded as row changes; one entry says what the run did, in counts.
    summary = AuditEntry.objects.get(kind="retention.run")
    assert AuditEntry.objects.count() == entries_before + 1
    assert (summary.kind, summary.actor_id, summary.object_type) == ("retention.run", None, "retention")
    assert summary.after["notes_cleared"] == 1 and summary.after["numbers_masked"] == 1
    old_entries = AuditEntry.objects.filter(object_type="call", object_id=str(old.pk)).order_by("at", "id")
    assert [(e.before, e.after) for e in old_entries] == [
        (
            {"notes": "", "disposition_code": ""},
            {"notes": privacy_audit.NOTES_REMOVED, "disposition_code": "Sale"},
        ),
        ({"notes": privacy_audit.NOTES_REMOVED}, {"notes": privacy_audit.NOTES_REMOVED}),
    ]
    assert AuditEntry.objects.get(object_type="call", object_id=str(recent.pk)).after["notes"] == (
        "Grace wants the blue one"
    )


def test_retention_deletes_audit_entries_older_than_its_cutoff_in_batches(db, monkeypatch):
    monkeypatch.setattr(privacy_audit, "BATCH", 3)
    for days in (400, 380, 370, 366, 364, 10, 1):
        AuditEntry.objects.create(kind="login", at=NOW - timedelta(days=days))
    assert privacy_audit.delete_audit_entries_before(NOW - timedelta(days=365)) == 4
    assert sorted((NOW - e.at).days for e in AuditEntry.objects.filter(kind="login")) == [1, 10, 364]


# --- What the review of this change found ---------------------------------------------------------------------


def test_an_error_inside_a_quiet_block_comes_out_as_itself(db):
    """Retention retries a window on a lock timeout: the reset of the setting must not replace that error with
    "current transaction is aborted"."""
    from django.db import DataError, transaction

    with pytest.raises(DataError), transaction.atomic(), audit.quiet(), connection.cursor() as cursor:
        cursor.execute("SELECT 1 / 0")


def test_erasure_finds_the_numbers_the_contact_had_before(supervisor_user, agent_user):
    from calls.models import JobError

    contact = create_contact()
    call = make_call(user=agent_user, agent=agent_user.agent, contact=contact, to_number="+447400900461")
    JobError.objects.create(job_id=1, task_name="follow_calls", error="VCC: +447400900461 unreachable", at=NOW)
    erase_contact(contact_pk=contact.pk, by=supervisor_user, now=timezone.now())  # it no longer has that number
    call.refresh_from_db()
    assert call.to_number == "+44 •••• •••461"
    assert JobError.objects.get().error == "VCC: +44 •••• •••461 unreachable"


def test_erasing_a_short_name_leaves_other_peoples_words_and_rows(supervisor_user, agent_user):
    from calls.models import ContactImport, ContactImportRow, JobError

    contact = Contact.objects.create(name="Busy", email="busy@example.org")
    JobError.objects.create(job_id=1, task_name="place", error="Destination busy, try later", at=NOW)
    imp = ContactImport.objects.create(created_by=agent_user, filename="leads.csv")
    theirs = ContactImportRow.objects.create(contact_import=imp, number=2, cells=["Busy", "busy@example.org"])
    namesake = ContactImportRow.objects.create(contact_import=imp, number=3, cells=["Busy Bee Ltd", "hi@bee.example"])
    erase_contact(contact_pk=contact.pk, by=supervisor_user, now=timezone.now())
    assert JobError.objects.get().error == "Destination busy, try later"
    assert not ContactImportRow.objects.filter(pk=theirs.pk).exists()
    assert ContactImportRow.objects.filter(pk=namesake.pk).exists()


def test_a_subjects_data_holds_their_calls_not_calls_to_their_number_by_nobody(supervisor_client, agent_user):
    import json

    contact = create_contact()
    mine = make_call(user=agent_user, agent=agent_user.agent, contact=contact, to_number="+447400123456")
    stranger = make_call(user=agent_user, agent=agent_user.agent, to_number="+447400123456", notes="Not Grace")
    data = json.loads(supervisor_client.get(f"/contacts/{contact.pk}/data/?format=json").content)
    assert [c["id"] for c in data["calls"]] == [mine.pk] and stranger.pk != mine.pk
    [entry] = AuditEntry.objects.filter(kind="export.subject")
    assert entry.object_id == str(contact.pk) and entry.actor_name == "priya"


def test_a_retention_run_that_deleted_audit_entries_leaves_one_entry_saying_so_and_an_idle_one_none(db):
    from calls.models import RetentionPolicy

    for days in (400, 380, 10):
        AuditEntry.objects.create(kind="login", at=NOW - timedelta(days=days))
    policy = RetentionPolicy.current()
    policy.audit_days = 365
    policy.save()

    run = apply_retention(now=NOW)

    assert list(AuditEntry.objects.filter(kind="login").values_list("at", flat=True)) == [NOW - timedelta(days=10)]
    entry = AuditEntry.objects.get(kind="retention.run")
    assert entry.object_id == str(run.pk) and entry.after["audit_deleted"] == 2 and entry.after["audit_days"] == 365
    apply_retention(now=NOW + timedelta(hours=1))  # nothing to do: nothing recorded
    assert AuditEntry.objects.filter(kind="retention.run").count() == 1
