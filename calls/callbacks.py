"""Callbacks (issue 23): promise one at a wrap-up, keep it by calling back, close it by hand, list what is due.

Every entry point calls these: the call panel's and the call bar's wrap-up and the API's (through
`calling.wrap_up`, in the wrap-up's transaction), the home page, /callbacks/, and the `announce_callbacks` job.
Queries other areas use are on the model: `Callback.objects.open().due(now).for_person(user)` is what is due for
a person (theirs and their groups').
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from calls import permissions as perms
from calls.models import AgentGroup, Call, Callback, CallbackQuerySet
from calls.webhooks import outbox

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django.db.models import QuerySet

log = logging.getLogger(__name__)

MAX_AHEAD = timedelta(days=90)  # a promise further off is a typing mistake (a year instead of a month)
UPCOMING = 50  # the home page's upcoming callbacks: the next few
ANNOUNCE_BATCH = 500


def groups_for(user: User) -> QuerySet[AgentGroup]:
    """The groups a person may promise a callback to: all of them for those who may call via groups, else their
    own agent's."""
    if user.has_perm(perms.PLACE_GROUP_CALL):
        return AgentGroup.objects.all()
    return AgentGroup.objects.filter(members__user=user)


def check_promise(*, user: User, due_at: datetime, group: AgentGroup | None, now: datetime) -> None:
    """Raise ValidationError saying what to fix when a promise cannot be made as asked."""
    if due_at <= now:
        raise ValidationError("Choose a time to call back that is still to come.", code="past")
    if due_at > now + MAX_AHEAD:
        raise ValidationError(f"Choose a time to call back within {MAX_AHEAD.days} days.", code="too_far")
    if group is not None and not groups_for(user).filter(pk=group.pk).exists():
        raise ValidationError("Choose yourself or one of your groups to call back.", code="group")


def promise(
    *, call: Call, user: User, due_at: datetime, to_group: AgentGroup | None = None, note: str = "", now: datetime
) -> Callback:
    """Promise to call the call's contact back at due_at, to the user or to a group. A call promises one callback:
    wrapping it up again with a callback moves the one it promised (still open) rather than adding another."""
    if not call.contact_id:
        raise ValidationError("Only a call to a contact can promise a callback.", code="no_contact")
    check_promise(user=user, due_at=due_at, group=to_group, now=now)
    assigned = None if to_group is not None else user
    with transaction.atomic():
        earlier = Callback.objects.open().select_for_update().filter(promised_on=call).first()
        if earlier is not None:
            earlier.due_at, earlier.assigned_to, earlier.group = due_at, assigned, to_group
            earlier.note, earlier.announced_at = note, None
            earlier.save(update_fields=["due_at", "assigned_to", "group", "note", "announced_at"])
            return earlier
        return Callback.objects.create(
            contact_id=call.contact_id,
            phone_id=call.phone_id,
            due_at=due_at,
            assigned_to=assigned,
            group=to_group,
            note=note,
            promised_on=call,
            created_by=user,
        )


def keep(call: Call, now: datetime) -> int:
    """A call wrapped up keeps the contact's open callbacks promised before it was placed and due by the end of its
    day that were promised to its caller (whoever clicked, or the agent who took it) or to a group that agent is in:
    they are done, by this call. Returns how many. A callback promised on this very call, or after it was placed (a
    late wrap-up, an old wrap-up edited), is not kept by it: the call cannot have been the call back."""
    if not call.contact_id:
        return 0
    agent = call.agent
    people = {pk for pk in (call.created_by_id, agent.user_id if agent else None) if pk}
    members = Q(agent__user_id__in=people)
    if agent is not None:
        members |= Q(agent_id=agent.pk)
    groups = AgentGroup.members.through.objects.filter(members).values("agentgroup_id")
    kept = (
        Callback.objects.open()
        .filter(contact_id=call.contact_id, due_at__lt=end_of_day(call.requested_at))
        .filter(created_at__lt=call.requested_at)
        .filter(Q(assigned_to_id__in=people) | Q(group_id__in=groups))
        .exclude(promised_on=call)
        .update(state=Callback.State.DONE, done_at=now, done_by_call=call)
    )
    if kept:
        _queues_know(call.contact_id, reached=True, now=now)
    return kept


