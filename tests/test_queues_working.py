"""Call queues (calls/queues/working.py): taking contacts, skipping, stopping, callbacks, calling hours, outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calls.models import Agent, Call, Callback, CallQueue, Contact, ContactPhone, QueueAttempt, QueueEntry
from calls.queues import building, claims, tend, working
from tests import _queues
from tests._calls import make_call
from tests._queues import NOW, _contact, _names

leads, queue = _queues.leads, _queues.queue  # fixtures


def test_each_agent_gets_the_next_contact_and_keeps_it_until_its_call_is_settled(queue, agent_user, other_agent_user):
    first = working.take_next(user=agent_user, queue=queue, now=NOW).held
    second = working.take_next(user=other_agent_user, queue=queue, now=NOW).held
    assert first.contact.name == "Ada" and second.contact.name == "Ben"
    # Asking again (a reload, a second tab) gives back the same contact: no call was made yet.
    assert working.take_next(user=agent_user, queue=queue, now=NOW).held.contact.name == "Ada"
    entry = QueueEntry.objects.get(queue=queue, contact__name="Ada")
    assert entry.claimed_by == agent_user and entry.claimed_since == NOW


def test_a_claim_lapses_after_ten_idle_minutes_and_a_sign_of_the_agent_keeps_it(queue, agent_user, other_agent_user):
    working.take_next(user=agent_user, queue=queue, now=NOW)
    working.still_here(agent_user, queue, now=NOW + timedelta(minutes=8))
    later = NOW + timedelta(minutes=12)
    assert working.take_next(user=other_agent_user, queue=queue, now=later).held.contact.name == "Ben"
    working.release(other_agent_user)
    much_later = NOW + timedelta(minutes=19)  # 11 minutes after Alex's last sign
    assert working.take_next(user=other_agent_user, queue=queue, now=much_later).held.contact.name == "Ada"


def test_skipping_puts_the_contact_back_after_the_wait_with_the_reason(queue, agent_user):
    working.take_next(user=agent_user, queue=queue, now=NOW)
    assert working.skip(user=agent_user, queue=queue, reason="Asked for next week", now=NOW)
    ada = QueueEntry.objects.get(queue=queue, contact__name="Ada")
    assert ada.due_at == NOW + timedelta(minutes=queue.retry_minutes) and ada.claimed_by is None
    assert ada.attempts == 0 and ada.skip_reason == "Asked for next week"
    assert QueueAttempt.objects.get(entry=ada).effect == "skipped"
    assert working.take_next(user=agent_user, queue=queue, now=NOW).held.contact.name == "Ben"
    back = NOW + timedelta(minutes=queue.retry_minutes)
    working.release(agent_user)
    assert working.take_next(user=agent_user, queue=queue, now=back).held.contact.name == "Ada"


def test_stop_gives_the_contact_back_in_its_place(queue, agent_user, other_agent_user):
    working.take_next(user=agent_user, queue=queue, now=NOW)
    working.release(agent_user)
    assert working.take_next(user=other_agent_user, queue=queue, now=NOW).held.contact.name == "Ada"


def test_a_paused_queue_gives_nobody(queue, agent_user):
    CallQueue.objects.filter(pk=queue.pk).update(state="paused")
    queue.refresh_from_db()
    got = working.take_next(user=agent_user, queue=queue, now=NOW)
    assert got.held is None and "paused" in got.why_none


def test_a_contact_marked_do_not_call_since_the_queue_was_made_is_taken_out(queue, agent_user):
    Contact.objects.filter(name="Ada").update(do_not_call=True)
    assert working.take_next(user=agent_user, queue=queue, now=NOW).held.contact.name == "Ben"
    assert QueueEntry.objects.get(queue=queue, contact__name="Ada").state == "dnc"


def test_a_contact_left_without_numbers_is_taken_out_and_the_agent_holds_only_the_next(queue, agent_user):
    ContactPhone.objects.filter(contact__name="Ada").delete()
    assert working.take_next(user=agent_user, queue=queue, now=NOW).held.contact.name == "Ben"
    assert QueueEntry.objects.get(queue=queue, contact__name="Ada").state == "dnc"
    assert list(QueueEntry.objects.filter(claimed_by=agent_user).values_list("contact__name", flat=True)) == ["Ben"]


def _work(queue, user, *, outcome="answered", disposition="", now=NOW, **call):
    """Take the next contact, call them (a call stored as ended with outcome, and the call fields given), note it,
    and wrap it up."""
    held = working.take_next(user=user, queue=queue, now=now).held
    agent = Agent.objects.get(user=user)
    call = make_call(
        user=user,
        agent=agent,
        outcome=outcome,
        at=now,
        contact=held.contact,
        phone=held.contact.phones.first(),
        disposition_code=disposition,
        wrapped_up_at=now if disposition else None,
        **call,
    )
    attempt = working.note_call(call, user=user, now=now)
    working.settle(attempt, now=now)
    attempt.refresh_from_db()
    return held, call, attempt


def test_a_final_disposition_takes_the_contact_out_as_reached(queue, agent_user):
    held, call, attempt = _work(queue, agent_user, disposition="Interested")
    entry = QueueEntry.objects.get(pk=held.entry.pk)
    assert attempt.effect == "reached" and entry.state == "reached" and entry.finished_at == NOW
    assert entry.attempts == 1 and entry.last_call == call and entry.last_outcome == "Interested"


def test_no_answer_puts_the_contact_back_after_the_wait_and_the_limit_ends_it_unreached(queue, agent_user):
    CallQueue.objects.filter(pk=queue.pk).update(max_attempts=2, retry_minutes=30)
    queue.refresh_from_db()
    held, _, attempt = _work(queue, agent_user, outcome="no_answer")
    entry = QueueEntry.objects.get(pk=held.entry.pk)
    assert attempt.effect == "retry" and entry.state == "waiting" and entry.due_at == NOW + timedelta(minutes=30)
    later = NOW + timedelta(minutes=31)
    working.release(agent_user)
    assert working.take_next(user=agent_user, queue=queue, now=later).held.contact == held.contact
    _, _, second = _work(queue, agent_user, outcome="busy", now=later)
    entry.refresh_from_db()
    assert second.effect == "unreached" and entry.state == "unreached" and entry.attempts == 2


NOBODY_FREE = {"error_status": 400, "error_message": "Unable to place call to Agent. Please try again."}
INVALID_NUMBER = {"error_status": 400, "error_message": "Unable to place call - number is invalid"}


@pytest.mark.parametrize(
    ("outcome", "call"),
    [
        ("agent_no_answer", {}),
        ("failed", NOBODY_FREE),
        ("failed", {"error_status": 503, "error_message": "Service Unavailable"}),
        ("failed", {"error_status": 429, "error_message": "Too Many Requests"}),
    ],
    ids=["agent_no_answer", "nobody_free", "vcc_down", "vcc_limiting"],
)
def test_a_call_that_never_rang_the_contact_puts_them_back_without_using_an_attempt(queue, agent_user, outcome, call):
    """The agent did not answer their own phone (VCC rings it first), or VCC refused the call for now: the
    contact's phone never rang, so twice at max_attempts=2 leaves them waiting, attempts unused, not unreached."""
    CallQueue.objects.filter(pk=queue.pk).update(max_attempts=2, retry_minutes=30)
    queue.refresh_from_db()
    held, _, first = _work(queue, agent_user, outcome=outcome, **call)
    working.release(agent_user)
    later = NOW + timedelta(minutes=31)
    again, _, second = _work(queue, agent_user, outcome=outcome, now=later, **call)
    assert again.contact == held.contact
    entry = QueueEntry.objects.get(pk=held.entry.pk)
    assert (first.effect, second.effect) == ("retry", "retry")
    assert entry.state == "waiting" and entry.attempts == 0 and entry.due_at == later + timedelta(minutes=30)


