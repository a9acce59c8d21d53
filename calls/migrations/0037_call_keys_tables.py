"""A call's request id and VCC's call id, each unique in a table of its own that a trigger keeps (calls/models/callkeys.py),
instead of a unique index on the call table; and the index of a call's phone only where it has one.

A retention pass masks each old call's number: the row is written again, with a new entry in every index of the call
table. The request id's and VCC's call id's entries went to random pages (a UUID, a GUID), as did the phone's; a pass
over 5 M calls spent most of its time there (bench/README.md, Retention). The keys are copied here first, then the
trigger keeps them, then the old unique index and constraint go, all in this migration's transaction. At 5 M calls
it took 2.6 minutes here: the call table waits for writes from the trigger's creation (the copy, a minute and more),
and for reads too from the old index's DROP (the phone's index built, some 10 s) until the commit.
"""

import uuid

import django.db.models.deletion
from django.db import migrations, models

# The SQL as it is at this migration (calls/models/callkeys.py may change after it).
POSTGRES_SQL = [
    """
    CREATE OR REPLACE FUNCTION calls_call_keys() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO calls_callrequestid (request_id, call_id) VALUES (NEW.request_id, NEW.id);
        ELSIF NEW.request_id IS DISTINCT FROM OLD.request_id THEN
            UPDATE calls_callrequestid SET request_id = NEW.request_id WHERE call_id = NEW.id;
        END IF;
        IF TG_OP = 'UPDATE' AND NEW.vcc_call_id IS DISTINCT FROM OLD.vcc_call_id THEN
            DELETE FROM calls_callvccid WHERE call_id = NEW.id;
        END IF;
        IF NEW.vcc_call_id <> '' AND (TG_OP = 'INSERT' OR NEW.vcc_call_id IS DISTINCT FROM OLD.vcc_call_id) THEN
            INSERT INTO calls_callvccid (vcc_call_id, call_id) VALUES (NEW.vcc_call_id, NEW.id);
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """CREATE TRIGGER call_keys AFTER INSERT OR UPDATE OF request_id, vcc_call_id ON calls_call
        FOR EACH ROW EXECUTE FUNCTION calls_call_keys()""",
]
DROP_POSTGRES_SQL = [
    "DROP TRIGGER IF EXISTS call_keys ON calls_call",
    "DROP FUNCTION IF EXISTS calls_call_keys()",
]
SQLITE_SQL = [
    """CREATE TRIGGER IF NOT EXISTS call_keys_insert AFTER INSERT ON calls_call BEGIN
        INSERT INTO calls_callrequestid (request_id, call_id) VALUES (NEW.request_id, NEW.id);
        INSERT INTO calls_callvccid (vcc_call_id, call_id) SELECT NEW.vcc_call_id, NEW.id WHERE NEW.vcc_call_id <> '';
    END""",
    """CREATE TRIGGER IF NOT EXISTS call_keys_request AFTER UPDATE OF request_id ON calls_call
        WHEN NEW.request_id IS NOT OLD.request_id BEGIN
        UPDATE calls_callrequestid SET request_id = NEW.request_id WHERE call_id = NEW.id;
    END""",
    """CREATE TRIGGER IF NOT EXISTS call_keys_vcc AFTER UPDATE OF vcc_call_id ON calls_call
        WHEN NEW.vcc_call_id IS NOT OLD.vcc_call_id BEGIN
        DELETE FROM calls_callvccid WHERE call_id = NEW.id;
        INSERT INTO calls_callvccid (vcc_call_id, call_id) SELECT NEW.vcc_call_id, NEW.id WHERE NEW.vcc_call_id <> '';
    END""",
]
DROP_SQLITE_SQL = [
    "DROP TRIGGER IF EXISTS call_keys_insert",
    "DROP TRIGGER IF EXISTS call_keys_request",
    "DROP TRIGGER IF EXISTS call_keys_vcc",
]
FILL_SQL = [
    "INSERT INTO calls_callrequestid (request_id, call_id) SELECT request_id, id FROM calls_call WHERE true ON CONFLICT DO NOTHING",
    "INSERT INTO calls_callvccid (vcc_call_id, call_id) SELECT vcc_call_id, id FROM calls_call WHERE vcc_call_id <> '' ON CONFLICT DO NOTHING",
]


def on(vendor, statements):
    """A RunPython step that runs statements on that vendor's database only (0039 runs SQLite's again)."""

    def run(apps, schema_editor):
        if schema_editor.connection.vendor == vendor:
            for sql in statements:
                schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0036_contact_search_survives_flush"),
    ]

    operations = [
        migrations.CreateModel(
            name="CallRequestId",
            fields=[
                ("request_id", models.UUIDField(primary_key=True, serialize=False)),
                (
                    "call",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="calls.call"
                    ),
                ),
            ],
            options={"db_table": "calls_callrequestid"},
        ),
        migrations.CreateModel(
            name="CallVccId",
            fields=[
                (
                    "vcc_call_id",
                    models.CharField(max_length=64, primary_key=True, serialize=False, verbose_name="VCC call ID"),
                ),
                (
                    "call",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="calls.call"
                    ),
                ),
            ],
            options={"db_table": "calls_callvccid"},
        ),
        # PostgreSQL's before the old index and constraint go: their DROP holds the call table against reads too,
        # until the commit; the trigger (writes wait meanwhile) and the copy do not.
        migrations.RunPython(
            on("postgresql", POSTGRES_SQL + FILL_SQL), on("postgresql", DROP_POSTGRES_SQL), elidable=False
        ),
        migrations.RemoveConstraint(model_name="call", name="call_unique_vcc_call_id"),
        migrations.AlterField(
            model_name="call",
            name="request_id",
            field=models.UUIDField(default=uuid.uuid4, editable=False, help_text="Our idempotency key."),
        ),
        migrations.AddIndex(
            model_name="call",
            index=models.Index(condition=models.Q(("phone__isnull", False)), fields=["phone"], name="call_phone_idx"),
        ),
        migrations.AlterField(
            model_name="call",
            name="phone",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="calls",
                to="calls.contactphone",
            ),
        ),
        # SQLite's last: it makes a table again to alter it, and its triggers go with the old one.
        migrations.RunPython(on("sqlite", SQLITE_SQL + FILL_SQL), on("sqlite", DROP_SQLITE_SQL), elidable=False),
    ]
