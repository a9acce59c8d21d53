from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender: AppConfig, **kwargs: object) -> None:
    from calls.roles import sync_roles

    sync_roles()


class CallsConfig(AppConfig):
    name = "calls"
    verbose_name = "Click-to-call CRM"

    def ready(self) -> None:
        # Later migrations add models and permissions; keep the roles' permissions complete after each migrate.
        post_migrate.connect(_sync_roles, sender=self)