@pytest.mark.parametrize("call", [INVALID_NUMBER, {"error_status": None, "error_message": "Not sent: bad agent ID"}])
def test_a_call_vcc_will_never_place_uses_an_attempt_so_the_contact_is_not_offered_for_ever(queue, agent_user, call):
    """VCC refused the call for good (the number is invalid), or it was refused here before it was sent: trying
    again cannot help, so the attempts run out as for a contact who does not answer."""
    CallQueue.objects.filter(pk=queue.pk).update(max_attempts=2, retry_minutes=30)
    queue.refresh_from_db()
    held, _, first = _work(queue, agent_user, outcome="failed", **call)
    working.release(agent_user)
    _, _, second = _work(queue, agent_user, outcome="failed", now=NOW + timedelta(minutes=31), **call)
    entry = QueueEntry.objects.get(pk=held.entry.pk)
    assert (first.effect, second.effect) == ("retry", "unreached")
    assert entry.state == "unreached" and entry.attempts == 2


def test_a_call_that_failed_on_the_contacts_line_uses_an_attempt(queue, agent_user):
    held = working.take_next(user=agent_user, queue=queue, now=NOW).held
    call = make_call(
        user=agent_user,
        agent=Agent.objects.get(user=agent_user),
        outcome="failed",
        at=NOW,
        contact=held.contact,
        state="ended",
        ended_at=NOW,
        result_code="Failure",
        result_party="Destination",
    )
    attempt = working.note_call(call, user=agent_user, now=NOW)
    assert attempt.effect == "retry" and QueueEntry.objects.get(pk=held.entry.pk).attempts == 1


