"""VCC's side, as vccweb keeps it: agents, agent groups and callback numbers (presented CLIDs)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Count, Exists, Max, OuterRef, Q

from calls import phones
from calls.models.calls import Call
from calls.models.common import AGENT_ID_PATTERN, E164_PATTERN, GROUP_ID_PATTERN, agent_id_validator, group_id_validator

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable


class Agent(models.Model):
    display_id = models.CharField(
        "agent display ID",
        max_length=11,
        unique=True,
        validators=[agent_id_validator],
        help_text="VCC's agent display ID: digits only, 1 to 11.",
    )
    name = models.CharField(max_length=200)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="agent"
    )
    is_active = models.BooleanField("active", default=True)
    default_callback_number = models.ForeignKey(
        "CallbackNumber", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    default_group = models.ForeignKey(
        "AgentGroup",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Preselected when this agent calls via a group.",
    )
    vcc_user_id = models.CharField("VCC user ID", max_length=64, blank=True, help_text="Set by the sync from VCC.")
    # Presence as VCC's events say (agent.presencechanged): Ready, Away, ExtendedAway, LoggedOut; since when.
    presence = models.CharField(max_length=32, blank=True, help_text="From VCC's events; empty until one arrives.")
    presence_detail = models.CharField(max_length=200, blank=True, help_text="VCC's description (e.g. Lunch).")
    presence_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "display_id"]
        constraints = [
            models.CheckConstraint(condition=Q(display_id__regex=AGENT_ID_PATTERN), name="agent_display_id_digits")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.display_id})"


class AgentGroup(models.Model):
    display_id = models.CharField(
        "group display ID",
        max_length=32,
        unique=True,
        validators=[group_id_validator],
        help_text="VCC's group display ID, kept as written: leading zeros matter (030).",
    )
    name = models.CharField(max_length=200)
    members = models.ManyToManyField(Agent, blank=True, related_name="groups")
    default_callback_number = models.ForeignKey(
        "CallbackNumber", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    vcc_group_id = models.CharField("VCC group ID", max_length=64, blank=True, help_text="Set by the sync from VCC.")
    is_active = models.BooleanField(
        "active",
        default=True,
        help_text="Cleared by the sync when VCC no longer has the group: it is then not offered for calls or queues.",
    )

    class Meta:
        ordering = ["name", "display_id"]
        verbose_name = "agent group"
        constraints = [
            models.CheckConstraint(condition=Q(display_id__regex=GROUP_ID_PATTERN), name="agentgroup_display_id_format")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.display_id})"


class CallbackNumberQuerySet(models.QuerySet["CallbackNumber"]):
    def usable_by(self, *, agent: Agent | None = None, groups: Iterable[AgentGroup] = ()) -> CallbackNumberQuerySet:
        """Active numbers that agent (or a call via groups) may present: unrestricted ones, or ones allowed to them.

        Once a sync has read which agents VCC lists a number for, the number is offered only to those agents (a
        call via groups: when VCC lists it for a member of one of the groups), since VCC refuses any other.
        """
        allowed = Q(allowed_agents__isnull=True, allowed_groups__isnull=True)
        listed = Q(vcc_listing_synced_at__isnull=True)
        group_ids = [g.pk for g in groups]
        if agent is not None:
            allowed |= Q(allowed_agents=agent) | Q(allowed_groups__members=agent)
            listed |= Q(vcc_listed_for=agent)
        if group_ids:
            allowed |= Q(allowed_groups__in=group_ids)
            listed |= Q(vcc_listed_for__groups__in=group_ids)
        if agent is None and not group_ids:
            listed |= Q(vcc_listed_for__isnull=False)
        return (
            self.filter(is_active=True)
            .filter(pk__in=CallbackNumber.objects.filter(allowed).values("pk"))
            .filter(pk__in=CallbackNumber.objects.filter(listed).values("pk"))
        )

    def in_use(self) -> CallbackNumberQuerySet:
        """Numbers a call refers to or presented: the call log keeps them, so they are deactivated, never deleted."""
        return self.filter(
            Exists(Call.objects.filter(callback_number=OuterRef("pk")))
            | Exists(Call.objects.filter(presented_clid=OuterRef("number")))
        )

    def listed_by_vcc(self) -> CallbackNumberQuerySet:
        """Numbers the last sync found VCC lists for an agent: deleted, the next sync would create them again."""
        listing = CallbackNumber.vcc_listed_for.through.objects.filter(callbacknumber=OuterRef("pk"))
        return self.filter(Exists(listing))

    def usage(self) -> dict[str, tuple[int, datetime | None]]:
        """How often, and when last, each of these numbers was presented on a call VCC was asked to place.

        One grouped query on the presented CLID index for all of them: meant for a page of numbers.
        """
        rows = (
            Call.objects.filter(presented_clid__in=self.values("number"))
            .exclude(state=Call.State.FAILED)
            .order_by()
            .values("presented_clid")
            .annotate(times=Count("pk"), last=Max("requested_at"))
        )
        return {row["presented_clid"]: (row["times"], row["last"]) for row in rows}

    def not_listed_by_vcc(self) -> CallbackNumberQuerySet:
        """Active numbers the last sync found VCC lists for no agent: no call can present them."""
        return self.filter(is_active=True, vcc_listing_synced_at__isnull=False, vcc_listed_for__isnull=True)


class CallbackNumber(models.Model):
    """A presented CLID: a number VCC has configured as a callback number for the account."""

    number = models.CharField(max_length=16, unique=True, help_text="E.164, for example +442079460100.")
    label = models.CharField(max_length=100)
    is_active = models.BooleanField("active", default=True)
    is_default = models.BooleanField("account default", default=False)
    allowed_agents = models.ManyToManyField(
        Agent, blank=True, related_name="restricted_callback_numbers", help_text="None and no groups: everyone."
    )
    allowed_groups = models.ManyToManyField(
        AgentGroup, blank=True, related_name="restricted_callback_numbers", help_text="Members of these groups."
    )
    vcc_callback_number_id = models.CharField("VCC callback number ID", max_length=64, blank=True)
    # VCC lists it as callbackNumberClid, in whatever form it holds it ("+48600000000", "01256636451"). Whether VCC
    # compares presentedCLID as a string or as a number is not documented (vcc-api.md §5.2, §7.3), so a call sends
    # it back in VCC's own form; everything else here (matching, uniqueness, reports) uses `number`.
    vcc_clid = models.CharField(
        "as VCC lists it",
        max_length=64,
        blank=True,
        default="",
        db_default="",  # old processes still inserting during a deploy leave it empty
        editable=False,
        help_text="Set by the sync: the number as VCC lists it, sent as the presented CLID. Empty: not synced, "
        "so calls send the E.164 number.",
    )
    local_presence = models.BooleanField(
        "local presence",
        default=False,
        help_text="Present this number on calls to its own country, unless the caller chose another one.",
    )
    vcc_listed_for = models.ManyToManyField(
        Agent,
        blank=True,
        related_name="vcc_callback_numbers",
        verbose_name="VCC lists it for",
        help_text="Set by the sync: the agents VCC lets present this number.",
    )
    retired_by_sync = models.BooleanField(
        "retired by the sync",
        default=False,
        db_default=False,
        editable=False,
        help_text="Inactive because the sync found VCC no longer has it: the sync makes it active again once VCC has "
        "it. A number an admin deactivated stays inactive.",
    )
    vcc_listing_synced_at = models.DateTimeField(
        "VCC listing read at",
        null=True,
        blank=True,
        help_text="When the sync last read which agents VCC lists this number for. Empty: never, so not checked.",
    )

    objects = CallbackNumberQuerySet.as_manager()

    class Meta:
        ordering = ["label"]
        verbose_name = "callback number (presented CLID)"
        verbose_name_plural = "callback numbers (presented CLIDs)"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="callbacknumber_one_account_default"
            ),
            models.CheckConstraint(condition=Q(number__regex=E164_PATTERN), name="callbacknumber_number_e164"),
            models.CheckConstraint(
                condition=Q(is_active=False) | Q(retired_by_sync=False), name="callbacknumber_retired_is_inactive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({phones.display(self.number)})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Saving the account default unsets the previous one in the same transaction: one save swaps it."""
        if not self.is_default:
            return super().save(*args, **kwargs)
        with transaction.atomic():
            # Lock the current default first, so that two swaps at once queue instead of colliding.
            others = CallbackNumber.objects.select_for_update().filter(is_default=True).exclude(pk=self.pk)
            if list(others):
                others.update(is_default=False)
            super().save(*args, **kwargs)

    def clean(self) -> None:
        if self.is_active:
            self.retired_by_sync = False  # made active here: whoever deactivates it next, the sync did not retire it
        if self.is_default and not self.is_active:
            raise ValidationError({"is_default": "The account default must be active."})
        if self.local_presence and self.number and not self.country:
            raise ValidationError({"local_presence": "This number belongs to no country, so it cannot be local."})

    def validate_constraints(self, exclude: Collection[str] | None = None) -> None:
        # Saving a new default unsets the old one (see save), so the one-default constraint is not a form error.
        exclude = {*(exclude or ()), "is_default"}
        super().validate_constraints(exclude=exclude)

    def make_default(self) -> None:
        """Make this the account default (and active), unsetting the previous default atomically."""
        self.is_default, self.is_active, self.retired_by_sync = True, True, False
        self.save()

    @property
    def country(self) -> str | None:
        """The ISO country of this number (GB, US, ...), or None for numbers of no country (+800 ...)."""
        return phones.country(self.number)

    @property
    def display(self) -> str:
        return phones.display(self.number)

    @property
    def presented_clid(self) -> str:
        """What a call presenting this number sends VCC as presentedCLID: VCC's own form if the sync read it."""
        return self.vcc_clid or self.number

    @property
    def is_restricted(self) -> bool:
        return self.pk is not None and (self.allowed_agents.exists() or self.allowed_groups.exists())
