"""The call log's queries (Call.objects): whose calls a person sees and may change, what holds a phone, what is
going on and what waits for a wrap-up (calls/models/calls.py)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.db.models import Q

from calls import permissions as perms
from calls.models.callkeys import FoundByKeys
from calls.models.common import concrete_field

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from calls.models.calls import Call


class CallQuerySet(FoundByKeys):
    def visible_to(self, user: User) -> CallQuerySet:
        """Everyone's calls for supervisors and admins; an agent's own calls (clicked by them or from them)."""
        return self if user.has_perm(perms.VIEW_ALL_CALLS) else self.changeable_by(user)

    def changeable_by(self, user: User) -> CallQuerySet:
        """Calls this user may act on (recording, wrap-up): the ones they clicked or that rang their phone (a group
        call: the agent who answered it, when they use vccweb; else the person who clicked).

        `Call.is_changeable_by` says the same for one row already loaded."""
        # A group call answered by an agent who uses vccweb is theirs to wrap up, no longer the clicker's.
        answerer_has_no_login = Q(answered_by__isnull=True) | Q(answered_by__user__isnull=True)
        return self.filter(
            (Q(created_by=user) & answerer_has_no_login) | Q(from_agent__user=user) | Q(answered_by__user=user)
        )

    def blocking(
        self,
        *,
        agent_id: int | None,
        number: str,
        user_id: int,
        since: datetime,
        request_id: str,
        contact_id: int | None = None,
    ) -> Call | None:
        """The latest live call since `since` that holds the agent's phone or, clicked by someone else, the number
        or another number of the contact (two people never call one person at once).

        The search is raw SQL, because every click runs it: the ORM spent some 2.5 ms of CPU building it for
        0.1 ms of work in PostgreSQL. The row, when there is one (rarely), is loaded with the ORM.
        """
        holds = []
        params: list[Any] = [  # values as the database adapter takes them
            self.model.State.LIVE,
            connection.ops.adapt_datetimefield_value(since),
            concrete_field(self.model, "request_id").get_db_prep_value(request_id, connection),
        ]
        if agent_id is not None:  # the agent's phone: a call from them, or a group call they answered
            holds.append("(from_agent_id = %s OR answered_by_id = %s)")
            params += [agent_id, agent_id]
        if number:
            holds.append("(to_number = %s AND created_by_id IS DISTINCT FROM %s)")
            params += [number, user_id]
        if contact_id is not None:
            holds.append("(contact_id = %s AND created_by_id IS DISTINCT FROM %s)")
            params += [contact_id, user_id]
        if not holds:
            return None
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {self.model._meta.db_table} WHERE state = %s AND requested_at >= %s "
                f"AND request_id <> %s AND ({' OR '.join(holds)}) ORDER BY requested_at DESC, id DESC LIMIT 1",
                params,
            )
            row = cursor.fetchone()
        return self.select_related("created_by", "from_agent").get(pk=row[0]) if row else None

    def with_parties(self) -> CallQuerySet:
        """With the contact, number, agents and clicker that call panels show."""
        return self.select_related("contact", "phone", "from_agent", "to_agent", "created_by", "answered_by")

    def in_progress(self) -> CallQuerySet:
        """Calls VCC may still be connecting or carrying: asked for, or placed and not yet ended."""
        return self.filter(state__in=self.model.IN_PROGRESS)

    def to_wrap_up(self) -> CallQuerySet:
        """Calls to a contact that connected and ended without a wrap-up (`Call.wrap_up_due`); a call to a colleague
        or one that never connected asks none."""
        return self.filter(
            Q(connected_at__isnull=False) | ~Q(outcome__in=self.model.NEVER_CONNECTED),
            state=self.model.State.ENDED,
            wrapped_up_at__isnull=True,
            to_agent__isnull=True,
        )