def test_a_not_reached_disposition_comes_back_and_a_do_not_call_one_takes_the_contact_out_for_good(
    queue, agent_user, other_agent_user
):
    _, _, voicemail = _work(queue, agent_user, disposition="Left voicemail")
    assert voicemail.effect == "retry"
    held, call, _ = _work(queue, other_agent_user, disposition="Do not call")
    Contact.objects.filter(pk=held.contact.pk).update(do_not_call=True)  # what the disposition's action does
    entry = QueueEntry.objects.get(pk=held.entry.pk)
    assert entry.state == "dnc"


def test_a_promised_callback_brings_the_contact_back_at_that_time_to_the_promiser_first(
    queue, agent_user, other_agent_user
):
    held = working.take_next(user=agent_user, queue=queue, now=NOW).held
    call = make_call(
        user=agent_user,
        agent=Agent.objects.get(user=agent_user),
        at=NOW,
        contact=held.contact,
        phone=held.contact.phones.first(),
    )
    attempt = working.note_call(call, user=agent_user, now=NOW)
    at_three = NOW.replace(hour=15)
    Callback.objects.create(contact=held.contact, due_at=at_three, assigned_to=agent_user, promised_on=call)
    Call.objects.filter(pk=call.pk).update(disposition_code="Call back later", wrapped_up_at=NOW)
    assert working.settle(attempt, now=NOW) == "callback"
    entry = QueueEntry.objects.get(pk=held.entry.pk)
    assert entry.due_at == at_three and entry.is_callback
    # At three, Tom works the queue: the promise is Alex's, so Tom gets Ben; Alex gets his callback first.
    working.release(agent_user)
    assert working.take_next(user=other_agent_user, queue=queue, now=at_three).held.contact.name == "Ben"
    mine = working.take_next(user=agent_user, queue=queue, now=at_three).held
    assert mine.contact == held.contact and mine.callback is not None


