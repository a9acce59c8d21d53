"""Call queues (calls/queues/building.py): making one from a filter, a search or an import, in order, live or not."""

from __future__ import annotations

import contextlib
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction

from calls.models import CallQueue, Contact, ContactImport, ContactPhone, ImportedContact
from calls.queues import building, tend
from tests import _queues
from tests._queues import NOW, _contact, _names
from tests.conftest import create_user

leads, queue = _queues.leads, _queues.queue  # fixtures


def test_a_queue_holds_the_filters_matches_in_its_order_and_leaves_do_not_call_out(leads, supervisor_user):
    Contact.objects.filter(name="Cleo").update(do_not_call=True)
    ContactPhone.objects.filter(contact__name="Dev").update(do_not_call=True)  # his only number
    made = building.make_queue(user=supervisor_user, name="Q", now=NOW, source_filter={"company": "Acme"})
    assert made.added == 3 and made.left_out == 2
    assert _names(made.queue) == ["Ada", "Ben", "Eve"]
    assert set(made.queue.entries.values_list("state", flat=True)) == {"waiting"}


def test_a_queue_can_be_ordered_by_priority_or_by_last_called(leads, supervisor_user):
    Contact.objects.filter(name="Dev").update(priority=5)
    Contact.objects.filter(name="Ben").update(priority=9)
    by_priority = building.make_queue(
        user=supervisor_user, name="P", now=NOW, source_filter={"company": "Acme"}, sort="priority"
    )
    assert _names(by_priority.queue) == ["Ben", "Dev", "Ada", "Cleo", "Eve"]
    Contact.objects.filter(name="Ada").update(last_called_at=NOW - timedelta(hours=1))
    Contact.objects.filter(name="Ben").update(last_called_at=NOW - timedelta(days=3))
    by_last = building.make_queue(
        user=supervisor_user, name="L", now=NOW, source_filter={"company": "Acme"}, sort="last_called"
    )
    assert _names(by_last.queue) == ["Cleo", "Dev", "Eve", "Ben", "Ada"]  # never called first, then longest ago


def test_a_queue_made_from_a_search_holds_what_the_contact_list_finds(leads, supervisor_user):
    made = building.make_queue(user=supervisor_user, name="S", now=NOW, source_filter={"q": "cle"})
    assert _names(made.queue) == ["Cleo"]


def test_a_queue_from_an_import_holds_the_contacts_it_added_or_updated(leads, supervisor_user):
    imp = ContactImport.objects.create(created_by=supervisor_user, status=ContactImport.Status.DONE)
    for row, name in [(2, "Eve"), (3, "Ben")]:
        ImportedContact.objects.create(contact_import=imp, contact=Contact.objects.get(name=name), row=row)
    made = building.make_queue(user=supervisor_user, name="I", now=NOW, source_import=imp, live=True)
    assert _names(made.queue) == ["Ben", "Eve"]
    assert made.queue.live is False  # an import does not grow


def test_a_live_queue_takes_new_matches_in_at_its_end_and_a_snapshot_does_not(leads, supervisor_user):
    live = building.make_queue(user=supervisor_user, name="Live", now=NOW, source_filter={"company": "Acme"}, live=True)
    snap = building.make_queue(user=supervisor_user, name="Snap", now=NOW, source_filter={"company": "Acme"})
    _contact("Fay", "+447400123499", company="Acme")
    _contact("Gus", "+447400123498", company="Elsewhere")
    assert tend(now=NOW)["joined"] == 1
    assert _names(live.queue)[-1] == "Fay" and len(_names(live.queue)) == 6
    assert "Fay" not in _names(snap.queue)
    assert building.add_new_matches(live.queue, now=NOW) == 0  # looked at already


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the audit trail's triggers are PostgreSQL's")
def test_making_and_changing_a_queue_is_in_the_audit_trail(queue):
    from calls.models import AuditEntry

    CallQueue.objects.filter(pk=queue.pk).update(state="paused")
    kinds = list(AuditEntry.objects.filter(object_type="queue", object_id=str(queue.pk)).values_list("kind", "after"))
    assert ("queue.create", kinds[0][1]) == kinds[0] and kinds[0][1]["name"] == "Acme leads"
    assert not {"live_after", "live_seen", "live_seen_xmax"} & set(kinds[0][1])  # bookkeeping, not a change
    assert kinds[-1] == ("queue.update", {"state": "paused"})


