"""Call queues (calls/queues/building.py): making one from a filter, a search or an import, in order, live or not."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from calls.models import CallQueue, Contact, ContactImport, ContactPhone, ImportedContact
from calls.queues import building, tend
from tests import _queues
from tests._queues import NOW, _contact, _names

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
    assert kinds[-1] == ("queue.update", {"state": "paused"})
