"""The job that applies VCC's events: to the calls vccweb placed, to agents' presence, and to calls it did not place."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from calls import tasks
from calls.calling import events as applying
from calls.models import Call, CallEvent, VccEvent
from tests import _vcc_events
from tests._jobs import queued, run_jobs
from tests._sim import HTMX
from tests._vcc_events import ANSWERED, KEY, OLD_KEY, foreign, stored

pytestmark = pytest.mark.django_db

secrets, sim = _vcc_events.secrets, _vcc_events.sim  # fixtures (secrets: autouse)


# --- Events move calls ---------------------------------------------------------------------------------------------


def test_events_move_a_call_and_each_is_in_its_history(placed, sim, jobs):
    start = timezone.now() - timedelta(minutes=5)  # VCC's times: the past, as the job sees them
    stored("channel.alerted.v1", placed, at=start + timedelta(seconds=1), party="agent")
    stored("channel.alerted.v1", placed, at=start + timedelta(seconds=4), party="external")
    stored("channel.connected.v1", placed, at=start + timedelta(seconds=9), party="external")
    tasks.enqueue_event_processing()

    assert run_jobs(jobs, "process_vcc_events") == ["process_vcc_events"]
    assert [job["task_name"] for job in queued(jobs)] == ["learn_recording"]  # tests/test_vcc_events_recording.py

    placed.refresh_from_db()
    assert placed.state == Call.State.LIVE and placed.connected_at == start + timedelta(seconds=9)
    assert placed.agent_answered_at is not None
    assert placed.next_check_at >= timezone.now() + timedelta(seconds=55)  # not polled while events flow
    history = list(placed.events.values_list("detail", flat=True))
    assert history == ["VCC: ringing (webhook)", "VCC: ringing (webhook)", "VCC: connected (webhook)"]

    stored(
        "channel.disconnected.v1",
        placed,
        at=start + timedelta(seconds=69),
        party="external",
        result={"code": "Success", "party": "", "reason": ""},
    )
    tasks.process_vcc_events.func()
    placed.refresh_from_db()
    assert placed.state == Call.State.ENDED and placed.outcome == Call.Outcome.ANSWERED
    assert placed.duration_seconds == 60
    assert not VccEvent.objects.filter(processed_at__isnull=True).exists()


def test_a_call_events_say_connected_shows_connected_with_its_timer_on_the_panel_and_the_bar(placed, sim, agent_client):
    # VCC's events carry no recording status: the call is connected because channel.connected said so.
    start = timezone.now() - timedelta(seconds=20)
    stored("channel.alerted.v1", placed, at=start + timedelta(seconds=1), party="agent")
    stored("channel.alerted.v1", placed, at=start + timedelta(seconds=4), party="external")
    stored("channel.connected.v1", placed, at=start + timedelta(seconds=9), party="external")
    tasks.process_vcc_events.func()
    placed.refresh_from_db()
    assert placed.connected_at is not None and placed.recording_status not in ("Started", "Paused")

    panel = agent_client.get(f"/calls/{placed.pk}/panel/", headers=HTMX).content.decode()
    bar = agent_client.get("/calls/bar/", headers=HTMX).content.decode()

    for html in (panel, bar):
        assert "Connected" in html and "Ringing" not in html
        assert "data-talk-since" in html


def test_an_event_without_a_call_id_in_its_data_is_matched_by_its_subject(sim, placed):
    # The fields of `data` that name the call are INFERRED; the CloudEvent's subject is the call's id (vccsim's too).
    event = VccEvent.objects.create(
        event_id=str(uuid.uuid4()),
        type="channel.connected.v1",
        source="/vcc/sandbox01",
        subject=placed.vcc_call_id,
        time=timezone.now(),
        data={"party": "external"},
        received_at=timezone.now(),
    )

    assert applying.process_pending().applied == 1

    event.refresh_from_db()
    assert event.call == placed and event.result == f"applied to call {placed.pk}"
    placed.refresh_from_db()
    assert placed.connected_at is not None


def test_a_late_event_never_moves_an_ended_call_back(sim, placed):
    start = timezone.now() - timedelta(minutes=5)  # VCC's times: the past, as the job sees them
    stored("channel.connected.v1", placed, at=start + timedelta(seconds=2), party="external")
    stored("channel.disconnected.v1", placed, at=start + timedelta(seconds=5), party="external", result=ANSWERED)
    tasks.process_vcc_events.func()
    late = stored("channel.connected.v1", placed, at=start + timedelta(seconds=3), party="external")

    tasks.process_vcc_events.func()

    placed.refresh_from_db()
    assert placed.state == Call.State.ENDED and placed.ended_at == start + timedelta(seconds=5)
    late.refresh_from_db()
    assert late.processed_at and late.result.startswith("late")
    assert placed.events.filter(detail__contains="after the call ended: not applied").count() == 1


def test_events_out_of_order_in_one_batch_apply_in_vccs_order(sim, placed):
    start = timezone.now() - timedelta(minutes=5)  # VCC's times: the past, as the job sees them
    stored("channel.disconnected.v1", placed, at=start + timedelta(seconds=8), party="external", result=ANSWERED)
    stored("channel.connected.v1", placed, at=start + timedelta(seconds=2), party="external")

    tasks.process_vcc_events.func()

    placed.refresh_from_db()
    assert placed.state == Call.State.ENDED
    assert placed.connected_at == start + timedelta(seconds=2) and placed.duration_seconds == 6


def test_an_event_that_beats_the_clicks_answer_waits_then_is_kept_as_not_ours(agent_user):
    Call.objects.create(created_by=agent_user, from_agent=agent_user.agent, to_number="+447400123456")  # asking VCC
    early = VccEvent.objects.create(
        event_id="e1",
        type="channel.alerted.v1",
        source="s",
        data={"interactionId": "not-yet", "agentDisplayId": agent_user.agent.display_id},
        received_at=timezone.now(),
    )
    assert applying.process_pending().waiting == 1
    early.refresh_from_db()
    assert early.processed_at is None and early.attempts == 1

    later = timezone.now() + applying.WAIT_FOR_CLICK + timedelta(seconds=1)
    assert applying.process_pending(now=later).other == 1
    early.refresh_from_db()
    assert early.processed_at and "not placed from vccweb" in early.result
    assert not CallEvent.objects.exists() and Call.objects.count() == 1  # no agent in it: not logged


def test_an_event_found_its_call_once_the_click_is_recorded(sim, placed):
    early = stored("channel.alerted.v1", placed, at=timezone.now(), party="agent", agentDisplayId="1001")
    vcc_id = placed.vcc_call_id
    Call.objects.filter(pk=placed.pk).update(vcc_call_id="", state=Call.State.REQUESTED)  # VCC's answer not yet in
    assert applying.process_pending().waiting == 1
    Call.objects.filter(pk=placed.pk).update(vcc_call_id=vcc_id, state=Call.State.LIVE)
    assert applying.process_pending().applied == 0  # not looked at again at once: the events behind it go on
    assert applying.process_pending(now=timezone.now() + applying.LOOK_AGAIN).applied == 1
    early.refresh_from_db()
    assert early.call_id == placed.pk


def test_an_event_applied_late_is_a_change_the_report_roll_up_sees(agent_user):
    """An event applied well after VCC's time for it (VCC redelivering after our 503s, a worker down) changes its
    call now, when the roll-up's refresh looks for changes, though it ended back then."""
    from calls import reports
    from calls.models import CallRollup
    from tests._calls import local

    call = Call.objects.create(
        created_by=agent_user, from_agent=agent_user.agent, to_number="+447400123456", vcc_call_id="late-1",
        state=Call.State.LIVE, requested_at=local("2026-03-02", 23, 50), connected_at=local("2026-03-02", 23, 51),
    )  # fmt: skip
    reports.rebuild_rollup(now=local("2026-03-03", 0, 10))  # 2 March rolled up, the call still live
    reports.refresh_rollup(now=local("2026-03-03", 0, 22))
    hung_up = local("2026-03-03", 0, 15)  # before that refresh; applied 10 minutes after it happened
    stored("channel.disconnected.v1", call, at=hung_up, party="external", result=ANSWERED)

    assert applying.process_pending(now=hung_up + timedelta(minutes=10)).applied == 1

    call.refresh_from_db()
    assert call.ended_at == hung_up and call.changed_at == hung_up + timedelta(minutes=10)
    assert reports.refresh_rollup(now=local("2026-03-03", 0, 30)) == [local("2026-03-02").date()]
    outcomes = CallRollup.objects.filter(
        day=local("2026-03-02").date(), scope=CallRollup.Scope.EVERYONE, facet=CallRollup.Facet.OUTCOME
    )
    assert dict(outcomes.values_list("key", "calls")) == {Call.Outcome.ANSWERED: 1}


