"""Django gives a CharField primary key a second index, for LIKE (varchar_pattern_ops), made at the end of 0037; VCC's
call id is only ever looked up whole, and each index is one more write for each call VCC answers."""

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'calls_callvccid' AND indexname LIKE %s", ["%\\_like"]
        )
        names = [name for (name,) in cursor.fetchall()]
    for name in names:
        schema_editor.execute(f'DROP INDEX "{name}"')


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0037_call_keys_tables"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False)]