def test_an_attempt_settles_later_when_the_agent_moved_on(queue, agent_user):
    held = working.take_next(user=agent_user, queue=queue, now=NOW).held
    call = make_call(
        user=agent_user, agent=Agent.objects.get(user=agent_user), outcome="in_progress", at=NOW, contact=held.contact
    )
    attempt = working.note_call(call, user=agent_user, now=NOW)
    assert attempt.effect == ""
    # The agent cannot move on while the call goes on: they get the same contact back.
    assert working.take_next(user=agent_user, queue=queue, now=NOW).held.contact == held.contact
    Call.objects.filter(pk=call.pk).update(
        state="ended", outcome="no_answer", ended_at=NOW + timedelta(seconds=40), connected_at=None
    )
    assert tend(now=NOW + timedelta(minutes=1))["settled"] == 1
    assert QueueAttempt.objects.get(pk=attempt.pk).effect == "retry"


def test_a_wrap_up_after_the_minute_job_counted_the_call_as_not_wrapped_up_settles_it_again(queue, agent_user):
    """An hour after the call, the minute job put Ada back ("Not wrapped up"); the agent then wraps it up as
    "Interested": she is reached, not called again."""
    held, call, attempt = _work(queue, agent_user, outcome="answered", connected_at=NOW, ended_at=NOW)
    assert attempt.effect == ""
    later = NOW + timedelta(minutes=61)
    tend(now=later)
    attempt.refresh_from_db()
    assert (attempt.effect, attempt.outcome) == ("retry", "Not wrapped up")
    Call.objects.filter(pk=call.pk).update(disposition_code="Interested", wrapped_up_at=later)

    working.after_wrap_up(Call.objects.get(pk=call.pk), now=later)

    attempt.refresh_from_db()
    entry = QueueEntry.objects.get(pk=held.entry.pk)
    assert (attempt.effect, entry.state, entry.attempts) == ("reached", "reached", 1)


def test_a_wrap_up_again_of_an_old_call_leaves_a_contact_tried_since_alone(queue, agent_user):
    """Ada's first call (no answer) is wrapped up again as "Interested" after her second call (busy) was made: the
    queue goes by her latest attempt, which the old call's wrap-up does not change."""
    CallQueue.objects.filter(pk=queue.pk).update(retry_minutes=1)
    queue.refresh_from_db()
    held, first, _ = _work(queue, agent_user, disposition="Left voicemail")
    working.release(agent_user)
    later = NOW + timedelta(minutes=2)
    _, _, second = _work(queue, agent_user, outcome="busy", now=later)
    assert second.entry == held.entry
    Call.objects.filter(pk=first.pk).update(disposition_code="Interested", wrapped_up_at=later)

    working.after_wrap_up(Call.objects.get(pk=first.pk), now=later)

    entry = QueueEntry.objects.get(pk=held.entry.pk)
    assert (entry.state, entry.attempts, entry.last_outcome) == ("waiting", 2, "Line busy")
    assert QueueAttempt.objects.get(call=first).effect == "retry"


def test_calling_a_contact_again_once_they_are_out_of_the_queue_is_no_attempt(queue, agent_user):
    """Ada was reached ("Interested"); the agent, still on her page, calls her again (the line dropped) and nobody
    answers: that call is not an attempt of the queue, so she stays reached rather than being tried again or
    ending unreached, and the agents' figures count one call."""
    CallQueue.objects.filter(pk=queue.pk).update(max_attempts=1)
    queue.refresh_from_db()
    held, _, attempt = _work(queue, agent_user, disposition="Interested")
    assert attempt.effect == "reached"
    again = make_call(
        user=agent_user, agent=Agent.objects.get(user=agent_user), outcome="no_answer", at=NOW, contact=held.contact
    )

    assert working.note_call(again, user=agent_user, now=NOW, queue_id=queue.pk) is None

    entry = QueueEntry.objects.get(pk=held.entry.pk)
    assert (entry.state, entry.attempts, entry.last_outcome) == ("reached", 1, "Interested")
    assert QueueAttempt.objects.filter(entry=entry).count() == 1


