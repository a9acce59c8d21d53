"""Call queues (calls/queues/): making one, taking contacts (each to one agent), skipping, stopping, and what each
call's outcome does to its contact's place. On an injected clock; contacts are UK numbers, called on a weekday
morning, inside calling hours."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from calls.models import (
    Agent,
    Call,
    Callback,
    CallQueue,
    Contact,
    ContactImport,
    ContactPhone,
    ImportedContact,
    QueueAttempt,
    QueueEntry,
)
from calls.queues import building, claims, tend, working
from tests._calls import make_call

NOW = datetime(2026, 12, 8, 11, 0, tzinfo=UTC)  # a Tuesday, 11:00 in London
needs_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="the desk claims on PostgreSQL only")


def _contact(name: str, number: str, *, created: datetime | None = None, **fields) -> Contact:
    contact = Contact.objects.create(name=name, **fields)
    ContactPhone.objects.create(contact=contact, number=number, is_primary=True)
    if created is not None:
        Contact.objects.filter(pk=contact.pk).update(created_at=created)
    return contact


@pytest.fixture
def leads(db):
    """Five leads at Acme, made a day apart (Ada oldest), and one elsewhere."""
    names = ["Ada", "Ben", "Cleo", "Dev", "Eve"]
    made = [
        _contact(n, f"+4474001234{i:02d}", created=NOW - timedelta(days=10 - i), company="Acme")
        for i, n in enumerate(names)
    ]
    _contact("Zed", "+447400999000", company="Other")
    return made


@pytest.fixture
def queue(leads, supervisor_user, agent_user, other_agent_user, sales):
    made = building.make_queue(
        user=supervisor_user, name="Acme leads", now=NOW, source_filter={"company": "Acme"}, groups=[sales]
    )
    return made.queue


def _names(queue: CallQueue) -> list[str]:
    return list(queue.entries.order_by("position").values_list("contact__name", flat=True))


def test_a_queue_holds_the_filters_matches_in_its_order_and_leaves_do_not_call_out(leads, supervisor_user):
    Contact.objects.filter(name="Cleo").update(do_not_call=True)
    ContactPhone.objects.filter(contact__name="Dev").update(do_not_call=True)  # his only number
    made = building.make_queue(user=supervisor_user, name="Q", now=NOW, source_filter={"company": "Acme"})
    assert made.added == 3 and made.left_out == 2
    assert _names(made.queue) == ["Ada", "Ben", "Eve"]
    assert set(made.queue.entries.values_list("state", flat=True)) == {"waiting"}


def test_a_queue_can_be_ordered_by_priority_or_by_last_called(leads, supervisor_user):
    Contact.objects.filter(name="Dev").update(priority=5)
    Contact.objects.filter(name="Ben").update(priority=9)
    by_priority = building.make_queue(
        user=supervisor_user, name="P", now=NOW, source_filter={"company": "Acme"}, sort="priority"
    )
    assert _names(by_priority.queue) == ["Ben", "Dev", "Ada", "Cleo", "Eve"]
    Contact.objects.filter(name="Ada").update(last_called_at=NOW - timedelta(hours=1))
    Contact.objects.filter(name="Ben").update(last_called_at=NOW - timedelta(days=3))
    by_last = building.make_queue(
        user=supervisor_user, name="L", now=NOW, source_filter={"company": "Acme"}, sort="last_called"
    )
    assert _names(by_last.queue) == ["Cleo", "Dev", "Eve", "Ben", "Ada"]  # never called first, then longest ago


def test_a_queue_made_from_a_search_holds_what_the_contact_list_finds(leads, supervisor_user):
    made = building.make_queue(user=supervisor_user, name="S", now=NOW, source_filter={"q": "cle"})
    assert _names(made.queue) == ["Cleo"]


def test_a_queue_from_an_import_holds_the_contacts_it_added_or_updated(leads, supervisor_user):
    imp = ContactImport.objects.create(created_by=supervisor_user, status=ContactImport.Status.DONE)
    for row, name in [(2, "Eve"), (3, "Ben")]:
        ImportedContact.objects.create(contact_import=imp, contact=Contact.objects.get(name=name), row=row)
    made = building.make_queue(user=supervisor_user, name="I", now=NOW, source_import=imp, live=True)
    assert _names(made.queue) == ["Ben", "Eve"]
    assert made.queue.live is False  # an import does not grow


def test_a_live_queue_takes_new_matches_in_at_its_end_and_a_snapshot_does_not(leads, supervisor_user):
    live = building.make_queue(user=supervisor_user, name="Live", now=NOW, source_filter={"company": "Acme"}, live=True)
    snap = building.make_queue(user=supervisor_user, name="Snap", now=NOW, source_filter={"company": "Acme"})
    _contact("Fay", "+447400123499", company="Acme")
    _contact("Gus", "+447400123498", company="Elsewhere")
    assert tend(now=NOW)["joined"] == 1
    assert _names(live.queue)[-1] == "Fay" and len(_names(live.queue)) == 6
    assert "Fay" not in _names(snap.queue)
    assert building.add_new_matches(live.queue, now=NOW) == 0  # looked at already


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
    working.still_here(agent_user, now=NOW + timedelta(minutes=8))
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


def _work(queue, user, *, outcome="answered", disposition="", now=NOW):
    """Take the next contact, call them (a call stored as ended with outcome), note it, and wrap it up."""
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


def test_a_call_not_from_the_queue_is_not_an_attempt(queue, agent_user, contact):
    call = make_call(user=agent_user, at=NOW, contact=contact)
    assert working.note_call(call, user=agent_user, now=NOW) is None


def test_a_due_callback_of_mine_comes_before_the_queues_contacts(queue, agent_user):
    outside = _contact("Olga", "+447400555111")
    Callback.objects.create(contact=outside, due_at=NOW - timedelta(minutes=5), assigned_to=agent_user)
    got = working.take_next(user=agent_user, queue=queue, now=NOW).held
    assert got.contact == outside and got.callback is not None and got.entry is None


def _agents_and_queue(*, agents: int, leads: int) -> tuple[list, CallQueue]:
    """Agents (each a person of their own) and a queue of leads given to them, for tests with a thread each."""
    from tests.conftest import create_person, create_user

    boss = create_user("boss", "supervisor")
    users = [create_person(f"agent{i}", "agent", f"Agent {i}", f"{2000 + i}") for i in range(agents)]
    for i in range(leads):
        _contact(f"Lead {i:02d}", f"+4474001230{i:02d}", company="Acme")
    made = building.make_queue(
        user=boss, name="Race", now=NOW, source_filter={"company": "Acme"}, agents=Agent.objects.all()
    )
    return users, made.queue


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="threads writing at once: SQLite's in-memory test database refuses them"
)
@pytest.mark.django_db(transaction=True)
def test_agents_pulling_next_at_once_never_get_the_same_contact():
    """Eight agents, each in their own thread and database connection, pull "next" together, twice: sixteen
    different contacts (the claims are taken with FOR UPDATE SKIP LOCKED and re-checked on the locked rows)."""
    users, queue = _agents_and_queue(agents=8, leads=20)
    barrier = threading.Barrier(len(users))
    got: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def pull(user) -> None:
        try:
            barrier.wait()
            first = working.take_next(user=user, queue=queue, now=NOW).held
            working.skip(user=user, queue=queue, reason="next one", now=NOW)
            second = working.take_next(user=user, queue=queue, now=NOW).held
            got[user.username] = [first.contact.pk, second.contact.pk]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=pull, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    taken = [pk for pair in got.values() for pk in pair]
    assert len(taken) == 16 and len(set(taken)) == 16


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


def test_the_minute_job_settles_what_agents_left_behind(queue, agent_user):
    from calls import tasks

    held = working.take_next(user=agent_user, queue=queue, now=NOW).held
    call = make_call(user=agent_user, agent=Agent.objects.get(user=agent_user), outcome="busy", contact=held.contact)
    QueueAttempt.objects.create(queue=queue, entry=held.entry, call=call, user=agent_user, at=NOW)
    assert tasks.tend_queues() == {"settled": 1, "joined": 0, "zones": 4}  # the 4 contacts not looked up yet
    assert QueueEntry.objects.get(pk=held.entry.pk).last_outcome == "Line busy"


@needs_postgres
def test_one_person_asking_twice_at_once_the_long_way_and_the_short_gets_one_contact_for_both(queue, agent_user):
    """Two tabs: one ask through take_next (what they owe is looked at), one from its long way (dealt with already).
    Served in one batch, both get the same contact: the unchecked ask is never told "owes"."""
    outside = _contact("Out", "+447400555000")
    Callback.objects.create(contact=outside, due_at=NOW - timedelta(minutes=5), assigned_to=agent_user)  # owed
    hours = claims.calling_hours.load_hours()
    asks = [claims._Ask(agent_user.pk, NOW, check_owes=True), claims._Ask(agent_user.pk, NOW, check_owes=False)]
    claims._serve(queue, asks, hours)
    assert [a.error for a in asks] == [None, None]
    assert asks[0].answer == asks[1].answer and asks[0].answer[1].name == "Ada"
    alone = [claims._Ask(agent_user.pk, NOW, check_owes=True)]  # asked alone, the short way: told what they owe
    claims._serve(queue, alone, hours)
    assert alone[0].answer == claims.OWES


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


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the audit trail's triggers are PostgreSQL's")
def test_making_and_changing_a_queue_is_in_the_audit_trail(queue):
    from calls.models import AuditEntry

    CallQueue.objects.filter(pk=queue.pk).update(state="paused")
    kinds = list(AuditEntry.objects.filter(object_type="queue", object_id=str(queue.pk)).values_list("kind", "after"))
    assert ("queue.create", kinds[0][1]) == kinds[0] and kinds[0][1]["name"] == "Acme leads"
    assert kinds[-1] == ("queue.update", {"state": "paused"})


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


def test_an_outcome_is_applied_once(queue, agent_user):
    held, _, attempt = _work(queue, agent_user, outcome="no_answer")
    due = QueueEntry.objects.get(pk=held.entry.pk).due_at
    stale = QueueAttempt.objects.get(pk=attempt.pk)
    QueueAttempt.objects.filter(pk=attempt.pk).update(effect="")  # as a second settler saw it, before the first
    QueueAttempt.objects.filter(pk=attempt.pk).update(effect="retry")
    stale.effect = ""
    assert working.settle(stale, now=NOW + timedelta(minutes=5)) == "retry"
    assert QueueEntry.objects.get(pk=held.entry.pk).due_at == due  # not pushed again


def _hold_up_the_first_batch(monkeypatch) -> tuple[threading.Event, threading.Event, list[list[int]]]:
    """The desk's first batch waits, once it is in, until `release` is set (`first_in` says it is in); `batches`
    gets each batch's users as it is served."""
    first_in, release = threading.Event(), threading.Event()
    batches: list[list[int]] = []
    serve = claims._serve

    def held_up_serve(queue, batch, hours):
        batches.append([ask.user_id for ask in batch])
        if len(batches) == 1:
            first_in.set()
            assert release.wait(timeout=60)
        serve(queue, batch, hours)

    monkeypatch.setattr(claims, "_serve", held_up_serve)
    return first_in, release, batches


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_agents_asking_while_a_claim_runs_are_served_together_in_the_queues_order(monkeypatch):
    """The first agent's claim is held up while five more ask: the next of them then claims for all five in one
    statement, the queue's next contacts to them in the order they asked (calls/queues/claims.py)."""
    users, queue = _agents_and_queue(agents=6, leads=10)
    desk = claims._desk(queue.pk)
    first_in, release, batches = _hold_up_the_first_batch(monkeypatch)
    statements: list[list[int]] = []
    execute = claims._execute_claim

    def counted(sql, params):
        assert claims.is_claim(sql)
        statements.append(params[0])  # the users it claims for
        return execute(sql, params)

    monkeypatch.setattr(claims, "_execute_claim", counted)
    got: dict[int, int] = {}
    errors: list[BaseException] = []

    def pull(user) -> None:
        try:
            got[user.pk] = working.take_next(user=user, queue=queue, now=NOW).held.entry.position
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=pull, args=(users[0],))]
    threads[0].start()
    assert first_in.wait(timeout=60)
    for waiting, user in enumerate(users[1:], start=1):  # one at a time, so that they wait in this order
        threads.append(threading.Thread(target=pull, args=(user,)))
        threads[-1].start()
        with desk.arrived:
            assert desk.arrived.wait_for(lambda waiting=waiting: len(desk.waiting) == waiting, timeout=60)
    release.set()
    for t in threads:
        t.join()
    assert not errors
    assert batches == [[users[0].pk], [u.pk for u in users[1:]]]
    assert statements == batches  # one claim statement for each batch, for all its agents
    positions = sorted(queue.entries.values_list("position", flat=True))
    assert [got[u.pk] for u in users] == positions[:6]  # first come, first served, in the queue's order
    claimed = dict(queue.entries.filter(claimed_by__isnull=False).values_list("claimed_by_id", "position"))
    assert claimed == {u.pk: got[u.pk] for u in users}
    assert desk.waiting == [] and desk.busy is False


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_more_agents_than_the_pool_has_connections_wait_together_without_holding_one(monkeypatch):
    """Each agent's thread borrows a connection first, as a request does with its first query. While the first claim
    is held up, more agents than the pool has connections ask: each gives its connection back while it waits, so
    all of them reach the desk (holding them, the pool ran out at its size and the rest waited for a connection)
    and the next claim serves them all, each a different contact."""
    pool = connection.pool
    assert pool is not None  # the tests run with the pool, as vccweb does by default
    waiters = pool.max_size + 5
    users, queue = _agents_and_queue(agents=waiters + 1, leads=waiters + 1)
    desk = claims._desk(queue.pk)
    first_in, release, batches = _hold_up_the_first_batch(monkeypatch)
    got: dict[int, int] = {}
    errors: list[BaseException] = []

    def pull(user) -> None:
        try:
            connection.ensure_connection()
            got[user.pk] = working.take_next(user=user, queue=queue, now=NOW).held.contact.pk
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    lent, lending = [0], threading.Lock()  # connections the pool lent the threads below and has not had back
    getconn, putconn = pool.getconn, pool.putconn

    def counted_getconn(*args, **kwargs):
        conn = getconn(*args, **kwargs)
        with lending:
            lent[0] += 1
        return conn

    def counted_putconn(conn):
        with lending:
            lent[0] -= 1
        putconn(conn)

    monkeypatch.setattr(pool, "getconn", counted_getconn)
    monkeypatch.setattr(pool, "putconn", counted_putconn)
    threads = [threading.Thread(target=pull, args=(user,)) for user in users]
    threads[0].start()
    assert first_in.wait(timeout=60)
    for t in threads[1:]:
        t.start()

    # Each waiting ask is announced once its connection is back: then, of the threads', only the claim held up has
    # one. (Counted as the pool lends and takes back: its stats count a connection it is still opening, to grow, as
    # lent, and nothing announces when that one is ready; waiting on them hung this test now and then.)
    with desk.arrived:
        assert desk.arrived.wait_for(lambda: len(desk.waiting) == waiters, timeout=60), len(desk.waiting)
        assert lent == [1]
    release.set()
    for t in threads:
        t.join()
    assert not errors
    assert len(batches) == 2 and sorted(batches[1]) == sorted(u.pk for u in users[1:])
    assert len(got) == len(users) and len(set(got.values())) == len(users)


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_claim_that_fails_fails_for_every_agent_waiting_on_it_and_frees_the_desk(monkeypatch):
    users, queue = _agents_and_queue(agents=3, leads=5)
    desk = claims._desk(queue.pk)
    first_in, release = threading.Event(), threading.Event()
    claim_for = claims._claim_for
    calls = []

    def failing_claim_for(queue, user_ids, **kwargs):
        calls.append(user_ids)
        if len(calls) == 1:
            first_in.set()
            assert release.wait(timeout=60)
            return claim_for(queue, user_ids, **kwargs)
        raise RuntimeError("the database went away")

    monkeypatch.setattr(claims, "_claim_for", failing_claim_for)
    outcome: dict[int, str] = {}

    def pull(user) -> None:
        try:
            working.take_next(user=user, queue=queue, now=NOW)
            outcome[user.pk] = "served"
        except RuntimeError as exc:
            outcome[user.pk] = str(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=pull, args=(users[0],))]
    threads[0].start()
    assert first_in.wait(timeout=60)
    for user in users[1:]:
        threads.append(threading.Thread(target=pull, args=(user,)))
        threads[-1].start()
    with desk.arrived:
        assert desk.arrived.wait_for(lambda: len(desk.waiting) == 2, timeout=60)
    release.set()
    for t in threads:
        t.join()
    failed = "the database went away"
    assert outcome == {users[0].pk: "served", users[1].pk: failed, users[2].pk: failed}
    assert desk.busy is False
    monkeypatch.setattr(claims, "_claim_for", claim_for)
    assert working.take_next(user=users[1], queue=queue, now=NOW).held is not None  # the desk works again
