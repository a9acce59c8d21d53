"""A call queue's report (calls/queues/reports.py): its figures count the same contacts wherever they show."""

from __future__ import annotations

from datetime import timedelta

from calls.calling.common import _now
from calls.models import Callback, Contact, QueueEntry
from calls.queues import reports, working
from tests import _queues
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
