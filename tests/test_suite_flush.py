"""The flush that ends each transactional test (tests/conftest.py `_flush_by_delete`) leaves every table empty: no
row a test made, and no audit entry written by the flush's own deletes, reaches the next test."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from calls.models import AuditEntry, Contact


@pytest.mark.parametrize("checked", [False, True], ids=["as-the-suite-runs", "foreign-keys-checked"])
@pytest.mark.django_db(transaction=True)
def test_the_flush_between_transactional_tests_leaves_every_table_empty(checked, monkeypatch):
    """As CI runs it (its user may switch the triggers off for the flush), and as a user who may not: the foreign
    keys checked at the end, the audit triggers firing and their table emptied last."""
    if checked:
        monkeypatch.setattr(connection, "_tests_superuser", False, raising=False)
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert Contact.objects.exists()
    call_command("flush", verbosity=0, interactive=False, reset_sequences=False, inhibit_post_migrate=True)
    kept = {"django_content_type", "auth_permission"}  # written again, the same, by post_migrate: kept as they are
    tables = [t for t in connection.introspection.django_table_names(only_existing=True) if t not in kept]
    with connection.cursor() as cursor:
        left = {}
        for table in tables:
            cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")  # noqa: S608
            if count := cursor.fetchone()[0]:
                left[table] = count
    assert left == {}
    assert not AuditEntry.objects.exists()
