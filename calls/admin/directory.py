"""VCC's side in Django's admin: agents (one page sets up the login, the agent display ID, the groups and the
default caller ID) and agent groups; callback numbers (caller IDs) are in calls/admin/callbacknumbers.py."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypedDict, cast

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import ActionLocation
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.forms.formsets import BaseFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from calls import roles
from calls.admin.base import AdminMixin, BoundedSearch
from calls.models import (
    Agent,
    AgentGroup,
    Call,
    CallbackNumber,
    SyncRun,
)

if TYPE_CHECKING:
    from django.contrib.admin.options import Action, _FieldsetSpec
    from django.contrib.auth.models import AnonymousUser, User
    from django_stubs_ext import WithAnnotations

# --- Agents: one page sets up the login, the agent display ID, the groups and the default caller ID ---------

ROLE_CHOICES = [(roles.AGENT, "Agent"), (roles.SUPERVISOR, "Supervisor"), (roles.ADMIN, "Admin")]


class AgentForm(forms.ModelForm):
    groups = forms.ModelMultipleChoiceField(
        AgentGroup.objects.all(),
        required=False,
        widget=FilteredSelectMultiple("groups", is_stacked=False),
        help_text="The VCC groups this agent belongs to (the sync from VCC also sets them).",
    )
    new_username = forms.CharField(
        label="Or create a login: username",
        required=False,
        max_length=150,
        help_text="For someone without a login yet: leave “user” empty and fill these in.",
    )
    new_email = forms.EmailField(label="Email", required=False)
    new_password = forms.CharField(
        label="Password", required=False, strip=False, widget=forms.PasswordInput(render_value=False)
    )
    role = forms.ChoiceField(
        choices=[("", "no role (agent for a new login)"), *ROLE_CHOICES],
        required=False,
        help_text="What the login may do in vccweb. Admin also gives the admin site.",
    )

    request_user: User | AnonymousUser | None = None  # set by AgentAdmin.get_form: who is filling the form in

    class Meta:
        model = Agent
        fields = ["display_id", "name", "user", "is_active", "default_callback_number", "default_group"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["groups"].initial = list(self.instance.groups.all())
        if self.instance.user_id:
            self.fields["role"].initial = current_role(self.instance.user)
        if "default_callback_number" in self.fields:
            offer_active_numbers(self, self.instance.default_callback_number_id)
        if "default_group" in self.fields:
            offer_active_groups(self, self.instance.default_group)

    vcc_warning = ""  # set by clean_display_id when VCC could not be asked: said after the save

    def clean_display_id(self) -> str:
        display_id = str(self.cleaned_data["display_id"]).strip()
        if display_id and (self.instance.pk is None or display_id != self.instance.display_id):
            from calls.calling.syncing import agent_known_to_vcc

            known, self.vcc_warning = agent_known_to_vcc(display_id)
            if known is False:
                raise ValidationError(
                    f"VCC has no agent with the display ID “{display_id}”. Copy the agent's ID from VCC's admin "
                    "(Users, the agent, Agent ID) and save again; the sync from VCC fills it in for you too."
                )
        return display_id

    def clean_new_username(self) -> str:
        username = self.cleaned_data["new_username"].strip()
        if username and get_user_model().objects.filter(username__iexact=username).exists():
            raise ValidationError("Someone already has this username: choose them as “user” instead.")
        return username

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what ModelForm.clean returns (django-stubs: BaseForm's "or None")
        user, username = data.get("user"), data.get("new_username")
        if user and username:
            raise ValidationError("Choose an existing login or create a new one, not both.")
        if username:
            password = data.get("new_password") or ""
            if not password:
                self.add_error("new_password", "A new login needs a password.")
            else:
                try:
                    validate_password(password, get_user_model()(username=username, email=data.get("new_email", "")))
                except ValidationError as error:
                    self.add_error("new_password", error)
        if (
            user
            and user.is_superuser
            and data.get("role", "") != current_role(user)
            and not getattr(self.request_user, "is_superuser", False)
        ):
            self.add_error("role", "Only a superuser can change a superuser's role.")
        # The select shows the linked login's role: left as shown while "user" is cleared, it unlinks the login.
        if data.get("role") and not (user or username) and "role" in self.changed_data:
            self.add_error("role", "A role needs a login: choose a user or create one.")
        number = data.get("default_callback_number")
        if number and not _may_present(number, self.instance, data.get("groups") or []):
            self.add_error(
                "default_callback_number",
                f"{number} is restricted to other agents and groups: allow this agent there, or pick another.",
            )
        return data


def current_role(user: User) -> str:
    """The user's role, when they have exactly one of the three; "" otherwise."""
    names = {g.name for g in user.groups.all()} & {role for role, _ in ROLE_CHOICES}
    return names.pop() if len(names) == 1 else ""


