"""A contact's call queues and privacy: what erasure leaves of their queue attempts, and what a subject's data
lists of them (calls/privacy/erasure.py, calls/privacy/subject.py)."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from calls.models import CallQueue, Contact, ContactPhone, QueueAttempt, QueueEntry
from tests._calls import make_call

NAME, MOBILE = "Perpetua Quillfeather", "+447400900461"


@pytest.fixture
def person(db) -> Contact:
    contact = Contact.objects.create(name=NAME, email="perpetua.q@example.org")
    ContactPhone.objects.create(contact=contact, label="mobile", number=MOBILE, is_primary=True)
    return contact


@pytest.fixture
def their_calls(person, agent_user):
    return [make_call(user=agent_user, agent=agent_user.agent, contact=person, to_number=MOBILE)]


def erase(client, contact_pk: int):
    return client.post(f"/contacts/{contact_pk}/erase/")


@pytest.mark.django_db
def test_a_queue_skip_reason_that_names_them_goes_with_them_and_the_queue_keeps_its_count(
    supervisor_client, supervisor_user, person, their_calls
):
    """Their queue entry goes with them (CASCADE); the attempts stay for the queue's report, and a skip's reason is
    what the agent typed: it may quote their name or number."""
    queue = CallQueue.objects.create(name="Renewals")
    entry = QueueEntry.objects.create(queue=queue, contact=person, position=1, due_at=timezone.now())
    reason = f"{NAME} is away, try 07400 900461 next week"
    QueueAttempt.objects.create(queue=queue, entry=entry, at=timezone.now(), outcome=reason, effect="skipped")
    QueueAttempt.objects.create(
        queue=queue, entry=entry, call=their_calls[0], at=timezone.now(), outcome="Interested", effect="reached"
    )
    other = QueueEntry.objects.create(
        queue=queue, contact=Contact.objects.create(name="Somebody Else"), position=2, due_at=timezone.now()
    )
    QueueAttempt.objects.create(queue=queue, entry=other, at=timezone.now(), outcome="Out of office", effect="skipped")

    assert erase(supervisor_client, person.pk).status_code == 302

    outcomes = sorted(QueueAttempt.objects.filter(queue=queue).values_list("outcome", flat=True))
    assert QueueAttempt.objects.filter(queue=queue).count() == 3
    assert not [o for o in outcomes if NAME in o or "07400 900461" in o], outcomes
    assert "Interested" in outcomes and "Out of office" in outcomes


@pytest.mark.django_db
def test_their_data_holds_the_call_queues_they_are_in_with_each_try_and_skip_reason(
    supervisor_client, person, their_calls
):
    queue = CallQueue.objects.create(name="Renewals")
    entry = QueueEntry.objects.create(
        queue=queue, contact=person, position=1, due_at=timezone.now(), attempts=1, skip_reason="Away until May"
    )
    QueueAttempt.objects.create(queue=queue, entry=entry, at=timezone.now(), outcome="Away until May", effect="skipped")
    QueueAttempt.objects.create(
        queue=queue, entry=entry, call=their_calls[0], at=timezone.now(), outcome="Interested", effect="reached"
    )

    data = json.loads(supervisor_client.get(f"/contacts/{person.pk}/data/?format=json").content)
    html = supervisor_client.get(f"/contacts/{person.pk}/data/").content.decode()

    [held] = data["queues"]
    assert (held["queue"], held["state"], held["attempts"], held["skip_reason"]) == (
        "Renewals", "Waiting", 1, "Away until May"
    )  # fmt: skip
    assert sorted((t["outcome"], t["call"]) for t in held["tries"]) == [
        ("Away until May", None),
        ("Interested", their_calls[0].pk),
    ]
    assert "Renewals" in html and "Away until May" in html