def test_an_event_whose_click_is_answered_while_it_is_looked_up_is_applied_to_that_click(agent_user, monkeypatch):
    clicked = Call.objects.create(created_by=agent_user, from_agent=agent_user.agent, to_number="+447400123456")
    ringing = foreign("channel.alerted", "raced-1", agent=agent_user.agent.display_id, number="+447400123456")
    real = applying._not_ours_for_sure

    def answered_meanwhile(event, *, now):
        # The click's answer commits after the event's lookup by id found nothing, and before this check runs.
        Call.objects.get(pk=clicked.pk).record_placed(
            vcc_call_id="raced-1", vcc_status="", recording_status="", latency_ms=5, now=now
        )
        return real(event, now=now)  # no click asking VCC any more: not ours, it says

    monkeypatch.setattr(applying, "_not_ours_for_sure", answered_meanwhile)

    done = applying.process_pending()

    assert (done.applied, done.failed) == (1, 0)
    ringing.refresh_from_db()
    assert ringing.call_id == clicked.pk and ringing.result == f"applied to call {clicked.pk}"
    assert Call.objects.count() == 1 and clicked.events.get().detail == "VCC: ringing (webhook)"


def test_the_first_agent_connected_on_a_group_call_answered_it_and_owns_its_wrap_up(
    supervisor_user, agent_user, other_agent_user, sales
):
    now = timezone.now()
    call = Call.objects.create(
        created_by=supervisor_user, to_number="+447400123456", vcc_call_id="group-1", state=Call.State.LIVE,
        requested_at=now - timedelta(minutes=1), changed_at=now - timedelta(minutes=1),
    )  # fmt: skip
    call.from_groups.set([sales])  # via Sales UK: no agent of its own
    start = now - timedelta(seconds=30)

    def connected(agent, seconds: int, role: str) -> None:
        party = {"role": role, "agentDisplayId": agent.display_id if role == "Agent" else None}
        stored("channel.connected.v1", call, at=start + timedelta(seconds=seconds), agentDisplayId=agent.display_id,
               party=party)  # fmt: skip

    connected(agent_user.agent, 1, "Agent")  # vccsim's shape: Alex's own phone answered
    connected(agent_user.agent, 5, "Customer")  # then the contact
    applying.process_pending()

    call.refresh_from_db()
    assert call.answered_by == agent_user.agent and call.connected_at == start + timedelta(seconds=5)
    assert call.is_changeable_by(agent_user) and call in Call.objects.changeable_by(agent_user)
    assert not call.is_changeable_by(supervisor_user) and call in Call.objects.visible_to(supervisor_user)

    connected(other_agent_user.agent, 9, "Agent")  # a later event naming another agent: Alex took the call
    assert applying.process_pending().applied == 1

    call.refresh_from_db()
    assert call.answered_by == agent_user.agent
    assert not call.is_changeable_by(other_agent_user)


