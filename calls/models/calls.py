"""The call log: one row per click (Call), its transitions, and its history (CallEvent)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import DatabaseError, connection, models
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from calls import permissions as perms
from calls import phones
from calls.models.common import Consent, column_of, concrete_field

if TYPE_CHECKING:
    from collections.abc import Iterable

    from django.contrib.auth.models import User


VCC_RETENTION = timedelta(hours=24)  # how long VCC keeps a call's detail after it ends
MISSING_GRACE = timedelta(minutes=5)  # how long a call may answer 404 before it is closed as gone


class CallQuerySet(models.QuerySet["Call"]):
    def visible_to(self, user: User) -> CallQuerySet:
        """Everyone's calls for supervisors and admins; an agent's own calls (clicked by them or from them)."""
        return self if user.has_perm(perms.VIEW_ALL_CALLS) else self.changeable_by(user)

    def changeable_by(self, user: User) -> CallQuerySet:
        """Calls this user may act on (recording, wrap-up): the ones they clicked or that rang their phone.

        `Call.is_changeable_by` says the same for one row already loaded."""
        return self.filter(Q(created_by=user) | Q(from_agent__user=user))

    def blocking(
        self, *, agent_id: int | None, number: str, user_id: int, since: datetime, request_id: str
    ) -> Call | None:
        """The latest live call since `since` that holds the agent's phone or, clicked by someone else, the number.

        The search is raw SQL, because every click runs it: the ORM spent some 2.5 ms of CPU building it for
        0.1 ms of work in PostgreSQL. The row, when there is one (rarely), is loaded with the ORM.
        """
        holds = []
        params: list[Any] = [  # values as the database adapter takes them
            self.model.State.LIVE,
            connection.ops.adapt_datetimefield_value(since),
            concrete_field(self.model, "request_id").get_db_prep_value(request_id, connection),
        ]
        if agent_id is not None:
            holds.append("from_agent_id = %s")
            params.append(agent_id)
        if number:
            holds.append("(to_number = %s AND created_by_id IS DISTINCT FROM %s)")
            params += [number, user_id]
        if not holds:
            return None
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {self.model._meta.db_table} WHERE state = %s AND requested_at >= %s "
                "AND request_id <> %s "
                f"AND ({' OR '.join(holds)}) ORDER BY requested_at DESC, id DESC LIMIT 1",
                params,
            )
            row = cursor.fetchone()
        return self.select_related("created_by", "from_agent").get(pk=row[0]) if row else None

    def with_parties(self) -> CallQuerySet:
        """With the contact, number, agents and clicker that call panels show."""
        return self.select_related("contact", "phone", "from_agent", "to_agent", "created_by")

    def in_progress(self) -> CallQuerySet:
        """Calls VCC may still be connecting or carrying: asked for, or placed and not yet ended."""
        return self.filter(state__in=Call.IN_PROGRESS)

    def to_wrap_up(self) -> CallQuerySet:
        """Calls that ended without a wrap-up."""
        return self.filter(state=Call.State.ENDED, wrapped_up_at__isnull=True)


class Call(models.Model):
    """One click: written before VCC is asked, then updated with the outcome and followed until the call ends.

    Its changes of state are the `record_*` methods below; each saves only the fields it changes, so a stale copy
    (a slow poll, the worker) never undoes what another process saved meanwhile.
    """

    class State(models.TextChoices):
        REQUESTED = "requested", "Asking VCC"
        LIVE = "live", "Live"  # VCC placed it and has not said it ended
        ENDED = "ended", "Ended"
        FAILED = "failed", "Not placed"  # VCC refused it, or it never reached VCC
        UNCONFIRMED = "unconfirmed", "Not confirmed"  # VCC may have placed it; we never learnt its id

    class Outcome(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        ANSWERED = "answered", "Answered"
        AGENT_NO_ANSWER = "agent_no_answer", "Not answered by the agent"
        NO_ANSWER = "no_answer", "Not answered by the contact"
        BUSY = "busy", "Line busy"
        FAILED = "failed", "Failed"
        NOT_CONFIRMED = "not_confirmed", "Not confirmed: may have been placed"
        UNKNOWN = "unknown", "Ended, result unknown"

    IN_PROGRESS = (State.REQUESTED, State.LIVE)

    request_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, help_text="Our idempotency key.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="calls_made"
    )
    # From: one agent, or any available agent of some groups.
    from_agent = models.ForeignKey(
        "calls.Agent", null=True, blank=True, on_delete=models.PROTECT, related_name="calls_from"
    )
    from_groups = models.ManyToManyField("calls.AgentGroup", blank=True, related_name="calls")
    # To: a telephone number, or another agent.
    to_number = models.CharField(max_length=32, blank=True)
    to_agent = models.ForeignKey(
        "calls.Agent", null=True, blank=True, on_delete=models.PROTECT, related_name="calls_to"
    )
    contact = models.ForeignKey("calls.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="calls")
    phone = models.ForeignKey(
        "calls.ContactPhone", null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
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
    # When what reports count last changed (state, outcome, talk time, disposition): the roll-up rebuilds the days
    # of calls changed since its last run (calls/reports.py).
    changed_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The id of the request that placed the call (calls.observability), to find its log lines.
    trace_id = models.CharField(max_length=64, blank=True, db_index=False)

    objects = CallQuerySet.as_manager()

    class Meta:
        ordering = ["-requested_at", "-pk"]
        permissions = [
            ("place_call", "Can place calls as their own agent"),
            ("place_group_call", "Can place calls via agent groups"),
            ("override_do_not_call", "Can call a do-not-call number, giving a reason"),
            ("view_all_calls", "Can see everyone's calls"),
            ("view_reports", "Can see call reports"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["vcc_call_id"], condition=~Q(vcc_call_id=""), name="call_unique_vcc_call_id"
            ),
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
        agent = self.from_agent if self.from_agent_id else None
        return self.created_by_id == user.pk or (agent is not None and agent.user_id == user.pk)

    @property
    def destination(self) -> str:
        return str(self.to_agent) if self.to_agent_id else phones.display(self.to_number)

    @property
    def in_progress(self) -> bool:
        return self.state in self.IN_PROGRESS

    @property
    def is_live(self) -> bool:
        return self.state == self.State.LIVE

    @property
    def wrap_up_due(self) -> bool:
        return self.state == self.State.ENDED and self.wrapped_up_at is None

    def history(self) -> list[tuple[datetime, str, str]]:
        """Everything that happened to the call, oldest first: (when, what, detail). The milestones come from
        the row itself, everything else from its CallEvents (one query)."""
        items = [
            (self.requested_at, "Asked VCC to place the call", self.clid_reason and f"caller ID: {self.clid_reason}")
        ]
        if self.responded_at:
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

    # --- Writing the row: every click and every follow does, so its SQL is built here ---------------------------
    # Django's save() spent about 1 ms of CPU building each INSERT or UPDATE of this 40-column row, more than
    # PostgreSQL spent running it. These write the same values (each field's pre_save and get_db_prep_save) and
    # send no pre_save/post_save signals: nothing listens to Call's, and a test fails if something starts to.

    def insert(self) -> None:
        """save(force_insert=True): write this new row and take its id."""
        meta = self._meta
        fields = [f for f in meta.concrete_fields if not f.primary_key and not f.generated]
        values = [f.get_db_prep_save(f.pre_save(self, True), connection) for f in fields]
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(column_of(f)) for f in fields)}) "
                f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(column_of(meta.pk))}",
                values,
            )
            self.pk = cursor.fetchone()[0]
        self._state.adding, self._state.db = False, connection.alias

    def save_fields(self, fields: Iterable[str]) -> None:
        """save(update_fields=fields): write these fields of the row."""
        meta, quote = self._meta, connection.ops.quote_name
        columns = [concrete_field(type(self), name) for name in fields]
        values = [f.get_db_prep_save(f.pre_save(self, False), connection) for f in columns]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {quote(meta.db_table)} SET {', '.join(f'{quote(column_of(f))} = %s' for f in columns)} "
                f"WHERE {quote(column_of(meta.pk))} = %s",
                [*values, self.pk],
            )
            if cursor.rowcount != 1:
                raise DatabaseError("Save with update_fields did not affect any rows.")

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
    ) -> None:
        """VCC placed the call (or named it in Location although its reply was unreadable: `note` says so)."""
        self.state, self.outcome = self.State.LIVE, self.Outcome.IN_PROGRESS
        self.vcc_call_id, self.vcc_status, self.recording_status = vcc_call_id, vcc_status, recording_status
        self.responded_at, self.latency_ms, self.next_check_at = now, latency_ms, now
        self.error_display, self.changed_at = note, now
        self.save_fields(
            [
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
                *(["error_message", "error_status"] if note else []),
            ]
        )

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
    ) -> bool:
        """VCC's call detail: where the call is now. Returns whether its phase changed (worth telling the page)."""
        was = (self.state, self.connected_at is not None, self.recording_status)
        fields = ["vcc_status", "recording_status", "next_check_at", "missing_since"]
        self.vcc_status = "Active" if live else ""
        self.recording_status = recording_status
        self.next_check_at = next_check_at if live else None
        self.missing_since = None
        if disposition_code and not self.disposition_code:
            self.disposition_code = disposition_code
            fields.append("disposition_code")
        if live and connected and self.connected_at is None:
            self.connected_at = now
            fields.append("connected_at")
        if not live:
            self.changed_at = now
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
        changed = was != (self.state, self.connected_at is not None, self.recording_status)
        self.save_fields(fields)
        return changed

    def record_missing(self, *, now: datetime, next_check_at: datetime) -> bool:
        """VCC answered 404. Only a call older than VCC's retention, or one missing for several minutes, is
        closed (without a result); a single 404 is not the end of a live call. Returns whether it was closed."""
        self.missing_since = self.missing_since or now
        gone = self.requested_at <= now - VCC_RETENTION or self.missing_since <= now - MISSING_GRACE
        if not gone:
            self.next_check_at = next_check_at
            self.save_fields(["missing_since", "next_check_at"])
            return False
        self.state, self.outcome = self.State.ENDED, self.Outcome.UNKNOWN
        self.ended_at = self.ended_at or now
        self.next_check_at = None
        self.result_reason = self.result_reason or "Unknown: VCC no longer has this call"
        self.changed_at = now
        self._save(
            ["missing_since", "state", "outcome", "ended_at", "next_check_at", "result_reason", "changed_at"],
            CallEvent.Kind.PROGRESS,
            "closed: VCC no longer has this call",
            at=now,
        )
        return True

    def record_follow_error(self, *, message: str, status: int | None, now: datetime, next_check_at: datetime) -> None:
        """Asking VCC about the call failed: try again later; the call stays as it was."""
        self.next_check_at = next_check_at
        self.save_fields(["next_check_at"])
        CallEvent.objects.create(
            call=self,
            at=now,
            kind=CallEvent.Kind.ERROR,
            detail=(f"call detail: HTTP {status}: {message}" if status else f"call detail: {message}")[:2000],
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


def outcome_of(code: str, party: str, reason: str, *, connected: bool) -> str:
    """How an ended call went, from VCC's result (code, party, reason); VCC documents few values, so be lenient."""
    code_, party_, reason_ = code.lower(), party.lower(), reason.lower()
    if code_ == "success" or (not code_ and connected):
        return Call.Outcome.ANSWERED
    if not code_ and not reason_:
        return Call.Outcome.UNKNOWN
    if "busy" in reason_:
        return Call.Outcome.BUSY
    if "noanswer" in reason_.replace(" ", "").replace("_", ""):
        return Call.Outcome.AGENT_NO_ANSWER if party_ == "originator" else Call.Outcome.NO_ANSWER
    return Call.Outcome.FAILED


class CallEvent(models.Model):
    """One entry of a call's history beyond the milestones its row keeps (asked, answered, connected, ended):
    errors asking VCC, recording changes, wrap-ups and their edits, a call closed without a result."""

    class Kind(models.TextChoices):
        PROGRESS = "progress", "Progress"
        ERROR = "error", "Error asking VCC"
        RECORDING = "recording", "Recording"
        WRAP_UP = "wrap_up", "Wrap-up"

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    kind = models.CharField(max_length=12, choices=Kind.choices)
    detail = models.CharField(max_length=2000, blank=True)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["call", "at"], name="callevent_call_idx")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.get_kind_display()}: {self.detail}"
