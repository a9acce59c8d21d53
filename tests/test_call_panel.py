"""The live call panel (call_panel), recording pause/resume (call_recording) and the wrap-up (call_wrapup)."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.utils import timezone

from calls.models import Call, Contact, ContactPhone, DispositionCode
from calls.privacy import mask_number
from calls.rules import Refused
from tests._sim import HTMX, click, fresh_simulator, poll, primary, shown

pytestmark = pytest.mark.django_db

RINGING = 4  # clock seconds after placing: the agent's phone rings for 3 s, then the number for 5 s
CONNECTED = 9
ENDED = 70  # the default outcome talks for 60 s


@pytest.fixture(autouse=True)
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


@pytest.fixture
def connected(agent_client, placed, sim) -> Call:
    sim.clock.advance(CONNECTED)
    poll(agent_client, placed)
    placed.refresh_from_db()
    assert placed.connected_at is not None
    return placed


@pytest.fixture
def ended(agent_client, placed, sim) -> Call:
    sim.clock.advance(ENDED)
    poll(agent_client, placed)
    placed.refresh_from_db()
    assert placed.state == Call.State.ENDED
    return placed


def html(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


def polls(response) -> bool:
    return 'hx-trigger="every' in html(response)


def changed(response) -> bool:
    return "calls-changed" in response.headers.get("HX-Trigger", "")


def recording(client, call: Call, value: str):
    return client.post(f"/calls/{call.pk}/recording/", {"recording": value}, headers=HTMX)


def wrapup(client, call: Call, code: str | None, notes: str = ""):
    disposition = DispositionCode.objects.get(code=code).pk if code else ""
    return client.post(f"/calls/{call.pk}/wrapup/", {"disposition": disposition, "notes": notes}, headers=HTMX)


# --- Following the call -------------------------------------------------------------------------------


def test_it_shows_the_agents_phone_ringing_then_the_contacts(agent_client, placed, sim):
    sim.clock.advance(1)  # the agent's phone rings for 3 s
    assert shown(poll(agent_client, placed), "Ringing your phone…")
    sim.clock.advance(RINGING - 1)

    response = poll(agent_client, placed)

    placed.refresh_from_db()
    assert placed.state == Call.State.LIVE
    assert placed.vcc_status == "Active"
    assert placed.recording_status == "Stopped"
    assert placed.connected_at is None
    assert placed.agent_answered_at is not None
    assert 'data-call-state="live"' in html(response)
    assert shown(response, "Ringing…")
    assert "Ringing your phone" not in html(response)
    assert "data-talk-since" not in html(response)
    assert polls(response)


def test_it_shows_the_call_connected_with_a_pause_button(agent_client, placed, sim):
    sim.clock.advance(CONNECTED)

    response = poll(agent_client, placed)

    placed.refresh_from_db()
    assert placed.recording_status == "Started"
    assert placed.connected_at is not None
    assert shown(response, "Connected")
    assert 'value="Paused"' in html(response)
    assert polls(response)


def test_it_shows_the_result_and_the_wrapup_form_when_the_call_ends(agent_client, connected, sim):
    sim.clock.advance(ENDED - CONNECTED)  # the app's clock moves with the simulator's

    response = poll(agent_client, connected)

    call = Call.objects.get(pk=connected.pk)
    assert call.state == Call.State.ENDED
    assert (call.result_code, call.result_party, call.result_reason) == ("Success", "Destination", "Answered")
    assert call.vcc_status == ""
    assert call.recording_status == ""
    assert call.ended_at is not None
    assert call.duration_seconds == ENDED - CONNECTED
    assert 'data-call-state="ended"' in html(response)
    assert 'id="wrapup"' in html(response)
    assert "hx-trigger" not in html(response)
    assert changed(response)


@pytest.mark.parametrize(
    ("outcome", "phase"),
    [
        ("no_answer", "Call ended: not answered by the contact"),
        ("busy", "Call ended: line busy"),
        ("failed", "Call ended: failed"),
        ("agent_no_answer", "Call ended: not answered by the agent"),
    ],
)
def test_it_says_why_an_unanswered_call_ended(agent_client, contact, london, sim, outcome, phase):
    sim.force_next_outcome(outcome)
    click(agent_client, primary(contact))
    call = Call.objects.get()
    sim.clock.advance(40)

    response = poll(agent_client, call)

    call.refresh_from_db()
    assert call.state == Call.State.ENDED
    assert call.result_code == "Failure"
    assert call.duration_seconds == 0
    assert shown(response, phase)


def test_an_ended_call_is_not_asked_about_again(agent_client, ended, sim):
    sim.set_fault("get_call", status=500)

    response = poll(agent_client, ended)

    assert 'data-call-state="ended"' in html(response)
    assert not changed(response)
    assert "get_call" in sim.faults.rules  # the fault was never used up: VCC was not asked


def test_it_keeps_the_call_live_and_says_so_when_vcc_cannot_be_asked(agent_client, placed, sim):
    sim.set_fault("get_call", status=503)

    response = poll(agent_client, placed)

    placed.refresh_from_db()
    assert placed.state == Call.State.LIVE
    assert "get the latest status from VCC: VCC is having a problem" in html(response)
    assert polls(response)


def test_it_closes_a_call_vcc_no_longer_has(agent_client, placed, sim):
    sim.clock.advance(ENDED + 24 * 3600)  # VCC keeps an ended call for 24 hours

    response = poll(agent_client, placed)

    placed.refresh_from_db()
    assert placed.state == Call.State.ENDED
    assert placed.outcome == Call.Outcome.GONE
    assert placed.result_reason == "VCC no longer knows this call"
    assert "Ended: VCC no longer knows this call (last seen " in html(response)
    assert changed(response)


def test_the_panel_asks_vcc_at_most_every_couple_of_seconds(agent_client, placed, sim):
    sim.clock.advance(CONNECTED)
    poll(agent_client, placed)
    sim.set_fault("get_call", status=500, count=1)
    sim.clock.advance(1)

    response = agent_client.get(f"/calls/{placed.pk}/panel/", headers=HTMX)  # a second poll a second later

    assert "get_call" in sim.faults.rules  # the fault was never used up: VCC was not asked
    assert polls(response)
    sim.clock.advance(1)
    agent_client.get(f"/calls/{placed.pk}/panel/", headers=HTMX)  # two seconds on: VCC is asked again
    assert "get_call" not in sim.faults.rules


def test_another_agent_cannot_see_the_panel(client, other_agent_user, placed):
    client.force_login(other_agent_user)

    assert client.get(f"/calls/{placed.pk}/panel/", headers=HTMX).status_code == 404


def test_a_supervisor_can_follow_an_agents_call(supervisor_client, placed, sim):
    sim.clock.advance(CONNECTED)

    response = poll(supervisor_client, placed)

    assert shown(response, "Connected")
    placed.refresh_from_db()
    assert placed.connected_at is not None


@pytest.mark.parametrize("action", ["panel", "recording", "wrapup"])
def test_the_call_views_send_anonymous_users_to_login(agent_client, placed, action):
    agent_client.logout()
    send = agent_client.get if action == "panel" else agent_client.post

    response = send(f"/calls/{placed.pk}/{action}/")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize(("method", "action"), [("post", "panel"), ("get", "recording"), ("get", "wrapup")])
def test_the_call_views_reject_the_wrong_method(agent_client, placed, method, action):
    assert getattr(agent_client, method)(f"/calls/{placed.pk}/{action}/").status_code == 405


# --- Recording -----------------------------------------------------------------------------------------


def test_it_pauses_and_resumes_the_recording(agent_client, connected, sim):
    response = recording(agent_client, connected, "Paused")

    connected.refresh_from_db()
    assert connected.recording_status == "Paused"
    assert 'value="Started"' in html(response)  # the resume button
    sim.clock.advance(1)  # VCC applies it asynchronously
    assert sim.calls[connected.vcc_call_id].recording_status(sim.now()) == "Paused"

    response = recording(agent_client, connected, "Started")

    connected.refresh_from_db()
    assert connected.recording_status == "Started"
    assert 'value="Paused"' in html(response)
    sim.clock.advance(1)
    assert sim.calls[connected.vcc_call_id].recording_status(sim.now()) == "Started"


def test_a_paused_recording_shows_on_the_next_poll(agent_client, connected, sim):
    recording(agent_client, connected, "Paused")
    sim.clock.advance(1)

    response = poll(agent_client, connected)

    connected.refresh_from_db()
    assert connected.recording_status == "Paused"
    assert shown(response, "Connected")


def test_it_refuses_to_change_the_recording_of_a_call_that_is_not_live(agent_client, ended):
    response = recording(agent_client, ended, "Paused")

    assert shown(response, "The call is not live, so its recording cannot change.")
    ended.refresh_from_db()
    assert ended.recording_status == ""


def test_it_shows_vccs_refusal_to_change_the_recording(agent_client, connected, sim):
    sim.clock.advance(ENDED)  # VCC has ended the call; our row has not heard yet

    response = recording(agent_client, connected, "Paused")

    assert shown(response, "VCC refused the request: Unable to control recording - call is not active")
    connected.refresh_from_db()
    assert connected.recording_status == "Started"


def test_it_shows_a_vcc_failure_to_change_the_recording(agent_client, connected, sim):
    sim.set_fault("recording", status=503)

    response = recording(agent_client, connected, "Paused")

    assert shown(response, "VCC is having a problem; try again in a moment.")
    connected.refresh_from_db()
    assert connected.recording_status == "Started"


@pytest.mark.parametrize("value", ["", "Stopped", "paused"])
def test_it_refuses_a_recording_value_it_does_not_know(agent_client, connected, value):
    response = recording(agent_client, connected, value)

    assert shown(response, "Choose to pause or resume the recording.")
    connected.refresh_from_db()
    assert connected.recording_status == "Started"


def test_another_agent_cannot_change_the_recording(client, other_agent_user, connected):
    client.force_login(other_agent_user)

    assert recording(client, connected, "Paused").status_code == 404


# --- Wrap-up -------------------------------------------------------------------------------------------


def test_it_stores_the_wrapup_and_sends_the_disposition_to_vcc(agent_client, ended, sim):
    response = wrapup(agent_client, ended, "Interested", "  Wants a quote for six chairs  ")

    ended.refresh_from_db()
    assert ended.disposition_code == "Interested"
    assert ended.notes == "Wants a quote for six chairs"
    assert ended.wrapped_up_at is not None
    assert sim.calls[ended.vcc_call_id].disposition_code == "Interested"
    assert shown(response, "Wrapped up: ")
    assert 'id="wrapup"' not in html(response)
    assert changed(response)


def test_a_wrap_up_form_drawn_before_the_call_was_wrapped_up_elsewhere_changes_nothing(agent_client, ended, sim):
    """Another tab's bar still asks "How did it go?" for a call wrapped up on the contact's page meanwhile."""
    assert 'name="first" value="1"' in agent_client.get("/calls/bar/").content.decode()
    wrapup(agent_client, ended, "Interested", "Wants a quote for six chairs")
    not_interested = DispositionCode.objects.get(code="Not interested").pk

    stale = agent_client.post(
        f"/calls/{ended.pk}/wrapup/",
        {"disposition": not_interested, "notes": "", "from_bar": "1", "first": "1"},
        headers=HTMX,
    )

    ended.refresh_from_db()
    assert ended.disposition_code == "Interested" and ended.notes == "Wants a quote for six chairs"
    assert sim.calls[ended.vcc_call_id].disposition_code == "Interested"
    assert stale.status_code == 400 and stale["Content-Type"].startswith("text/plain")
    assert stale.content.decode().startswith("This call was wrapped up meanwhile, as “Interested”: nothing was")
    assert "calls-changed" in stale.headers.get("HX-Trigger", "")  # the stale bar reloads
    assert 'name="first"' not in html(agent_client.get(f"/calls/{ended.pk}/panel/?edit=1", headers=HTMX))


def test_two_first_wrap_ups_at_once_reach_vcc_and_the_row_once(agent_client, ended, sim):
    """The bar's Save and the panel's, sent within one VCC round trip: the one that holds the call goes on; the
    other is refused before VCC is told, as is one that finds the call wrapped up once it holds it."""
    from asgiref.sync import async_to_sync

    from calls import locks
    from calls.calling import recording

    not_interested = DispositionCode.objects.get(code="Not interested")
    first = {"disposition": not_interested.pk, "notes": "from the bar", "from_bar": "1", "first": "1"}
    assert locks.acquire_dial_lock(f"wrap-up:{ended.pk}", owner="the panel's Save", seconds=120)  # under way

    refused = agent_client.post(f"/calls/{ended.pk}/wrapup/", first, headers=HTMX)

    assert refused.status_code == 400
    assert refused.content.decode().startswith("This call is being wrapped up in another tab or window")
    assert sim.calls[ended.vcc_call_id].disposition_code is None  # VCC was not told
    ended.refresh_from_db()
    assert ended.wrapped_up_at is None and ended.notes == ""
    locks.release_dial_lock(f"wrap-up:{ended.pk}", owner="the panel's Save")
    # The panel's Save wrote "Interested" after the bar's request had read the call, before it took the call:
    stale = Call.objects.get(pk=ended.pk)
    Call.objects.filter(pk=ended.pk).update(wrapped_up_at=timezone.now(), disposition_code="Interested", notes="panel")
    with pytest.raises(Refused, match="wrapped up meanwhile, as “Interested”: nothing was changed"):
        async_to_sync(recording.wrap_up)(call=stale, disposition=not_interested, notes="bar", first=True)
    assert sim.calls[ended.vcc_call_id].disposition_code is None  # still not told
    ended.refresh_from_db()
    assert (ended.disposition_code, ended.notes) == ("Interested", "panel")
    assert locks.acquire_dial_lock(f"wrap-up:{ended.pk}", owner="next", seconds=1)  # the refused one let go
    # One that holds the call but finds it written by a writer that holds nothing (the API), once VCC was told:
    with pytest.raises(Refused, match="as “Interested”, which vccweb keeps; VCC was told “Not interested” after it"):
        recording._store_wrap_up(ended, disposition=not_interested, notes="late", now=timezone.now(), confirmed=True,
                                 first=True)  # fmt: skip


def test_wrong_number_marks_the_number_do_not_call(agent_client, ended, contact):
    response = wrapup(agent_client, ended, "Wrong number")

    assert ContactPhone.objects.get(pk=ended.phone_id).do_not_call
    assert not ContactPhone.objects.exclude(pk=ended.phone_id).filter(do_not_call=True).exists()
    contact.refresh_from_db()
    assert not contact.do_not_call
    assert shown(response, "07400 123456 is now marked do not call.")


def test_wrong_number_leaves_the_number_corrected_since_the_call_callable(agent_client, ended, contact):
    """The agent put the right number in place of the one dialled, then wrapped up as "Wrong number"."""
    ContactPhone.objects.filter(pk=ended.phone_id).update(number="+447400654321")

    response = wrapup(agent_client, ended, "Wrong number")

    assert not ContactPhone.objects.filter(do_not_call=True).exists()
    assert shown(response, "Nothing was marked do not call: 07400 123456 was changed on the contact since this call.")
    ended.refresh_from_db()
    assert ended.disposition_code == "Wrong number"


def test_wrong_number_on_a_call_whose_number_was_masked_says_nothing_was_marked(agent_client, ended, contact):
    """Retention masks an old call's number and drops its link to the contact's number: a late wrap-up says so."""
    Call.objects.filter(pk=ended.pk).update(to_number=mask_number(ended.to_number), phone=None)

    response = wrapup(agent_client, ended, "Wrong number")

    assert not ContactPhone.objects.filter(do_not_call=True).exists()
    assert shown(response, "Nothing was marked do not call: this call's number has been masked")


def test_do_not_call_marks_the_contact_do_not_call(agent_client, ended, contact):
    response = wrapup(agent_client, ended, "Do not call")

    contact.refresh_from_db()
    assert contact.do_not_call
    assert shown(response, "Grace Hopper is now marked do not call.")


def test_a_vcc_failure_keeps_the_notes_and_does_not_mark_the_call_wrapped(agent_client, ended, contact, sim):
    sim.set_fault("disposition", status=500)

    response = wrapup(agent_client, ended, "Wrong number", "They were very cross")

    ended.refresh_from_db()
    assert ended.notes == "They were very cross"
    assert ended.disposition_code == ""
    assert ended.wrapped_up_at is None
    assert ContactPhone.objects.get(pk=ended.phone_id).do_not_call  # the opt-out does not wait for VCC
    assert shown(response, "Your notes are saved; send the outcome again. 07400 123456 is now marked do not call.")
    assert "They were very cross</textarea>" in html(response)
    chosen = DispositionCode.objects.get(code="Wrong number").pk
    assert f'value="{chosen}" selected' in html(response)
    assert not changed(response)


def test_do_not_call_on_a_call_whose_contact_was_deleted_keeps_the_numbers_opt_out(agent_client, ended, contact):
    """Grace's contact was deleted while Alex was on the call with her; she asked never to be called again."""
    contact.delete()

    response = wrapup(agent_client, ended, "Do not call")

    assert shown(response, "07400 123456 is kept as do not call: this call's contact was deleted since.")
    readded = Contact.objects.create(name="Grace Hopper")
    assert ContactPhone.objects.create(contact=readded, number="+447400123456").do_not_call  # as soon as added