def _may_present(number: CallbackNumber, agent: Agent, groups: Iterable[AgentGroup]) -> bool:
    """Whether the number's restriction lets this agent (with these groups, maybe not yet saved) present it."""
    if not number.is_restricted:
        return True
    if agent.pk and number.allowed_agents.filter(pk=agent.pk).exists():
        return True
    return number.allowed_groups.filter(pk__in=[g.pk for g in groups]).exists()


class KeptWhileInUse(admin.ModelAdmin):
    """The delete page of an object the call log names (`_in_use`): its own page instead, saying why it is kept."""

    @staticmethod
    def _in_use(obj: Any) -> bool:
        raise NotImplementedError

    def _kept_words(self, obj: Any) -> str:
        raise NotImplementedError

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        obj = self.get_object(request, object_id)
        if obj is not None and self._in_use(obj):
            if not self.has_delete_permission(request):
                raise PermissionDenied
            self.message_user(request, self._kept_words(obj), messages.WARNING)
            page = f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change"
            return HttpResponseRedirect(reverse(page, args=[obj.pk]))
        return super().delete_view(request, object_id, extra_context)


class ActiveFromVCC(AdminMixin):
    """`active` shown, not offered, while the sync from VCC is on: every run sets it from VCC (calls/sync.py), so an
    admin's tick or untick would be undone within the hour. `vcc_side` says what to do in VCC instead."""

    vcc_side = ""

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> list[str]:
        excluded = list(super().get_exclude(request, obj) or [])
        return [*excluded, "is_active"] if settings.VCC_SYNC_ENABLED else excluded

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "active_in_vcc"] if settings.VCC_SYNC_ENABLED else fields

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> _FieldsetSpec:
        fieldsets = super().get_fieldsets(request, obj)
        if not settings.VCC_SYNC_ENABLED or not self.fieldsets:
            return fieldsets  # without fieldsets of its own, Django puts the read-only field last, as is_active was
        return [
            (name, {**options, "fields": ["active_in_vcc" if f == "is_active" else f for f in options["fields"]]})
            for name, options in fieldsets
        ]

    @admin.display(description="active")
    def active_in_vcc(self, obj: Agent | AgentGroup) -> str:
        state = "Yes" if obj.is_active else "No"
        run = SyncRun.objects.filter(dry_run=False, error="", finished_at__isnull=False).order_by("-started_at")
        last = run.values_list("finished_at", flat=True).first()
        when = f"last run {last:%Y-%m-%d %H:%M} UTC" if last else "it has not run yet"
        return f"{state}. VCC decides: the sync from VCC sets it ({when}). {self.vcc_side}"