def test_a_call_not_from_the_queue_is_not_an_attempt(queue, agent_user, contact):
    call = make_call(user=agent_user, at=NOW, contact=contact)
    assert working.note_call(call, user=agent_user, now=NOW) is None


def test_a_due_callback_of_mine_comes_before_the_queues_contacts(queue, agent_user):
    outside = _contact("Olga", "+447400555111")
    Callback.objects.create(contact=outside, due_at=NOW - timedelta(minutes=5), assigned_to=agent_user)
    got = working.take_next(user=agent_user, queue=queue, now=NOW).held
    assert got.contact == outside and got.callback is not None and got.entry is None


@pytest.mark.calling_hours
def test_a_queue_skips_contacts_outside_their_calling_hours_and_comes_back_to_them(supervisor_user, agent_user, sales):
    """At 11:00 in London it is 06:00 in New York: the New York lead waits until 08:00 there (13:00 UTC) and the
    London one is called first, although the New York one is older."""
    _contact("Nora NY", "+12125550123", created=NOW - timedelta(days=5), company="Mixed")
    _contact("Liam London", "+447400123411", created=NOW - timedelta(days=1), company="Mixed")
    queue = building.make_queue(
        user=supervisor_user, name="Mixed", now=NOW, source_filter={"company": "Mixed"}, groups=[sales]
    ).queue
    assert _names(queue) == ["Nora NY", "Liam London"]
    got = working.take_next(user=agent_user, queue=queue, now=NOW).held
    assert got.contact.name == "Liam London"
    nora = QueueEntry.objects.get(contact__name="Nora NY")
    assert nora.due_at == datetime(2026, 12, 8, 13, 0, tzinfo=UTC) and nora.time_zone == "US:America/New_York"
    working.skip(user=agent_user, queue=queue, reason="Voicemail full", now=NOW)
    nobody = working.take_next(user=agent_user, queue=queue, now=NOW)
    assert nobody.held is None and "due at 12:00" in nobody.why_none  # Liam, back after the hour's wait
    at_eight_in_new_york = datetime(2026, 12, 8, 13, 0, tzinfo=UTC)
    assert working.take_next(user=agent_user, queue=queue, now=at_eight_in_new_york).held.contact.name == "Nora NY"


@pytest.mark.calling_hours
def test_the_zones_job_looks_up_a_queues_contacts_so_next_leaves_closed_ones_out_in_sql(supervisor_user, sales):
    _contact("Nora NY", "+12125550123", company="Mixed")
    _contact("Liam London", "+447400123411", company="Mixed")
    queue = building.make_queue(
        user=supervisor_user, name="Mixed", now=NOW, source_filter={"company": "Mixed"}, groups=[sales]
    ).queue
    assert working.fill_zones() == 2
    assert dict(queue.entries.values_list("contact__name", "time_zone")) == {
        "Nora NY": "US:America/New_York",
        "Liam London": "GB:Europe/London",
    }
    from calls.calling import hours

    assert claims.closed_zones(queue, now=NOW, hours=hours.load_hours()) == ["US:America/New_York"]


@pytest.mark.calling_hours
def test_a_contact_whose_time_zone_changed_after_the_zones_job_is_not_offered_outside_their_hours(
    supervisor_user, agent_user, sales
):
    """The zones job found Liam in London; he has since moved to Los Angeles, where it is 03:00. The queue goes by
    where he is now: not offered, back when his hours open there, and his entry's zone is corrected."""
    _contact("Liam", "+447400123411", company="Mixed")
    queue = building.make_queue(
        user=supervisor_user, name="Mixed", now=NOW, source_filter={"company": "Mixed"}, groups=[sales]
    ).queue
    assert working.fill_zones() == 1
    Contact.objects.filter(name="Liam").update(time_zone="America/Los_Angeles")
    got = working.take_next(user=agent_user, queue=queue, now=NOW)  # 11:00 in London, 03:00 in Los Angeles
    assert got.held is None
    liam = QueueEntry.objects.get(queue=queue)
    assert liam.time_zone == "GB:America/Los_Angeles" and liam.claimed_by is None
    assert liam.due_at == datetime(2026, 12, 8, 16, 0, tzinfo=UTC)  # 08:00 in Los Angeles
    at_eight_in_los_angeles = datetime(2026, 12, 8, 16, 0, tzinfo=UTC)
    assert working.take_next(user=agent_user, queue=queue, now=at_eight_in_los_angeles).held.contact.name == "Liam"