@pytest.mark.parametrize("fault", [{"status": 500}, {"status": 429}])
def test_do_not_call_marks_the_contact_at_once_whatever_vcc_answers(agent_client, ended, contact, sim, fault):
    """Asked not to be called again, the agent wraps up as "Do not call" while VCC fails or limits the account:
    nobody may call them meanwhile, whether or not the agent sends the outcome again."""
    sim.set_fault("disposition", **fault)

    response = wrapup(agent_client, ended, "Do not call", "Asked us never to call again")

    contact.refresh_from_db()
    assert contact.do_not_call
    assert shown(response, "Grace Hopper is now marked do not call.")
    ended.refresh_from_db()
    assert ended.wrapped_up_at is None and ended.notes == "Asked us never to call again"  # VCC still to be told


def test_a_call_vcc_no_longer_has_can_still_be_wrapped_up(agent_client, placed, sim):
    sim.clock.advance(ENDED + 24 * 3600)  # nobody watched it end, and VCC has forgotten it
    poll(agent_client, placed)

    response = wrapup(agent_client, placed, "Interested", "Spoke yesterday")

    placed.refresh_from_db()
    assert placed.result_reason == "VCC no longer knows this call"
    assert placed.notes == "Spoke yesterday"
    assert placed.disposition_code == "Interested"
    assert placed.wrapped_up_at is not None
    assert shown(response, "Wrapped up: ")