def _queues_know(contact_id: int, *, reached: bool, now: datetime) -> None:
    """A contact's promise closed: the queues waiting for it to call them back are told (calls/queues/)."""
    from calls.queues import working  # the queues build on callbacks, not the other way round

    working.callback_closed(contact_id, reached=reached, now=now)


def _closable(callback_pk: int, user: User) -> Callback:
    """The open callback, locked, if this person may close it (theirs, their group's, or anyone's for those who see
    everyone's calls); PermissionDenied otherwise, Callback.DoesNotExist when it is gone."""
    callback = Callback.objects.select_for_update().get(pk=callback_pk)
    if not Callback.objects.visible_to(user).filter(pk=callback_pk).exists():
        raise PermissionDenied("This callback is not yours or your group's.")
    return callback


def close(callback: Callback, *, user: User, now: datetime, state: str) -> bool:
    """Mark an open callback done (called back another way) or cancelled; False when it was no longer open."""
    assert state in (Callback.State.DONE, Callback.State.CANCELLED)
    with transaction.atomic():
        locked = _closable(callback.pk, user)
        if locked.state != Callback.State.OPEN:
            return False
        locked.state, locked.done_at = state, now
        locked.save(update_fields=["state", "done_at"])
        if not Callback.objects.open().filter(contact_id=locked.contact_id).exists():
            _queues_know(locked.contact_id, reached=state == Callback.State.DONE, now=now)
    callback.state, callback.done_at = locked.state, locked.done_at
    return True


def cancel(callback: Callback, user: User, now: datetime) -> bool:
    return close(callback, user=user, now=now, state=Callback.State.CANCELLED)


def done(callback: Callback, user: User, now: datetime) -> bool:
    return close(callback, user=user, now=now, state=Callback.State.DONE)


@dataclass
class Due:
    """A person's open callbacks: their time has come (overdue), later today, and the next few after today."""

    overdue: list[Callback] = field(default_factory=list)
    today: list[Callback] = field(default_factory=list)
    upcoming: list[Callback] = field(default_factory=list)
    more: bool = False  # more are due today than SHOWN_DUE: the callbacks page lists them all

    def __bool__(self) -> bool:
        return bool(self.overdue or self.today or self.upcoming)


def with_parties(callbacks: CallbackQuerySet) -> CallbackQuerySet:
    return callbacks.select_related("contact", "phone", "assigned_to", "group", "created_by")


SHOWN_DUE = 50  # overdue and due today on Today; the rest on the callbacks page


def due_for(user: User, now: datetime) -> Due:
    """The person's callbacks (promised to them or a group they are in), by when: two queries."""
    midnight = end_of_day(now)
    due = Due()
    rows = with_parties(Callback.objects.open().for_person(user)).order_by("due_at", "pk")
    today = list(rows.filter(due_at__lt=midnight)[: SHOWN_DUE + 1])  # a group's backlog is not drawn whole
    due.more = len(today) > SHOWN_DUE
    for callback in today[:SHOWN_DUE]:
        (due.overdue if callback.due_at <= now else due.today).append(callback)
    due.upcoming = list(rows.filter(due_at__gte=midnight)[:UPCOMING])
    return due


def next_due_for(user: User, now: datetime) -> Callback | None:
    """The person's (or their groups') callback that has been due longest, if any: what a queue offers first."""
    return with_parties(Callback.objects.open().due(now).for_person(user)).order_by("due_at", "pk").first()


DUE_SHOWN = 99  # the call bar counts up to this many due callbacks, then says "99+"