def test_the_minute_job_settles_what_agents_left_behind(queue, agent_user):
    from calls import tasks

    held = working.take_next(user=agent_user, queue=queue, now=NOW).held
    call = make_call(user=agent_user, agent=Agent.objects.get(user=agent_user), outcome="busy", contact=held.contact)
    QueueAttempt.objects.create(queue=queue, entry=held.entry, call=call, user=agent_user, at=NOW)
    assert tasks.tend_queues() == {"settled": 1, "joined": 0, "zones": 4}  # the 4 contacts not looked up yet
    assert QueueEntry.objects.get(pk=held.entry.pk).last_outcome == "Line busy"


def test_a_groups_due_callback_goes_to_one_member_only(queue, agent_user, other_agent_user, sales):
    outside = _contact("Olga", "+447400555111")
    Callback.objects.create(contact=outside, due_at=NOW - timedelta(minutes=5), group=sales)
    first = working.take_next(user=agent_user, queue=queue, now=NOW).held
    second = working.take_next(user=other_agent_user, queue=queue, now=NOW).held
    assert first.contact == outside and first.callback is not None
    assert second.contact.name == "Ada" and second.callback is None  # Tom gets the queue's first contact


def test_skipping_a_callback_brings_it_back_after_the_queues_wait(queue, agent_user):
    outside = _contact("Olga", "+447400555111")
    callback = Callback.objects.create(contact=outside, due_at=NOW - timedelta(minutes=5), assigned_to=agent_user)
    assert working.take_next(user=agent_user, queue=queue, now=NOW).held.callback == callback
    working.skip(user=agent_user, queue=queue, reason="In a meeting", now=NOW)
    callback.refresh_from_db()
    assert callback.state == "open" and callback.due_at == NOW + timedelta(minutes=queue.retry_minutes)
    assert working.take_next(user=agent_user, queue=queue, now=NOW).held.contact.name == "Ada"


def _promise(contact, user, *, at=NOW - timedelta(minutes=5)):
    return Callback.objects.create(contact=contact, due_at=at, assigned_to=user)


def test_a_callback_for_a_queue_contact_not_answered_comes_back_after_the_wait_and_the_agent_moves_on(
    queue, agent_user
):
    ada = Contact.objects.get(name="Ada")
    callback = _promise(ada, agent_user)
    held = working.take_next(user=agent_user, queue=queue, now=NOW).held
    assert held.callback == callback and held.entry.contact == ada
    call = make_call(
        user=agent_user, agent=Agent.objects.get(user=agent_user), outcome="no_answer", at=NOW, contact=ada
    )
    attempt = working.note_call(call, user=agent_user, now=NOW, queue_id=queue.pk)
    assert attempt.entry == held.entry and attempt.effect == "retry"  # the bar shows it, and "n" goes on
    assert working.take_next(user=agent_user, queue=queue, now=NOW).held.contact.name == "Ben"
    callback.refresh_from_db()
    assert callback.state == "open" and callback.due_at == NOW + timedelta(minutes=queue.retry_minutes)


