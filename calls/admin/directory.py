"""VCC's side in Django's admin: agents (one page sets up the login, the agent display ID, the groups and the
default caller ID), agent groups, and callback numbers (caller IDs)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.contrib.admin.options import ActionLocation
from django.contrib.admin.views.main import ChangeList
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.forms.formsets import BaseFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import format_html

from calls import directory, phones, roles
from calls.admin.base import BoundedSearch, PhoneNumberField
from calls.models import (
    Agent,
    AgentGroup,
    Call,
    CallbackNumber,
)

if TYPE_CHECKING:
    from django.contrib.admin.options import Action
    from django.contrib.auth.models import AnonymousUser, User
    from django_stubs_ext import WithAnnotations

    from calls.models.directory import CallbackNumberQuerySet

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


@admin.register(Agent)
class AgentAdmin(BoundedSearch, KeptWhileInUse):
    form = AgentForm
    list_display = ["display_id", "name", "user", "is_active", "default_callback_number", "default_group", "group_list"]
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
        actions.pop("delete_selected", None)  # agents are retired (untick active, or the sync does), not deleted
        return actions

    def _kept_words(self, agent: Agent) -> str:
        return (
            f"{agent} has calls in the log, so it is kept with them: untick “active” to retire it (the sync from VCC "
            "retires it too once VCC no longer has it)."
        )

    def get_form(
        self, request: HttpRequest, obj: Agent | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm[Agent]]:
        # Django's form class for this page is made from self.form: an AgentForm.
        form = cast("type[AgentForm]", super().get_form(request, obj, change=change, **kwargs))
        form.request_user = request.user
        return form

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


class _MemberTotal(TypedDict):
    member_total: int  # AgentGroupAdmin.get_queryset's annotation


def offer_active_numbers(form: forms.ModelForm, current: int | None) -> None:
    """The default number's menu: active numbers, and the current default even if deactivated since (marked so):
    left out, it would be cleared, unsaid, by a save of the page made for anything else."""
    numbers = cast("forms.ModelChoiceField[CallbackNumber]", form.fields["default_callback_number"])  # a FK's
    numbers.queryset = CallbackNumber.objects.filter(Q(is_active=True) | Q(pk=current or 0))
    numbers.label_from_instance = lambda n: str(n) if n.is_active else f"{n} (deactivated)"  # type: ignore[method-assign,assignment]


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
class AgentGroupAdmin(BoundedSearch, KeptWhileInUse):
    form = AgentGroupForm
    list_display = ["display_id", "name", "is_active", "member_count", "default_callback_number"]
    list_filter = ["is_active"]
    search_fields = ["display_id", "name"]
    filter_horizontal = ["members"]
    list_select_related = ["default_callback_number"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[AgentGroup]:
        from django.db.models import Count

        return super().get_queryset(request).annotate(member_total=Count("members"))

    @admin.display(description="members", ordering="member_total")
    def member_count(self, group: WithAnnotations[AgentGroup, _MemberTotal]) -> int:
        return group.member_total

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


# --- Caller IDs ------------------------------------------------------------------------------------


class CallbackNumberForm(forms.ModelForm):
    number = PhoneNumberField(
        max_length=phones.MAX_INPUT,
        has_notes=False,
        help_text="Any format: 020 7946 0100, +44 20 7946 0100, +1 312 555 0100. Stored in E.164.",
    )

    class Meta:
        model = CallbackNumber
        fields = [
            "number",
            "label",
            "is_active",
            "is_default",
            "local_presence",
            "allowed_agents",
            "allowed_groups",
            "vcc_callback_number_id",
        ]


class _Usage(TypedDict):
    usage: tuple[int, datetime | None]  # set on each number of the page by CallbackNumberChangeList


class CallbackNumberChangeList(ChangeList):
    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # How often each number on this page was presented: one grouped query for the page, not one per row.
        usage = CallbackNumber.objects.filter(pk__in=[n.pk for n in self.result_list]).usage()
        for number in self.result_list:
            number.usage = usage.get(number.number, (0, None))


@admin.register(CallbackNumber)
class CallbackNumberAdmin(BoundedSearch, admin.ModelAdmin):
    form = CallbackNumberForm
    list_display = ["label", "national", "status", "presented", "restricted_to", "vcc_lists"]
    list_display_links = ["label", "national"]
    list_filter = ["is_active", "is_default", "local_presence"]
    search_fields = ["label", "number"]
    filter_horizontal = ["allowed_agents", "allowed_groups"]
    actions = ["make_default", "deactivate", "activate", "delete_unused"]
    readonly_fields = ["usage_summary", "vcc_listing"]
    fieldsets = [
        (None, {"fields": ["number", "label", "is_active", "is_default", "local_presence"]}),
        ("Who may present it", {"fields": ["allowed_agents", "allowed_groups"]}),
        ("VCC", {"fields": ["vcc_listing", "vcc_callback_number_id"]}),
        ("Use", {"fields": ["usage_summary"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[CallbackNumber]:
        return super().get_queryset(request).prefetch_related("allowed_agents", "allowed_groups", "vcc_listed_for")

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return CallbackNumberChangeList

    def get_actions(
        self, request: HttpRequest, action_location: ActionLocation = ActionLocation.CHANGE_LIST
    ) -> dict[str, Action | None]:
        actions = super().get_actions(request, action_location=action_location)
        actions.pop("delete_selected", None)  # replaced by delete_unused: numbers in use are never deleted
        return actions

    @admin.display(description="number", ordering="number")
    def national(self, number: CallbackNumber) -> str:
        return number.display.replace(" ", "\u00a0").replace("-", "\u2011")  # kept on one line

    @admin.display(description="status")
    def status(self, number: CallbackNumber) -> str:
        words = ["account default" if number.is_default else "active" if number.is_active else "inactive"]
        if number.local_presence:
            words.append(f"local presence ({number.country or 'no country'})")
        return ", ".join(words)

    @admin.display(description="presented")
    def presented(self, number: WithAnnotations[CallbackNumber, _Usage]) -> str:
        times, last = number.usage
        if not times or last is None:  # a number presented has a last time
            return "never"
        return f"{times} time{pluralize(times)}, last {date_format(last, 'j M Y H:i')}"

    @admin.display(description="who may present it")
    def restricted_to(self, number: CallbackNumber) -> str:
        names = [a.name for a in number.allowed_agents.all()] + [g.name for g in number.allowed_groups.all()]
        return ", ".join(names) or "everyone"

    @admin.display(description="VCC lists it for")
    def vcc_lists(self, number: CallbackNumber) -> str:
        if number.vcc_listing_synced_at is None:
            return "not synced yet"
        listed = sorted(a.name for a in number.vcc_listed_for.all())
        if not listed:
            return format_html("<strong>{}</strong>", "nobody: no call can present it")
        shown = ", ".join(listed[:3])
        return f"{len(listed)} agents: {shown}, …" if len(listed) > 3 else shown

    @admin.display(description="VCC lists it for")
    def vcc_listing(self, number: CallbackNumber) -> str:
        if not number.pk or number.vcc_listing_synced_at is None:
            return "Not known yet: the sync from VCC has not read this number. Until it does, it is not checked."
        listed = list(number.vcc_listed_for.all())
        when = f"read {number.vcc_listing_synced_at:%Y-%m-%d %H:%M} UTC"
        if not listed:
            return f"Nobody ({when}): VCC would refuse every call presenting it."
        return format_html("{} ({})", ", ".join(str(a) for a in sorted(listed, key=lambda a: a.name)), when)

    @admin.display(description="presented on calls")
    def usage_summary(self, number: CallbackNumber) -> str:
        if not number.pk:
            return "—"
        times, last = CallbackNumber.objects.filter(pk=number.pk).usage().get(number.number, (0, None))
        if not times:
            used = CallbackNumber.objects.filter(pk=number.pk).in_use().exists()
            return "Never presented" + (" (but calls refer to it, so it can only be deactivated)" if used else "")
        return f"{times} calls, last {last:%Y-%m-%d %H:%M} UTC: it can be deactivated, never deleted"

    # --- Actions -----------------------------------------------------------------------------------

    @admin.action(
        description="Make default",
        permissions=["change"],
        location=[ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM],
    )
    def make_default(self, request: HttpRequest, queryset: CallbackNumberQuerySet) -> None:
        numbers = list(queryset[:2])
        if len(numbers) != 1:
            self.message_user(request, "Select exactly one number to make the default.", messages.ERROR)
            return
        numbers[0].make_default()
        self.message_user(request, f"{numbers[0]} is now the account default.", messages.SUCCESS)

    @admin.action(description="Deactivate the selected numbers", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: CallbackNumberQuerySet) -> None:
        default = queryset.filter(is_default=True).first()
        if default:
            self.message_user(
                request, f"{default} is the account default: make another number the default first.", messages.ERROR
            )
        done = queryset.filter(is_default=False, is_active=True).update(is_active=False)
        directory.changed()  # update() sends no signal; the click caches usable numbers
        if done:
            self.message_user(
                request, f"Deactivated {done} number{pluralize(done)}: they are no longer offered.", messages.SUCCESS
            )
        elif not default:  # a refusal is its one message; no "0 done" beside it
            self.message_user(request, "The selected numbers were already inactive.", messages.INFO)

    @admin.action(description="Activate the selected numbers", permissions=["change"])
    def activate(self, request: HttpRequest, queryset: CallbackNumberQuerySet) -> None:
        done = queryset.filter(is_active=False).update(is_active=True)
        directory.changed()  # update() sends no signal; the click caches usable numbers
        if done:
            self.message_user(request, f"Activated {done} number{pluralize(done)}.", messages.SUCCESS)
        else:
            self.message_user(request, "The selected numbers were already active.", messages.INFO)

    @admin.action(
        description="Delete the selected numbers (unused ones; others are deactivated)", permissions=["delete"]
    )
    def delete_unused(self, request: HttpRequest, queryset: CallbackNumberQuerySet) -> HttpResponse | None:
        kept = self._keep_instead_of_deleting(request, queryset)
        rest = queryset.exclude(pk__in=kept)
        if rest.exists():
            return delete_selected(self, request, rest)  # Django's confirmation page, then the deletion
        return None

    def _keep_instead_of_deleting(self, request: HttpRequest, queryset: CallbackNumberQuerySet) -> list[int]:
        """The default and numbers in use are not deleted: say so, and deactivate the ones in use."""
        default = list(queryset.filter(is_default=True))
        in_use = list(queryset.filter(is_default=False).in_use())
        for number in default:
            self.message_user(
                request,
                f"{number} is the account default, so it was not deleted: make another number the default first.",
                messages.ERROR,
            )
        if in_use:
            CallbackNumber.objects.filter(pk__in=[n.pk for n in in_use]).update(is_active=False)
            directory.changed()  # update() sends no signal; the click caches usable numbers
            self.message_user(
                request,
                f"Deactivated instead of deleted, because calls presented them: {', '.join(map(str, in_use))}.",
                messages.WARNING,
            )
        return [n.pk for n in default + in_use]

    # --- Deleting one number from its page ---------------------------------------------------------

    def has_delete_permission(self, request: HttpRequest, obj: CallbackNumber | None = None) -> bool:
        # No Delete button for the default or a number calls refer to (deleting them is refused below anyway).
        if obj is not None and (obj.is_default or CallbackNumber.objects.filter(pk=obj.pk).in_use().exists()):
            return False
        return super().has_delete_permission(request, obj)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        number = self.get_object(request, object_id)
        if number is not None and (number.is_default or CallbackNumber.objects.filter(pk=number.pk).in_use().exists()):
            if not self.has_delete_permission(request):
                raise PermissionDenied
            if request.method == "POST":
                self._keep_instead_of_deleting(request, CallbackNumber.objects.filter(pk=number.pk))
            elif number.is_default:
                self.message_user(
                    request, f"{number} is the account default: make another number the default first.", messages.ERROR
                )
            else:
                self.message_user(
                    request,
                    f"Calls presented {number}, so it cannot be deleted; untick “active” to stop offering it.",
                    messages.WARNING,
                )
            return HttpResponseRedirect(reverse("admin:calls_callbacknumber_change", args=[number.pk]))
        return super().delete_view(request, object_id, extra_context)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[CallbackNumber]) -> None:
        # A number may have come into use since the confirmation page: check again.
        # Django deletes what the action was given: a CallbackNumberQuerySet (see delete_unused).
        kept = self._keep_instead_of_deleting(request, cast("CallbackNumberQuerySet", queryset))
        super().delete_queryset(request, queryset.exclude(pk__in=kept))