def test_it_refuses_to_wrap_up_a_call_that_has_not_ended(agent_client, placed, sim):
    response = wrapup(agent_client, placed, "Interested", "too early")

    placed.refresh_from_db()
    assert shown(response, "Wrap up once the call has ended.")
    assert placed.wrapped_up_at is None
    assert placed.notes == ""
    assert sim.calls[placed.vcc_call_id].disposition_code is None


@pytest.mark.parametrize("disposition", ["", "abc", "999999"])
def test_it_asks_for_a_disposition(agent_client, ended, disposition):
    response = agent_client.post(f"/calls/{ended.pk}/wrapup/", {"disposition": disposition}, headers=HTMX)

    assert shown(response, "Choose how the call went.")
    ended.refresh_from_db()
    assert ended.wrapped_up_at is None


def test_an_inactive_disposition_is_refused(agent_client, ended):
    DispositionCode.objects.filter(code="Interested").update(is_active=False)

    assert shown(wrapup(agent_client, ended, "Interested"), "Choose how the call went.")


def test_another_agent_cannot_wrap_up_the_call(client, other_agent_user, ended):
    client.force_login(other_agent_user)

    assert wrapup(client, ended, "Interested").status_code == 404
    ended.refresh_from_db()
    assert ended.wrapped_up_at is None