@admin.register(Agent)
class AgentAdmin(BoundedSearch, ActiveFromVCC, KeptWhileInUse):
    vcc_side = "To retire the agent, deactivate or delete the user in VCC; to bring them back, activate them there."
    form = AgentForm
    list_display = [
        "display_id",
        "name",
        "user",
        "is_active",
        "default_callback_number",
        "default_group_shown",
        "group_list",
    ]
    list_filter = ["is_active", "groups"]
    search_fields = ["display_id", "name", "user__username"]
    list_select_related = ["user", "default_callback_number", "default_group"]
    autocomplete_fields = ["user"]
    readonly_fields = ["vcc_user_id"]
    fieldsets = [
        (None, {"fields": ["display_id", "name", "is_active"]}),
        ("Login", {"fields": ["user", "new_username", "new_email", "new_password", "role"]}),
        ("Calling", {"fields": ["groups", "default_callback_number", "default_group"]}),
        ("From VCC", {"fields": ["vcc_user_id"], "classes": ["collapse"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Agent]:
        return super().get_queryset(request).prefetch_related("groups")

    @staticmethod
    def _in_use(agent: Agent) -> bool:
        # Its calls protect it (the call log is evidence): Django's confirmation would list every one of them.
        calls = Call.objects.filter(Q(from_agent=agent) | Q(answered_by=agent) | Q(to_agent=agent))
        return calls.exists()

    def get_actions(
        self, request: HttpRequest, action_location: ActionLocation = ActionLocation.CHANGE_LIST
    ) -> dict[str, Action | None]:
        actions = super().get_actions(request, action_location=action_location)
        actions.pop("delete_selected", None)  # agents are retired (in VCC, or unticked without the sync), not deleted
        return actions

    def _kept_words(self, agent: Agent) -> str:
        if settings.VCC_SYNC_ENABLED:
            retire = "deactivate the user in VCC to retire it (the sync from VCC then retires it here)"
        else:
            retire = "untick “active” to retire it"
        return f"{agent} has calls in the log, so it is kept with them: {retire}."

    def get_form(
        self, request: HttpRequest, obj: Agent | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm[Agent]]:
        # Django's form class for this page is made from self.form: an AgentForm.
        form = cast("type[AgentForm]", super().get_form(request, obj, change=change, **kwargs))
        form.request_user = request.user
        return form

    @admin.display(description="default group", ordering="default_group__name")
    def default_group_shown(self, agent: Agent) -> str:
        group = agent.default_group
        if group is None:
            return "-"
        return str(group) if group.is_active else format_html("{} <strong>(retired: pick another)</strong>", group)

    @admin.display(description="groups")
    def group_list(self, agent: Agent) -> str:
        return ", ".join(g.display_id for g in agent.groups.all())

    def save_model(self, request: HttpRequest, obj: Agent, form: AgentForm, change: bool) -> None:
        data = form.cleaned_data
        if data.get("new_username"):
            full = data.get("name", "").split(" ", 1)
            obj.user = get_user_model().objects.create_user(
                username=data["new_username"],
                email=data.get("new_email") or "",
                password=data["new_password"],
                first_name=full[0],
                last_name=full[1] if len(full) > 1 else "",
            )
        super().save_model(request, obj, form, change)
        if form.vcc_warning:
            self.message_user(request, form.vcc_warning, messages.WARNING)
        role = data.get("role") or (roles.AGENT if data.get("new_username") else "")
        if role and obj.user and role != current_role(obj.user):
            roles.assign_role(obj.user, role)

    def save_related(
        self, request: HttpRequest, form: AgentForm, formsets: list[BaseFormSet[forms.ModelForm[Any]]], change: bool
    ) -> None:
        super().save_related(request, form, formsets, change)
        agent = form.instance
        agent.groups.set(form.cleaned_data.get("groups") or [])
        number = agent.default_callback_number
        if number and number.vcc_listing_synced_at and not number.vcc_listed_for.filter(pk=agent.pk).exists():
            self.message_user(
                request,
                f"VCC does not list {number} for this agent, so it will not be offered to them: add it to the "
                "agent in VCC, then run the sync.",
                messages.WARNING,
            )


DEFAULT_FOR_SHOWN = 20  # agents named on a group's page as having it for default; the rest counted


class _MemberTotal(TypedDict):
    member_total: int  # AgentGroupAdmin.get_queryset's annotation


def offer_active_numbers(form: forms.ModelForm, current: int | None) -> None:
    """The default number's menu: active numbers, and the current default even if deactivated since (marked so):
    left out, it would be cleared, unsaid, by a save of the page made for anything else."""
    numbers = cast("forms.ModelChoiceField[CallbackNumber]", form.fields["default_callback_number"])  # a FK's
    numbers.queryset = CallbackNumber.objects.filter(Q(is_active=True) | Q(pk=current or 0))
    numbers.label_from_instance = lambda n: str(n) if n.is_active else f"{n} (deactivated)"  # type: ignore[method-assign,assignment]


def offer_active_groups(form: forms.ModelForm, current: AgentGroup | None) -> None:
    """The default group's menu: active groups, and the current default even if retired since (marked so, and said
    under the menu): a retired group is never newly chosen (a call via it is refused), and a save of the page made
    for anything else does not clear it unsaid."""
    field = cast("forms.ModelChoiceField[AgentGroup]", form.fields["default_group"])  # a FK's
    field.queryset = AgentGroup.objects.filter(Q(is_active=True) | Q(pk=current.pk if current else 0))
    field.label_from_instance = lambda g: str(g) if g.is_active else f"{g} (retired)"  # type: ignore[method-assign,assignment]
    field.error_messages["invalid_choice"] = (
        "That group is retired (VCC no longer has it, so a call via it is refused) or was deleted: pick an active "
        "group, or leave it empty (the agent's first group is then preselected)."
    )
    if current is not None and not current.is_active:
        # Django's admin shows help text as HTML; the group's name is VCC's.
        field.help_text = format_html(
            "{} is retired: VCC no longer has it, so the agent's calls via it are refused. Pick an active group, or "
            "leave it empty.",
            current,
        )


class AgentGroupForm(forms.ModelForm):
    class Meta:
        model = AgentGroup
        fields = ["display_id", "name", "members", "default_callback_number", "vcc_group_id", "is_active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "default_callback_number" in self.fields:
            offer_active_numbers(self, self.instance.default_callback_number_id)

    def clean_default_callback_number(self) -> CallbackNumber | None:
        # A call via groups presents a restricted number only when one of its groups is allowed (usable_by):
        # another group's number, or an agent's, would never be this group's default.
        number: CallbackNumber | None = self.cleaned_data.get("default_callback_number")
        if (
            number is not None
            and number.is_restricted
            and not (self.instance.pk and number.allowed_groups.filter(pk=self.instance.pk).exists())
        ):
            raise ValidationError(
                f"{number} is restricted to other agents and groups: allow this group there, or pick another."
            )
        return number


@admin.register(AgentGroup)
class AgentGroupAdmin(BoundedSearch, ActiveFromVCC, KeptWhileInUse):
    vcc_side = "A group is active while VCC has it: to retire it, delete it in VCC."
    form = AgentGroupForm
    list_display = ["display_id", "name", "is_active", "member_count", "default_callback_number"]
    list_filter = ["is_active"]
    search_fields = ["display_id", "name"]
    filter_horizontal = ["members"]
    list_select_related = ["default_callback_number"]
    readonly_fields = ["default_for"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[AgentGroup]:
        from django.db.models import Count

        return super().get_queryset(request).annotate(member_total=Count("members"))

    @admin.display(description="members", ordering="member_total")
    def member_count(self, group: WithAnnotations[AgentGroup, _MemberTotal]) -> int:
        return group.member_total

    @admin.display(description="default group of")
    def default_for(self, group: AgentGroup) -> str:
        agents = (
            list(Agent.objects.filter(default_group=group).order_by("name")[:DEFAULT_FOR_SHOWN]) if group.pk else []
        )
        if not agents:
            return "No agent"
        more = (
            Agent.objects.filter(default_group=group).count() - len(agents) if len(agents) == DEFAULT_FOR_SHOWN else 0
        )
        links = format_html_join(
            ", ", '<a href="{}">{}</a>', ((reverse("admin:calls_agent_change", args=[a.pk]), a) for a in agents)
        )
        shown = format_html("{}{}", links, f" and {more} more" if more else "")
        if group.is_active:
            return shown
        return format_html(
            "<strong>Retired, yet the default group of these agents: their calls via it are refused. Pick another "
            "default group on each agent's page.</strong><br>{}",
            shown,
        )

    # --- Deleting: a group calls went via is kept --------------------------------------------------

    @staticmethod
    def _in_use(group: AgentGroup) -> bool:
        # Deleting it would take it off its calls (the log would say they came from nobody) and delete its roll-ups.
        return Call.from_groups.through.objects.filter(agentgroup=group).exists()

    def has_delete_permission(self, request: HttpRequest, obj: AgentGroup | None = None) -> bool:
        if obj is not None and self._in_use(obj):
            return False
        return super().has_delete_permission(request, obj)

    def _kept_words(self, group: AgentGroup) -> str:
        return (
            f"Calls went via {group}, so it is kept for the call log and the reports; the sync from VCC retires it "
            "once VCC no longer has it."
        )