def test_skipping_a_callback_whose_contact_is_in_the_queue_moves_on(queue, agent_user):
    callback = _promise(Contact.objects.get(name="Ada"), agent_user)
    assert working.take_next(user=agent_user, queue=queue, now=NOW).held.callback == callback
    working.skip(user=agent_user, queue=queue, reason="Driving", now=NOW)
    assert working.take_next(user=agent_user, queue=queue, now=NOW).held.contact.name == "Ben"


def test_a_contact_in_two_queues_goes_to_one_agent_at_a_time(queue, supervisor_user, agent_user, other_agent_user):
    other = building.make_queue(user=supervisor_user, name="Again", now=NOW, source_filter={"company": "Acme"}).queue
    assert working.take_next(user=agent_user, queue=queue, now=NOW).held.contact.name == "Ada"
    assert working.take_next(user=other_agent_user, queue=other, now=NOW).held.contact.name == "Ben"


def test_a_callback_kept_outside_the_queue_takes_the_contact_out_as_reached(queue, agent_user):
    from calls import callbacks

    ada = Contact.objects.get(name="Ada")
    entry = QueueEntry.objects.get(queue=queue, contact=ada)
    QueueEntry.objects.filter(pk=entry.pk).update(is_callback=True, due_at=NOW + timedelta(hours=2))
    _promise(ada, agent_user, at=NOW + timedelta(hours=1))
    later = make_call(user=agent_user, agent=Agent.objects.get(user=agent_user), at=NOW, contact=ada)
    assert callbacks.keep(later, NOW) == 1
    entry.refresh_from_db()
    assert entry.state == "reached" and entry.last_outcome == "Called back"


def test_a_contact_waiting_for_a_callback_promised_outside_the_queue_leaves_it_as_reached_when_it_is_kept(
    queue, agent_user, other_agent_user
):
    """Ada was promised a callback on a call made before the queue (her entry is no queue callback): the queue
    leaves her alone while it is open, and once it is kept she is reached, not called again by the queue."""
    from calls import callbacks

    ada = Contact.objects.get(name="Ada")
    _promise(ada, agent_user, at=NOW + timedelta(hours=1))
    assert working.take_next(user=other_agent_user, queue=queue, now=NOW).held.contact.name == "Ben"
    kept_by = make_call(user=agent_user, agent=Agent.objects.get(user=agent_user), at=NOW, contact=ada)
    assert callbacks.keep(kept_by, NOW) == 1

    entry = QueueEntry.objects.get(queue=queue, contact=ada)
    assert entry.state == "reached" and entry.last_outcome == "Called back" and entry.finished_at == NOW
    working.release(other_agent_user)
    later = NOW + timedelta(hours=2)
    assert working.take_next(user=other_agent_user, queue=queue, now=later).held.contact.name == "Ben"


def test_an_outcome_is_applied_once(queue, agent_user):
    held, _, attempt = _work(queue, agent_user, outcome="no_answer")
    due = QueueEntry.objects.get(pk=held.entry.pk).due_at
    stale = QueueAttempt.objects.get(pk=attempt.pk)
    QueueAttempt.objects.filter(pk=attempt.pk).update(effect="")  # as a second settler saw it, before the first
    QueueAttempt.objects.filter(pk=attempt.pk).update(effect="retry")
    stale.effect = ""
    assert working.settle(stale, now=NOW + timedelta(minutes=5)) == "retry"
    assert QueueEntry.objects.get(pk=held.entry.pk).due_at == due  # not pushed again


def test_start_on_another_queue_gives_back_the_contact_held_in_the_first(
    queue, supervisor_user, agent_user, other_agent_user
):
    """Start on queue B without Stop on queue A: Ada goes back to A at once, and B's bar, refreshing for half an
    hour, does not keep her (she was held with no time limit, "being called by colleagues" everywhere)."""
    other = building.make_queue(user=supervisor_user, name="Other", now=NOW, source_filter={"company": "Other"}).queue
    assert working.take_next(user=agent_user, queue=queue, now=NOW).held.contact.name == "Ada"
    assert working.take_next(user=agent_user, queue=other, now=NOW).held.contact.name == "Zed"
    ada = QueueEntry.objects.get(queue=queue, contact__name="Ada")
    assert ada.claimed_by is None and ada.claimed_at is None
    for minute in range(1, 31):
        working.still_here(agent_user, other, now=NOW + timedelta(minutes=minute))
    later = NOW + timedelta(minutes=30)
    assert working.take_next(user=other_agent_user, queue=queue, now=later).held.contact.name == "Ada"
    assert QueueEntry.objects.get(queue=other, contact__name="Zed").claimed_at == later  # B's own, kept


