"""`manage.py flush` failed on PostgreSQL: its TRUNCATE names calls_contact and calls_contactsearch together, and the
trigger that mirrors a TRUNCATE of contacts then truncated calls_contactsearch a second time, which PostgreSQL refuses
while the first statement holds it ("cannot TRUNCATE ... because it is being used by active queries"). The trigger
now truncates it only when it still has rows."""

from django.db import migrations

# The function as it was (0025) and as it is now (calls/models/contactsearch.py may change after this migration).
FUNCTION = """
CREATE OR REPLACE FUNCTION calls_contactsearch_mirror() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        {truncate}
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM calls_contactsearch WHERE id = OLD.id;
    ELSE
        INSERT INTO calls_contactsearch (id, name, search_text) VALUES (NEW.id, NEW.name, NEW.search_text)
        ON CONFLICT (id) DO UPDATE SET name = excluded.name, search_text = excluded.search_text;
    END IF;
    RETURN NULL;
END
$$
"""
BEFORE = FUNCTION.format(truncate="TRUNCATE calls_contactsearch;")
AFTER = FUNCTION.format(
    truncate="IF EXISTS (SELECT 1 FROM calls_contactsearch) THEN TRUNCATE calls_contactsearch; END IF;"
)


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(AFTER)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BEFORE)


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0035_periodic_ticks_once"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
