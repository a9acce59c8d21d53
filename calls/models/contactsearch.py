"""ContactSearch: each contact's name and search text, alone in a narrow table that PostgreSQL keeps (triggers,
migration 0025), for the contact list's search when it has to sort every match (calls/models/contacts.py).

A word that many contacts match but that the first names of the list do not hold ("grace": 33,521 of 1 M contacts,
all under G) is found through the trigram index and the matches sorted. Read from the contacts' own rows, that
visits most of the table (18,000 pages for 33,521 rows: 120 to 160 ms); from this table, whose rows are a tenth of
the size, 12,000 pages at worst and 430 in the order the migration and seed_volume write it, by name (13 ms).

Elsewhere (SQLite) the table stays empty and unused. Only PostgreSQL writes it: an INSERT, a change of the name,
company or e-mail, a DELETE or a TRUNCATE of calls_contact is mirrored here in the same transaction.
"""

from __future__ import annotations

from django.db import models

TABLE = "calls_contactsearch"
TRIGGER_FUNCTION = "calls_contactsearch_mirror"

# The triggers that keep the table: one row-level trigger for INSERT, UPDATE of what search_text is made of, and
# DELETE, and one for TRUNCATE (the contact's id is the table's primary key).
POSTGRES_SQL = [
    f"""
    CREATE OR REPLACE FUNCTION {TRIGGER_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            -- Unless a TRUNCATE that names this table too (manage.py flush) has emptied it: a second would fail.
            IF EXISTS (SELECT 1 FROM {TABLE}) THEN
                TRUNCATE {TABLE};
            END IF;
        ELSIF TG_OP = 'DELETE' THEN
            DELETE FROM {TABLE} WHERE id = OLD.id;
        ELSE
            INSERT INTO {TABLE} (id, name, search_text) VALUES (NEW.id, NEW.name, NEW.search_text)
            ON CONFLICT (id) DO UPDATE SET name = excluded.name, search_text = excluded.search_text;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    f"""CREATE TRIGGER contactsearch_rows AFTER INSERT OR DELETE OR UPDATE OF name, company, email ON calls_contact
        FOR EACH ROW EXECUTE FUNCTION {TRIGGER_FUNCTION}()""",
    f"""CREATE TRIGGER contactsearch_truncate AFTER TRUNCATE ON calls_contact
        FOR EACH STATEMENT EXECUTE FUNCTION {TRIGGER_FUNCTION}()""",
]
DROP_POSTGRES_SQL = [
    "DROP TRIGGER IF EXISTS contactsearch_rows ON calls_contact",
    "DROP TRIGGER IF EXISTS contactsearch_truncate ON calls_contact",
    f"DROP FUNCTION IF EXISTS {TRIGGER_FUNCTION}()",
]
# Every contact written again, by name (the order the sorted matches are read in), and the trigram index built after.
REFILL_SQL = [
    f"TRUNCATE {TABLE}",
    f"INSERT INTO {TABLE} (id, name, search_text) SELECT id, name, search_text FROM calls_contact ORDER BY name, id",
]
INDEX_SQL = f"CREATE INDEX IF NOT EXISTS contactsearch_trgm_idx ON {TABLE} USING gin (search_text gin_trgm_ops)"
DROP_INDEX_SQL = "DROP INDEX IF EXISTS contactsearch_trgm_idx"


class ContactSearch(models.Model):
    """A contact's name and search text (Contact.search_text), kept by PostgreSQL's triggers; read only by the
    search (calls/models/contacts.py _narrow_ids). Its id is the contact's."""

    id = models.BigIntegerField(primary_key=True)
    name = models.CharField(max_length=200)
    search_text = models.TextField()

    class Meta:
        db_table = TABLE

    def __str__(self) -> str:
        return self.name
