"""Applying VCC's events (stored by POST /vcc/events/) to the calls they are about: the `process_vcc_events` job.

A channel event is matched to its Call by VCC's call id, the GUID `POST calls/` answered with (`Call.vcc_call_id`).
Which field of the event's `data` carries it is not in VCC's public docs: INFERRED, we read `interactionId`, then
`callGuid`, `interactionGuid` or `callId`, and last the CloudEvent's `subject` (vccsim sends `interactionId` and
`callGuid`, and the same id as `subject`; see vccsim/README.md). Likewise the party
(`party`: {role: Agent or Customer, …}), the agent (`agentDisplayId`) and an ended call's `result` ({code, party,
reason}, as in V0's call detail) are INFERRED names.

Rules:
- Events apply in VCC's order (their `time`), and never move a call backwards: once a call has ended, a late
  event is kept in its history, not applied; but the far end's `connected` that happened before the end it
  arrived after gives the call its connection and talk time (the call stays ended).
- An event may arrive before the click's answer from VCC is recorded (VCC rings the agent while vccweb still waits
  for the answer): an event whose call is not found waits up to WAIT_FOR_CLICK, then is kept as about a call vccweb
  did not place.
- Every event applied is a CallEvent in the call's history, saying it came by webhook.
- A call that had an event is not polled for EVENT_SILENCE (polling resumes on its own if events stop).
- Only v1 events apply (APPLIED_VERSIONS): VCC has a v0 of every type, with other data and its own id, sent to a
  subscription that matches it; one that arrives is kept, marked, and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from calls import phones, rules
from calls.calling.common import log
from calls.models import Agent, Call, CallEvent, CallVccId, ContactPhone, VccEvent
from calls.models.calls import CLOSED_BY_HAND
from calls.models.common import update_rows
from calls.models.outcomes import outcome_of
from calls.vcc.events import LEEWAY
from calls.webhooks import changes

WAIT_FOR_CLICK = timedelta(seconds=30)
# A click not confirmed (its request got no answer in time) may be the call an event tells of this long after it.
UNCONFIRMED_CLICK_WINDOW = timedelta(minutes=2)
CLOCKS_APART = timedelta(seconds=10)  # how far VCC's clock and ours may be apart, for matching a call to a click
LOOK_AGAIN = timedelta(seconds=2)  # an event waiting for its click's answer is looked at again this much later
BATCH = 500
GUID_FIELDS = ("interactionId", "callGuid", "interactionGuid", "callId")
CHANNEL = ("channel.alerted", "channel.connected", "channel.disconnected", "channel.wrapstarted", "channel.held")
# VCC sends each event in the version(s) a subscription matches (vcc-api.md §10.3: v0 and v1), each copy with its
# own id; vccweb subscribes to v1 (calls/vcc/webhooks.py) and applies only v1, and a type without a version (none
# is documented) as v1.
APPLIED_VERSIONS = ("v1", "")
NOT_APPLIED_VERSION = "version "  # how the result of an event of another version starts (not a flow of events)
WORDS = {
    "channel.alerted": "ringing",
    "channel.connected": "connected",
    "channel.disconnected": "disconnected",
    "channel.wrapstarted": "wrap-up started",
    "channel.held": "on hold",
}


def event_silence() -> timedelta:
    return timedelta(seconds=getattr(settings, "EVENT_SILENCE_SECONDS", 60))


@dataclass
class Processed:
    applied: int = 0
    late: int = 0  # about a call that had ended: kept in its history, not applied
    waiting: int = 0  # its call is not known yet: looked at again later
    other: int = 0  # not about a call of vccweb's, or a type vccweb does not use
    failed: int = 0  # could not be applied (a fault in vccweb, or data it cannot store): kept, marked failed


def _name(event: VccEvent) -> str:
    """The type without its version: `channel.connected.v1` -> `channel.connected`."""
    return event.type.rpartition(".")[0] if _version(event) else event.type


def _version(event: VccEvent) -> str:
    """The type's version (`v1` of `channel.connected.v1`), or "" when it names none."""
    tail = event.type.rpartition(".")[2]
    return tail if tail != event.type and tail[:1] == "v" and tail[1:].isdigit() else ""


def call_guid(event: VccEvent) -> str:
    """VCC's id of the call a channel event is about: from `data` (GUID_FIELDS), else the CloudEvent's `subject`."""
    return _guid_in_data(event) or event.subject


