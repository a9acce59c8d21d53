"""A periodic tick queued by a worker whose clock ran ahead no longer holds back every other tick (0035's trigger).

0035 refuses a tick older than one already queued. A host whose clock ran fast queued ticks ahead of everyone's time,
so once its clock was put right (or it went away), no worker could queue any periodic job (following calls, the
webhooks' fan-out, retry_stalled_jobs, ...) until real time caught up with its last tick, and restarting the
workers did not help. A newer tick now holds the others back only if it is not ahead of the database's clock by more
than AHEAD seconds, and one further ahead is deleted as the next tick comes (else it would count again once real time
came within AHEAD of it): workers whose clocks agree keep 0035's guarantee, and a clock that ran ahead costs at most
a tick queued twice (every periodic job allows it).
"""

from django.db import migrations

AHEAD = 60

FORWARD = f"""
CREATE OR REPLACE FUNCTION calls_periodic_tick_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('calls_periodic_tick:' || NEW.task_name || ':' || NEW.periodic_id));
    -- Gone, not merely passed over: Procrastinate deletes only ticks older than the one it queues, so a tick far
    -- ahead would be counted again once real time came within AHEAD of it, and hold every tick back then.
    -- Not this very tick: Procrastinate's ON CONFLICT keeps a tick once, and would not see it gone.
    DELETE FROM procrastinate_periodic_defers
    WHERE task_name = NEW.task_name AND periodic_id = NEW.periodic_id
      AND defer_timestamp > extract(epoch FROM now()) + {AHEAD} AND defer_timestamp <> NEW.defer_timestamp;
    IF EXISTS (
        SELECT 1 FROM procrastinate_periodic_defers
        WHERE task_name = NEW.task_name AND periodic_id = NEW.periodic_id AND defer_timestamp > NEW.defer_timestamp
    ) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END;
$$;
"""

BACKWARD = """
CREATE OR REPLACE FUNCTION calls_periodic_tick_once() RETURNS trigger LANGUAGE plpgsql AS $$
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
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("calls", "0043_webhook_previous_secrets")]

    operations = [migrations.RunPython(forward, backward)]
