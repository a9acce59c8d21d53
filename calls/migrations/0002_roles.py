"""Create the three roles (agent, supervisor, admin) as Django groups with their permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from calls.roles import ADMIN, ROLE_PERMISSIONS, sync_roles


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    sync_roles(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=[*ROLE_PERMISSIONS, ADMIN]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
