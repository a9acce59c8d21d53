"""The call log: one row per click (Call) and its transitions; its history is CallEvent (calls/models/history.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from calls import phones
from calls.models.callqueries import CallQuerySet
from calls.models.common import ERASED_CONTACT, Consent, HandWrittenSQL
from calls.models.history import CallEvent
from calls.models.outcomes import outcome_of

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from calls.models.directory import Agent

VCC_RETENTION = timedelta(hours=24)  # how long VCC keeps a call's detail after it ends
# A live call VCC answers 404 "not found" for is closed as gone after MISSING_TRIES such answers in a row that span
# at least MISSING_GRACE (a single 404 is not the end of a live call, but a call never stays live for ever).
MISSING_GRACE = timedelta(seconds=20)
MISSING_TRIES = 3
CLOSED_BY_HAND = "Closed by a supervisor"  # the result reason of a call a supervisor closed (record_closed)
MIN_CLOSE_REASON = 10  # characters a supervisor writes to close a stuck call


# Call.talk_seconds in SQL, for a call aliased `c` (the CSV export's COPY, the API's log pages).
TALK_SECONDS_SQL = "CASE WHEN c.connected_at IS NULL AND c.duration_seconds = 0 THEN NULL ELSE c.duration_seconds END"


class Call(HandWrittenSQL):
    """One click: written before VCC is asked, then updated with the outcome and followed until the call ends.

    Its changes of state are the `record_*` methods below; each saves only the fields it changes, so a stale copy
    (a slow poll, the worker) never undoes what another process saved meanwhile."""

    class State(models.TextChoices):
        REQUESTED = "requested", "Asking VCC"
        LIVE = "live", "Live"  # VCC placed it and has not said it ended
        ENDED = "ended", "Ended"
        FAILED = "failed", "Not placed"  # VCC refused it, or it never reached VCC
        UNCONFIRMED = "unconfirmed", "Not confirmed"  # VCC may have placed it; we never learnt its id

    class Origin(models.TextChoices):
        VCCWEB = "vccweb", "Placed from vccweb"
        AGENT_PHONE = "agent_phone", "Dialled from the agent's phone, not from vccweb"
        INBOUND = "inbound", "Inbound, not placed from vccweb"

    class Outcome(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        ANSWERED = "answered", "Answered"
        AGENT_NO_ANSWER = "agent_no_answer", "Not answered by the agent"
        NO_ANSWER = "no_answer", "Not answered by the contact"
        BUSY = "busy", "Line busy"
        FAILED = "failed", "Failed"
        NOT_CONFIRMED = "not_confirmed", "Not confirmed: may have been placed"
        UNKNOWN = "unknown", "Ended, result unknown"
        GONE = "gone", "VCC no longer knows this call"

    IN_PROGRESS = (State.REQUESTED, State.LIVE)
    # Outcomes of a call that never connected (no answer, busy, failed): nothing to wrap up. A call whose result
    # is unknown (VCC forgot it, or a supervisor closed it) may have connected, so it is wrapped up.
    NEVER_CONNECTED = (Outcome.AGENT_NO_ANSWER, Outcome.NO_ANSWER, Outcome.BUSY, Outcome.FAILED)

    # Unique, as VCC's call id below, through a table of its own (calls/models/callkeys.py), not an index here.
    request_id = models.UUIDField(default=uuid.uuid4, editable=False, help_text="Our idempotency key.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="calls_made", db_index=False
    )  # db_index off here and below: an index of the Meta's starts with the column (one index fewer per write)
    # From: one agent, or any available agent of some groups.
    from_agent = models.ForeignKey(
        "calls.Agent", null=True, blank=True, on_delete=models.PROTECT, related_name="calls_from", db_index=False
    )
    from_groups = models.ManyToManyField("calls.AgentGroup", blank=True, related_name="calls")
    # Who took a group call: the agent VCC names in the call detail's from.agentId once one of the groups answers.
    answered_by = models.ForeignKey(  # db_index off here and for to_agent: partial indexes of the Meta's
        "calls.Agent", null=True, blank=True, on_delete=models.PROTECT, related_name="calls_answered", db_index=False
    )
    # To: a telephone number, or another agent.
    to_number = models.CharField(max_length=32, blank=True)
    to_agent = models.ForeignKey(
        "calls.Agent", null=True, blank=True, on_delete=models.PROTECT, related_name="calls_to", db_index=False
    )
    contact = models.ForeignKey(
        "calls.Contact", models.SET_NULL, null=True, blank=True, related_name="calls", db_index=False
    )
    contact_erased = models.BooleanField(default=False, db_default=False, editable=False)  # calls/privacy/erasure.py
    phone = models.ForeignKey(  # masking a call's number clears it (calls/privacy/retention.py): call_phone_idx
        "calls.ContactPhone", null=True, blank=True, on_delete=models.SET_NULL, related_name="calls", db_index=False
    )
    # What was sent, and why.
    presented_clid = models.CharField("presented CLID", max_length=32, blank=True)
    callback_number = models.ForeignKey(
        "calls.CallbackNumber", null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    clid_reason = models.CharField("why this CLID", max_length=200, blank=True)
    consent = models.CharField(max_length=10, choices=Consent.choices, blank=True)
    consent_reason = models.CharField("why this consent", max_length=200, blank=True)
    dnc_override_reason = models.TextField("do-not-call override reason", blank=True)
    hours_override_reason = models.TextField(
        "calling-hours override reason",
        blank=True,
        default="",
        db_default="",
        help_text="Why it was placed outside calling hours.",
    )
    regarding = models.CharField("regarding reference", max_length=2000, blank=True)
    application = models.CharField(max_length=32, blank=True)
    request_body = models.JSONField("request sent", null=True, blank=True)
    # What VCC said.
    vcc_call_id = models.CharField("VCC call ID", max_length=64, blank=True)
    vcc_status = models.CharField("VCC status", max_length=32, blank=True)
    recording_status = models.CharField(max_length=32, blank=True)
    result_code = models.CharField(max_length=32, blank=True)
    result_party = models.CharField(max_length=32, blank=True)
    result_reason = models.CharField(max_length=64, blank=True)
    disposition_code = models.CharField(max_length=255, blank=True)
    notes = models.TextField(blank=True)
    wrapped_up_at = models.DateTimeField(null=True, blank=True)
    # Ours.
    state = models.CharField(max_length=12, choices=State.choices, default=State.REQUESTED)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.IN_PROGRESS)
    error_message = models.TextField("VCC's message", blank=True, help_text="Verbatim, for the log.")
    error_status = models.PositiveSmallIntegerField("HTTP status", null=True, blank=True)
    error_display = models.TextField("message shown", blank=True)
    requested_at = models.DateTimeField(default=timezone.now)
    responded_at = models.DateTimeField(null=True, blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField("VCC latency (ms)", null=True, blank=True)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    # Following: when VCC is next asked about this call, and since when it has answered 404.
    next_check_at = models.DateTimeField(null=True, blank=True)
    missing_since = models.DateTimeField(null=True, blank=True)
    missing_count = models.PositiveSmallIntegerField(default=0, db_default=0, help_text="404 answers in a row.")
    # Honest state: the last good answer from VCC about this call, and since when VCC could not be asked (transport
    # failure, 5xx, 429, ...); empty once VCC answers again.
    last_seen_at = models.DateTimeField("last answer from VCC", null=True, blank=True)
    lost_contact_since = models.DateTimeField(null=True, blank=True)
    # When the agent's phone was answered and VCC went on to ring the contact (see rules.phase).
    agent_answered_at = models.DateTimeField(null=True, blank=True)
    # When what reports count last changed (state, outcome, talk time, disposition): the roll-up rebuilds the days
    # of calls changed since its last run (calls/reports.py).
    changed_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Where it came from: a click in vccweb, or a call VCC's events told of (an agent dialling from their phone, an
    # inbound call); those are matched to the contact by number, and `also_matches` counts other contacts with it.
    origin = models.CharField(max_length=12, choices=Origin.choices, default=Origin.VCCWEB, db_default=Origin.VCCWEB)
    also_matches = models.PositiveSmallIntegerField(default=0, db_default=0)
    # The last VCC event applied to it (webhook): while events flow, a call that has them is not polled.
    last_event_at = models.DateTimeField(null=True, blank=True)
    # The id of the request that placed the call (calls.observability), to find its log lines.
    trace_id = models.CharField(max_length=64, blank=True, db_index=False)

    objects = CallQuerySet.as_manager()

    class Meta:
        ordering = ["-requested_at", "-pk"]
        permissions = [
            ("place_call", "Can place calls as their own agent"),
            ("place_group_call", "Can place calls via agent groups"),
            ("override_do_not_call", "Can call a do-not-call number, giving a reason"),
            ("override_calling_hours", "Can call outside the callee's calling hours, giving a reason"),
            ("view_all_calls", "Can see everyone's calls"),
            ("view_reports", "Can see call reports"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~(Q(to_number="") & Q(to_agent__isnull=True)), name="call_has_destination"
            ),
        ]
        indexes = [
            models.Index(fields=["-requested_at", "-id"], name="call_requested_idx"),
            models.Index(fields=["state", "-requested_at"], name="call_state_idx"),
            models.Index(fields=["outcome", "-requested_at", "-id"], name="call_outcome_idx"),
            models.Index(fields=["from_agent", "-requested_at", "-id"], name="call_agent_idx"),
            models.Index(fields=["created_by", "-requested_at", "-id"], name="call_user_idx"),
            models.Index(fields=["contact", "-requested_at", "-id"], name="call_contact_idx"),
            models.Index(fields=["to_number", "-requested_at"], name="call_number_idx"),
            # Only the calls that have one: most calls have no colleague called and no group answerer, and a call
            # whose number is masked has no phone; a row written again without one takes no entry (a retention
            # pass writes every old row again: bench/README.md, Retention).
            models.Index(fields=["phone"], condition=Q(phone__isnull=False), name="call_phone_idx"),
            models.Index(fields=["to_agent"], condition=Q(to_agent__isnull=False), name="call_to_agent_idx"),
            models.Index(fields=["answered_by"], condition=Q(answered_by__isnull=False), name="call_answered_by_idx"),
            # The call log filters by these and pages by time, so each leads an index that ends in the page order.
            models.Index(fields=["disposition_code", "-requested_at", "-id"], name="call_disposition_time_idx"),
            models.Index(fields=["presented_clid", "-requested_at", "-id"], name="call_clid_time_idx"),
            # Sorting by talk time puts calls that never talked (no duration) last: a plain value to page by.
            models.Index(Coalesce("duration_seconds", -1).desc(), F("id").desc(), name="call_duration_idx"),
            models.Index(
                fields=["-requested_at", "-id"],
                condition=Q(error_status__isnull=False) | ~Q(error_message=""),
                name="call_error_idx",
            ),
            models.Index(
                fields=["-requested_at", "-id"],
                condition=Q(state="ended", wrapped_up_at__isnull=True),
                name="call_wrap_up_idx",
            ),
            models.Index(fields=["next_check_at"], condition=Q(state="live"), name="call_follow_idx"),
        ]

    def __str__(self) -> str:
        return f"Call {self.pk} to {self.destination} ({self.get_outcome_display()})"

    def is_changeable_by(self, user: User) -> bool:
        """The rule of `CallQuerySet.changeable_by`, for a row already loaded."""
        agents = [a for a in (self.from_agent, self.answered_by) if a is not None]
        if any(a.user_id == user.pk for a in agents):
            return True
        answerer = self.answered_by if self.answered_by_id else None
        return self.created_by_id == user.pk and (answerer is None or answerer.user_id is None)

    @property
    def agent(self) -> Agent | None:
        """The agent who took the call: the one it was placed from, or the one of its groups who answered."""
        return self.from_agent or self.answered_by

    @property
    def talk_seconds(self) -> int | None:
        """The talk time to show: none for a call that never connected (stored as 0 s once it ended). In SQL, for a
        call aliased `c`: TALK_SECONDS_SQL."""
        return None if self.connected_at is None and not self.duration_seconds else self.duration_seconds

    @property
    def is_gone(self) -> bool:
        return self.outcome == self.Outcome.GONE

    @property
    def is_stuck_candidate(self) -> bool:
        """A call a supervisor may close by hand: still asking VCC or live."""
        return self.state in self.IN_PROGRESS

    @property
    def asks_sales_wrap_up(self) -> bool:
        """Whether the wrap-up asks how the call went: a call to a contact that connected. A call to a colleague,
        or one that never connected, is done when it ends."""
        return not self.to_agent_id and (self.connected_at is not None or self.outcome not in self.NEVER_CONNECTED)

    @property
    def destination(self) -> str:
        shown = str(self.to_agent) if self.to_agent_id else phones.display(self.to_number)
        return f"{ERASED_CONTACT} ({shown})" if self.contact_erased else shown

    @property
    def in_progress(self) -> bool:
        return self.state in self.IN_PROGRESS

    @property
    def is_live(self) -> bool:
        return self.state == self.State.LIVE

    @property
    def awaits_answer(self) -> bool:
        """Whether the click's answer from VCC may still be written (placing._record_answer): asking VCC; given up on
        as abandoned before it came (close_abandoned_clicks); or closed by a supervisor before it came (record_closed),
        which record_placed undoes and the failures leave closed. Any other call has had its answer written."""
        if self.state == self.State.ENDED:
            return self.responded_at is None and not self.vcc_call_id
        return self.state in (self.State.REQUESTED, self.State.UNCONFIRMED) and not self.vcc_call_id

    @property
    def wrap_up_due(self) -> bool:
        return self.state == self.State.ENDED and self.wrapped_up_at is None and self.asks_sales_wrap_up

    def history(self) -> list[tuple[datetime, str, str]]:
        """Everything that happened to the call, oldest first: (when, what, detail). The milestones come from
        the row itself, everything else from its CallEvents (one query)."""
        if self.origin != self.Origin.VCCWEB:
            items = [(self.requested_at, "VCC's events told of it", self.get_origin_display())]
        else:
            items = [
                (
                    self.requested_at,
                    "Asked VCC to place the call",
                    self.clid_reason and f"caller ID: {self.clid_reason}",
                )
            ]
        if self.responded_at and self.origin == self.Origin.VCCWEB:
            if self.vcc_call_id:
                items.append((self.responded_at, "VCC placed the call", f"VCC call {self.vcc_call_id}"))
            else:
                status = f"HTTP {self.error_status}: " if self.error_status else ""
                items.append((self.responded_at, self.get_state_display(), f"{status}{self.error_message}".strip()))
        if self.connected_at:
            items.append((self.connected_at, "Connected", ""))
        if self.ended_at and self.state == self.State.ENDED:
            items.append(
                (
                    self.ended_at,
                    f"Ended: {self.get_outcome_display()}",
                    "/".join(r for r in (self.result_code, self.result_party, self.result_reason) if r),
                )
            )
        items += [(e.at, e.get_kind_display(), e.detail) for e in self.events.all()]
        return sorted(items, key=lambda item: item[0])

    # --- Transitions: each writes only the fields it changes ---------------------------------------------

    def _save(self, fields: list[str], event: str, detail: str = "", *, at: datetime) -> None:
        self.save_fields(fields)
        CallEvent.objects.create(call=self, at=at, kind=event, detail=detail[:2000])

    def record_placed(
        self,
        *,
        vcc_call_id: str,
        vcc_status: str,
        recording_status: str,
        latency_ms: int,
        now: datetime,
        note: str = "",
        error_message: str = "",
        error_status: int | None = None,
    ) -> None:
        """VCC placed the call (or named it in Location although its reply was unreadable: `note` says so, and
        `error_message` and `error_status` are what could not be read).

        On a click a supervisor closed while VCC was asked (`awaits_answer`), the close is undone: a phone rings, so
        the call is live and followed again, and its history says why; a wrap-up given to it meanwhile is asked again
        when the call ends."""
        overtaken = self.state == self.State.ENDED
        self.state, self.outcome = self.State.LIVE, self.Outcome.IN_PROGRESS
        self.vcc_call_id, self.vcc_status, self.recording_status = vcc_call_id, vcc_status, recording_status
        self.responded_at, self.latency_ms, self.next_check_at = now, latency_ms, now
        self.error_display, self.changed_at = note, now
        fields = [
            "state",
            "outcome",
            "vcc_call_id",
            "vcc_status",
            "recording_status",
            "responded_at",
            "latency_ms",
            "next_check_at",
            "error_display",
            "changed_at",
        ]
        if note:
            self.error_message, self.error_status = error_message, error_status
            fields += ["error_message", "error_status"]
        detail = "VCC placed the call after it was closed: the close is undone, the call is followed again"
        if overtaken:
            self.ended_at, self.result_reason = None, ""
            fields += ["ended_at", "result_reason"]
        if overtaken and self.wrapped_up_at is not None:
            # A wrap-up given to the closed click was about a call that had not happened: the real one asks for its
            # own when it ends (the notes stay, to start from).
            detail += f"; the wrap-up given meanwhile ({self.disposition_code}) is asked again when it ends"
            self.wrapped_up_at, self.disposition_code = None, ""
            fields += ["wrapped_up_at", "disposition_code"]
        self.save_fields(fields)
        if overtaken:
            CallEvent.objects.create(call=self, at=now, kind=CallEvent.Kind.PROGRESS, detail=detail)

    def record_failed(
        self, *, message: str, status: int | None, display: str, latency_ms: int | None, now: datetime
    ) -> None:
        """VCC refused the call, or it never reached VCC: nothing rang."""
        self._record_error(self.State.FAILED, self.Outcome.FAILED, message, status, display, latency_ms, now)

    def record_unconfirmed(
        self, *, message: str, status: int | None, display: str, latency_ms: int | None, now: datetime
    ) -> None:
        """VCC may have placed the call, but we never learnt its id: neither failed nor followed."""
        self._record_error(
            self.State.UNCONFIRMED, self.Outcome.NOT_CONFIRMED, message, status, display, latency_ms, now
        )

    def _record_error(
        self,
        state: Call.State,
        outcome: Call.Outcome,
        message: str,
        status: int | None,
        display: str,
        latency_ms: int | None,
        now: datetime,
    ) -> None:
        if self.state == self.State.ENDED:  # closed by a supervisor while VCC was asked: nothing rang, it stays closed
            said = f"HTTP {status}: {message}" if status else message
            detail = f"VCC answered after the call was closed: {state.label.lower()} ({said})"
            CallEvent.objects.create(call=self, at=now, kind=CallEvent.Kind.PROGRESS, detail=detail[:2000])
            return
        self.state, self.outcome = state, outcome
        self.error_message, self.error_status, self.error_display = message, status, display
        self.responded_at, self.latency_ms, self.changed_at = now, latency_ms, now
        self.save_fields(
            [
                "state",
                "outcome",
                "error_message",
                "error_status",
                "error_display",
                "responded_at",
                "latency_ms",
                "changed_at",
            ]
        )

    @classmethod
    def _fit(cls, name: str, value: str) -> str:
        field = cls._meta.get_field(name)
        assert isinstance(field, models.CharField)
        return value[: field.max_length]

    def record_detail(
        self,
        *,
        live: bool,
        recording_status: str,
        result: tuple[str, str, str],
        connected: bool,
        disposition_code: str,
        now: datetime,
        next_check_at: datetime | None,
        agent_answered: bool = False,
        answered_by: Agent | None = None,
        also: tuple[str, ...] = (),
        applied_at: datetime | None = None,
    ) -> bool:
        """VCC's call detail: where the call is now. Returns whether its phase changed (worth telling the page).

        `now`: when it happened (an event's time); `applied_at`: when it is written, if later (an event applied
        late), which `changed_at` takes: the roll-up looks for changes made since its last run (calls/reports.py).
        `agent_answered`: the agent's phone was answered and VCC rings the contact; `answered_by`: the agent of the
        call's groups VCC says took it; `also`: fields the caller changed, written in the same UPDATE."""
        was = (self.state, self.connected_at is not None, self.recording_status, self.phase_marks)
        # VCC's words (their lists are not documented) cut to our columns: a reason longer than one made the write
        # fail, so the call was never marked ended.
        recording_status, disposition_code = (
            self._fit("recording_status", recording_status),
            self._fit("disposition_code", disposition_code),
        )
        result = (
            self._fit("result_code", result[0]),
            self._fit("result_party", result[1]),
            self._fit("result_reason", result[2]),
        )
        fields = ["vcc_status", "recording_status", "next_check_at", "missing_since", "missing_count", "last_seen_at"]
        self.vcc_status, self.recording_status = "Active" if live else "", recording_status
        self.next_check_at = next_check_at if live else None
        self.missing_since, self.missing_count, self.last_seen_at = None, 0, now
        if self.lost_contact_since is not None:
            lost, self.lost_contact_since = self.lost_contact_since, None
            fields.append("lost_contact_since")
            CallEvent.objects.create(
                call=self,
                at=now,
                kind=CallEvent.Kind.PROGRESS,
                detail=f"VCC answers again, after {round((now - lost).total_seconds())} s without an answer",
            )
        if answered_by is not None and self.answered_by_id is None and not self.from_agent_id:
            self.answered_by = answered_by
            fields.append("answered_by")
        if (agent_answered or connected) and live and self.agent_answered_at is None:
            self.agent_answered_at = now
            fields.append("agent_answered_at")
        if disposition_code and not self.disposition_code:
            self.disposition_code = disposition_code
            fields.append("disposition_code")
        # An event's time for it is VCC's; a poll's, when the poll noticed it: the earliest is kept.
        if live and connected and (self.connected_at is None or now < self.connected_at):
            self.connected_at = now
            fields.append("connected_at")
        if not live:
            self.changed_at = applied_at or now
            self.result_code, self.result_party, self.result_reason = result
            self.state, self.ended_at = self.State.ENDED, self.ended_at or now
            self.outcome = outcome_of(*result, connected=self.connected_at is not None)
            if self.duration_seconds is None:
                talked = (self.ended_at - self.connected_at).total_seconds() if self.connected_at else 0
                self.duration_seconds = max(0, round(talked))
            fields += [
                "result_code",
                "result_party",
                "result_reason",
                "state",
                "ended_at",
                "outcome",
                "duration_seconds",
                "changed_at",
            ]
        changed = was != (self.state, self.connected_at is not None, self.recording_status, self.phase_marks)
        self.save_fields([*fields, *also])
        return changed

    @property
    def phase_marks(self) -> tuple[bool, bool, bool]:
        """What else changes the words a page shows: the agent answered, who answered, contact lost."""
        return (
            self.agent_answered_at is not None,
            self.answered_by_id is not None,
            self.lost_contact_since is not None,
        )

    def record_missing(self, *, now: datetime, next_check_at: datetime) -> bool:
        """VCC answered 404. A call older than VCC's retention is closed at once; a live one after MISSING_TRIES
        such answers in a row over at least MISSING_GRACE (a single 404 is not the end of a live call, but no call
        stays live for ever). Closed, it ends as "VCC no longer knows this call". Returns whether it was closed."""
        self.missing_since = self.missing_since or now
        self.missing_count += 1
        gone = self.requested_at <= now - VCC_RETENTION or (
            self.missing_count >= MISSING_TRIES and self.missing_since <= now - MISSING_GRACE
        )
        # VCC answered: it is reachable, whatever it says about this call.
        self.lost_contact_since = None
        if not gone:
            self.next_check_at = next_check_at
            self.save_fields(["missing_since", "missing_count", "next_check_at", "lost_contact_since"])
            return False
        self.state, self.outcome = self.State.ENDED, self.Outcome.GONE
        self.ended_at = self.ended_at or now
        self.next_check_at = None
        self.result_reason = self.result_reason or "VCC no longer knows this call"
        self.changed_at = now
        seen = self.last_seen_at or self.responded_at
        self._save(
            [
                "missing_since",
                "missing_count",
                "lost_contact_since",
                "state",
                "outcome",
                "ended_at",
                "next_check_at",
                "result_reason",
                "changed_at",
            ],
            CallEvent.Kind.PROGRESS,
            f"closed: VCC no longer knows this call (answered not found {self.missing_count} times"
            + (f"; last seen {seen.astimezone(UTC):%H:%M:%S} UTC)" if seen else ")"),
            at=now,
        )
        return True

    def record_follow_error(self, *, message: str, status: int | None, now: datetime, next_check_at: datetime) -> None:
        """Asking VCC about the call failed (transport failure, 5xx, 429, ...): the call stays as it was, marked
        "lost contact" from the first failure until VCC answers again; try again later."""
        self.next_check_at = next_check_at
        fields = ["next_check_at"]
        if self.lost_contact_since is None:
            self.lost_contact_since = now
            fields.append("lost_contact_since")
        self.save_fields(fields)
        CallEvent.objects.create(
            call=self,
            at=now,
            kind=CallEvent.Kind.ERROR,
            detail=(f"call detail: HTTP {status}: {message}" if status else f"call detail: {message}")[:2000],
        )

    def record_closed(self, *, by: User, reason: str, now: datetime) -> None:
        """A supervisor closed a stuck call (asking VCC, or live) by hand, saying why; VCC is not asked."""
        self.state, self.outcome = self.State.ENDED, self.Outcome.UNKNOWN
        self.ended_at = self.ended_at or now
        self.next_check_at, self.lost_contact_since = None, None
        self.result_reason = CLOSED_BY_HAND
        self.changed_at = now
        name = by.get_full_name() or by.get_username()
        self._save(
            ["state", "outcome", "ended_at", "next_check_at", "lost_contact_since", "result_reason", "changed_at"],
            CallEvent.Kind.CLOSED,
            f"closed by {name}: {reason}",
            at=now,
        )

    def record_recording(self, *, status: str, now: datetime) -> None:
        self.recording_status = status
        self._save(["recording_status"], CallEvent.Kind.RECORDING, f"recording {status.lower()} requested", at=now)

    def record_wrap_up(self, *, code: str, notes: str, now: datetime, confirmed: bool) -> None:
        """Store the notes always, and the disposition once VCC has it (or cannot have it any more)."""
        self.notes = notes
        fields = ["notes"]
        if confirmed:
            self.disposition_code, self.wrapped_up_at, self.changed_at = code, now, now
            fields += ["disposition_code", "wrapped_up_at", "changed_at"]
        self._save(
            fields, CallEvent.Kind.WRAP_UP, f"{code}" if confirmed else f"notes saved; {code} not yet sent", at=now
        )