def test_start_on_another_queue_applies_the_outcome_of_the_call_made_in_the_first(queue, supervisor_user, agent_user):
    other = building.make_queue(user=supervisor_user, name="Other", now=NOW, source_filter={"company": "Other"}).queue
    held = working.take_next(user=agent_user, queue=queue, now=NOW).held
    call = make_call(user=agent_user, agent=Agent.objects.get(user=agent_user), outcome="busy", contact=held.contact)
    QueueAttempt.objects.create(queue=queue, entry=held.entry, call=call, user=agent_user, at=NOW)  # not settled yet
    assert working.take_next(user=agent_user, queue=other, now=NOW).held.contact.name == "Zed"
    ada = QueueEntry.objects.get(pk=held.entry.pk)
    assert ada.claimed_by is None and ada.last_outcome == "Line busy" and ada.due_at == NOW + timedelta(hours=1)


def test_a_sign_of_the_agent_keeps_only_what_they_hold_in_the_queue_whose_bar_refreshes(
    queue, supervisor_user, agent_user
):
    other = building.make_queue(user=supervisor_user, name="Other", now=NOW, source_filter={"company": "Other"}).queue
    QueueEntry.objects.filter(contact__name__in=["Ada", "Zed"]).update(
        claimed_by=agent_user, claimed_at=NOW, claimed_since=NOW
    )
    working.still_here(agent_user, other, now=NOW + timedelta(minutes=5))
    claimed = dict(QueueEntry.objects.filter(claimed_by=agent_user).values_list("contact__name", "claimed_at"))
    assert claimed == {"Ada": NOW, "Zed": NOW + timedelta(minutes=5)}


def test_a_wrap_up_of_a_closed_click_that_vcc_then_placed_no_longer_settles_its_attempt(queue, agent_user):
    """A supervisor closed the click while VCC was asked and the agent wrapped it up ("Interested": reached); VCC
    then placed it after all (placing._record_answer): the attempt waits for the real call again, and the real call's
    outcome (no answer) settles it, so the contact comes back after the wait."""
    from calls.calling.placing import _record_answer
    from calls.models import CLOSED_BY_HAND

    held, call, attempt = _work(queue, agent_user, outcome="unknown", disposition="Interested", vcc_call_id="")
    Call.objects.filter(pk=call.pk).update(responded_at=None, result_reason=CLOSED_BY_HAND)
    assert attempt.effect == "reached" and QueueEntry.objects.get(pk=held.entry.pk).state == "reached"

    answer = {"vcc_call_id": "vcc-late", "vcc_status": "", "recording_status": "", "latency_ms": 9000, "now": NOW}
    call = _record_answer(call.pk, Call.record_placed, answer, "", "")

    attempt.refresh_from_db()
    entry = QueueEntry.objects.get(pk=held.entry.pk)
    assert call.is_live and (attempt.effect, entry.state, entry.finished_at) == ("", "waiting", None)
    Call.objects.filter(pk=call.pk).update(state="ended", outcome="no_answer", ended_at=NOW + timedelta(minutes=1))
    later = NOW + timedelta(minutes=2)
    assert working.settle(attempt, now=later) == "retry"
    entry.refresh_from_db()
    assert entry.state == "waiting" and entry.due_at == later + timedelta(minutes=queue.retry_minutes)