def test_a_supervisor_sees_an_agents_call_but_cannot_change_it(supervisor_user, connected, sim):
    supervisor = Client()
    supervisor.force_login(supervisor_user)
    panel = supervisor.get(f"/calls/{connected.pk}/panel/", headers=HTMX)
    assert panel.status_code == 200
    assert "Connected" in html(panel)
    assert "Pause recording" not in html(panel)
    assert recording(supervisor, connected, "Paused").status_code == 404
    connected.refresh_from_db()
    assert connected.recording_status == "Started"


# --- Malformed input, and wrap-ups edited later ------------------------------------------------------------


@pytest.mark.parametrize("disposition", ["²", "1.5", "-1", "x" * 200])
def test_a_malformed_disposition_is_a_message_not_a_500(agent_client, ended, sim, disposition):
    response = agent_client.post(
        f"/calls/{ended.pk}/wrapup/", {"disposition": disposition, "notes": "kept"}, headers=HTMX
    )

    assert response.status_code == 400
    assert response["X-Form-Errors"] == "1"  # htmx swaps the panel in (static/js/app.js)
    assert shown(response, "Choose how the call went.")
    assert "kept</textarea>" in response.content.decode()
    assert sim.calls[ended.vcc_call_id].disposition_code is None


def test_a_nul_in_the_notes_is_refused_before_vcc_and_the_notes_come_back(agent_client, ended, sim):
    interested = DispositionCode.objects.get(code="Interested").pk

    response = agent_client.post(
        f"/calls/{ended.pk}/wrapup/", {"disposition": interested, "notes": "They said\x00yes"}, headers=HTMX
    )

    assert response.status_code == 400
    assert shown(response, "Null characters are not allowed.")
    assert "They saidyes</textarea>" in response.content.decode()  # as typed, less the character nobody can store
    assert sim.calls[ended.vcc_call_id].disposition_code is None  # VCC was not told before the notes were safe
    ended.refresh_from_db()
    assert ended.wrapped_up_at is None


