"""Failures by VCC's reason now count failed calls only (not those that may have been placed): the roll-up's
rows of that facet were built with the old rule, so the whole roll-up is built again on the next run of
`manage.py rollup_calls` (or the call-following worker). Until then reports count every day from the calls.
Run `manage.py rollup_calls` once after migrating, before starting the worker (about 45 s at 5 million calls on
2 cores): otherwise the worker's first round rebuilds it, and follows no call meanwhile."""

from django.db import migrations


def rebuild_on_next_run(apps, schema_editor):
    apps.get_model("calls", "CallRollupState").objects.update(built_through=None)


class Migration(migrations.Migration):
    dependencies = [("calls", "0010_contacts_search")]

    operations = [migrations.RunPython(rebuild_on_next_run, migrations.RunPython.noop)]
