from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import m2m_changed, post_delete, post_migrate, post_save, pre_save


def _sync_roles(sender: AppConfig, **kwargs: object) -> None:
    from calls.roles import sync_roles

    sync_roles()


def _sqlite_call_keys(sender: AppConfig, using: str = "default", **kwargs: object) -> None:
    """On SQLite, the triggers that keep the calls' keys (calls/models/callkeys.py), which a later migration that
    alters the call table drops with the table it makes again."""
    from django.db import connections

    from calls.models.callkeys import SQLITE_SQL

    connection = connections[using]
    if connection.vendor == "sqlite" and "calls_callrequestid" in connection.introspection.table_names():
        with connection.cursor() as cursor:
            for sql in SQLITE_SQL:
                cursor.execute(sql)


class CallsConfig(AppConfig):
    name = "calls"
    verbose_name = "Click-to-call CRM"

    def ready(self) -> None:
        from calls import (
            audit,
            checks,  # noqa: F401 (registers its checks)
            middleware,  # noqa: F401 (registers its deploy check)
        )

        # The audit trail: who is acting reaches the triggers through every connection; logins are recorded.
        audit.connect()

        # Later migrations add models and permissions; keep the roles' permissions complete after each migrate.
        post_migrate.connect(_sync_roles, sender=self)
        post_migrate.connect(_sqlite_call_keys, sender=self)
        # Giving someone the admin role gives them the admin site, wherever their groups change.
        from django.contrib.auth import get_user_model

        from calls.roles import groups_changed

        m2m_changed.connect(
            groups_changed, sender=get_user_model().groups.through, dispatch_uid="calls.staff_follows_admin"
        )
        # Permissions are cached per user (calls/auth.py): any change to who has what makes them all stale.
        from django.contrib.auth.models import Group

        from calls.auth import permissions_changed

        for through in (
            get_user_model().groups.through,
            get_user_model().user_permissions.through,
            Group.permissions.through,
        ):
            m2m_changed.connect(permissions_changed, sender=through, dispatch_uid=f"calls.perms.{through.__name__}")
        post_save.connect(permissions_changed, sender=get_user_model(), dispatch_uid="calls.perms.user")
        # A new password, whoever sets it, lifts the account's lock-out (calls/logins.py).
        from calls.logins import lift_on_new_password

        pre_save.connect(lift_on_new_password, sender=get_user_model(), dispatch_uid="calls.logins.new_password")
        # A deleted user or group: the user's row and sessions go, and a group's memberships go without m2m_changed.
        for model in (get_user_model(), Group):
            post_delete.connect(permissions_changed, sender=model, dispatch_uid=f"calls.perms.deleted.{model.__name__}")
        # A number added again after its contact was erased while it was do-not-call is do-not-call at once, by
        # whatever path adds it (the form, the API, an import's update, the admin; an import's new contacts:
        # calls/imports.py), and a click to it is refused in any case (calls/calling/placing.py).
        from calls.models import ContactPhone
        from calls.privacy.hashing import mark_erased_opt_out

        pre_save.connect(mark_erased_opt_out, sender=ContactPhone, dispatch_uid="calls.privacy.erased_opt_out")
        # Deleting a contact keeps its opt-outs as erasing does; clearing a number's do-not-call forgets its own.
        from django.db.models.signals import pre_delete

        from calls.models import Contact
        from calls.privacy import hashing

        pre_delete.connect(hashing.keep_opt_outs_of_deleted_contact, sender=Contact, dispatch_uid="calls.privacy.kept")
        pre_save.connect(hashing.forget_cleared_opt_out, sender=ContactPhone, dispatch_uid="calls.privacy.forget")
        # The caller's agent, callback numbers, the consent table and the calling hours are cached for the click
        # (calls/directory.py); an admin's change must show at once.
        from calls import directory
        from calls.models import Agent, AgentGroup, CallbackNumber, CallingHours, ConsentRule, Holiday

        for cached in (Agent, AgentGroup, CallbackNumber, ConsentRule, CallingHours, Holiday):
            post_save.connect(directory.changed, sender=cached, dispatch_uid=f"calls.directory.saved.{cached.__name__}")
            post_delete.connect(
                directory.changed, sender=cached, dispatch_uid=f"calls.directory.deleted.{cached.__name__}"
            )
        # Deleting a user unlinks their agent with a plain UPDATE (on_delete=SET_NULL), which sends no signal.
        post_delete.connect(directory.changed, sender=get_user_model(), dispatch_uid="calls.directory.deleted.user")
        for link in (
            AgentGroup.members.through,
            CallbackNumber.allowed_agents.through,
            CallbackNumber.allowed_groups.through,
            CallbackNumber.vcc_listed_for.through,
        ):
            m2m_changed.connect(directory.changed, sender=link, dispatch_uid=f"calls.directory.{link.__name__}")
