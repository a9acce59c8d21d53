"""The call queue pages: making a queue from the contact list, its report, contacts and CSV, and working it from
the contact page (Start, the queue bar, a call placed from it, Skip, Next, Stop), through the simulator."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.test import Client

from calls.calling.common import _now
from calls.models import (
    AgentGroup,
    Call,
    Callback,
    CallQueue,
    Contact,
    ContactPhone,
    DispositionCode,
    QueueAttempt,
    QueueEntry,
)
from calls.queues import building, claims
from tests._calls import make_call
from tests._sim import HTMX, click, fresh_simulator

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_agent_client(other_agent_user) -> Client:
    client = Client()
    client.force_login(other_agent_user)
    return client


@pytest.fixture(autouse=True)
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


@pytest.fixture
def acme(db):
    made = []
    for i, name in enumerate(["Ada Acme", "Ben Acme", "Cleo Acme"]):
        contact = Contact.objects.create(name=name, company="Acme")
        ContactPhone.objects.create(contact=contact, number=f"+4474001234{i:02d}", is_primary=True)
        made.append(contact)
    return made


@pytest.fixture
def queue(acme, supervisor_user, agent_user, sales):
    return building.make_queue(
        user=supervisor_user, name="Acme", now=_now(), source_filter={"company": "Acme"}, groups=[sales]
    ).queue


def test_the_contact_list_offers_a_queue_of_what_it_shows(supervisor_client, acme, agent_client):
    page = supervisor_client.get("/contacts/?company=Acme").content.decode()
    assert 'href="/queues/new/?company=Acme"' in page
    assert "data-make-queue" not in agent_client.get("/contacts/?company=Acme").content.decode()


def test_a_supervisor_makes_a_queue_from_a_filter(supervisor_client, acme, sales):
    form = supervisor_client.get("/queues/new/?company=Acme").content.decode()
    assert "Every contact at Acme" in form
    answer = supervisor_client.post(
        "/queues/new/",
        {
            "name": "Acme renewals",
            "source": "filter",
            "company": "Acme",
            "sort": "oldest",
            "max_attempts": "3",
            "retry_minutes": "60",
            "groups": [str(sales.pk)],
        },
        follow=True,
    )
    queue = CallQueue.objects.get(name="Acme renewals")
    assert queue.entries.count() == 3 and queue.source_filter == {"company": "Acme"}
    assert "Made Acme renewals with 3 contacts." in answer.content.decode()


def test_a_group_vcc_no_longer_has_is_not_offered_for_a_queue(supervisor_client, acme, sales, support):
    AgentGroup.objects.filter(pk=support.pk).update(is_active=False)  # as the sync leaves it

    form = supervisor_client.get("/queues/new/?company=Acme").content.decode()
    data = {"name": "Q", "source": "filter", "sort": "oldest", "max_attempts": "3", "retry_minutes": "60"}
    answer = supervisor_client.post("/queues/new/", {**data, "groups": [str(support.pk)]})

    assert "Sales UK" in form and "Support" not in form
    assert answer.status_code == 200 and "A group you ticked no longer exists in VCC" in answer.content.decode()
    assert not CallQueue.objects.exists()


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"groups": []}, "Give the queue to at least one agent or group"),
        ({"source": "import"}, "Choose the import whose contacts the queue holds."),
        ({"max_attempts": "0"}, "Give each contact from 1 to 20 attempts."),
        ({"retry_minutes": "999999"}, "Wait from 1 minute to 14 days between attempts."),
    ],
)
def test_a_bad_queue_form_says_what_to_fix(supervisor_client, acme, sales, fields, words):
    data = {
        "name": "Q",
        "source": "filter",
        "sort": "oldest",
        "max_attempts": "3",
        "retry_minutes": "60",
        "groups": [str(sales.pk)],
        **fields,
    }
    answer = supervisor_client.post("/queues/new/", data)
    assert answer.status_code == 200 and words in answer.content.decode()
    assert not CallQueue.objects.exists()


def _start(client: Client, queue: CallQueue) -> str:
    answer = client.post(f"/queues/{queue.pk}/next/")
    assert answer.status_code == 302
    return answer["Location"]


def test_start_opens_the_first_contact_with_the_queue_bar(agent_client, queue, acme):
    where = _start(agent_client, queue)
    assert where == f"/contacts/{acme[0].pk}/?queue={queue.pk}"
    page = agent_client.get(where).content.decode()
    assert 'id="queue-bar"' in page and "Contact 1 of 3" in page and "3 remaining" in page
    assert f'<input type="hidden" name="queue" value="{queue.pk}" form="dial-form">' in page
    # The same contact's page without the queue, or another contact's with it: no bar.
    assert 'id="queue-bar"' not in agent_client.get(f"/contacts/{acme[0].pk}/").content.decode()
    assert 'id="queue-bar"' not in agent_client.get(f"/contacts/{acme[1].pk}/?queue={queue.pk}").content.decode()


def test_a_call_from_the_queue_bar_is_the_contacts_attempt_and_its_wrap_up_settles_it(agent_client, queue, acme):
    _start(agent_client, queue)
    click(agent_client, acme[0].phones.get(), queue=str(queue.pk))
    call = Call.objects.get()
    attempt = QueueAttempt.objects.get()
    assert attempt.call == call and attempt.effect == "" and attempt.entry.attempts == 1
    bar = agent_client.get(f"/queues/{queue.pk}/bar/?contact={acme[0].pk}", headers=HTMX).content.decode()
    assert "Call going on." in bar
    Call.objects.filter(pk=call.pk).update(state="ended", outcome="answered", connected_at=call.requested_at)
    answer = agent_client.post(
        f"/calls/{call.pk}/wrapup/",
        {"disposition": DispositionCode.objects.get(code="Interested").pk, "notes": ""},
        headers=HTMX,
    )
    assert answer.status_code == 200
    attempt.refresh_from_db()
    assert attempt.effect == "reached"
    bar = agent_client.get(f"/queues/{queue.pk}/bar/?contact={acme[0].pk}", headers=HTMX).content.decode()
    assert "Reached: done." in bar and "Next contact" in bar
    assert "Contact 1 of 3 · 2 remaining" in bar  # still this contact's place, now counted as done
    assert _start(agent_client, queue).startswith(f"/contacts/{acme[1].pk}/")


def _wrap_up(client: Client, call: Call, code: str) -> None:
    answer = client.post(
        f"/calls/{call.pk}/wrapup/",
        {"disposition": DispositionCode.objects.get(code=code).pk, "notes": ""},
        headers=HTMX,
    )
    assert answer.status_code == 200


def test_a_wrap_up_corrected_moves_the_contact_as_the_new_disposition_says(agent_client, queue, acme):
    """The agent chose "No answer" by mistake and wraps the call up again as "Interested" (README: a call may be
    wrapped up again): Ada is reached, not called again after the wait; her one call stays one attempt."""
    _start(agent_client, queue)
    click(agent_client, acme[0].phones.get(), queue=str(queue.pk))
    call = Call.objects.get()
    Call.objects.filter(pk=call.pk).update(state="ended", outcome="answered", connected_at=call.requested_at)
    _wrap_up(agent_client, call, "No answer")
    assert QueueAttempt.objects.get().effect == "retry"

    _wrap_up(agent_client, call, "Interested")

    attempt = QueueAttempt.objects.get()
    ada = QueueEntry.objects.get(contact=acme[0])
    assert (attempt.effect, attempt.outcome) == ("reached", "Interested")
    assert (ada.state, ada.attempts, ada.last_outcome) == ("reached", 1, "Interested")
    bar = agent_client.get(f"/queues/{queue.pk}/bar/?contact={acme[0].pk}", headers=HTMX).content.decode()
    assert "Reached: done." in bar
    assert _start(agent_client, queue).startswith(f"/contacts/{acme[1].pk}/")


def test_a_call_not_from_the_bar_is_no_attempt(agent_client, queue, acme):
    _start(agent_client, queue)
    click(agent_client, acme[0].phones.get())
    assert not QueueAttempt.objects.exists()


@pytest.fixture
def not_given(acme, supervisor_user, support):
    """A queue of the same contacts given only to Support, which the agent is not in."""
    return building.make_queue(
        user=supervisor_user, name="Acme secret", now=_now(), source_filter={"company": "Acme"}, groups=[support]
    ).queue


def test_a_held_callback_shows_no_bar_of_a_queue_not_given_to_the_agent(
    agent_client, agent_user, queue, acme, not_given
):
    Callback.objects.create(contact=acme[0], due_at=_now() - timedelta(minutes=5), assigned_to=agent_user)
    assert _start(agent_client, queue) == f"/contacts/{acme[0].pk}/?queue={queue.pk}"  # the callback, held

    page = agent_client.get(f"/contacts/{acme[0].pk}/?queue={not_given.pk}").content.decode()

    assert 'id="queue-bar"' not in page and "Acme secret" not in page
    assert 'id="queue-bar"' in agent_client.get(f"/contacts/{acme[0].pk}/?queue={queue.pk}").content.decode()


def test_a_held_callback_counts_no_attempt_of_a_queue_not_given_to_the_agent(
    agent_client, agent_user, queue, acme, not_given
):
    Callback.objects.create(contact=acme[0], due_at=_now() - timedelta(minutes=5), assigned_to=agent_user)
    _start(agent_client, queue)

    assert click(agent_client, acme[0].phones.get(), queue=str(not_given.pk)).status_code == 200

    assert Call.objects.count() == 1  # the call is placed, as any call to the contact would be
    assert not QueueAttempt.objects.filter(queue=not_given).exists()
    assert QueueEntry.objects.get(queue=not_given, contact=acme[0]).attempts == 0


def test_next_before_calling_gives_back_the_same_contact(agent_client, queue, acme):
    first = _start(agent_client, queue)
    assert _start(agent_client, queue) == first


def test_skip_needs_a_reason_and_then_opens_the_next_contact(agent_client, queue, acme):
    _start(agent_client, queue)
    answer = agent_client.post(f"/queues/{queue.pk}/skip/", {"reason": ""}, follow=True)
    assert "Say why you skip this contact" in answer.content.decode()
    answer = agent_client.post(f"/queues/{queue.pk}/skip/", {"reason": "Abroad this week", "contact": acme[0].pk})
    assert answer["Location"].startswith(f"/contacts/{acme[1].pk}/")
    assert QueueEntry.objects.get(contact=acme[0]).skip_reason == "Abroad this week"


def test_a_second_press_of_skip_does_not_skip_the_contact_it_opened(agent_client, queue, acme):
    """Skip pressed twice (a double click, or Enter again while the next page loads), or from a stale tab: the
    second POST names Ada, whom the agent no longer holds, so Ben, whom they never saw, is not skipped with her
    reason: the agent gets Ben back."""
    _start(agent_client, queue)
    form = {"reason": "Abroad this week", "contact": str(acme[0].pk)}
    assert agent_client.post(f"/queues/{queue.pk}/skip/", form)["Location"].startswith(f"/contacts/{acme[1].pk}/")

    again = agent_client.post(f"/queues/{queue.pk}/skip/", form, follow=True)

    assert again.redirect_chain[0][0] == f"/contacts/{acme[1].pk}/?queue={queue.pk}"
    assert "was not skipped" in again.content.decode()
    ben = QueueEntry.objects.get(contact=acme[1])
    assert ben.skip_reason == "" and ben.claimed_by is not None
    assert QueueAttempt.objects.filter(effect="skipped").count() == 1


def test_the_skip_form_names_the_contact_on_the_page(agent_client, queue, acme):
    page = agent_client.get(_start(agent_client, queue)).content.decode()
    assert f'<input type="hidden" name="contact" value="{acme[0].pk}">' in page


def test_stop_gives_the_contact_back(agent_client, other_agent_client, queue, acme):
    _start(agent_client, queue)
    assert agent_client.post(f"/queues/{queue.pk}/stop/")["Location"] == "/queues/"
    assert _start(other_agent_client, queue).startswith(f"/contacts/{acme[0].pk}/")


def test_an_empty_queue_says_so(agent_client, queue):
    QueueEntry.objects.update(state="reached")
    answer = agent_client.post(f"/queues/{queue.pk}/next/", follow=True)
    assert "Everyone in this queue has been dealt with." in answer.content.decode()


def test_the_report_counts_and_links_to_the_calls_behind_each_figure(supervisor_client, agent_client, queue, acme):
    _start(agent_client, queue)
    click(agent_client, acme[0].phones.get(), queue=str(queue.pk))
    call = Call.objects.get()
    Call.objects.filter(pk=call.pk).update(state="ended", outcome="no_answer", ended_at=call.requested_at)
    agent_client.get(f"/queues/{queue.pk}/bar/?contact={acme[0].pk}", headers=HTMX)  # settles it
    page = supervisor_client.get(f"/queues/{queue.pk}/").content.decode()
    assert "0 of 3 done (0%)" in page
    assert f"/calls/?queue={queue.pk}&amp;queue_effect=retry" in page
    log = supervisor_client.get(f"/calls/?queue={queue.pk}&queue_effect=retry").content.decode()
    assert f"/calls/{call.pk}/" in log and "Calls from the queue" in log
    assert (
        f"/calls/{call.pk}/"
        not in supervisor_client.get(f"/calls/?queue={queue.pk}&queue_effect=reached").content.decode()
    )
    entries = supervisor_client.get(f"/queues/{queue.pk}/contacts/?attempts=1").content.decode()
    assert "Ada Acme" in entries and "Ben Acme" not in entries


def test_each_outcome_row_opens_the_calls_it_counts(supervisor_client, agent_user, queue):
    busy, no_answer, out = QueueEntry.objects.filter(queue=queue).order_by("position")
    for entry, outcome in [(busy, "busy"), (no_answer, "no_answer")]:
        call = make_call(user=agent_user, agent=agent_user.agent, outcome=outcome, contact=entry.contact)
        QueueAttempt.objects.create(queue=queue, entry=entry, call=call, user=agent_user, at=call.requested_at,
                                    outcome=call.get_outcome_display(), effect="retry")  # fmt: skip
    claims.finish(out.pk, QueueEntry.State.DO_NOT_CALL, now=_now())  # out without a call: nothing to open

    page = supervisor_client.get(f"/queues/{queue.pk}/").content.decode()

    rows = dict(re.findall(r'<td data-label="Outcome">([^<]*)</td>.*?<td data-label="Calls">(.*?)</td>', page))
    assert rows.keys() == {"Line busy", "Not answered by the contact", "Do not call (no call placed)"}
    assert rows["Do not call (no call placed)"] == "1"
    for outcome, contact in [("Line busy", busy.contact), ("Not answered by the contact", no_answer.contact)]:
        href, number = re.fullmatch(r'<a href="([^"]*)">(\d+)</a>', rows[outcome]).groups()
        log = supervisor_client.get(html.unescape(href))
        assert [c.contact_id for c in log.context["page"].calls] == [contact.pk] and number == "1"
        assert f"back after the wait, {outcome}" in log.content.decode()


def test_the_queue_exports_as_csv(supervisor_client, queue):
    answer = supervisor_client.get(f"/queues/{queue.pk}/export.csv")
    body = b"".join(answer.streaming_content).decode("utf-8-sig")
    lines = body.strip().splitlines()
    assert lines[0].startswith("position,contact_id,contact,company,state")
    assert len(lines) == 4 and "Ben Acme" in lines[2]


def test_pause_resume_and_close(supervisor_client, agent_client, queue):
    supervisor_client.post(f"/queues/{queue.pk}/state/", {"action": "pause"})
    assert CallQueue.objects.get().state == "paused"
    assert "This queue is paused." in agent_client.post(f"/queues/{queue.pk}/next/", follow=True).content.decode()
    supervisor_client.post(f"/queues/{queue.pk}/state/", {"action": "close"})
    closed = CallQueue.objects.get()
    assert closed.state == "closed" and closed.closed_at is not None
    supervisor_client.post(f"/queues/{queue.pk}/state/", {"action": "resume"})
    assert CallQueue.objects.get().state == "closed"


def test_agents_see_only_their_queues(agent_client, other_agent_client, supervisor_user, queue, acme):
    building.make_queue(user=supervisor_user, name="Not yours", now=_now(), source_filter={})
    page = agent_client.get("/queues/").content.decode()
    assert "Acme" in page and "Not yours" not in page and "data-queue-start" in page


def test_odd_ids_in_the_address_are_not_500s(agent_client, queue, acme):
    assert agent_client.get(f"/queues/{queue.pk}/bar/?contact=²").status_code == 286
    assert agent_client.get(f"/contacts/{acme[0].pk}/?queue=²").status_code == 200