def test_an_event_of_a_version_other_than_v1_is_kept_and_not_applied(sim, placed):
    # VCC sends a v0 copy of each event to a subscription that matches it (`channel.*`): its data is not v1's.
    connected = timezone.now() - timedelta(seconds=30)
    stored("channel.connected.v1", placed, at=connected, party="external")
    hang_up = stored("channel.disconnected.v0", placed, at=timezone.now())  # no party: read as v1, a hang-up
    away = VccEvent.objects.create(
        event_id="presence-v0",
        type="agent.presencechanged.v0",
        source="s",
        data={"agentDisplayId": placed.from_agent.display_id, "presence": {"category": "Away"}},
        received_at=timezone.now(),
    )

    done = applying.process_pending()

    assert (done.applied, done.other) == (1, 2)
    placed.refresh_from_db()
    assert placed.state == Call.State.LIVE and placed.last_event_at is not None  # not handed back to polling
    assert list(placed.events.values_list("detail", flat=True)) == ["VCC: connected (webhook)"]
    for ignored in (hang_up, away):
        ignored.refresh_from_db()
        assert ignored.processed_at is not None and ignored.call is None
        assert ignored.result == "version v0: vccweb applies v1 events only"
    placed.from_agent.refresh_from_db()
    assert placed.from_agent.presence != "Away"


