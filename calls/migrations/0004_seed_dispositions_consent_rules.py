"""Seed the disposition list and the per-country recording consent defaults that admins then edit."""

from django.db import migrations

from calls.defaults import ensure_defaults


def seed(apps, schema_editor):
    ensure_defaults(apps.get_model("calls", "DispositionCode"), apps.get_model("calls", "ConsentRule"))


class Migration(migrations.Migration):
    dependencies = [("calls", "0003_dispositions_consent_rules")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
