from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from calls.models import Agent, AgentGroup, Call, CallbackNumber, ConsentRule, Contact, ContactPhone, DispositionCode


class ContactPhoneInline(admin.TabularInline):
    model = ContactPhone
    extra = 0


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["name", "company", "email", "owner", "do_not_call", "consent_override", "updated_at"]
    list_filter = ["do_not_call", "consent_override", "owner"]
    search_fields = ["name", "company", "email", "phones__number"]
    list_select_related = ["owner"]
    autocomplete_fields = ["owner"]
    inlines = [ContactPhoneInline]
    date_hierarchy = "created_at"


@admin.register(ContactPhone)
class ContactPhoneAdmin(admin.ModelAdmin):
    list_display = ["number", "label", "contact", "is_primary", "do_not_call"]
    list_filter = ["label", "is_primary", "do_not_call"]
    search_fields = ["number", "contact__name"]
    list_select_related = ["contact"]
    autocomplete_fields = ["contact"]


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["display_id", "name", "user", "is_active", "default_callback_number", "default_group", "group_list"]
    list_filter = ["is_active", "groups"]
    search_fields = ["display_id", "name", "user__username"]
    list_select_related = ["user", "default_callback_number", "default_group"]
    autocomplete_fields = ["user"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="groups")
    def group_list(self, agent: Agent) -> str:
        return ", ".join(g.display_id for g in agent.groups.all())


@admin.register(AgentGroup)
class AgentGroupAdmin(admin.ModelAdmin):
    list_display = ["display_id", "name", "member_count", "default_callback_number"]
    search_fields = ["display_id", "name"]
    filter_horizontal = ["members"]
    list_select_related = ["default_callback_number"]

    def get_queryset(self, request: HttpRequest):
        from django.db.models import Count

        return super().get_queryset(request).annotate(member_total=Count("members"))

    @admin.display(description="members", ordering="member_total")
    def member_count(self, group: AgentGroup) -> int:
        return group.member_total


@admin.register(CallbackNumber)
class CallbackNumberAdmin(admin.ModelAdmin):
    list_display = ["label", "number", "is_active", "is_default", "restricted_to"]
    list_filter = ["is_active", "is_default"]
    search_fields = ["label", "number"]
    filter_horizontal = ["allowed_agents", "allowed_groups"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).prefetch_related("allowed_agents", "allowed_groups")

    @admin.display(description="restricted to")
    def restricted_to(self, number: CallbackNumber) -> str:
        names = [a.name for a in number.allowed_agents.all()] + [g.name for g in number.allowed_groups.all()]
        return ", ".join(names) or "everyone"


@admin.register(Call)
class CallAdmin(admin.ModelAdmin):
    """The call log is evidence: admins may read it here, never edit or delete it."""

    list_display = [
        "requested_at",
        "state",
        "created_by",
        "from_agent",
        "destination",
        "contact",
        "presented_clid",
        "vcc_status",
        "result_reason",
        "disposition_code",
        "error_status",
        "latency_ms",
    ]
    list_filter = ["state", "vcc_status", "result_code", "disposition_code", "from_agent", "from_groups", "consent"]
    search_fields = ["to_number", "vcc_call_id", "contact__name", "error_message", "presented_clid", "notes"]
    list_select_related = ["created_by", "from_agent", "to_agent", "contact"]
    date_hierarchy = "requested_at"

    def get_readonly_fields(self, request: HttpRequest, obj: Call | None = None) -> list[str]:
        return [f.name for f in Call._meta.get_fields() if f.concrete]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Call | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Call | None = None) -> bool:
        return False


@admin.register(DispositionCode)
class DispositionCodeAdmin(admin.ModelAdmin):
    list_display = ["code", "description", "action", "is_active", "position"]
    list_editable = ["is_active", "position"]
    list_filter = ["is_active", "action"]
    search_fields = ["code", "description"]


@admin.register(ConsentRule)
class ConsentRuleAdmin(admin.ModelAdmin):
    list_display = ["country", "consent", "note"]
    list_filter = ["consent"]
    search_fields = ["country", "note"]