def test_events_vccweb_does_not_use_are_marked_and_left():
    VccEvent.objects.create(event_id="x", type="agent.loggedin.v1", source="s", data={}, received_at=timezone.now())
    assert applying.process_pending().other == 1


def test_the_signing_key_setting_refuses_a_non_base64_secret_and_takes_a_short_one(monkeypatch):
    import runpy

    from django.core.exceptions import ImproperlyConfigured

    from tests.test_settings import SETTINGS

    monkeypatch.setenv("DEBUG", "true")
    monkeypatch.setenv("VCC_WEBHOOK_SECRETS", "YqABRE18Vk2zfiVVMV7uag==")  # Vonage's sample secret: 16 bytes
    assert [len(key) for key in runpy.run_path(str(SETTINGS))["VCC_WEBHOOK_KEYS"]] == [16]  # with a warning
    monkeypatch.setenv("VCC_WEBHOOK_SECRETS", f"{base64.b64encode(KEY).decode()}, not base64!")
    with pytest.raises(ImproperlyConfigured, match="secret 2 of VCC_WEBHOOK_SECRETS is not base64"):
        runpy.run_path(str(SETTINGS))
    monkeypatch.setenv("VCC_WEBHOOK_SECRETS", f"{base64.b64encode(KEY).decode()},{base64.b64encode(OLD_KEY).decode()}")
    assert runpy.run_path(str(SETTINGS))["VCC_WEBHOOK_KEYS"] == [KEY, OLD_KEY]


# --- Agents' presence ----------------------------------------------------------------------------------------------


def presence_event(display_id: str, category: str, *, at: datetime, description: str = "") -> VccEvent:
    return VccEvent.objects.create(
        event_id=str(uuid.uuid4()),
        type="agent.presencechanged.v1",
        source="/vcc/sandbox01",
        time=at,
        data={
            "agentDisplayId": display_id,
            "presence": {"category": {"categoryType": category}, "description": description},
        },
        received_at=timezone.now(),
    )


def test_presence_events_keep_each_agents_presence_and_never_go_back(agent_user):
    agent = agent_user.agent
    now = timezone.now()
    presence_event(agent.display_id, "Away", at=now - timedelta(seconds=10), description="Lunch")
    assert applying.process_pending().applied == 1
    late = presence_event(agent.display_id, "Ready", at=now - timedelta(seconds=30))  # older, delivered later

    assert applying.process_pending().other == 1

    late.refresh_from_db()
    assert late.result == f"late: agent {agent.display_id} has a newer presence"

    agent.refresh_from_db()
    assert (agent.presence, agent.presence_detail) == ("Away", "Lunch")
    assert agent.presence_since == now - timedelta(seconds=10)


def test_presence_events_keep_vccs_order_when_its_clock_is_ahead_of_ours(agent_user):
    """VCC's clock 20 s ahead (within the signature's leeway): its times were cut to when each was applied, so an
    older presence delivered again after a newer one had its later time, and replaced it."""
    agent = agent_user.agent
    ours = timezone.now()
    ahead = ours + timedelta(seconds=20)  # VCC's clock when ours says `ours`
    presence_event(agent.display_id, "Away", at=ahead + timedelta(seconds=2), description="Lunch")
    assert applying.process_pending(now=ours + timedelta(seconds=3)).applied == 1
    presence_event(agent.display_id, "Ready", at=ahead + timedelta(seconds=1))  # older, delivered again later

    assert applying.process_pending(now=ours + timedelta(seconds=6)).other == 1

    agent.refresh_from_db()
    assert agent.presence == "Away"


def test_while_events_flow_readiness_comes_from_presence_without_asking_vcc(agent_user, agent_client, sim):
    from asgiref.sync import async_to_sync

    from calls import calling
    from calls.models import AgentGroup

    agent = agent_user.agent
    group = AgentGroup.objects.create(display_id="030", name="Sales")
    group.members.add(agent)
    presence_event(agent.display_id, "Ready", at=timezone.now())
    applying.process_pending()
    sim.set_fault("agents", status=500)  # VCC is not asked: this would say "unknown"

    ready, error = async_to_sync(calling.ready_agent_ids)()
    assert (ready, error) == ({agent.display_id}, "")
    assert async_to_sync(calling.readiness)(agent=agent, groups=[group]).groups == {group.pk: 1}

    presence_event(agent.display_id, "Away", at=timezone.now())
    applying.process_pending()
    from django.core.cache import cache

    cache.clear()
    assert async_to_sync(calling.ready_agent_ids)()[0] == set()