def due_count(user: User, now: datetime) -> int:
    """How many of the person's callbacks are due (the call bar's "N callbacks due"), up to DUE_SHOWN + 1: one
    indexed query that stops there rather than counting a backlog."""
    return len(Callback.objects.open().due(now).for_person(user).values_list("pk", flat=True)[: DUE_SHOWN + 1])


def overdue(now: datetime) -> CallbackQuerySet:
    """Everyone's open callbacks whose time has come, oldest first (supervisors' view)."""
    return with_parties(Callback.objects.open().due(now)).order_by("due_at", "pk")


def end_of_day(now: datetime) -> datetime:
    """Midnight after now, in the site's time zone: what "today" means for callbacks."""
    return timezone.make_aware(datetime.combine(timezone.localdate(now) + timedelta(days=1), time()))


@dataclass
class Page:
    callbacks: list[Callback]
    after: str = ""  # the cursor of the next page ("" on the last): the due time in microseconds and the id


def page_of(
    rows: CallbackQuerySet,
    *,
    now: datetime,
    show: str = "",
    person: User | None = None,
    group: AgentGroup | None = None,
    after: tuple[int, int] | None = None,
    size: int = 50,
) -> Page:
    """A page of open callbacks by due time (/callbacks/): show "overdue", "today" or every open one (""), of a
    person or a group, after a cursor (the keyset: due time, then id)."""
    from calls.calllog import EPOCH, ONE_MICROSECOND  # the call log's cursor (calls.calllog imports the forms)

    rows = with_parties(rows.open())
    if show == "overdue":
        rows = rows.due(now)
    elif show == "today":
        rows = rows.filter(due_at__lt=end_of_day(now))
    if person is not None:
        rows = rows.filter(assigned_to=person)
    if group is not None:
        rows = rows.filter(group=group)
    if after is not None:
        bound = EPOCH + after[0] * ONE_MICROSECOND
        rows = rows.filter(due_at__gte=bound).filter(Q(due_at__gt=bound) | Q(due_at=bound, pk__gt=after[1]))
    found = list(rows.order_by("due_at", "pk")[: size + 1])
    page = Page(found[:size])
    if len(found) > size:
        last = page.callbacks[-1]
        page.after = f"{(last.due_at - EPOCH) // ONE_MICROSECOND}_{last.pk}"
    return page


# --- Falling due ---------------------------------------------------------------------------------------------


def event_data(callback: Callback) -> dict[str, Any]:
    """The callback.due event's data."""
    return {
        "id": callback.pk,
        "contact": callback.contact_id,
        "number": callback.phone.number if callback.phone_id and callback.phone else None,
        "due_at": callback.due_at.isoformat().replace("+00:00", "Z"),
        "assigned_to": callback.assigned_to.get_username() if callback.assigned_to else None,
        "group": callback.group_id,
        "note": callback.note,
        "promised_on_call": callback.promised_on_id,
    }


def announce_due(now: datetime) -> int:
    """Mark the open callbacks whose time has come and that were not announced yet as announced, each once, with
    a `callback.due` webhook event (subject: the contact, so erasure blanks it). Several workers share them (SKIP
    LOCKED). Returns how many."""
    announced = 0
    while True:
        with transaction.atomic():
            batch = list(
                Callback.objects.open()
                .filter(announced_at__isnull=True, due_at__lte=now)
                .select_related("phone", "assigned_to")
                .select_for_update(skip_locked=True, of=("self",))
                .order_by("due_at", "pk")[:ANNOUNCE_BATCH]
            )
            if not batch:
                return announced
            Callback.objects.filter(pk__in=[c.pk for c in batch]).update(announced_at=now)
            if outbox.wanted():
                outbox.emit_many(
                    outbox.event("callback.due", f"contact:{c.contact_id}", event_data(c), at=now) for c in batch
                )
        announced += len(batch)
        if len(batch) < ANNOUNCE_BATCH:
            return announced