def _guid_in_data(event: VccEvent) -> str:
    """The call's id as `data` names it. Only such an id starts a call not placed from vccweb: the subject, which
    vccsim makes the call's id and VCC's docs do not describe, may only match a call vccweb has."""
    for field in GUID_FIELDS:
        if isinstance(event.data.get(field), str) and event.data[field]:
            return event.data[field]
    return ""


def process_pending(*, now: datetime | None = None, limit: int = BATCH) -> Processed:
    """Apply up to `limit` waiting events, oldest first; several workers may run this at once (SKIP LOCKED)."""
    now = now or timezone.now()
    done = Processed()
    with transaction.atomic():
        pending = list(
            VccEvent.objects.select_for_update(skip_locked=True)
            .filter(Q(not_before__isnull=True) | Q(not_before__lte=now), processed_at__isnull=True)
            .order_by("received_at", "id")[:limit]
        )
        calls = _locked_calls(pending)
        # What each event did (its own fields) and the calls' history lines are written for the whole batch at its
        # end, in its transaction: an event's changes are still all or nothing with the batch's.
        written: list[VccEvent] = []
        history: list[CallEvent] = []
        for event in sorted(pending, key=lambda e: (e.time or e.received_at, e.received_at, e.pk)):
            lines: list[CallEvent] = []
            try:
                with transaction.atomic():  # one event that cannot be applied never holds up the others
                    _apply(event, now=now, done=done, calls=calls, history=lines)
            except Exception as exc:
                calls.pop(call_guid(event), None)  # what it changed in the call rolled back: read it again
                log.exception("VCC event %s (%s) could not be applied", event.event_id, event.type)
                VccEvent.objects.filter(pk=event.pk).update(
                    processed_at=now, result=f"failed: {type(exc).__name__}: {exc}"[:300]
                )
                done.failed += 1
            else:
                written.append(event)
                history += lines
        CallEvent.objects.bulk_create(history)
        update_rows(VccEvent, written, WRITTEN)
    return done


# What applying an event changes in it, and the types in PostgreSQL (update_rows).
WRITTEN = {
    "processed_at": "timestamptz",
    "result": "text",
    "call": "bigint",
    "attempts": "integer",
    "not_before": "timestamptz",
}


def _locked_calls(events: list[VccEvent]) -> dict[str, Call]:
    """The calls a batch's channel events are about, by VCC call id, locked FOR UPDATE in one statement (in id
    order, so that two workers lock the calls they share in the same order). One query for the batch rather than one
    an event: building the ORM's statement for the call's 50-odd columns was a fifth of the worker's CPU under load.
    A call not found here (its click's answer recorded since, or the call logged by an earlier event of the batch)
    is looked up by its event."""
    guids = {
        guid
        for event in events
        if _name(event) in CHANNEL and _version(event) in APPLIED_VERSIONS and (guid := call_guid(event))
    }
    if not guids:
        return {}
    keys = dict(CallVccId.objects.filter(vcc_call_id__in=guids).values_list("vcc_call_id", "call_id"))
    found = Call.objects.select_for_update().filter(pk__in=keys.values()).order_by("pk").in_bulk()
    return {guid: found[pk] for guid, pk in keys.items() if pk in found}


