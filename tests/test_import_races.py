"""An import being written and other changes of the same contacts at once (calls/imports.py apply). Erasures while
an import is written: tests/test_privacy_erasure_imports.py."""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError, connection, transaction

from calls import imports
from calls.models import Contact
from tests.test_import import confirm, started


@pytest.fixture(autouse=True)
def _inline_jobs(settings):
    settings.CONTACT_IMPORT_BACKGROUND = False  # the apply runs in the confirming request


@pytest.mark.django_db(transaction=True)
def test_a_contact_an_import_updates_cannot_be_deleted_under_it(agent_client, contact, monkeypatch):
    """Someone deletes the contact a row updates while the import is written: had the delete committed between the
    import's read and its save, the save would have found no row and inserted the contact again under its old id.
    The import holds the contacts it updates until it commits, so the delete waits (NOWAIT: refused here)."""
    if connection.vendor != "postgresql":
        pytest.skip("two transactions at once: PostgreSQL")
    update, deleting = imports._update, []

    def delete_elsewhere(pk: int) -> None:
        try:
            with transaction.atomic():
                list(Contact.objects.select_for_update(nowait=True).filter(pk=pk))
                Contact.objects.filter(pk=pk).delete()
            deleting.append("deleted")
        except OperationalError:
            deleting.append("had to wait")
        finally:
            connection.close()

    def deleted_meanwhile(target, row, *more):
        thread = threading.Thread(target=delete_elsewhere, args=(target.pk,))
        thread.start()
        thread.join(30)  # a guard, not a wait: NOWAIT answers at once
        return update(target, row, *more)

    monkeypatch.setattr(imports, "_update", deleted_meanwhile)
    imp = started(agent_client, "Name,Phone\nGrace H.,07400 123456\nNew Person,020 7946 0170\n")
    confirm(agent_client, imp, row2="update")
    imp.refresh_from_db()
    assert imp.status == "done", imp.error
    assert deleting == ["had to wait"]
    assert sorted(Contact.objects.values_list("name", flat=True)) == ["Grace H.", "New Person"]
