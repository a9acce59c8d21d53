"""POST /vcc/events/ (VCC's Webhooks API) and the job that applies the events to calls: the signature and its
refusals, limits, redeliveries, order, matching, and polling stepping aside while events flow."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from django.test import Client
from django.utils import timezone

from calls import tasks
from calls.calling import events as applying
from calls.calling.events import refused_last_hour
from calls.models import Call, CallEvent, VccEvent
from tests._jobs import queued, run_jobs
from tests._sim import fresh_simulator

pytestmark = pytest.mark.django_db

KEY = b"k" * 32
OLD_KEY = b"o" * 40
URL = "/vcc/events/"
CE = "application/cloudevents+json"
ANSWERED = {"code": "Success", "party": "Destination", "reason": "Answered"}  # V0's call detail `result`


@pytest.fixture(autouse=True)
def secrets(settings):
    settings.VCC_WEBHOOK_KEYS = [KEY]


@pytest.fixture
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


def event(type_: str = "channel.connected.v1", **data) -> dict:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/vcc/sandbox01",
        "type": type_,
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": data,
    }


def sign(body: bytes, key: bytes = KEY, **claims) -> str:
    token = jwt.encode({"payload_hash": hashlib.sha256(body).hexdigest(), **claims}, key, algorithm="HS256")
    return f"Bearer {token}"


def deliver(payload, *, key: bytes = KEY, signature: str | None = None, content_type: str = CE, client=None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Vonage-Signature": signature if signature is not None else sign(body, key)}
    return (client or Client()).post(URL, body, content_type=content_type, headers=headers)


# --- The signature --------------------------------------------------------------------------------------------


def test_a_signed_event_is_stored_acknowledged_and_queued(jobs):
    one = event(interactionId="abc")

    response = deliver(one)

    assert response.status_code == 200 and response.json() == {"received": 1}
    stored = VccEvent.objects.get()
    assert (stored.event_id, stored.type, stored.data) == (one["id"], "channel.connected.v1", {"interactionId": "abc"})
    assert stored.processed_at is None  # applied by the job, not in the request
    assert [j["task_name"] for j in queued(jobs)] == ["process_vcc_events"]


def test_a_redelivery_is_acknowledged_and_changes_nothing(jobs):
    one = event(interactionId="abc")
    assert deliver(one).status_code == 200
    assert deliver(one).status_code == 200
    assert VccEvent.objects.count() == 1
    assert len(queued(jobs)) == 1  # one job waiting sees every stored event


def test_either_secret_is_accepted_while_one_is_rotated(settings):
    settings.VCC_WEBHOOK_KEYS = [KEY, OLD_KEY]
    assert deliver(event(), key=OLD_KEY).status_code == 200
    assert deliver(event(), key=KEY).status_code == 200


@pytest.mark.parametrize(
    ("make_signature", "says"),
    [
        (lambda body: None, "header is missing"),
        (lambda body: "Token abc", "must be 'Bearer <JWT>'"),
        (lambda body: "Bearer not-a-jwt", "not a valid JWT"),
        (lambda body: sign(body, b"w" * 32), "key vccweb does not know"),
        (lambda body: sign(b"another body"), "payload_hash does not match the body"),
        (lambda body: "Bearer " + jwt.encode({"iat": 1}, KEY, algorithm="HS256"), "no payload_hash claim"),
        (
            lambda body: (
                "Bearer " + jwt.encode({"payload_hash": hashlib.sha256(body).hexdigest()}, None, algorithm="none")
            ),
            "must use HS256",
        ),
        (
            lambda body: (
                "Bearer " + jwt.encode({"payload_hash": hashlib.sha256(body).hexdigest()}, KEY * 2, algorithm="HS512")
            ),
            "must use HS256",
        ),
    ],
    ids=["missing", "not bearer", "malformed", "wrong key", "wrong hash", "no hash", "alg none", "HS512"],
)
def test_a_bad_signature_is_refused_401_logged_without_the_body_and_counted(make_signature, says, caplog):
    payload = event(secretMarker="do-not-log-me")
    body = json.dumps(payload).encode()
    signature = make_signature(body)
    before = refused_last_hour()

    response = Client().post(URL, body, content_type=CE, headers={"Vonage-Signature": signature} if signature else {})

    assert response.status_code == 401
    assert says in response.content.decode()
    assert not VccEvent.objects.exists()
    assert "vcc events: refused 401" in caplog.text and "do-not-log-me" not in caplog.text
    assert refused_last_hour() == before + 1


def test_without_a_configured_secret_nothing_is_accepted(settings):
    settings.VCC_WEBHOOK_KEYS = []
    response = deliver(event())
    assert response.status_code == 401 and "VCC_WEBHOOK_SECRETS" in response.content.decode()


# --- What is accepted -------------------------------------------------------------------------------------------


def test_a_batch_is_stored_event_by_event():
    many = [event(interactionId=str(i)) for i in range(3)]
    response = deliver(many, content_type="application/cloudevents-batch+json")
    assert response.status_code == 200 and response.json() == {"received": 3}
    assert VccEvent.objects.count() == 3


@pytest.mark.parametrize(
    ("payload", "content_type", "status", "says"),
    [
        (b"x" * (256 * 1024 + 1), CE, 413, "at most 256 KB"),
        (json.dumps(event()).encode(), "application/json", 415, "Send events as application/cloudevents+json"),
        (b"{not json", CE, 400, "not JSON"),
        (json.dumps({"type": "channel.connected.v1"}).encode(), CE, 400, "lacks id, source"),
        (json.dumps({**event(), "time": "yesterday"}).encode(), CE, 400, "not an RFC 3339 time"),
        (json.dumps([event()]).encode(), CE, 400, "not a JSON object"),
    ],
    ids=["too large", "content type", "not json", "not cloudevents", "bad time", "array as single"],
)
def test_what_is_not_an_event_is_refused_with_a_sentence(payload, content_type, status, says):
    response = deliver(payload, content_type=content_type)
    assert response.status_code == status
    assert says in response.content.decode()
    assert not VccEvent.objects.exists()


def test_a_content_length_that_is_not_a_number_is_a_400_not_a_500():
    response = Client().post(URL, b"{}", content_type=CE, headers={"Content-Length": "lots"})
    assert response.status_code == 400 and "Content-Length must be a number" in response.content.decode()


def test_get_is_refused_405_with_a_sentence():
    response = Client().get(URL)
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert "with POST" in response.content.decode()


def test_no_csrf_token_is_needed():
    assert deliver(event(), client=Client(enforce_csrf_checks=True)).status_code == 200


# --- Events move calls ---------------------------------------------------------------------------------------------


def stored(type_: str, call: Call, *, at: datetime, **data) -> VccEvent:
    return VccEvent.objects.create(
        event_id=str(uuid.uuid4()),
        type=type_,
        source="/vcc/sandbox01",
        time=at,
        data={"interactionId": call.vcc_call_id, **data},
        received_at=timezone.now(),
    )


def test_events_move_a_call_and_each_is_in_its_history(placed, sim, jobs):
    start = timezone.now() - timedelta(minutes=5)  # VCC's times: the past, as the job sees them
    stored("channel.alerted.v1", placed, at=start + timedelta(seconds=1), party="agent")
    stored("channel.alerted.v1", placed, at=start + timedelta(seconds=4), party="external")
    stored("channel.connected.v1", placed, at=start + timedelta(seconds=9), party="external")
    tasks.enqueue_event_processing()

    assert run_jobs(jobs) == ["process_vcc_events"]

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


def test_events_vccweb_does_not_use_are_marked_and_left():
    VccEvent.objects.create(event_id="x", type="agent.loggedin.v1", source="s", data={}, received_at=timezone.now())
    assert applying.process_pending().other == 1


def test_the_signing_key_setting_refuses_a_short_or_non_base64_secret(monkeypatch):
    import runpy

    from django.core.exceptions import ImproperlyConfigured

    from tests.test_settings import SETTINGS

    monkeypatch.setenv("DEBUG", "true")
    monkeypatch.setenv("VCC_WEBHOOK_SECRETS", base64.b64encode(b"short").decode())
    with pytest.raises(ImproperlyConfigured, match="secret 1 of VCC_WEBHOOK_SECRETS decodes to 5 bytes"):
        runpy.run_path(str(SETTINGS))
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


def foreign(type_: str, guid: str, *, agent: str, number: str, direction: str = "Outbound", at=None, **extra):
    far = {"agentDisplayId": None, "telephoneNumber": number}
    own = {"agentDisplayId": agent, "telephoneNumber": None}
    data = {
        "interactionId": guid,
        "direction": direction,
        "agentDisplayId": agent,
        "party": {"role": "Customer", "agentDisplayId": None, "telephoneNumber": number},
        "from": far if direction == "Inbound" else own,
        "to": own if direction == "Inbound" else far,
        **extra,
    }
    return VccEvent.objects.create(
        event_id=str(uuid.uuid4()), type=f"{type_}.v1", source="s", time=at or timezone.now(), data=data,
        received_at=timezone.now(),
    )  # fmt: skip


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


# --- Polling steps aside while events flow -------------------------------------------------------------------------


def test_while_events_flow_a_call_with_events_is_not_polled_and_polling_resumes_when_they_stop(sim, placed):
    from asgiref.sync import async_to_sync

    from calls import calling

    stored("channel.connected.v1", placed, at=timezone.now(), party="external")
    applying.process_pending()
    start = timezone.now()

    def follow_at(seconds: float, *, flowing: bool = True) -> int:
        at = start + timedelta(seconds=seconds)
        VccEvent.objects.filter(event_id="flow").delete()
        if flowing:  # events keep arriving (about other calls) and are applied
            VccEvent.objects.create(
                event_id="flow", type="agent.presencechanged.v1", source="s", data={}, received_at=at, processed_at=at
            )
        VccEvent.objects.exclude(event_id="flow").update(received_at=at - timedelta(minutes=5))
        return async_to_sync(calling.follow_due)(clock=lambda: at).asked

    Call.objects.filter(pk=placed.pk).update(next_check_at=start)  # due, were it polled
    assert follow_at(30) == 0  # its own events are recent: VCC is not asked
    sim.clock.advance(90)  # the call ended in VCC, and its hang-up event was lost
    assert follow_at(90) == 1  # silent for over EVENT_SILENCE_SECONDS: asked once
    placed.refresh_from_db()
    assert placed.state == Call.State.ENDED  # not live for ever


def test_a_silent_call_events_follow_is_asked_about_ever_less_often(sim, placed):
    from calls.calling.following import SILENT_LOOK_MAX, next_look

    now = timezone.now()
    VccEvent.objects.create(event_id="f", type="t", source="s", data={}, received_at=now, processed_at=now)
    placed.last_event_at = now - timedelta(seconds=90)
    assert next_look(placed, now=now) == now + timedelta(seconds=180)  # twice its silence
    placed.last_event_at = now - timedelta(seconds=10)
    assert next_look(placed, now=now) == now + timedelta(seconds=60)  # at least EVENT_SILENCE_SECONDS
    placed.last_event_at = now - timedelta(hours=1)
    assert next_look(placed, now=now) == now + SILENT_LOOK_MAX
    VccEvent.objects.all().delete()  # events stopped: every 2 s, as before events
    assert next_look(placed, now=now) == now + timedelta(seconds=2)


def test_events_stopping_brings_polling_back_for_every_call(sim, placed):
    from asgiref.sync import async_to_sync

    from calls import calling

    stored("channel.connected.v1", placed, at=timezone.now(), party="external")
    applying.process_pending()
    later = timezone.now() + timedelta(seconds=61)
    VccEvent.objects.update(received_at=later - timedelta(seconds=120))  # nothing within EVENT_SILENCE_SECONDS
    placed.refresh_from_db()
    assert placed.next_check_at > later  # its next look was set for a flow that stopped
    assert async_to_sync(calling.follow_due)(clock=lambda: later).asked == 1  # asked at once all the same
    placed.refresh_from_db()
    assert placed.last_event_at is None  # back to plain polling: every 2 s, not every round
    assert async_to_sync(calling.follow_due)(clock=lambda: later).asked == 0


def _asked(at: datetime, *, flow_at: datetime | None = None) -> int:
    """How many calls a round of the follower at `at` asks VCC about, while events flow: an event about something
    else arrived at `flow_at` (default `at`) and was applied."""
    from asgiref.sync import async_to_sync

    from calls import calling

    flow = flow_at or at
    VccEvent.objects.filter(event_id="flow").delete()
    VccEvent.objects.create(
        event_id="flow", type="agent.presencechanged.v1", source="s", data={}, received_at=flow, processed_at=flow
    )
    return async_to_sync(calling.follow_due)(clock=lambda: at).asked


def test_a_call_no_event_told_of_is_polled_while_events_flow_once_its_events_had_time_to_come(sim, placed):
    now = timezone.now()
    Call.objects.filter(pk=placed.pk).update(next_check_at=now, last_event_at=None)
    assert _asked(now + timedelta(seconds=1)) == 0  # its own events may be on their way
    assert _asked(now + timedelta(seconds=2)) == 1  # none came within FOLLOW_INTERVAL: VCC is asked, as before
    placed.refresh_from_db()
    assert placed.next_check_at == now + timedelta(seconds=2)  # the look's time: `polled` adds the 2 s
    assert _asked(now + timedelta(seconds=3)) == 0
    assert _asked(now + timedelta(seconds=4)) == 1  # every 2 s, as before events, while none comes


def test_a_worker_behind_on_applying_events_does_not_ask_vcc_about_the_calls_they_may_be_about(sim, placed):
    now = timezone.now()
    Call.objects.filter(pk=placed.pk).update(next_check_at=now, last_event_at=None)
    behind = VccEvent.objects.create(  # arrived after the call's look fell due; not applied yet
        event_id="behind", type="channel.alerted.v1", source="s", data={}, received_at=now + timedelta(seconds=1)
    )
    at = now + timedelta(seconds=20)
    assert _asked(at, flow_at=now) == 0  # it may be this call's: wait until it is applied
    VccEvent.objects.filter(pk=behind.pk).update(received_at=now + timedelta(seconds=3))
    assert _asked(at, flow_at=now) == 1  # the events that came within 2 s of the look are applied: none was its

    Call.objects.filter(pk=placed.pk).update(next_check_at=now, last_event_at=None)
    VccEvent.objects.filter(pk=behind.pk).update(received_at=now + timedelta(seconds=1), not_before=at)
    assert _asked(at - timedelta(seconds=1), flow_at=now) == 1  # an event waiting for its own call holds nothing

    Call.objects.filter(pk=placed.pk).update(next_check_at=now, last_event_at=None)
    VccEvent.objects.filter(pk=behind.pk).update(not_before=None)  # an event the worker cannot get past
    assert _asked(now + timedelta(seconds=61), flow_at=now + timedelta(seconds=30)) == 0
    # Held back EVENT_SILENCE_SECONDS at most, from the look's time and its FOLLOW_INTERVAL.
    assert _asked(now + timedelta(seconds=62), flow_at=now + timedelta(seconds=30)) == 1


def test_whether_events_flow_is_read_from_the_oldest_event_of_the_window(settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from calls.calling.following import events_flowing

    now = timezone.now()
    for n in range(3):  # applied, then a backlog not applied yet
        at = now - timedelta(seconds=50 - n)
        VccEvent.objects.create(
            event_id=f"e{n}", type="t", source="s", data={}, received_at=at, processed_at=at if n == 0 else None
        )
    assert events_flowing(now=now)
    VccEvent.objects.filter(event_id="e0").update(result="failed: no such call")
    assert not events_flowing(now=now)  # a failed one is not a flow
    with CaptureQueriesContext(connection) as queries:
        events_flowing(now=now)
    assert "ORDER BY" in queries[0]["sql"] and '"received_at" ASC' in queries[0]["sql"]


# --- On the integration health page --------------------------------------------------------------------------------


def test_the_health_page_shows_events_flowing_and_refusals(admin_client):
    deliver(event(interactionId="x"))
    deliver(event(), key=b"w" * 32)  # refused
    applying.process_pending()
    page = admin_client.get("/health/").content.decode()
    assert "<span data-events-received>1</span> received" in page
    assert "<span data-events-refused>1</span> delivery" in page
    assert "calls that had events are followed by them" in page
    assert "1 delivery(ies) of VCC events refused in the last hour." in page


def test_an_admin_subscribes_vccs_events_with_one_button(admin_client, settings, monkeypatch):
    from calls.vcc import webhooks

    settings.SITE_URL, settings.VCC_SYNC_ENABLED = "https://crm.example.com", True
    settings.VCC_WEBHOOK_SECRETS = [base64.b64encode(KEY).decode()]
    made = []

    def subscribe(self, **kwargs):
        made.append(kwargs)
        return {"id": "sub-1"}

    monkeypatch.setattr(webhooks.WebhooksClient, "subscribe", subscribe)
    monkeypatch.setattr(webhooks.WebhooksClient, "subscriptions", lambda self: [{"id": "s", "url": "https://x/"}])
    page = admin_client.get("/health/").content.decode()
    assert "Subscribe VCC's events to https://crm.example.com/vcc/events/" in page

    response = admin_client.post("/health/vcc-events/subscribe/", follow=True)

    assert made == [
        {"name": "vccweb", "url": "https://crm.example.com/vcc/events/", "secret": settings.VCC_WEBHOOK_SECRETS[0]}
    ]  # fmt: skip
    assert (
        "Subscribed (sub-1): VCC delivers its events to https://crm.example.com/vcc/events/"
        in response.content.decode()
    )


def test_without_site_url_the_page_says_what_to_set(admin_client, settings):
    settings.SITE_URL = ""
    page = admin_client.get("/health/").content.decode()
    assert "To subscribe with one button, set" in page and "SITE_URL" in page


def test_applied_events_are_pruned_after_two_days_and_waiting_ones_kept(monkeypatch):
    old = timezone.now() - tasks.KEEP_EVENTS - timedelta(hours=1)
    for i, processed in enumerate([old, None, timezone.now()]):
        VccEvent.objects.create(event_id=f"e{i}", type="t", source="s", received_at=old, processed_at=processed)
    VccEvent.objects.create(
        event_id="new", type="t", source="s", received_at=timezone.now(), processed_at=timezone.now()
    )
    monkeypatch.setattr(tasks, "PRUNE_BATCH", 1)  # batch after batch

    assert tasks.prune_vcc_events.func(timestamp=0) == 2

    assert sorted(VccEvent.objects.values_list("event_id", flat=True)) == ["e1", "new"]


def test_an_event_that_cannot_be_applied_is_marked_failed_and_the_others_go_on(sim, placed, monkeypatch):
    start = timezone.now() - timedelta(minutes=1)
    bad = stored("channel.alerted.v1", placed, at=start, party="agent")
    stored("channel.connected.v1", placed, at=start + timedelta(seconds=5), party="external")
    real = applying._apply_to_live

    def broken_once(call, name, data, **kw):
        if name == "channel.alerted":
            raise ValueError("a fault in vccweb")
        return real(call, name, data, **kw)

    monkeypatch.setattr(applying, "_apply_to_live", broken_once)

    done = applying.process_pending()

    assert (done.failed, done.applied) == (1, 1)
    bad.refresh_from_db()
    assert bad.processed_at and bad.result == "failed: ValueError: a fault in vccweb"
    placed.refresh_from_db()
    assert placed.connected_at is not None


def test_a_fault_after_changing_the_call_leaves_the_batchs_next_event_the_call_as_stored(sim, placed, monkeypatch):
    """The batch reads its calls once; an event whose changes rolled back must not leave them in the call the next
    event of the same call is applied to."""
    start = timezone.now() - timedelta(minutes=1)
    bad = stored("channel.alerted.v1", placed, at=start, party="agent")
    good = stored("channel.connected.v1", placed, at=start + timedelta(seconds=5), party="external")
    real = applying._apply_to_live

    def ends_it_then_fails(call, name, data, **kw):
        if name == "channel.alerted":
            call.state, call.ended_at = Call.State.ENDED, start  # in memory only: the savepoint rolls back
            raise ValueError("a fault in vccweb")
        return real(call, name, data, **kw)

    monkeypatch.setattr(applying, "_apply_to_live", ends_it_then_fails)

    done = applying.process_pending()

    assert (done.failed, done.applied, done.late) == (1, 1, 0)
    good.refresh_from_db()
    assert good.result == f"applied to call {placed.pk}"
    placed.refresh_from_db()
    assert placed.state == Call.State.LIVE and placed.connected_at == start + timedelta(seconds=5)
    bad.refresh_from_db()
    assert bad.result == "failed: ValueError: a fault in vccweb"


@pytest.mark.parametrize("calls", [2, 6])
def test_a_batch_reads_its_calls_and_writes_its_events_and_history_in_one_statement_each(agent_user, contact, calls):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    start = timezone.now() - timedelta(minutes=1)
    live = [
        Call.objects.create(
            created_by=agent_user,
            from_agent=agent_user.agent,
            to_number="+447400123456",
            contact=contact,
            vcc_call_id=f"guid-{i}",
            state=Call.State.LIVE,
            requested_at=start,
        )
        for i in range(calls)
    ]
    for call in live:
        stored("channel.alerted.v1", call, at=start + timedelta(seconds=1), party="external")
        stored("channel.connected.v1", call, at=start + timedelta(seconds=2), party="external")
        stored("channel.disconnected.v1", call, at=start + timedelta(seconds=9), party="external", result=ANSWERED)

    with CaptureQueriesContext(connection) as queries:
        done = applying.process_pending()

    assert done.applied == 3 * calls
    statements = [q["sql"] for q in queries.captured_queries]
    assert sum(sql.startswith('SELECT "calls_call".') for sql in statements) == 1
    assert sum(sql.startswith('INSERT INTO "calls_callevent"') for sql in statements) == 1
    assert sum(sql.startswith('UPDATE "calls_vccevent"') for sql in statements) == 1
    # Each event: its savepoint and release, and one UPDATE of its call.
    assert len(statements) <= 10 + 3 * 3 * calls
    assert Call.objects.filter(state=Call.State.ENDED, outcome=Call.Outcome.ANSWERED).count() == calls
    assert CallEvent.objects.filter(detail__endswith="(webhook)").count() == 3 * calls


def test_one_job_applies_events_at_a_time_and_a_process_queues_it_at_most_once_a_second(jobs):
    assert tasks.process_vcc_events.lock == "process_vcc_events"
    for _ in range(3):
        deliver(event(interactionId="x"))
    assert len(queued(jobs)) == 1


def test_an_inbound_call_is_logged_at_once_while_another_agent_waits_for_vcc(agent_user, contact, make_user):
    """Only a click of the same agent (or a group's) can be the call an unknown id names."""
    from calls.models import Agent

    other = Agent.objects.create(display_id="1002", name="Priya Shah")
    Call.objects.create(created_by=agent_user, from_agent=other, to_number="+447400123999")  # asking VCC
    number = contact.phones.first().number
    foreign("channel.alerted", "in-2", agent=agent_user.agent.display_id, number=number, direction="Inbound")
    assert applying.process_pending().applied == 1
    assert Call.objects.get(vcc_call_id="in-2").origin == Call.Origin.INBOUND


def test_a_second_subscription_to_the_same_url_is_not_made(admin_client, settings, monkeypatch):
    from calls.vcc import webhooks

    settings.SITE_URL, settings.VCC_SYNC_ENABLED = "https://crm.example.com", True
    settings.VCC_WEBHOOK_SECRETS = [base64.b64encode(KEY).decode()]
    listed = [{"id": "sub-1", "url": "https://crm.example.com/vcc/events/"}]
    monkeypatch.setattr(webhooks.WebhooksClient, "subscriptions", lambda self: listed)
    monkeypatch.setattr(webhooks.WebhooksClient, "subscribe", lambda self, **kw: pytest.fail("subscribed twice"))

    response = admin_client.post("/health/vcc-events/subscribe/", follow=True)

    assert "Already subscribed (sub-1)" in response.content.decode()


@pytest.mark.parametrize(
    ("url", "allow_http", "says"),
    [
        ("crm.example.com/vcc/events/", False, "must be absolute"),
        ("http://crm.example.com/vcc/events/", False, "only to https"),
    ],
)
def test_vcc_delivers_only_to_an_absolute_https_url(url, allow_http, says):
    from calls.vcc.webhooks import check_url

    with pytest.raises(ValueError, match=says):
        check_url(url, allow_http=allow_http)
    assert check_url("http://127.0.0.1:8000/vcc/events/", allow_http=False)  # a simulator on this machine


def test_a_hang_up_that_does_not_say_how_asks_vcc_once(sim, placed):
    from asgiref.sync import async_to_sync

    from calls import calling

    stored("channel.connected.v1", placed, at=timezone.now() - timedelta(seconds=30), party="external")
    stored("channel.disconnected.v1", placed, at=timezone.now(), party="external")  # no result in it
    applying.process_pending()
    placed.refresh_from_db()
    assert placed.state == Call.State.LIVE and placed.last_event_at is None  # not ended "unknown"

    sim.clock.advance(120)  # VCC knows how it ended
    # Asked at once even while the worker is behind: an event about something else waits, received just before.
    VccEvent.objects.create(
        event_id="behind", type="t", source="s", data={}, received_at=timezone.now() - timedelta(seconds=30)
    )
    assert async_to_sync(calling.follow_due)(clock=timezone.now).asked == 1
    placed.refresh_from_db()
    assert placed.state == Call.State.ENDED and placed.outcome == Call.Outcome.ANSWERED


def test_the_health_page_shows_the_vcc_request_budget_and_429s(admin_client, settings):
    from django.core.cache import cache

    from calls.vcc import budget

    budget.Budget(cache).limited(None)  # VCC answered 429, without Retry-After
    page = admin_client.get("/health/").content.decode()
    assert "VCC request budget" in page and f"of <strong>{settings.VCC_REQUESTS_PER_MINUTE}</strong> requests" in page
    assert "429s from VCC in the last hour: <span data-budget-429>1</span>" in page
    assert "holding back" in page
    assert "VCC answered 429 (too many requests) 1 time(s) in the last hour." in page