@contextlib.contextmanager
def an_import_writing(name: str, number: str):
    """An import's transaction, in a thread of its own: it has written a contact (its id below any made after it),
    and commits when the block ends."""
    written, commit = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def long_import() -> None:
        try:
            with transaction.atomic():
                _contact(name, number, company="Acme")
                written.set()
                assert commit.wait(timeout=60)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            written.set()
            connection.close()

    thread = threading.Thread(target=long_import)
    thread.start()
    assert written.wait(timeout=60)
    try:
        yield
    finally:
        commit.set()
        thread.join()
    assert not errors


POSTGRES_ONLY = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="two transactions at once: SQLite's test database"
)


@POSTGRES_ONLY
@pytest.mark.django_db(transaction=True)
def test_a_live_queue_takes_in_contacts_whose_transaction_commits_after_a_higher_id_was_looked_at():
    """An import writes its contacts in one long transaction. A contact typed in meanwhile gets a higher id and
    commits first; the minute job looks past it. The import's contacts, committed later with lower ids, still
    join at the next look, and what a look saw is settled (never read again) only once the import has ended."""
    boss = create_user("boss", "supervisor")
    _contact("First", "+447400123400", company="Acme")
    queue = building.make_queue(user=boss, name="Live", now=NOW, source_filter={"company": "Acme"}, live=True).queue
    with an_import_writing("Imported", "+447400123401"):
        typed = _contact("Typed in", "+447400123402", company="Acme")
        assert building.add_new_matches(queue, now=NOW) == 1  # the minute job: "Typed in"; the import goes on
        queue.refresh_from_db()
        assert queue.live_seen == typed.pk and queue.live_after < typed.pk  # seen, not settled
        later = _contact("Later", "+447400123403", company="Acme")
        assert building.add_new_matches(queue, now=NOW) == 1  # "Later"
        queue.refresh_from_db()
        # Still the look to settle: a new one each time could wait for ever behind overlapping transactions.
        assert queue.live_seen == typed.pk and queue.live_after < typed.pk
    assert building.add_new_matches(queue, now=NOW + timedelta(minutes=1)) == 1  # the next minute: "Imported"
    assert _names(queue) == ["First", "Typed in", "Later", "Imported"]
    queue.refresh_from_db()
    assert queue.live_after == typed.pk and queue.live_seen == later.pk  # settled up to what the first look saw
    assert building.add_new_matches(queue, now=NOW + timedelta(minutes=2)) == 0  # each contact once
    queue.refresh_from_db()
    assert queue.live_after == queue.live_seen == later.pk
    assert list(queue.entries.order_by("position").values_list("position", flat=True)) == [1, 2, 3, 4]


@POSTGRES_ONLY
@pytest.mark.django_db(transaction=True)
def test_a_live_queue_made_while_an_import_writes_takes_in_its_contacts_once_it_commits():
    boss = create_user("boss", "supervisor")
    _contact("First", "+447400123400", company="Acme")
    with an_import_writing("Imported", "+447400123401"):
        _contact("Typed in", "+447400123402", company="Acme")
        made = building.make_queue(user=boss, name="Live", now=NOW, source_filter={"company": "Acme"}, live=True)
        assert _names(made.queue) == ["First", "Typed in"]
        assert building.add_new_matches(made.queue, now=NOW) == 0
    assert building.add_new_matches(made.queue, now=NOW + timedelta(minutes=1)) == 1
    assert _names(made.queue) == ["First", "Typed in", "Imported"]


@POSTGRES_ONLY
@pytest.mark.django_db(transaction=True)
def test_a_live_queue_made_while_nothing_else_writes_settles_what_it_holds_at_once():
    boss = create_user("boss", "supervisor")
    first = _contact("First", "+447400123400", company="Acme")
    made = building.make_queue(user=boss, name="Live", now=NOW, source_filter={"company": "Acme"}, live=True)
    queue = CallQueue.objects.get(pk=made.queue.pk)
    assert queue.live_after == queue.live_seen == first.pk