def test_an_agent_on_a_live_call_is_not_counted_ready(sim, placed):
    from calls.calling.ready import ready_by_presence

    agent = placed.from_agent
    presence_event(agent.display_id, "Ready", at=timezone.now())
    applying.process_pending()
    assert ready_by_presence() == set()


# --- Calls vccweb did not place ------------------------------------------------------------------------------------


def test_a_call_an_agent_dialled_from_their_phone_is_logged_against_the_contact(agent_user, contact, supervisor_client):
    from calls.models import Contact, ContactPhone

    number = contact.phones.first().number
    twin = Contact.objects.create(name="Same Number Ltd")
    ContactPhone.objects.create(contact=twin, number=number)
    start = timezone.now() - timedelta(minutes=2)
    foreign("channel.connected", "ext-1", agent=agent_user.agent.display_id, number=number, at=start)
    foreign(
        "channel.disconnected", "ext-1", agent=agent_user.agent.display_id, number=number,
        at=start + timedelta(seconds=30), result={"code": "Success", "party": "Destination", "reason": "Answered"},
    )  # fmt: skip

    applying.process_pending()

    call = Call.objects.get(vcc_call_id="ext-1")
    assert call.origin == Call.Origin.AGENT_PHONE and call.from_agent == agent_user.agent
    assert call.contact == contact and call.also_matches == 1
    assert [what for _, what, _ in call.history()][:2] == ["VCC's events told of it", "Connected"]
    assert call.state == Call.State.ENDED and call.duration_seconds == 30
    page = supervisor_client.get(f"/calls/{call.pk}/").content.decode()
    assert "not from vccweb: logged from VCC's events" in page and "also matches 1 other contact" in page
    assert "Dialled from the agent&#x27;s phone, not from vccweb" in supervisor_client.get("/calls/").content.decode()


def test_an_inbound_call_to_a_known_agent_is_logged_from_the_caller(agent_user, contact):
    number = contact.phones.first().number
    foreign("channel.alerted", "in-1", agent=agent_user.agent.display_id, number=number, direction="Inbound")
    applying.process_pending()
    call = Call.objects.get(vcc_call_id="in-1")
    assert (call.origin, call.contact, call.to_number) == (Call.Origin.INBOUND, contact, number)


def test_an_inbound_call_talks_once_the_agent_answers_not_when_vcc_queues_the_caller(agent_user, contact, jobs):
    """VCC answers an inbound caller to queue them, then rings the agent: that `connected` of the caller's channel
    showed "Connected" with a talk timer while the agent's phone rang, and a missed call was logged with its
    ringing as talk time and asked for a sales wrap-up."""
    number, agent = contact.phones.first().number, agent_user.agent.display_id
    start = timezone.now() - timedelta(minutes=5)
    own = {"role": "Agent", "agentDisplayId": agent}

    def inbound(guid: str, type_: str, seconds: int, **extra) -> None:
        at = start + timedelta(seconds=seconds)
        foreign(type_, guid, agent=agent, number=number, direction="Inbound", at=at, **extra)

    inbound("in-1", "channel.connected", 0)  # the caller's channel: VCC answered and queued them
    inbound("in-1", "channel.alerted", 0, party=own)
    applying.process_pending()
    call = Call.objects.get(vcc_call_id="in-1")
    assert call.state == Call.State.LIVE and call.connected_at is None and not queued(jobs)

    inbound("in-1", "channel.connected", 20, party=own)  # the agent answers
    applying.process_pending()
    call.refresh_from_db()
    assert call.connected_at == start + timedelta(seconds=20)

    missed = {"code": "Failure", "party": "Destination", "reason": "NoAnswer"}
    inbound("in-2", "channel.connected", 0)
    inbound("in-2", "channel.disconnected", 25, party=own, result=missed)
    applying.process_pending()
    call = Call.objects.get(vcc_call_id="in-2")
    assert call.state == Call.State.ENDED and call.talk_seconds is None and not call.asks_sales_wrap_up


