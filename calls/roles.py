"""The three roles, as Django groups with permissions. A data migration creates them; seed_demo assigns them."""

from __future__ import annotations

from calls import permissions as perms

AGENT = "agent"
SUPERVISOR = "supervisor"
ADMIN = "admin"

_AGENT_PERMS = [
    perms.VIEW_CONTACT,
    perms.ADD_CONTACT,
    perms.CHANGE_CONTACT,
    "calls.view_contactphone",
    "calls.add_contactphone",
    "calls.change_contactphone",
    "calls.delete_contactphone",
    perms.VIEW_AGENT,
    "calls.view_agentgroup",
    "calls.view_callbacknumber",
    perms.VIEW_CALL,
    perms.PLACE_CALL,
]
_SUPERVISOR_PERMS = [
    *_AGENT_PERMS,
    perms.DELETE_CONTACT,
    perms.EXPORT_CONTACTS,
    perms.PLACE_GROUP_CALL,
    perms.OVERRIDE_DO_NOT_CALL,
    perms.VIEW_ALL_CALLS,
    perms.VIEW_REPORTS,
]

# Admin gets every permission of these apps (and is_staff, for the Django admin).
ADMIN_APPS = ("calls", "auth")

ROLE_PERMISSIONS: dict[str, list[str]] = {AGENT: _AGENT_PERMS, SUPERVISOR: _SUPERVISOR_PERMS}


def assign_role(user, role: str) -> None:
    """Put user in exactly one role; admins also get is_staff so they can use the Django admin."""
    from django.contrib.auth.models import Group

    if not Group.objects.filter(name=role).exists():
        sync_roles()  # the role groups were deleted (or the database flushed): bring them back
    user.groups.set([Group.objects.get(name=role)])
    user.is_staff = role == ADMIN
    user.save(update_fields=["is_staff"])


def sync_roles(group_model=None, permission_model=None) -> None:
    """Create the role groups and give them exactly their permissions (run by a migration and after every migrate)."""
    if group_model is None or permission_model is None:
        from django.contrib.auth.models import Group as group_model
        from django.contrib.auth.models import Permission as permission_model

    def perms(codes: list[str]) -> list:
        found = []
        for code in codes:
            app_label, codename = code.split(".")
            found.append(permission_model.objects.get(content_type__app_label=app_label, codename=codename))
        return found

    for role, codes in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        group.permissions.set(perms(codes))
    admin, _ = group_model.objects.get_or_create(name=ADMIN)
    admin.permissions.set(permission_model.objects.filter(content_type__app_label__in=ADMIN_APPS))
