"""The three roles, as Django groups with permissions. A data migration creates them; seed_demo assigns them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from calls import permissions as perms

if TYPE_CHECKING:  # the migrations import this module, and pass their historical models to sync_roles
    from django.contrib.auth.models import Group, Permission, User

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
    perms.VIEW_CALLBACK,
    perms.ADD_CALLBACK,
    perms.CHANGE_CALLBACK,
    perms.VIEW_QUEUE,
    perms.WORK_QUEUE,
]
_SUPERVISOR_PERMS = [
    *_AGENT_PERMS,
    perms.DELETE_CONTACT,
    perms.EXPORT_CONTACTS,
    perms.PLACE_GROUP_CALL,
    perms.OVERRIDE_DO_NOT_CALL,
    perms.VIEW_ALL_CALLS,
    perms.VIEW_REPORTS,
    perms.VIEW_INTEGRATION_HEALTH,
    perms.ERASE_CONTACT,
    perms.EXPORT_SUBJECT_DATA,
    perms.OVERRIDE_CALLING_HOURS,
    perms.ADD_QUEUE,
    perms.CHANGE_QUEUE,
]

# Admin gets every permission of these apps (and is_staff, for the Django admin).
ADMIN_APPS = ("calls", "auth")

ROLE_PERMISSIONS: dict[str, list[str]] = {AGENT: _AGENT_PERMS, SUPERVISOR: _SUPERVISOR_PERMS}


def assign_role(user: User, role: str) -> None:
    """Put user in exactly one role; admins also get is_staff (see `sync_staff`) so they can use the Django admin."""
    from django.contrib.auth.models import Group

    if not Group.objects.filter(name=role).exists():
        sync_roles()  # the role groups were deleted (or the database flushed): bring them back
    user.groups.set([Group.objects.get(name=role)])  # sync_staff follows, through the m2m_changed signal
    sync_staff([user])  # and when the groups were already these


def staff_status(user: User) -> bool:
    """Whether user may use the Django admin: they have the admin role (superusers always may)."""
    return bool(user.is_superuser or user.groups.filter(name=ADMIN).exists())


def sync_staff(users: Iterable[User]) -> None:
    """Make is_staff follow the admin role for these users (saved users; in-memory copies are updated too)."""
    from django.contrib.auth import get_user_model

    from calls.auth import permissions_changed

    for user in users:
        staff = staff_status(user)
        if user.is_staff != staff:
            user.is_staff = staff
            get_user_model().objects.filter(pk=user.pk).update(is_staff=staff)
            permissions_changed()  # update() sends no signal; the user is cached with is_staff (calls/auth.py)


def groups_changed(
    sender: type, instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **kwargs: object
) -> None:
    """m2m_changed on User.groups, from either side (a user's groups, or a group's users).

    instance is a User, or (reverse) a Group, which carries `_clearing_users` from pre_clear to post_clear.
    """
    from django.contrib.auth import get_user_model

    if action not in ("post_add", "post_remove", "post_clear", "pre_clear"):
        return
    if reverse:  # instance is a Group: its users changed
        if action == "pre_clear":
            instance._clearing_users = list(instance.user_set.values_list("pk", flat=True))
            return
        pks = (pk_set or set()) if action != "post_clear" else getattr(instance, "_clearing_users", [])
        sync_staff(get_user_model().objects.filter(pk__in=pks))
    elif action != "pre_clear":
        sync_staff([instance])


def sync_roles(group_model: type[Group] | None = None, permission_model: type[Permission] | None = None) -> None:
    """Create the role groups and give them exactly their permissions (run by a migration and after every migrate)."""
    if group_model is None or permission_model is None:
        from django.contrib.auth.models import Group, Permission

        group_model, permission_model = Group, Permission

    def perms(codes: list[str]) -> list[Permission]:
        """The permissions named `app_label.codename`, in one query (every flush of a test database runs this)."""
        wanted = [(app, codename) for app, codename in (code.split(".", 1) for code in codes)]
        rows = permission_model.objects.filter(codename__in=[codename for _, codename in wanted])
        found = {(p.content_type.app_label, p.codename): p for p in rows.select_related("content_type")}
        missing = [f"{app}.{codename}" for app, codename in wanted if (app, codename) not in found]
        if missing:
            raise permission_model.DoesNotExist(f"No such permission: {', '.join(missing)}")
        return [found[key] for key in wanted]

    for role, codes in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        group.permissions.set(perms(codes))
    admin, _ = group_model.objects.get_or_create(name=ADMIN)
    admin.permissions.set(permission_model.objects.filter(content_type__app_label__in=ADMIN_APPS))