def test_a_wrap_up_can_be_opened_again_and_edited(agent_client, ended, sim):
    wrapup(agent_client, ended, "Interested", "first thoughts")

    form = agent_client.get(f"/calls/{ended.pk}/panel/?edit=1", headers=HTMX)
    assert 'id="wrapup"' in html(form)
    assert "first thoughts</textarea>" in html(form)
    wrapup(agent_client, ended, "Call back later", "second thoughts")

    ended.refresh_from_db()
    assert ended.disposition_code == "Call back later"
    assert ended.notes == "second thoughts"
    assert sim.calls[ended.vcc_call_id].disposition_code == "Call back later"
    assert [e.detail for e in ended.events.filter(kind="wrap_up")] == ["Interested", "Call back later"]


def test_someone_elses_wrap_up_cannot_be_opened_for_editing(supervisor_client, agent_client, ended, sim):
    wrapup(agent_client, ended, "Interested", "mine")

    assert 'id="wrapup"' not in html(supervisor_client.get(f"/calls/{ended.pk}/panel/?edit=1", headers=HTMX))


@pytest.mark.parametrize("value", ["²", "Stopped", ""])
def test_a_malformed_recording_change_is_a_message(agent_client, connected, sim, value):
    response = recording(agent_client, connected, value)

    assert response.status_code == 400

    assert shown(response, "Choose to pause or resume the recording.")


def test_a_refusal_of_a_change_made_from_the_bar_is_told_to_the_whole_page(agent_client, connected, sim):
    """The bar's forms swap nothing in, and a poll may replace them before the answer comes: what VCC refused is
    sent as an event on the body (app.js puts it in the message box), not only in the panel's HTML."""
    sim.set_fault("recording", status=503)

    from_bar = agent_client.post(
        f"/calls/{connected.pk}/recording/", {"recording": "Paused", "from_bar": "1"}, headers=HTMX
    )
    sim.set_fault("recording", status=503)
    from_panel = recording(agent_client, connected, "Paused")

    told = json.loads(from_bar["HX-Trigger"])["bar-refused"]
    assert told == {"message": "VCC is having a problem; try again in a moment.", "target": "body"}
    assert "bar-refused" not in from_panel.headers.get("HX-Trigger", "")  # the panel shows it in place