def _apply(
    event: VccEvent, *, now: datetime, done: Processed, calls: dict[str, Call], history: list[CallEvent]
) -> None:
    """Apply one event: its call (or agent) and its own fields change, and `history` gets the line for the call's
    history; process_pending writes the event and the line."""
    name = _name(event)
    if _version(event) not in APPLIED_VERSIONS:  # another version's copy of an event: its data is not v1's
        event.processed_at, event.result = now, f"{NOT_APPLIED_VERSION}{_version(event)}: vccweb applies v1 events only"
        done.other += 1
        return
    if name == "agent.presencechanged":
        event.result = _apply_presence(event, now=now)
        event.processed_at = now
        done.applied += event.result.startswith("applied")
        done.other += not event.result.startswith("applied")
        return
    if name not in CHANNEL:
        event.processed_at, event.result = now, "not about a call"
        done.other += 1
        return
    guid = call_guid(event)
    call = calls.get(guid) or (Call.objects.select_for_update().with_vcc_call_id(guid).first() if guid else None)
    if call is None and guid and _guid_in_data(event) and _not_ours_for_sure(event, now=now):
        at = min(event.time or now, now)
        call = _unconfirmed_click(guid, event.data, at=at, now=now) or _call_not_placed_here(
            guid, event.data, at=at, now=now
        )
        if call is None:
            event.processed_at, event.result = now, "not placed from vccweb, and not to an agent vccweb knows"
            done.other += 1
            return
    if call is not None:
        calls[guid] = call
    if call is None:
        if guid and now - event.received_at < WAIT_FOR_CLICK:
            event.attempts += 1
            event.not_before = now + LOOK_AGAIN  # the events behind it are not held up meanwhile
            done.waiting += 1
            return
        event.processed_at = now
        event.result = "no call of vccweb's has this id: not placed from vccweb" if guid else "no call id in it"
        done.other += 1
        return
    at = min(event.time or now, now)
    words = WORDS.get(name, name)
    if call.state != Call.State.LIVE:
        if name == "channel.connected" and _talks(call, event.data) and _connected_before_its_end(call, at=at, now=now):
            detail = "VCC: connected (webhook), told after the call's end"
            history.append(CallEvent(call=call, at=at, kind=CallEvent.Kind.PROGRESS, detail=detail))
            event.processed_at, event.result, event.call = now, f"applied to call {call.pk}, after its end", call
            done.applied += 1
            return
        history.append(
            CallEvent(
                call=call,
                at=at,
                kind=CallEvent.Kind.PROGRESS,
                detail=f"VCC said {words} (webhook), after the call ended: not applied",
            )
        )
        event.processed_at, event.result, event.call = now, f"late: call {call.pk} had ended", call
        done.late += 1
        return
    with changes.call_change(call):
        _apply_to_live(call, name, event.data, at=at, now=now)
    history.append(CallEvent(call=call, at=at, kind=CallEvent.Kind.PROGRESS, detail=f"VCC: {words} (webhook)"))
    event.processed_at, event.result, event.call = now, f"applied to call {call.pk}", call
    done.applied += 1
    log.info("call %s: %s by webhook", call.pk, words)


def _connected_before_its_end(call: Call, *, at: datetime, now: datetime) -> bool:
    """A far end's `connected` that arrives once the call has ended (VCC delivering it again after a failed try, when
    the `disconnected` behind it got through first): the call did connect, and talked until its end. Recorded,
    with the talk time and outcome it makes, unless the call had a connection as early (a poll's is when it noticed
    it), or its end was not VCC's (a supervisor's close, VCC no longer knowing the call). Its time is at most the
    end's: both are VCC's times cut to when they were applied (`_apply`), which, VCC's clock being ahead, may put
    them the wrong way round."""
    if (
        (call.connected_at is not None and call.connected_at <= at)
        or call.ended_at is None
        or call.outcome == Call.Outcome.GONE
        or call.result_reason == CLOSED_BY_HAND
    ):
        return False
    # changed now: the roll-up counts it again (calls/reports.py). A webhook receiver that had `call.ended` with no
    # talk time gets `call.connected`, with the call as it is now (calls/webhooks/changes.py).
    with changes.call_change(call):
        call.connected_at, call.changed_at = min(at, call.ended_at), now
        call.duration_seconds = max(0, round((call.ended_at - call.connected_at).total_seconds()))
        call.outcome = outcome_of(call.result_code, call.result_party, call.result_reason, connected=True)
        call.save_fields(["connected_at", "duration_seconds", "outcome", "changed_at"])
    log.info("call %s: connected, told by webhook after its end", call.pk)
    return True


def _not_ours_for_sure(event: VccEvent, *, now: datetime) -> bool:
    """A call id vccweb does not know is a call placed elsewhere once no click could still be waiting for VCC's
    answer (none asking VCC now), or after WAIT_FOR_CLICK."""
    if now - event.received_at >= WAIT_FOR_CLICK:
        return True
    # A click waiting for VCC's answer by this agent, or by a group (any agent may take it), may be this call.
    asking = Call.objects.filter(state=Call.State.REQUESTED)
    agent = str(event.data.get("agentDisplayId") or "")
    return not asking.filter(Q(from_agent__isnull=True) | Q(from_agent__display_id=agent)).exists()


def _inbound(data: dict[str, Any]) -> bool:
    return str(data.get("direction") or "").lower() == "inbound"


