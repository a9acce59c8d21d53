"""Users and roles (Django's groups) in Django's admin: the admin role gives the admin site; only superusers make
superusers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet, prefetch_related_objects
from django.forms.formsets import BaseFormSet
from django.http import HttpRequest, HttpResponse

from calls import roles
from calls.admin.base import BoundedSearch

if TYPE_CHECKING:
    from django.contrib.auth.models import User as UserModel

User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)


# In vccweb a Group is a role (agent, supervisor, admin: calls/roles.py), and the admin says so: "Roles" in the
# index, the list and the breadcrumbs. Only the names the admin reads; the migration state (Meta's original
# attributes) is Django's, so no migration of django.contrib.auth follows.
Group._meta.verbose_name = "role"
Group._meta.verbose_name_plural = "roles"


class RoleFilter(admin.RelatedFieldListFilter):
    """The users' filter by group, titled "role" rather than by the field's name."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = "role"


ROLE_NAMES = (roles.AGENT, roles.SUPERVISOR, roles.ADMIN)


@admin.register(Group)
class VccwebGroupAdmin(BoundedSearch, GroupAdmin):
    def get_readonly_fields(self, request: HttpRequest, obj: Group | None = None) -> list[str]:
        # The three roles get exactly their permissions from calls/roles.py after every migrate (sync_roles), and
        # are found by name: a change made here would be undone by the next upgrade, or leave the role behind.
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.name in ROLE_NAMES:
            fields += ["name", "permissions"]
        return fields

    def has_delete_permission(self, request: HttpRequest, obj: Group | None = None) -> bool:
        # A role deleted here takes the role from everyone in it (sync_roles makes it again, empty, at the next
        # upgrade): people change role on their own page instead. Django asks this of each object a bulk delete
        # selected too, and refuses the whole delete when one is a role.
        return (obj is None or obj.name not in ROLE_NAMES) and super().has_delete_permission(request, obj)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Group | None:
        group = super().get_object(request, object_id, from_field)
        if group is not None:  # a role's permissions shown read-only: their content types in one query, not each
            prefetch_related_objects([group], "permissions__content_type")
        return group

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        group = self.get_object(request, object_id)
        if request.method == "GET" and group is not None and group.name in ROLE_NAMES:
            self.message_user(
                request,
                f"The {group.name} role's permissions are vccweb's own (README, Roles) and are set again by every "
                "upgrade, so they are not edited here: give people another role, or a group of your own.",
                messages.INFO,
            )
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(User)
class VccwebUserAdmin(BoundedSearch, UserAdmin):
    list_display = ["username", "email", "first_name", "last_name", "role", "is_staff", "is_superuser", "is_active"]
    list_filter = [("groups", RoleFilter), "is_staff", "is_superuser", "is_active"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[UserModel]:
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="role")
    def role(self, user: UserModel) -> str:
        return ", ".join(g.name for g in user.groups.all())

    def get_readonly_fields(self, request: HttpRequest, obj: UserModel | None = None) -> list[str]:
        # Staff status follows the admin role (calls.roles.sync_staff); who is a superuser, only superusers decide.
        fields = [*super().get_readonly_fields(request, obj), "is_staff"]
        if not request.user.is_superuser:
            fields.append("is_superuser")
        return fields

    def get_form(
        self, request: HttpRequest, obj: UserModel | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm[UserModel]]:
        form = super().get_form(request, obj, change=change, **kwargs)
        if "groups" in form.base_fields:
            form.base_fields["groups"].label = "Roles"
            form.base_fields[
                "groups"
            ].help_text = "The role: agent, supervisor or admin. Admins get the admin site (staff status follows)."
        return form

    def _guards_superuser(self, request: HttpRequest, obj: UserModel | None) -> bool:
        return obj is not None and obj.is_superuser and not request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: UserModel | None = None) -> bool:
        if self._guards_superuser(request, obj):
            return False  # shown read-only: no password, flags or groups of a superuser changed by a lesser admin
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: UserModel | None = None) -> bool:
        if self._guards_superuser(request, obj):
            return False
        return super().has_delete_permission(request, obj)

    def save_related(
        self,
        request: HttpRequest,
        form: forms.ModelForm[UserModel],
        formsets: list[BaseFormSet[forms.ModelForm[Any]]],
        change: bool,
    ) -> None:
        super().save_related(request, form, formsets, change)
        roles.sync_staff([form.instance])  # also when the groups did not change but superuser status did

    def save_model(self, request: HttpRequest, obj: UserModel, form: forms.ModelForm[UserModel], change: bool) -> None:
        if obj.is_superuser and not request.user.is_superuser:
            raise PermissionDenied("Only a superuser can make someone a superuser.")
        super().save_model(request, obj, form, change)
