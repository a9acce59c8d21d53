"""API tokens in the admin: everyone's, to see and revoke. A token is made by its owner (their profile's tokens page
or `create_api_token`), never here, and its prefix and hash are never edited; revoking is the action."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.contrib.admin.options import ActionLocation
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import pluralize
from django.utils import timezone

from calls import tokens
from calls.admin.base import BoundedSearch
from calls.admin.paging import BigListAdmin
from calls.models import ApiToken

if TYPE_CHECKING:
    from django.contrib.admin.options import Action


class StateFilter(admin.SimpleListFilter):
    """The token's state (ApiToken.state), as a filter on its columns."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("active", "Active"), ("expired", "Expired"), ("revoked", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> QuerySet[ApiToken]:
        now = timezone.now()
        if self.value() == "active":
            return queryset.usable(now=now)  # type: ignore[attr-defined]
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiToken)
class ApiTokenAdmin(BigListAdmin, BoundedSearch, admin.ModelAdmin):
    list_display = ["user", "name", "prefix", "scope_list", "created_at", "expires_at", "last_used_at", "state"]
    list_display_links = ["name"]
    list_filter = [StateFilter]
    search_fields = ["user__username", "name", "^prefix"]
    search_help_text = "A username, a token's name, or the start of its prefix (vcc_1a2b)."
    list_select_related = ["user"]
    show_full_result_count = False
    actions = ["revoke"]
    fields = [
        "user",
        "name",
        "prefix",
        "scopes",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    ]

    @admin.display(description="scopes")
    def scope_list(self, token: ApiToken) -> str:
        return ", ".join(token.scopes)

    @admin.display(description="state")
    def state(self, token: ApiToken) -> str:
        return token.state

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiToken]:
        # The hash is never shown, so never read.
        return super().get_queryset(request).defer("digest")

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> list[str]:
        return [str(field) for field in self.fields or []]

    def get_actions(
        self, request: HttpRequest, action_location: ActionLocation = ActionLocation.CHANGE_LIST
    ) -> dict[str, Action | None]:
        actions = super().get_actions(request, action_location)
        actions.pop("delete_selected", None)  # a token is revoked, and its row kept: who made it, who revoked it
        return actions

    @admin.action(description="Revoke the selected tokens", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        count = tokens.revoke(queryset, by=request.user)  # type: ignore[arg-type]
        if count:
            self.message_user(
                request, f"Revoked {count} token{pluralize(count)}: they are refused from now on.", messages.SUCCESS
            )
        else:
            self.message_user(request, "The selected tokens had already been revoked.", messages.INFO)

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("calls.change_apitoken")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made by their owner, shown to them once

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False  # read-only; revoking is the action

    def has_delete_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False
