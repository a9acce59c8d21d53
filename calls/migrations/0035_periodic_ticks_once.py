"""A periodic job's tick is queued once, however far behind one of the workers is.

Every worker queues every tick of every periodic job; Procrastinate keeps them from queueing one twice with a row per
tick in `procrastinate_periodic_defers` (unique per task and second), and deletes a task's older rows as it adds a newer
one. So a worker a second or more behind another, queueing tick T after the other queued T+1, finds T's row gone and
queues T again (tests/test_worker_faults.py saw it on a loaded machine). This trigger refuses a tick older than one
already queued: the insert then adds nothing, and Procrastinate takes that as "already deferred". The advisory lock,
held to the end of the inserting transaction, makes a worker wait for one queueing a newer tick of the same task at
that moment, and then see it.
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION calls_periodic_tick_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('calls_periodic_tick:' || NEW.task_name || ':' || NEW.periodic_id));
    IF EXISTS (
        SELECT 1 FROM procrastinate_periodic_defers
        WHERE task_name = NEW.task_name AND periodic_id = NEW.periodic_id AND defer_timestamp > NEW.defer_timestamp
    ) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER calls_periodic_tick_once BEFORE INSERT ON procrastinate_periodic_defers
    FOR EACH ROW EXECUTE FUNCTION calls_periodic_tick_once();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS calls_periodic_tick_once ON procrastinate_periodic_defers;
DROP FUNCTION IF EXISTS calls_periodic_tick_once();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0034_queue_job_indexes"),
        ("procrastinate", "0041_post_retry_failed_job"),
    ]

    operations = [migrations.RunPython(forward, backward)]
