"""Honest call state: lost contact with VCC, calls VCC forgets, stuck calls closed by hand, the phase words, who
answered a group call (and owns its wrap-up), and which calls ask for a wrap-up at all."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, timedelta
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.test import Client
from django.utils import formats, timezone

from calls import calling, reports, rules
from calls.models import CLOSED_BY_HAND, Agent, Call, CallEvent, DispositionCode
from calls.views.calling import panel_context
from tests._sim import HTMX, call_agent, click, fresh_simulator, only_call, poll, primary, shown

pytestmark = pytest.mark.django_db

CONNECTED = 9  # clock seconds after placing: the agent's phone rings 3 s, the contact's 5 s
ENDED = 70


@pytest.fixture(autouse=True)
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


def html(response) -> str:
    assert response.status_code == 200, response.content
    return response.content.decode()


def hh_mm(at) -> str:
    return formats.time_format(timezone.localtime(at), "H:i")


# --- Lost contact: said until VCC answers again, never flickering off ------------------------------------


@pytest.mark.parametrize(
    "fault", [{"status": 503}, {"status": 500}, {"status": 429}, {"drop": "before"}], ids=["503", "500", "429", "drop"]
)
def test_the_panel_says_lost_contact_until_vcc_answers_again(agent_client, placed, sim, fault):
    sim.clock.advance(CONNECTED)
    assert "Connected" in html(poll(agent_client, placed))
    placed.refresh_from_db()
    last_seen = placed.last_seen_at
    sim.set_fault("get_call", **fault)
    sim.clock.advance(10)

    first = html(poll(agent_client, placed))
    placed.refresh_from_db()
    words = f"Lost contact with VCC: status unknown since {hh_mm(placed.lost_contact_since)}"
    assert words in first
    assert placed.last_seen_at == last_seen  # the last good answer stays what it was
    assert 'class="pulse"' not in first and "data-talk-since" not in first
    # The next poll comes before the next look at VCC: it says the same, not "Connected".
    again = html(agent_client.get(f"/calls/{placed.pk}/panel/", headers=HTMX))
    assert words in again
    assert "<strong>Connected</strong>" not in again

    sim.clear_faults()
    sim.clock.advance(10)
    back = html(poll(agent_client, placed))
    placed.refresh_from_db()
    assert placed.lost_contact_since is None
    assert placed.last_seen_at > last_seen
    assert placed.events.filter(detail="VCC answers again, after 10 s without an answer").exists()
    assert "Lost contact" not in back
    assert "<strong>Connected</strong>" in back


def test_lost_contact_is_shown_in_the_viewers_time_zone(agent_user, placed, sim):
    sim.set_fault("get_call", status=503)
    Call.objects.filter(pk=placed.pk).update(next_check_at=None)
    async_to_sync(calling.follow)(call=placed)
    placed.refresh_from_db()
    since = placed.lost_contact_since

    with timezone.override("America/New_York"):
        words = panel_context(placed, user=agent_user)["phase"]
    with timezone.override("Asia/Kolkata"):
        other = panel_context(placed, user=agent_user)["phase"]

    new_york = since.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M")
    assert words == f"Lost contact with VCC: status unknown since {new_york}"
    assert other.endswith(since.astimezone(ZoneInfo("Asia/Kolkata")).strftime("%H:%M"))


def test_the_talk_timer_counts_from_the_connection_in_utc(agent_client, placed, sim):
    sim.clock.advance(CONNECTED)

    page = html(poll(agent_client, placed))

    placed.refresh_from_db()
    since = placed.connected_at.astimezone(UTC).isoformat()
    assert f'data-talk-since="{since}"' in page


# --- A call VCC no longer knows ----------------------------------------------------------------------------


def test_the_worker_ends_a_call_vcc_forgot_within_a_bounded_time(agent_client, placed, sim):
    sim.clock.advance(CONNECTED)
    poll(agent_client, placed)
    placed.refresh_from_db()
    seen = placed.last_seen_at
    sim.set_fault("get_call", status=404)
    rounds = 0
    while placed.state == Call.State.LIVE and rounds < 10:
        sim.clock.advance(10)
        async_to_sync(calling.follow_due)()
        placed.refresh_from_db()
        rounds += 1

    assert placed.state == Call.State.ENDED
    assert rounds == 3  # three "not found" answers, 10 s apart
    response = agent_client.get(f"/calls/{placed.pk}/")
    assert shown(response, f"Ended: VCC no longer knows this call (last seen {hh_mm(seen)})")
    assert "Last answer from VCC" in html(response)


# --- Closing a stuck call by hand ------------------------------------------------------------------------


def test_a_supervisor_closes_a_stuck_call_with_a_reason(supervisor_client, placed, sim):
    page = html(supervisor_client.get(f"/calls/{placed.pk}/"))
    assert "Close this call by hand" in page

    response = supervisor_client.post(
        f"/calls/{placed.pk}/close/", {"reason": "VCC support says the call ended at 13:40"}, follow=True
    )

    placed.refresh_from_db()
    assert placed.state == Call.State.ENDED
    assert placed.outcome == Call.Outcome.UNKNOWN
    event = placed.events.get(kind=CallEvent.Kind.CLOSED)
    assert event.detail == "closed by Priya Shah: VCC support says the call ended at 13:40"
    page = html(response)
    assert "The call is closed" in page
    assert "closed by Priya Shah: VCC support says the call ended at 13:40" in page
    assert "Close this call by hand" not in page


def test_closing_a_call_needs_a_reason(supervisor_client, placed):
    response = supervisor_client.post(f"/calls/{placed.pk}/close/", {"reason": "  "}, follow=True)

    placed.refresh_from_db()
    assert placed.state == Call.State.LIVE
    assert "Say why you close this call (at least 10 characters). The call was not closed." in html(response)


def test_an_agent_may_not_close_a_call(agent_client, placed):
    response = agent_client.post(f"/calls/{placed.pk}/close/", {"reason": "I think it is stuck somehow"})

    assert response.status_code == 403
    placed.refresh_from_db()
    assert placed.state == Call.State.LIVE
    assert "Close this call by hand" not in html(agent_client.get(f"/calls/{placed.pk}/"))


def test_closing_a_call_needs_the_csrf_token(supervisor_user, placed):
    client = Client(enforce_csrf_checks=True)
    client.force_login(supervisor_user)

    response = client.post(f"/calls/{placed.pk}/close/", {"reason": "VCC support says it ended"})

    assert response.status_code == 403
    placed.refresh_from_db()
    assert placed.state == Call.State.LIVE


def test_closing_an_ended_call_changes_nothing(supervisor_client, agent_client, placed, sim):
    sim.clock.advance(ENDED)
    poll(agent_client, placed)

    response = supervisor_client.post(f"/calls/{placed.pk}/close/", {"reason": "stuck, says the agent"}, follow=True)

    assert "That call has already ended; nothing was changed." in html(response)
    assert not placed.events.filter(kind=CallEvent.Kind.CLOSED).exists()


# --- The phase words ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"state": "requested"}, "Asking VCC to place the call…"),
        ({"state": "live", "from_agent": True}, "Ringing your phone…"),
        ({"state": "live", "from_agent": False}, "Ringing an agent…"),
        ({"state": "live", "from_agent": True, "agent_answered": True}, "Ringing…"),
        ({"state": "live", "from_agent": False, "agent_answered": True}, "Ringing…"),
        ({"state": "live", "recording_status": "Started", "agent_answered": True}, "Connected"),
        (
            {"state": "live", "recording_status": "Started", "lost_since": "13:39"},
            ("Lost contact with VCC: status unknown since 13:39"),
        ),
        (
            {"state": "ended", "gone": True, "last_seen": "13:39"},
            "Ended: VCC no longer knows this call (last seen 13:39)",
        ),
        ({"state": "ended", "outcome_label": "Answered"}, "Call ended"),
    ],
)
def test_the_phase_in_words(kwargs, words):
    base = {"state": "live", "outcome_label": "", "recording_status": "", "from_agent": True}
    assert rules.phase(**(base | kwargs)) == words


# --- Who answered a group call -----------------------------------------------------------------------------


@pytest.fixture
def group_call(supervisor_client, contact, london, sales, sim) -> Call:
    """Priya (a supervisor) calls via Sales UK; Alex (agent 1001, its first ready member) takes it."""
    click(supervisor_client, primary(contact), via="group", groups=(sales.pk,))
    call = only_call()
    sim.clock.advance(CONNECTED)
    poll(supervisor_client, call)
    call.refresh_from_db()
    return call


def test_a_group_call_names_the_agent_who_answered(group_call, supervisor_client, agent_user):
    assert group_call.answered_by == agent_user.agent
    panel = html(supervisor_client.get(f"/calls/{group_call.pk}/panel/", headers=HTMX))
    assert 'answered by <strong class="answered-by">Alex Morgan</strong> (agent 1001)' in panel
    page = html(supervisor_client.get(f"/calls/{group_call.pk}/"))
    assert "<dt>Answered by</dt><dd>Alex Morgan (agent 1001)</dd>" in page
    log = html(supervisor_client.get("/calls/"))
    assert "Alex Morgan via Sales UK" in log


def test_a_group_call_is_not_named_before_an_agent_answers(supervisor_client, contact, london, sales, sim):
    click(supervisor_client, primary(contact), via="group", groups=(sales.pk,))
    call = only_call()
    sim.clock.advance(1)

    page = html(poll(supervisor_client, call))

    call.refresh_from_db()
    assert call.answered_by is None
    assert "Ringing an agent…" in page


def test_the_answering_agent_owns_the_wrap_up_and_the_supervisor_still_sees_it(
    group_call, agent_client, supervisor_client, agent_user, other_agent_user, sim
):
    sim.clock.advance(ENDED)
    poll(agent_client, group_call)
    group_call.refresh_from_db()
    assert group_call.state == Call.State.ENDED
    assert group_call in Call.objects.changeable_by(agent_user)
    assert group_call.is_changeable_by(agent_user)
    assert group_call not in Call.objects.changeable_by(other_agent_user)
    supervisor = group_call.created_by
    assert group_call not in Call.objects.changeable_by(supervisor)  # no longer asked of the one who clicked
    assert not group_call.is_changeable_by(supervisor)
    assert group_call in Call.objects.visible_to(supervisor)
    assert 'id="wrapup"' not in html(supervisor_client.get(f"/calls/{group_call.pk}/panel/", headers=HTMX))
    assert 'id="wrapup"' in html(agent_client.get(f"/calls/{group_call.pk}/panel/", headers=HTMX))
    assert group_call.pk in [c.pk for c in Call.objects.changeable_by(agent_user).to_wrap_up()]

    interested = DispositionCode.objects.get(code="Interested").pk
    response = agent_client.post(f"/calls/{group_call.pk}/wrapup/", {"disposition": interested}, headers=HTMX)

    assert "Wrapped up: " in html(response)
    assert sim.calls[group_call.vcc_call_id].disposition_code == "Interested"
    assert "Interested" in html(supervisor_client.get(f"/calls/{group_call.pk}/"))


def test_the_csv_and_the_reports_count_a_group_call_for_the_agent_who_answered(group_call, supervisor_client):
    response = supervisor_client.get("/calls/export.csv")
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [row["Agent"] for row in rows] == ["Alex Morgan (1001)"]

    today = timezone.localdate()
    report = reports.build_report(first=today, last=today, agent=group_call.answered_by, now=timezone.now())
    assert sum(c.calls for c in report.per_agent.values()) == 1
    assert list(report.per_agent) == [group_call.answered_by_id]
    assert isinstance(today, date)


# --- Which calls ask for a wrap-up -------------------------------------------------------------------------


def test_a_call_to_a_colleague_asks_no_wrap_up_and_says_no_talk_time(agent_client, other_agent_user, london, sim):
    call_agent(agent_client, other_agent_user.agent)
    call = only_call()
    sim.clock.advance(ENDED)

    page = html(poll(agent_client, call))

    call.refresh_from_db()
    assert call.state == Call.State.ENDED
    assert "No wrap-up needed: a call to a colleague." in page
    assert 'id="wrapup"' not in page
    assert not call.wrap_up_due
    assert call not in Call.objects.to_wrap_up()


def test_a_call_that_never_connected_asks_no_wrap_up_and_never_says_talked_0_s(agent_client, contact, london, sim):
    sim.force_next_outcome("no_answer")
    click(agent_client, primary(contact))
    call = only_call()
    sim.clock.advance(60)

    page = html(poll(agent_client, call))

    assert "No wrap-up needed: the call never connected." in page
    assert "talked" not in page
    detail = html(agent_client.get(f"/calls/{call.pk}/"))
    assert "Talk time" not in detail
    interested = DispositionCode.objects.get(code="Interested").pk
    refused = agent_client.post(f"/calls/{call.pk}/wrapup/", {"disposition": interested}, headers=HTMX)
    assert "This call needs no wrap-up: it never connected." in refused.content.decode()


def test_editing_a_wrong_number_wrap_up_says_the_number_stays_do_not_call(agent_client, placed, sim):
    sim.clock.advance(ENDED)
    poll(agent_client, placed)
    wrong = DispositionCode.objects.get(code="Wrong number").pk
    agent_client.post(f"/calls/{placed.pk}/wrapup/", {"disposition": wrong}, headers=HTMX)

    page = html(agent_client.get(f"/calls/{placed.pk}/panel/?edit=1", headers=HTMX))
    assert (
        "Wrapped up as “Wrong number”, so this number is marked do not call. Changing the wrap-up does not "
        "clear that: only a supervisor can, on the contact's page."
    ) in page
    assert 'id="wrapup"' in page


def test_a_group_call_answered_by_an_agent_without_a_login_stays_the_clickers(group_call, agent_user):
    Agent.objects.filter(pk=group_call.answered_by_id).update(user=None)
    group_call.refresh_from_db()

    assert group_call.is_changeable_by(group_call.created_by)
    assert group_call in Call.objects.changeable_by(group_call.created_by)
    assert not group_call.is_changeable_by(agent_user)


# --- What a review of the change found ------------------------------------------------------------------------


def test_a_call_a_supervisor_closed_says_so_in_the_panel(supervisor_client, placed):
    supervisor_client.post(f"/calls/{placed.pk}/close/", {"reason": "VCC support says the call ended at 13:40"})
    panel = html(supervisor_client.get(f"/calls/{placed.pk}/panel/", headers=HTMX))
    assert "Ended: closed by a supervisor" in panel
    assert "ended, result unknown" not in panel.lower()


def test_an_answer_from_vcc_that_was_on_its_way_never_undoes_a_close(supervisor_client, placed, sim):
    from calls.calling.following import _record_follow
    from calls.vcc import get_client

    stale = Call.objects.get(pk=placed.pk)  # the worker's copy, taken before the close
    sim.clock.advance(CONNECTED)
    with get_client() as client:
        detail = client.get_call(placed.vcc_call_id)  # VCC says: live, connected
    supervisor_client.post(f"/calls/{placed.pk}/close/", {"reason": "VCC support says the call ended at 13:40"})

    followed = _record_follow(stale, detail=detail, error=None, now=timezone.now())

    placed.refresh_from_db()
    assert (placed.state, placed.outcome) == (Call.State.ENDED, Call.Outcome.UNKNOWN)
    assert followed.call.state == Call.State.ENDED and followed.changed  # the page is told to catch up


@pytest.fixture
def closed_while_vcc_is_asked(supervisor_client, monkeypatch):
    """A supervisor closes the click as stuck while VCC is still asked to place it."""
    from calls.vcc import AsyncVCCClient

    real = AsyncVCCClient.place_call

    async def closed_while_asked(self, request):
        url = f"/calls/{(await Call.objects.aget()).pk}/close/"
        await sync_to_async(supervisor_client.post)(url, {"reason": "stuck asking VCC, says Alex"})
        return await real(self, request)

    monkeypatch.setattr(AsyncVCCClient, "place_call", closed_while_asked)


def test_vccs_answer_to_a_click_closed_while_vcc_was_asked_undoes_the_close_and_says_why(
    agent_client, contact, london, sim, closed_while_vcc_is_asked
):
    """VCC placed the call after a supervisor closed the click: a phone rings, so the call is live and followed
    again (not ended at the close's time with 0 s of talk), and its history says what happened."""
    click(agent_client, primary(contact))

    call = only_call()
    assert call.vcc_call_id in sim.calls
    assert (call.state, call.outcome, call.ended_at, call.result_reason) == (
        Call.State.LIVE, Call.Outcome.IN_PROGRESS, None, "",
    )  # fmt: skip
    assert [e.detail for e in call.events.order_by("pk")] == [
        "closed by Priya Shah: stuck asking VCC, says Alex",
        "VCC placed the call after it was closed: the close is undone, the call is followed again",
    ]
    sim.clock.advance(CONNECTED)
    poll(agent_client, call)
    sim.clock.advance(ENDED)
    poll(agent_client, call)
    call.refresh_from_db()
    assert (call.state, call.outcome) == (Call.State.ENDED, Call.Outcome.ANSWERED)
    assert call.duration_seconds > 0 and call.ended_at > call.connected_at


def test_vccs_refusal_of_a_click_closed_while_vcc_was_asked_leaves_it_closed(
    agent_client, contact, london, sim, closed_while_vcc_is_asked
):
    sim.set_fault("place_call", status=503)
    click(agent_client, primary(contact))

    call = only_call()
    assert (call.state, call.outcome, call.result_reason) == (Call.State.ENDED, Call.Outcome.UNKNOWN, CLOSED_BY_HAND)
    assert call.events.order_by("pk").last().detail == (
        "VCC answered after the call was closed: not placed (HTTP 503: Service Unavailable)"
    )


def test_a_wrap_up_given_to_a_closed_click_is_asked_again_when_vccs_answer_reopens_it(
    agent_client, supervisor_client, contact, london, sim, monkeypatch
):
    """The agent wrapped up the click a supervisor closed; VCC then placed it: the real call asks for its own wrap-up
    when it ends (the notes stay, the earlier disposition is not counted for it), and the history says so."""
    from calls.vcc import AsyncVCCClient

    real = AsyncVCCClient.place_call

    async def closed_and_wrapped_up_while_asked(self, request):
        url = f"/calls/{(await Call.objects.aget()).pk}"
        await sync_to_async(supervisor_client.post)(f"{url}/close/", {"reason": "stuck asking VCC, says Alex"})
        data = {"disposition": (await DispositionCode.objects.aget(code="Interested")).pk, "notes": "Wants chairs"}
        answer = await sync_to_async(agent_client.post)(f"{url}/wrapup/", data, headers=HTMX)
        assert answer.status_code == 200, answer.content.decode()[:3000]
        assert (await Call.objects.aget()).wrapped_up_at is not None, answer.content.decode()[:3000]
        return await real(self, request)

    monkeypatch.setattr(AsyncVCCClient, "place_call", closed_and_wrapped_up_while_asked)
    click(agent_client, primary(contact))

    call = only_call()
    assert (call.state, call.wrapped_up_at, call.disposition_code, call.notes) == (
        Call.State.LIVE, None, "", "Wants chairs",
    )  # fmt: skip
    assert call.events.order_by("pk").last().detail == (
        "VCC placed the call after it was closed: the close is undone, the call is followed again; "
        "the wrap-up given meanwhile (Interested) is asked again when it ends"
    )
    sim.clock.advance(CONNECTED)
    poll(agent_client, call)
    sim.clock.advance(ENDED)
    assert 'id="wrapup"' in html(poll(agent_client, call))
    call.refresh_from_db()
    assert call.wrap_up_due


def test_the_bar_shows_no_timer_pulse_or_recording_buttons_while_contact_is_lost(agent_client, placed, sim):
    sim.clock.advance(CONNECTED)
    poll(agent_client, placed)
    sim.set_fault("get_call", status=503)
    sim.clock.advance(10)
    poll(agent_client, placed)

    bar = html(agent_client.get("/calls/bar/", headers=HTMX))
    assert "Lost contact with VCC" in bar
    assert "data-talk-since" not in bar and 'class="pulse"' not in bar and "Pause recording" not in bar


def test_a_group_call_answered_by_ones_own_agent_holds_ones_phone(supervisor_user, agent_user, sales):
    from calls.calling.bar import holds_phone

    call = Call.objects.create(
        created_by=agent_user,  # someone else clicked it; the supervisor's own agent answered
        answered_by=supervisor_user.agent,
        to_number="+447400123456",
        state=Call.State.LIVE,
        outcome=Call.Outcome.IN_PROGRESS,
    )
    call.from_groups.set([sales])
    now = timezone.now()

    assert holds_phone(call, supervisor_user, now=now)
    assert not holds_phone(call, agent_user, now=now)
    blocking = Call.objects.blocking(
        agent_id=supervisor_user.agent.pk,
        number="+447400999999",
        user_id=supervisor_user.pk,
        since=now - timedelta(hours=2),
        request_id="00000000-0000-0000-0000-000000000001",
    )
    assert blocking == call  # a click of theirs is refused before VCC, as for a call from their own agent


def test_a_click_by_the_agent_who_answered_a_group_call_says_they_are_on_a_call(group_call, agent_user, london, sim):
    """Alex answered Priya's group call: Alex's click on another contact is refused because Alex's own phone is on
    that call, not because Priya is on a call with the number Alex clicked."""
    from calls.models import Contact, ContactPhone

    other = Contact.objects.create(name="Ada Lovelace")
    phone = ContactPhone.objects.create(contact=other, number="+447911123456", is_primary=True)
    alex = Client()
    alex.force_login(agent_user)

    response = click(alex, phone)

    assert response.status_code == 400
    assert response.content.decode() == "You are on a call now: finish it, then call again."
    assert not Call.objects.filter(created_by=agent_user).exists()