def _far_number(data: dict[str, Any]) -> str | None:
    """The number at the far end of an event's call (the caller of an inbound call, else the one called), in E.164;
    None when withheld or not a number."""
    try:
        return phones.to_e164(_number(data.get("from") if _inbound(data) else data.get("to")))
    except ValidationError:
        return None


def _number(end: object) -> str:
    if isinstance(end, dict):
        return str(end.get("telephoneNumber") or "")
    return str(end or "")


def _unconfirmed_click(guid: str, data: dict[str, Any], *, at: datetime, now: datetime) -> Call | None:
    """The click this unknown call is, when VCC placed it after all: a click whose request got no answer in time (not
    confirmed: VCC may have placed it, and never said its id) by this agent, or through groups, to this number, asked
    within UNCONFIRMED_CLICK_WINDOW before the call began. It is followed from now on, instead of the call being
    logged a second time as dialled from the agent's phone."""
    agent = str(data.get("agentDisplayId") or "")
    if not agent or _inbound(data) or (number := _far_number(data)) is None:
        return None
    # Via groups: the agent VCC gave it to is in one of them.
    in_its_groups = Exists(
        Call.from_groups.through.objects.filter(call=OuterRef("pk"), agentgroup__members__display_id=agent)
    )
    click = (
        Call.objects.select_for_update(of=("self",))
        .filter(state=Call.State.UNCONFIRMED, vcc_call_id="", to_number=number)
        # VCC's clock and ours may differ by a few seconds: the call may seem to begin just before the click.
        .filter(requested_at__gte=at - UNCONFIRMED_CLICK_WINDOW, requested_at__lte=at + CLOCKS_APART)
        .filter(Q(from_agent__display_id=agent) | Q(in_its_groups, from_agent__isnull=True))
        .order_by("-requested_at", "-pk")
        .first()
    )
    if click is None:
        return None
    with changes.call_change(click):
        click.record_placed(
            vcc_call_id=guid,
            vcc_status="Active",
            recording_status=click.recording_status,
            latency_ms=click.latency_ms or 0,
            now=now,
            note="VCC's answer never came, but its events name the call: it was placed after all",
            error_message=click.error_message,
            error_status=click.error_status,
        )
    CallEvent.objects.create(
        call=click,
        at=now,
        kind=CallEvent.Kind.PROGRESS,
        detail="VCC's events name this call: it was placed after all, and is followed from now on",
    )
    log.info("call %s: not confirmed, then named by VCC's events (%s): followed", click.pk, guid)
    return click


def _call_not_placed_here(guid: str, data: dict[str, Any], *, at: datetime, now: datetime) -> Call | None:
    """Log a call VCC's events tell of that vccweb did not place, when it reached an agent vccweb knows: an agent
    dialling from their phone, or an inbound call. Matched to the contact whose number it is. It began `at` (the
    event's time) and is logged `now`: the roll-up counts what changed since its last run (calls/reports.py).
    Returns the click's call instead when a click's answer from VCC names the id meanwhile."""
    agent = Agent.objects.filter(display_id=str(data.get("agentDisplayId") or "")).first()
    if agent is None:
        return None
    inbound = _inbound(data)
    if (number := _far_number(data)) is None:
        return None
    matches = list(ContactPhone.objects.filter(number=number).select_related("contact").order_by("contact_id")[:50])
    first = matches[0] if matches else None
    call = Call(
        vcc_call_id=guid,
        origin=Call.Origin.INBOUND if inbound else Call.Origin.AGENT_PHONE,
        from_agent=agent,
        to_number=number,
        contact=first.contact if first else None,
        phone=first,
        also_matches=len({m.contact_id for m in matches}) - 1 if matches else 0,
        state=Call.State.LIVE,
        requested_at=at,
        responded_at=at,
        changed_at=now,
        last_seen_at=at,
    )
    try:
        with transaction.atomic(), changes.call_change(call):  # call.placed: it is live at VCC
            call.save(force_insert=True)
    except IntegrityError:
        # A click's answer from VCC named this id after the event looked it up (placing._record_answer): the event
        # is about that click's call, found by the id now.
        placed = Call.objects.select_for_update().with_vcc_call_id(guid).first()
        if placed is None:
            raise
        return placed
    log.info("call %s: logged from VCC's events (%s), not placed from vccweb", call.pk, call.origin)
    return call


