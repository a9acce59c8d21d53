"""The indexes of a call's colleague called and group answerer hold only the calls that have one. Most calls have
neither, and each of their rows written again (a retention pass rewrites every old row) took an entry under NULL in
both: at 5 M calls a first pass masked 9,438 calls a second without them against 7,848 with (bench/README.md).

SQLite makes the call table again to alter it, which drops the triggers of 0037: they are made again here."""

import importlib

import django.db.models.deletion
from django.db import migrations, models


KEYS = importlib.import_module("calls.migrations.0037_call_keys_tables")


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0038_call_vcc_id_no_like_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="call",
            name="answered_by",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="calls_answered",
                to="calls.agent",
            ),
        ),
        migrations.AlterField(
            model_name="call",
            name="to_agent",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="calls_to",
                to="calls.agent",
            ),
        ),
        migrations.AddIndex(
            model_name="call",
            index=models.Index(
                condition=models.Q(("to_agent__isnull", False)), fields=["to_agent"], name="call_to_agent_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="call",
            index=models.Index(
                condition=models.Q(("answered_by__isnull", False)), fields=["answered_by"], name="call_answered_by_idx"
            ),
        ),
        migrations.RunPython(KEYS.on("sqlite", KEYS.SQLITE_SQL), migrations.RunPython.noop, elidable=False),
    ]
