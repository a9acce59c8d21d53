"""Three indexes fewer on the call log: Django's own index of `contact_id`, `created_by_id` and `from_agent_id`,
each the first column of an index the call log's pages use already (call_contact_idx, call_user_idx,
call_agent_idx), which serves every lookup the single-column one did. Each write of a call's row that is not HOT
(most are: the state, the outcome and the number are indexed) wrote an entry in each: 24 indexes, now 21.

Only the indexes are dropped: Django's AlterField would also drop and add again the foreign keys, which checks every
call under a lock (seconds at 5 M calls)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

DROPPED = [
    ("calls_call_contact_id_9da4d952", "contact_id"),
    ("calls_call_created_by_id_1ecc9d1d", "created_by_id"),
    ("calls_call_from_agent_id_4b8e8b08", "from_agent_id"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0028_privacy"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"', reverse_sql=f'CREATE INDEX "{name}" ON "calls_call" ("{column}")'
                )
                for name, column in DROPPED
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="call",
                    name="contact",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="calls",
                        to="calls.contact",
                    ),
                ),
                migrations.AlterField(
                    model_name="call",
                    name="created_by",
                    field=models.ForeignKey(
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="calls_made",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="call",
                    name="from_agent",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="calls_from",
                        to="calls.agent",
                    ),
                ),
            ],
        )
    ]