def is_far_end(data: dict[str, Any]) -> bool:
    """Whether the event's channel is the far end (the contact, or the colleague called), not the calling agent's
    own phone. INFERRED shape: `party` is {role: Agent|Customer, agentDisplayId, telephoneNumber} (vccsim), or a
    word (`agent`, `external`)."""
    party = data.get("party")
    if isinstance(party, dict):
        if str(party.get("role") or "").lower() in ("customer", "external", "contact"):
            return True
        own = str(data.get("agentDisplayId") or "")
        return bool(party.get("agentDisplayId")) and str(party.get("agentDisplayId")) != own
    return str(party or "").lower() in ("external", "customer", "contact", "callee")


def _talks(call: Call, data: dict[str, Any]) -> bool:
    """Whether this channel's `connected` starts the talk: the far end's on a call made out (the agent's phone rang
    first), the agent's on an inbound call (VCC answered the caller already, to queue them: ringing, not talking)."""
    return is_far_end(data) != (call.origin == Call.Origin.INBOUND)


def _apply_to_live(call: Call, name: str, data: dict[str, Any], *, at: datetime, now: datetime) -> None:
    to_contact = is_far_end(data)
    talks = name == "channel.connected" and _talks(call, data)
    party = data.get("party")
    agent = None
    if data.get("agentDisplayId") and not call.from_agent_id:
        agent = Agent.objects.filter(display_id=str(data["agentDisplayId"])).first()
    found = data.get("result")
    result: dict[str, Any] = found if isinstance(found, dict) else {}
    hung_up = name == "channel.disconnected" and (to_contact or not party or bool(result))
    # A hang-up that does not say how the call ended (no `result`): VCC is asked once, at once, rather than logging
    # the outcome as unknown (the call is handed back to polling: no event marks it).
    ask_how = hung_up and not result
    from calls.calling.following import FOLLOW_INTERVAL  # here: following imports calls.health, which imports this

    ended = hung_up and not ask_how
    call.last_event_at = None if ask_how else now
    call.record_detail(
        live=not ended,
        recording_status=call.recording_status,
        result=(str(result.get("code") or ""), str(result.get("party") or ""), str(result.get("reason") or "")),
        connected=talks,
        disposition_code="",
        now=at,
        # Asked only if silent (following.next_look); or at once: a call no event has told of waits for its events
        # (FOLLOW_INTERVAL, and the inbox applied up to then, EVENT_SILENCE_SECONDS at most: following.polled),
        # and this one's have come.
        next_check_at=now - event_silence() - FOLLOW_INTERVAL if ask_how else now + 2 * event_silence(),
        agent_answered=(name == "channel.alerted" and to_contact) or (name == "channel.connected" and not to_contact),
        answered_by=agent if name == "channel.connected" else None,
        also=("last_event_at",),
        applied_at=now,  # the event's time is when it happened, not when the roll-up can see the change
    )
    # Whether it records: what VCC said when it was placed (Stopped, before it connected) is out of date.
    if talks and not ended and not rules.is_connected(call.recording_status):
        from calls import tasks  # here: the tasks import this module

        tasks.learn_recording.defer(call_id=call.pk)  # committed with the event: the worker asks VCC once


def _apply_presence(event: VccEvent, *, now: datetime) -> str:
    """An agent's presence (INFERRED fields: `agentDisplayId` or `userId`, and `presence` {category: Ready, Away,
    ExtendedAway, LoggedOut; description}). An older event than the presence kept is ignored."""
    data = event.data
    agent = None
    if data.get("agentDisplayId"):
        agent = Agent.objects.select_for_update().filter(display_id=str(data["agentDisplayId"])).first()
    if agent is None and data.get("userId"):
        agent = Agent.objects.select_for_update().filter(vcc_user_id=str(data["userId"])).first()
    if agent is None:
        return "no agent of vccweb's"
    presence: dict[str, Any] = data["presence"] if isinstance(data.get("presence"), dict) else {}
    category: dict[str, Any] = presence["category"] if isinstance(presence.get("category"), dict) else {}
    named = presence.get("category") if isinstance(presence.get("category"), str) else data.get("category")
    kind = str(category.get("categoryType") or named or "")[:32]
    if not kind:
        return "no presence in it"
    # VCC's time, which orders its events (cut to now, VCC's clock being ahead, an older one delivered later would
    # seem newer); at most the signature's leeway ahead, so that no time from the future holds later ones back.
    at = min(event.time or now, now + timedelta(seconds=LEEWAY))
    if agent.presence_since is not None and at < agent.presence_since:
        return f"late: agent {agent.display_id} has a newer presence"
    agent.presence, agent.presence_since = kind, at
    agent.presence_detail = str(presence.get("description") or category.get("description") or "")[:200]
    agent.save(update_fields=["presence", "presence_detail", "presence_since"])
    return f"applied to agent {agent.display_id}: {kind}"


