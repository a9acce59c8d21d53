"""A call queue's report (calls/queues/reports.py): its figures count the same contacts wherever they show."""

from __future__ import annotations

from datetime import timedelta

from calls import callbacks
from calls.calling.common import _now
from calls.models import Agent, Call, Callback, Contact, QueueAttempt, QueueEntry
from calls.queues import reports, working
from tests import _queues
from tests._calls import make_call
from tests._queues import NOW

leads, queue = _queues.leads, _queues.queue  # fixtures


def _due_callback(name: str, user, *, now=NOW) -> Callback:
    return Callback.objects.create(
        contact=Contact.objects.get(name=name), due_at=now - timedelta(minutes=5), assigned_to=user
    )


def test_callbacks_due_counts_only_those_of_contacts_still_waiting_in_the_queue(queue, agent_user):
    """Ada waits in the queue for her callback; Ben, reached already, has one due too (promised on the call that
    reached him, say), and Zed is in no queue: only Ada's is the queue's."""
    for name in ["Ada", "Ben", "Zed"]:
        _due_callback(name, agent_user)
    QueueEntry.objects.filter(queue=queue, contact__name="Ben").update(state=QueueEntry.State.REACHED, finished_at=NOW)

    made = reports.progress(queue, now=NOW, claim_idle=working.CLAIM_IDLE)

    assert made.callbacks_due == 1 and made.reached == 1


def test_the_queue_page_shows_the_callbacks_due_of_its_waiting_contacts(supervisor_client, queue, agent_user):
    _due_callback("Ada", agent_user, now=_now())
    _due_callback("Ben", agent_user, now=_now())
    QueueEntry.objects.filter(queue=queue, contact__name="Ben").update(state=QueueEntry.State.UNREACHED)

    page = supervisor_client.get(f"/queues/{queue.pk}/")

    assert page.context["report"].progress.callbacks_due == 1
    assert "<dt>Callbacks due</dt><dd>1</dd>" in page.content.decode()


def _reached(made: reports.Report) -> tuple[int, int, int]:
    """Reached as the progress, the outcomes table and the agents table count it."""
    label = QueueAttempt.Effect.REACHED.label
    outcomes = sum(int(row["n"]) for row in made.outcomes if row["effect"] == label)
    agents = sum(int(row["reached"]) for row in made.agents)
    return made.progress.reached, outcomes, agents


def _report(queue) -> reports.Report:
    return reports.report(queue, now=NOW, claim_idle=working.CLAIM_IDLE)


def test_a_contact_reached_by_a_callback_kept_outside_the_queue_is_an_attempt_of_the_caller(queue, agent_user):
    """Ada waits for a callback; Alex keeps it with a call from her page (no queue): she is reached, and that call
    is the queue's attempt, counted in its outcomes and as Alex's."""
    ada = Contact.objects.get(name="Ada")
    _due_callback("Ada", agent_user)
    call = make_call(user=agent_user, agent=Agent.objects.get(user=agent_user), at=NOW, contact=ada)
    assert callbacks.keep(call, NOW) == 1

    made = _report(queue)

    assert _reached(made) == (1, 1, 1)
    attempt = QueueAttempt.objects.get(queue=queue)
    assert attempt.call == call and attempt.user == agent_user and attempt.outcome == "Called back"
    entry = QueueEntry.objects.get(queue=queue, contact=ada)
    assert entry.state == "reached" and entry.attempts == 1 and entry.last_call == call
    [row] = made.outcomes
    assert row["outcome"] == "Called back" and "queue_effect=reached" in str(row["href"])


def test_a_callback_marked_done_by_hand_counts_as_reached_without_a_call(queue, agent_user):
    callback = _due_callback("Ada", agent_user)
    assert callbacks.close(callback, user=agent_user, now=NOW, state=Callback.State.DONE)

    made = _report(queue)

    assert _reached(made)[:2] == (1, 1)
    [row] = made.outcomes
    assert row["outcome"] == "Called back (no call from this queue)" and row["href"] == ""
    assert QueueAttempt.objects.get(queue=queue).call is None


def test_a_held_callback_kept_by_its_call_from_the_queue_is_reached_once_whatever_the_disposition(queue, agent_user):
    """Alex holds Ada's callback from the queue and calls her from the bar: that call is her attempt. Its wrap-up
    keeps the callback (she is reached) and then settles the attempt: reached too, even with a disposition that
    would have put her back, and no second attempt."""
    _due_callback("Ada", agent_user)
    held = working.take_next(user=agent_user, queue=queue, now=NOW).held
    assert held.callback is not None and held.contact.name == "Ada"
    agent = Agent.objects.get(user=agent_user)
    call = make_call(user=agent_user, agent=agent, outcome="in_progress", at=NOW, contact=held.contact)
    working.note_call(call, user=agent_user, now=NOW, queue_id=queue.pk)
    ended = {"state": "ended", "outcome": "answered", "ended_at": NOW, "connected_at": NOW}
    Call.objects.filter(pk=call.pk).update(**ended, disposition_code="Left voicemail", wrapped_up_at=NOW)
    assert callbacks.keep(call, NOW) == 1  # the wrap-up: the callback kept first, then the queue's attempt
    working.after_wrap_up(call, now=NOW)

    assert _reached(_report(queue)) == (1, 1, 1)
    attempt = QueueAttempt.objects.get(queue=queue)
    assert attempt.call == call and attempt.effect == "reached"
