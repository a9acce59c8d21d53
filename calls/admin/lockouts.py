"""Lock-outs in the admin: who is locked out (an account or an address), since when, until when; lift one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.contrib.admin.options import ActionLocation
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import pluralize

from calls import logins
from calls.admin.base import BoundedSearch
from calls.models import LockOut

if TYPE_CHECKING:
    from django.contrib.admin.options import Action


@admin.register(LockOut)
class LockOutAdmin(BoundedSearch, admin.ModelAdmin):
    list_display = ["name", "kind", "since", "until", "failures"]
    list_display_links = None
    list_filter = ["kind"]
    search_fields = ["name"]
    actions = ["lift"]
    ordering = ["-since"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[LockOut]:
        return super().get_queryset(request).filter(until__gt=logins.now())  # current ones only

    def get_actions(
        self, request: HttpRequest, action_location: ActionLocation = ActionLocation.CHANGE_LIST
    ) -> dict[str, Action | None]:
        actions = super().get_actions(request, action_location)
        actions.pop("delete_selected", None)  # lifting is deleting, and forgetting the failures too
        return actions

    @admin.action(description="Lift the selected lock-outs", permissions=["delete"])
    def lift(self, request: HttpRequest, queryset: QuerySet[LockOut]) -> None:
        count = logins.lift(queryset, by=request.user.get_username())
        if count:
            self.message_user(request, f"Lifted {count} lock-out{pluralize(count)}.", messages.SUCCESS)
        else:
            self.message_user(request, "The selected lock-outs had already ended or been lifted.", messages.INFO)

    def delete_model(self, request: HttpRequest, obj: LockOut) -> None:
        logins.lift(LockOut.objects.filter(pk=obj.pk), by=request.user.get_username())

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[LockOut]) -> None:
        logins.lift(queryset, by=request.user.get_username())

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # only failed logins lock out

    def has_change_permission(self, request: HttpRequest, obj: LockOut | None = None) -> bool:
        return False
