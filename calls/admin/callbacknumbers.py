"""Callback numbers (caller IDs) in Django's admin: any format in, E.164 stored; one-step default; deactivation
instead of deletion; how often each was presented; whom VCC lists it for."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.contrib.admin.options import ActionLocation
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import format_html

from calls import directory, phones
from calls.admin.base import BoundedSearch, PhoneNumberField
from calls.models import CallbackNumber

if TYPE_CHECKING:
    from django.contrib.admin.options import Action
    from django_stubs_ext import WithAnnotations

    from calls.models.directory import CallbackNumberQuerySet


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

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if "number" in self.changed_data:
            self.instance.vcc_clid = ""  # VCC's form of the old number: the next sync reads the new one's
        return cleaned


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
    readonly_fields = ["usage_summary", "vcc_listing", "vcc_form", "retired_by_sync"]
    fieldsets = [
        (None, {"fields": ["number", "label", "is_active", "is_default", "local_presence"]}),
        ("Who may present it", {"fields": ["allowed_agents", "allowed_groups"]}),
        ("VCC", {"fields": ["vcc_listing", "vcc_form", "vcc_callback_number_id", "retired_by_sync"]}),
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
        if number.retired_by_sync:
            words.append("retired by the sync: active again once VCC has it")
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

    @admin.display(description="as VCC lists it")
    def vcc_form(self, number: CallbackNumber) -> str:
        if not number.vcc_clid:
            return f"Not known yet: the sync from VCC has not read this number, so calls send {number.number or 'it'}."
        return f"{number.vcc_clid}: sent to VCC as the presented CLID, exactly as VCC lists it"

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
        done = queryset.filter(is_default=False, is_active=True).update(is_active=False, retired_by_sync=False)
        # One the sync retired is made the admin's: it stays inactive when VCC has it again.
        kept = queryset.filter(is_active=False, retired_by_sync=True).update(retired_by_sync=False)
        directory.changed()  # update() sends no signal; the click caches usable numbers
        if done:
            self.message_user(
                request, f"Deactivated {done} number{pluralize(done)}: they are no longer offered.", messages.SUCCESS
            )
        if kept:
            self.message_user(
                request,
                f"Made {kept} number{pluralize(kept)} the sync had retired the admin's: "
                "they stay inactive when VCC has them again.",
                messages.SUCCESS,
            )
        elif not done and not default:  # a refusal is its one message; no "0 done" beside it
            self.message_user(request, "The selected numbers were already inactive.", messages.INFO)

    @admin.action(description="Activate the selected numbers", permissions=["change"])
    def activate(self, request: HttpRequest, queryset: CallbackNumberQuerySet) -> None:
        done = queryset.filter(is_active=False).update(is_active=True, retired_by_sync=False)
        directory.changed()  # update() sends no signal; the click caches usable numbers
        if done:
            self.message_user(request, f"Activated {done} number{pluralize(done)}.", messages.SUCCESS)
        else:
            self.message_user(request, "The selected numbers were already active.", messages.INFO)

    @admin.action(
        description="Delete the selected numbers (unused ones VCC no longer has; others are deactivated)",
        permissions=["delete"],
    )
    def delete_unused(self, request: HttpRequest, queryset: CallbackNumberQuerySet) -> HttpResponse | None:
        kept = self._keep_instead_of_deleting(request, queryset)
        rest = queryset.exclude(pk__in=kept)
        if rest.exists():
            return delete_selected(self, request, rest)  # Django's confirmation page, then the deletion
        return None

    def _keep_instead_of_deleting(self, request: HttpRequest, queryset: CallbackNumberQuerySet) -> list[int]:
        """The default, numbers in use and numbers VCC still has are not deleted: say so, and deactivate all but the
        default."""
        default = list(queryset.filter(is_default=True))
        in_use = list(queryset.filter(is_default=False).in_use())
        listed = list(queryset.filter(is_default=False).exclude(pk__in=[n.pk for n in in_use]).listed_by_vcc())
        for number in default:
            self.message_user(
                request,
                f"{number} is the account default, so it was not deleted: make another number the default first.",
                messages.ERROR,
            )
        self._deactivate_instead(request, in_use, "because calls presented them")
        self._deactivate_instead(
            request,
            listed,
            "because VCC still has them and the next sync from VCC would add them back (a number deactivated here "
            "stays inactive through the sync; to delete one, remove it in VCC and run the sync first)",
        )
        return [n.pk for n in default + in_use + listed]

    def _deactivate_instead(self, request: HttpRequest, numbers: list[CallbackNumber], why: str) -> None:
        if numbers:
            # The admin's choice from now on: kept inactive even if the sync had retired it and VCC has it again.
            CallbackNumber.objects.filter(pk__in=[n.pk for n in numbers]).update(is_active=False, retired_by_sync=False)
            directory.changed()  # update() sends no signal; the click caches usable numbers
            self.message_user(
                request, f"Deactivated instead of deleted, {why}: {', '.join(map(str, numbers))}.", messages.WARNING
            )

    # --- Deleting one number from its page ---------------------------------------------------------

    @staticmethod
    def _kept(number: CallbackNumber) -> bool:
        """The default, a number calls refer to, and one VCC still has (the sync would add it back) are kept."""
        one = CallbackNumber.objects.filter(pk=number.pk)
        return number.is_default or (one.in_use() | one.listed_by_vcc()).exists()

    def has_delete_permission(self, request: HttpRequest, obj: CallbackNumber | None = None) -> bool:
        # No Delete button for a number kept (deleting it is refused below anyway).
        if obj is not None and self._kept(obj):
            return False
        return super().has_delete_permission(request, obj)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        number = self.get_object(request, object_id)
        if number is not None and self._kept(number):
            if not self.has_delete_permission(request):
                raise PermissionDenied
            if request.method == "POST":
                self._keep_instead_of_deleting(request, CallbackNumber.objects.filter(pk=number.pk))
            elif number.is_default:
                self.message_user(
                    request, f"{number} is the account default: make another number the default first.", messages.ERROR
                )
            elif CallbackNumber.objects.filter(pk=number.pk).in_use().exists():
                self.message_user(
                    request,
                    f"Calls presented {number}, so it cannot be deleted; untick “active” to stop offering it.",
                    messages.WARNING,
                )
            else:
                self.message_user(
                    request,
                    f"VCC still has {number}, so the next sync from VCC would add it back: untick “active” to stop "
                    "offering it instead (a number deactivated here stays inactive through the sync), or remove it "
                    "in VCC and run the sync before deleting it.",
                    messages.WARNING,
                )
            return HttpResponseRedirect(reverse("admin:calls_callbacknumber_change", args=[number.pk]))
        return super().delete_view(request, object_id, extra_context)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[CallbackNumber]) -> None:
        # A number may have come into use since the confirmation page: check again.
        # Django deletes what the action was given: a CallbackNumberQuerySet (see delete_unused).
        kept = self._keep_instead_of_deleting(request, cast("CallbackNumberQuerySet", queryset))
        super().delete_queryset(request, queryset.exclude(pk__in=kept))