def test_a_call_not_placed_here_logged_late_began_at_vccs_time_and_changed_when_logged(agent_user):
    now = timezone.now()
    rang = now - timedelta(minutes=10)
    foreign("channel.alerted", "late-2", agent=agent_user.agent.display_id, number="+447400123456", at=rang)

    applying.process_pending(now=now)

    call = Call.objects.get(vcc_call_id="late-2")
    assert (call.requested_at, call.changed_at) == (rang, now)  # the roll-up sees it (calls/reports.py)


def test_a_call_of_an_agent_vccweb_does_not_know_is_not_logged():
    foreign("channel.connected", "x-1", agent="9999", number="+447400123456")
    applying.process_pending()
    assert not Call.objects.exists()
    assert "not placed from vccweb" in VccEvent.objects.get().result


def test_while_a_click_waits_for_vcc_an_unknown_id_waits_too(agent_user):
    Call.objects.create(created_by=agent_user, from_agent=agent_user.agent, to_number="+447400123456")  # asking VCC
    foreign("channel.alerted", "maybe-ours", agent=agent_user.agent.display_id, number="+447400123456")
    assert applying.process_pending().waiting == 1
    assert Call.objects.count() == 1


def test_a_call_named_only_by_the_events_subject_is_never_logged_as_one_not_placed_here(agent_user, contact):
    """The subject is the call's id in vccsim; in VCC that is not documented. It may match a call of vccweb's, but an
    event whose data names no call is never taken for a call dialled from an agent's phone."""
    event = foreign("channel.alerted", "", agent=agent_user.agent.display_id, number=contact.phones.first().number)
    VccEvent.objects.filter(pk=event.pk).update(subject="not-a-call-id", data=event.data | {"interactionId": None})
    later = timezone.now() + applying.WAIT_FOR_CLICK + timedelta(seconds=1)

    applying.process_pending(now=later)

    event.refresh_from_db()
    assert event.processed_at is not None and not Call.objects.exists()
    assert event.result == "no call of vccweb's has this id: not placed from vccweb"


def test_a_connection_told_after_the_end_it_came_before_gives_the_call_its_talk_time(sim, placed):
    """VCC delivering `connected` again (our 503 under load) after the `disconnected` behind it got through."""
    start = timezone.now() - timedelta(minutes=5)  # VCC's times: the past, as the job sees them
    stored("channel.disconnected.v1", placed, at=start + timedelta(seconds=8), party="external", result=ANSWERED)
    tasks.process_vcc_events.func()
    late = stored("channel.connected.v1", placed, at=start + timedelta(seconds=2), party="external")

    assert applying.process_pending().applied == 1

    placed.refresh_from_db()
    assert placed.state == Call.State.ENDED and placed.ended_at == start + timedelta(seconds=8)
    assert placed.connected_at == start + timedelta(seconds=2) and placed.talk_seconds == 6
    assert placed.changed_at > start + timedelta(minutes=1)  # the roll-up counts its talk time again
    late.refresh_from_db()
    assert late.result == f"applied to call {placed.pk}, after its end"


def test_vccs_time_of_a_connection_replaces_a_polls_later_one(sim, placed):
    """Events held up for a minute (VCC behind, our receiver refusing): polling took over, and its first look after
    the recording started counted the call connected then; the events, once come, did not move it, and a minute's
    talk was logged as six seconds."""
    start = timezone.now() - timedelta(minutes=5)
    Call.objects.filter(pk=placed.pk).update(connected_at=start + timedelta(seconds=61))  # a poll noticed it then
    stored("channel.connected.v1", placed, at=start + timedelta(seconds=8), party="external")
    stored("channel.disconnected.v1", placed, at=start + timedelta(seconds=68), party="external", result=ANSWERED)

    assert applying.process_pending().applied == 2

    placed.refresh_from_db()
    assert placed.connected_at == start + timedelta(seconds=8) and placed.talk_seconds == 60

    # Ended by polls too, the connection told after the end gives the talk time all the same.
    Call.objects.filter(pk=placed.pk).update(connected_at=start + timedelta(seconds=61), duration_seconds=7)
    stored("channel.connected.v1", placed, at=start + timedelta(seconds=8), party="external")
    assert applying.process_pending().applied == 1
    placed.refresh_from_db()
    assert placed.connected_at == start + timedelta(seconds=8) and placed.talk_seconds == 60
