"""A call's two unique keys, each in a narrow table of its own that a trigger on the call table keeps: our request id
(CallRequestId) and VCC's call id (CallVccId). The call table keeps both columns, with no index on either.

Why not a unique index on the call table: a retention pass masks every old call's number, and a row whose indexed
column changes is written again with a new entry in every one of the call table's indexes. A UUID and VCC's GUID
put those entries at random places, a page seldom in memory and, after each checkpoint, written whole to the log
again: at 5 M calls they were two of the pass's four costliest indexes (bench/README.md, Retention). Here each key
is written once, when the call gets it, and a pass never touches it; and each key stays unique for good, and finds
its call however old, as the indexes on the call table did.

Find a call by either key with `Call.objects.with_request_id()` / `with_vcc_call_id()` (FoundByKeys, below), never
by filtering the call table's column, which no index serves. The triggers mirror an INSERT, and an UPDATE of either
column; Django deletes a call's keys with it (CASCADE: the call's own foreign keys act in Python, so these cannot act
in the database; a raw DELETE of a call fails on the key's foreign key). A bulk load that skips triggers
(`session_replication_role`, seed_volume) writes them after.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Self

from django.db import models

if TYPE_CHECKING:
    from calls.models.calls import Call  # noqa: F401  (named in a string below: the queryset's model)

REQUEST_TABLE = "calls_callrequestid"
VCC_TABLE = "calls_callvccid"
TRIGGER_FUNCTION = "calls_call_keys"

POSTGRES_SQL = [
    f"""
    CREATE OR REPLACE FUNCTION {TRIGGER_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO {REQUEST_TABLE} (request_id, call_id) VALUES (NEW.request_id, NEW.id);
        ELSIF NEW.request_id IS DISTINCT FROM OLD.request_id THEN
            UPDATE {REQUEST_TABLE} SET request_id = NEW.request_id WHERE call_id = NEW.id;
        END IF;
        IF TG_OP = 'UPDATE' AND NEW.vcc_call_id IS DISTINCT FROM OLD.vcc_call_id THEN
            DELETE FROM {VCC_TABLE} WHERE call_id = NEW.id;
        END IF;
        IF NEW.vcc_call_id <> '' AND (TG_OP = 'INSERT' OR NEW.vcc_call_id IS DISTINCT FROM OLD.vcc_call_id) THEN
            INSERT INTO {VCC_TABLE} (vcc_call_id, call_id) VALUES (NEW.vcc_call_id, NEW.id);
        END IF;
        RETURN NULL;
    END
    $$
    """,
    f"""CREATE TRIGGER call_keys AFTER INSERT OR UPDATE OF request_id, vcc_call_id ON calls_call
        FOR EACH ROW EXECUTE FUNCTION {TRIGGER_FUNCTION}()""",
]
DROP_POSTGRES_SQL = ["DROP TRIGGER IF EXISTS call_keys ON calls_call", f"DROP FUNCTION IF EXISTS {TRIGGER_FUNCTION}()"]

# SQLite (the quick look): the same, as its triggers say it. SQLite makes a table again to alter it, which drops its
# triggers: they are made again after every migrate (calls/apps.py).
SQLITE_SQL = [
    f"""CREATE TRIGGER IF NOT EXISTS call_keys_insert AFTER INSERT ON calls_call BEGIN
        INSERT INTO {REQUEST_TABLE} (request_id, call_id) VALUES (NEW.request_id, NEW.id);
        INSERT INTO {VCC_TABLE} (vcc_call_id, call_id) SELECT NEW.vcc_call_id, NEW.id WHERE NEW.vcc_call_id <> '';
    END""",
    f"""CREATE TRIGGER IF NOT EXISTS call_keys_request AFTER UPDATE OF request_id ON calls_call
        WHEN NEW.request_id IS NOT OLD.request_id BEGIN
        UPDATE {REQUEST_TABLE} SET request_id = NEW.request_id WHERE call_id = NEW.id;
    END""",
    f"""CREATE TRIGGER IF NOT EXISTS call_keys_vcc AFTER UPDATE OF vcc_call_id ON calls_call
        WHEN NEW.vcc_call_id IS NOT OLD.vcc_call_id BEGIN
        DELETE FROM {VCC_TABLE} WHERE call_id = NEW.id;
        INSERT INTO {VCC_TABLE} (vcc_call_id, call_id) SELECT NEW.vcc_call_id, NEW.id WHERE NEW.vcc_call_id <> '';
    END""",
]
DROP_SQLITE_SQL = [
    f"DROP TRIGGER IF EXISTS {name}" for name in ("call_keys_insert", "call_keys_request", "call_keys_vcc")
]


class FoundByKeys(models.QuerySet["Call"]):
    """CallQuerySet's lookups by either key, through their tables: no index on the call table serves
    `filter(request_id=…)` or `filter(vcc_call_id=…)`."""

    def with_request_id(self, request_id: uuid.UUID | str) -> Self:
        """The call of this request id."""
        return self.filter(pk__in=CallRequestId.objects.filter(request_id=request_id).values("call_id"))

    def with_vcc_call_id(self, vcc_call_id: str) -> Self:
        """The call of this VCC call id."""
        return self.filter(pk__in=CallVccId.objects.filter(vcc_call_id=vcc_call_id).values("call_id"))


class CallRequestId(models.Model):
    """A call's request id (Call.request_id), unique for good; written by the call table's trigger only."""

    request_id = models.UUIDField(primary_key=True)
    call = models.OneToOneField("calls.Call", on_delete=models.CASCADE, related_name="+")

    class Meta:
        db_table = REQUEST_TABLE

    def __str__(self) -> str:
        return str(self.request_id)


class CallVccId(models.Model):
    """VCC's call id of a call (Call.vcc_call_id, when VCC gave one), unique for good; written by the call table's
    trigger only."""

    vcc_call_id = models.CharField("VCC call ID", max_length=64, primary_key=True)
    call = models.OneToOneField("calls.Call", on_delete=models.CASCADE, related_name="+")

    class Meta:
        db_table = VCC_TABLE

    def __str__(self) -> str:
        return self.vcc_call_id