# --- What the integration health page shows ---------------------------------------------------------------------

COUNT_CAP = 1000  # counted up to, as the health page's other counts

REFUSALS_KEY = "vcc-events:refused:{hour}"  # deliveries refused per hour (POST /vcc/events/)


def refused_last_hour() -> int:
    """Deliveries refused this hour and the last (what the health page shows)."""
    hour = int(timezone.now().timestamp() // 3600)
    return sum(cache.get(REFUSALS_KEY.format(hour=h), 0) for h in (hour - 1, hour))


def count_refusal(count: int = 1) -> None:
    """Deliveries refused (calls/views/vcc_events.py, calls/vcc/receiver.py), counted in the cache for this hour."""
    key = REFUSALS_KEY.format(hour=int(timezone.now().timestamp() // 3600))
    if not cache.add(key, count, 7200):
        try:
            cache.incr(key, count)
        except ValueError:
            cache.add(key, count, 7200)


@dataclass
class EventsHealth:
    """VCC's events (POST /vcc/events/): whether they flow, and what the receiver refused."""

    configured: bool  # a signing secret is set (VCC_WEBHOOK_SECRETS)
    received_last_hour: int
    last_received: datetime | None
    waiting: int  # stored, not yet applied
    refused_last_hour: int
    flowing: bool  # one arrived within EVENT_SILENCE_SECONDS: calls that had events are not polled
    url: str  # where VCC should deliver (SITE_URL), or "" when SITE_URL is not set
    # Calls VCC placed for vccweb in the last hour, more than EVENT_SILENCE_SECONDS ago, since the last event came:
    # each would have had its events within a second, so they have stopped (a subscription VCC dropped or disabled,
    # a secret rotated away). No call, no such sign: a quiet hour is not a fault.
    untold_calls: int = 0

    def problem(self) -> str:
        """What the health page's list of problems says of events that stopped, or ""."""
        if not self.untold_calls:
            return ""
        if self.last_received is None:
            said = f"No event has come from VCC: {self.untold_calls} call(s) placed in the last hour had none."
        else:
            said = (
                f"VCC's events have stopped: the last came {self.last_received.astimezone(UTC):%d %b %H:%M} UTC, and "
                f"{self.untold_calls} call(s) placed since had none."
            )
        return said + (
            " Check VCC's subscription (manage.py vcc_webhooks list; Subscribe on this page makes one if VCC dropped "
            "it) and the refusals below; meanwhile calls are followed by asking VCC, and calls not placed from "
            "vccweb are not logged."
        )


def _untold_calls(*, last: datetime | None, now: datetime) -> int:
    if not settings.VCC_WEBHOOK_KEYS:
        return 0  # events are not used
    since = now - timedelta(hours=1) if last is None else max(last, now - timedelta(hours=1))
    placed = Call.objects.filter(
        requested_at__gt=since, requested_at__lte=now - event_silence(), origin=Call.Origin.VCCWEB
    )
    return placed.exclude(vcc_call_id="")[:COUNT_CAP].count()


def events_health(*, now: datetime) -> EventsHealth:
    from calls.calling.following import events_flowing

    last = VccEvent.objects.order_by("-received_at").values_list("received_at", flat=True).first()
    return EventsHealth(
        configured=bool(settings.VCC_WEBHOOK_KEYS),
        received_last_hour=VccEvent.objects.filter(received_at__gte=now - timedelta(hours=1))[:COUNT_CAP].count(),
        last_received=last,
        waiting=VccEvent.objects.filter(processed_at__isnull=True)[:COUNT_CAP].count(),
        refused_last_hour=refused_last_hour(),
        flowing=events_flowing(now=now),
        url=settings.SITE_URL.rstrip("/") + "/vcc/events/" if settings.SITE_URL else "",
        untold_calls=_untold_calls(last=last, now=now),
    )
