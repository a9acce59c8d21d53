"""An agent pressing Next twice in quick succession (calls/queues/working.py take_next, calls/queues/claims.py):
they hold one contact of the queue at most, whatever the timing; the database sees to it (queueentry_one_held)."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connection, transaction

from calls.models import Agent, Callback, Contact, QueueEntry
from calls.queues import working
from tests import _queues
from tests._calls import make_call
from tests._queues import NOW
from tests.test_queues_claims import _agents_and_queue, _claim, _own_connection, needs_postgres

leads, queue = _queues.leads, _queues.queue  # fixtures


def _called(queue, user) -> None:
    """The user takes the first contact and calls them, unanswered: its outcome is known, so Next moves on."""
    held = working.take_next(user=user, queue=queue, now=NOW).held
    call = make_call(user=user, agent=Agent.objects.get(user=user), outcome="no_answer", at=NOW, contact=held.contact)
    assert working.note_call(call, user=user, now=NOW).effect == "retry"


def _held(user) -> list[str]:
    return list(QueueEntry.objects.filter(claimed_by=user).values_list("contact__name", flat=True))


def test_a_second_next_between_the_first_letting_go_and_claiming_leaves_one_contact_held(
    queue, agent_user, monkeypatch
):
    """The first Next lets Ada go (her call is settled); the second press runs whole before the first claims: it
    claims Ben. The first then finds Ben held and shows him too, instead of claiming Cleo as well."""
    _called(queue, agent_user)
    take_callback, second = working._take_callback, []

    def second_press_meanwhile(user, queue, **kwargs):  # the first Next's step right after it let go
        if not second:
            second.append(working.take_next(user=user, queue=queue, now=NOW).held.contact.name)
        return take_callback(user, queue, **kwargs)

    monkeypatch.setattr(working, "_take_callback", second_press_meanwhile)

    first = working.take_next(user=agent_user, queue=queue, now=NOW).held

    assert second == ["Ben"] and first.contact.name == "Ben"
    assert _held(agent_user) == ["Ben"]


def test_the_database_refuses_a_second_contact_held_by_one_agent_in_a_queue(queue, agent_user):
    working.take_next(user=agent_user, queue=queue, now=NOW)
    with pytest.raises(IntegrityError), transaction.atomic():
        QueueEntry.objects.filter(queue=queue, contact__name="Ben").update(claimed_by=agent_user, claimed_at=NOW)


def test_a_lapsed_claim_does_not_stop_its_agent_taking_another_contact(queue, agent_user):
    """Ada's claim lapsed (Alex went away without Stop) while her call is still pending: Next gives Alex Ben, and
    lets Ada go (she was anyone's to take already)."""
    held = working.take_next(user=agent_user, queue=queue, now=NOW).held
    call = make_call(user=agent_user, agent=Agent.objects.get(user=agent_user), outcome="in_progress", at=NOW,
                     contact=held.contact)  # fmt: skip
    working.note_call(call, user=agent_user, now=NOW)
    later = NOW + working.CLAIM_IDLE * 2

    assert working.take_next(user=agent_user, queue=queue, now=later).held.contact.name == "Ben"
    assert _held(agent_user) == ["Ben"]


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_claim_running_while_another_for_the_same_agent_commits_is_refused_and_the_agent_gets_that_one():
    """Two Nexts of one agent claim at the same moment, on two connections: the first claim (Ada) is not committed
    yet when the second's starts, so the second cannot see it and claims Ben. The unique index makes the second
    wait for the first, then refuses it; claimed again, the agent is found holding Ada, and is given her."""
    [user], queue = _agents_and_queue(agents=1, leads=3)
    first = _own_connection()
    try:
        claimed, _ = _claim(first, queue, user)
        assert len(claimed) == 1
        got: list[object] = []

        def second_next() -> None:
            try:
                got.append(working.take_next(user=user, queue=queue, now=NOW).held.contact.pk)
            except BaseException as exc:  # noqa: BLE001 - reported below
                got.append(exc)
            finally:
                connection.close()

        thread = threading.Thread(target=second_next)
        thread.start()
        blocked = "SELECT count(*) FROM pg_locks WHERE NOT granted AND pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        for _ in range(10_000):  # until the second claim waits on the first (a guard, not a clock)
            if first.execute(blocked).fetchone()[0] or not thread.is_alive():
                break
        first.commit()
        thread.join(60)
    finally:
        first.close()
    assert got == claimed
    assert QueueEntry.objects.filter(claimed_by=user).count() == 1


def test_a_call_to_a_held_callbacks_contact_lets_go_of_another_contact_held_in_the_queue(queue, agent_user):
    """Alex holds Ben and (from another tab's Next) Ada's callback, and calls Ada from the bar: her entry is the
    call's attempt and is Alex's now; Ben goes back, rather than the call failing on the second contact held."""
    assert working.take_next(user=agent_user, queue=queue, now=NOW).held.contact.name == "Ada"
    working.skip(user=agent_user, queue=queue, reason="later", now=NOW)
    assert working.take_next(user=agent_user, queue=queue, now=NOW).held.contact.name == "Ben"
    ada = Contact.objects.get(name="Ada")
    Callback.objects.create(contact=ada, due_at=NOW, assigned_to=agent_user, claimed_by=agent_user, claimed_at=NOW)
    call = make_call(user=agent_user, agent=Agent.objects.get(user=agent_user), outcome="in_progress", at=NOW,
                     contact=ada)  # fmt: skip

    assert working.note_call(call, user=agent_user, now=NOW, queue_id=queue.pk).entry.contact == ada
    assert _held(agent_user) == ["Ada"]
