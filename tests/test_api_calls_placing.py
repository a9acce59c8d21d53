"""The API placing a call (POST /api/v1/calls) behind an Idempotency-Key, and the Call button's and VCC's refusals."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient
from django.utils import timezone

from calls import calling
from calls.api.calls import PlaceCallIn, _digest
from calls.models import AgentGroup, ApiIdempotentRequest, Call, Contact, ContactPhone
from calls.roles import SUPERVISOR
from tests import _api_calls
from tests._api_calls import CALL_KEYS, URL, bearer, post, problem, token_for
from tests._sim import primary
from vccsim.transport import sandbox_transport

pytestmark = pytest.mark.django_db

sim, alex, priya = _api_calls.sim, _api_calls.alex, _api_calls.priya  # fixtures


# --- Placing a call ------------------------------------------------------------------------------------------


def test_it_places_a_call_as_the_call_button_does_and_answers_the_call(alex, agent_user, contact, london, sim):
    response = post(alex, {"to": "07400 123456"})

    assert response.status_code == 201
    call = Call.objects.get()
    body = response.json()
    assert set(body) == CALL_KEYS
    assert body["id"] == call.pk and body["state"] == "live" and body["outcome"] == "in_progress"
    assert body["to"] == "+447400123456" and body["contact"] == contact.pk and body["to_agent"] is None
    assert body["agent"] == "1001" and body["answered_by"] is None and body["via_groups"] == []
    assert body["caller_id"] == london.number and body["placed_by"] == "alex"
    assert body["vcc_call_id"] == call.vcc_call_id and body["error"] is None
    assert body["url"] == f"/calls/{call.pk}/"
    assert call.created_by == agent_user and call.phone == primary(contact)
    assert call.request_body["from"] == {"agentId": "1001", "presentedCLID": london.number, "consent": "OneParty"}
    assert call.request_body["to"] == {"telephoneNumber": "+447400123456"}
    assert sim.calls_placed == 1
    assert ApiIdempotentRequest.objects.get().status == 201


def test_the_same_key_again_places_no_second_call_and_answers_the_same(alex, contact, london, sim):
    first = post(alex, {"to": "+447400123456", "contact": contact.pk})
    second = post(alex, {"to": "+447400123456", "contact": contact.pk})

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Call.objects.count() == 1 and sim.calls_placed == 1


def test_another_persons_same_key_is_their_own(alex, priya, contact, london, sim):
    other = Contact.objects.create(name="Ada Lovelace")
    ContactPhone.objects.create(contact=other, number="+447911123456", is_primary=True)
    post(alex, {"to": "+447400123456"})

    response = post(priya, {"to": "+447911123456"})

    assert response.status_code == 201, response.content
    assert Call.objects.count() == 2 and sim.calls_placed == 2


def test_the_same_key_with_another_body_is_a_422_and_places_nothing(alex, contact, london, sim):
    post(alex, {"to": "+447400123456"})

    body = problem(post(alex, {"to": "+442079460123"}), 422)

    assert "different body" in body["detail"]
    assert Call.objects.count() == 1 and sim.calls_placed == 1


def test_without_a_key_it_is_a_400_that_says_what_to_send(alex, contact, london, sim):
    body = problem(post(alex, {"to": "+447400123456"}, key=None), 400)

    assert "Idempotency-Key" in body["detail"]
    assert not Call.objects.exists() and sim.calls_placed == 0


@pytest.mark.parametrize("key", ["   ", "x" * 256, "naïve"])
def test_a_malformed_key_is_a_400(alex, contact, london, key):
    assert "Idempotency-Key" in problem(post(alex, {"to": "+447400123456"}, key=key), 400)["detail"]
    assert not Call.objects.exists()


def test_a_repeat_while_the_first_is_under_way_is_a_409(alex, agent_user, contact, london, sim):
    body = {"to": "+447400123456"}
    ApiIdempotentRequest.objects.create(user=agent_user, key="key-1", request_digest=_digest(PlaceCallIn(**body)))

    assert "still under way" in problem(post(alex, body), 409)["detail"]
    assert not Call.objects.exists() and sim.calls_placed == 0


def test_the_key_is_taken_before_the_call_is_placed(alex, agent_user, contact, london, monkeypatch):
    """Two requests at once: the unique row is written first, so the second finds it and places nothing."""
    real = calling.place_number_call
    seen = []

    async def place(**kwargs):
        seen.append(await ApiIdempotentRequest.objects.filter(user=agent_user, key="key-1").aexists())
        return await real(**kwargs)

    monkeypatch.setattr(calling, "place_number_call", place)

    assert post(alex, {"to": "+447400123456"}).status_code == 201
    assert seen == [True]


class HeldTransport(httpx.AsyncBaseTransport):
    """The sandbox, but VCC answers a call request only once the test says so."""

    asked: asyncio.Event
    gate: asyncio.Event

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.lower().endswith("/calls/"):
            HeldTransport.asked.set()
            await HeldTransport.gate.wait()
        return await sandbox_transport().handle_async_request(request)


def held_transport() -> HeldTransport:
    return HeldTransport()


async def held_sender(user, settings, *, key: str):
    """VCC held (HeldTransport, fresh events), and a function that sends the same call request with `key`."""
    settings.VCC_TRANSPORT = "tests.test_api_calls_placing.held_transport"
    HeldTransport.asked, HeldTransport.gate = asyncio.Event(), asyncio.Event()
    token = await sync_to_async(token_for)(user)
    headers = bearer(token) | {"Idempotency-Key": key}
    body = json.dumps({"to": "+447400123456"})

    def send():
        return AsyncClient().post(URL, body, content_type="application/json", headers=headers)

    return send


@pytest.mark.django_db(transaction=True)
async def test_two_requests_with_one_key_at_once_place_one_call(agent_user, contact, london, sim, settings):
    """The second arrives while VCC has the first in hand: a 409; once the first is answered, its answer."""
    send = await held_sender(agent_user, settings, key="at-once")

    first = asyncio.ensure_future(send())
    await HeldTransport.asked.wait()  # the first is with VCC
    second = await send()
    HeldTransport.gate.set()
    answered = await first
    third = await send()

    calls = await sync_to_async(lambda: list(Call.objects.all()))()
    await sync_to_async(connections.close_all)()  # the executor thread's connection would keep the database open
    assert second.status_code == 409
    assert answered.status_code == third.status_code == 201 and third.json() == answered.json()
    assert len(calls) == 1 and sim.calls_placed == 1


def test_a_key_whose_row_is_gone_still_never_places_a_second_call(alex, agent_user, contact, london, sim):
    from calls import tasks

    first = post(alex, {"to": "+447400123456"}).json()
    ApiIdempotentRequest.objects.create(user=agent_user, key="fresh", request_digest="x")
    ApiIdempotentRequest.objects.exclude(key="fresh").update(created_at=timezone.now() - tasks.KEEP_API_KEYS)
    assert tasks.prune_api_keys.func(timestamp=0) == 1  # kept a day: the hourly job forgets it
    assert list(ApiIdempotentRequest.objects.values_list("key", flat=True)) == ["fresh"]

    other = problem(post(alex, {"to": "+442079460123"}), 422)
    again = post(alex, {"to": "+447400123456"})

    assert again.status_code == 201 and again.json()["id"] == first["id"]
    assert f"placed call {first['id']} before" in other["detail"]
    assert Call.objects.count() == 1 and sim.calls_placed == 1


def test_a_failure_before_any_call_row_frees_the_key(alex, contact, london, sim, monkeypatch):
    async def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(calling, "place_number_call", broken)

    problem(post(alex, {"to": "+447400123456"}), 500)

    assert not ApiIdempotentRequest.objects.exists() and not Call.objects.exists()


def test_a_stored_answer_is_given_again_as_it_was(alex, agent_user, contact, sim):
    body = {"to": "+447400123456"}
    stored = {"id": 7, "state": "live"}
    ApiIdempotentRequest.objects.create(
        user=agent_user, key="key-1", request_digest=_digest(PlaceCallIn(**body)), status=201, response=stored
    )

    response = post(alex, body)

    assert response.status_code == 201 and response.json() == stored
    assert sim.calls_placed == 0


def test_a_token_without_calls_write_is_a_403(agent_user, contact, london, sim):
    token = token_for(agent_user, "calls:read", "contacts:write")

    assert "calls:write" in problem(post(token, {"to": "+447400123456"}), 403)["detail"]
    assert "calls:write" in problem(post(token, {"to": "+447400123456"}, key=None), 403)["detail"]
    assert not Call.objects.exists() and not ApiIdempotentRequest.objects.exists()


@pytest.mark.django_db(transaction=True)
async def test_a_client_gone_mid_request_finds_the_real_answer_under_its_key(
    agent_user, contact, london, sim, settings
):
    """The client gives up while VCC has the call in hand; the placing runs on, and the same key then answers what
    VCC said (the call live), never the half-made call of the moment the client left."""
    send = await held_sender(agent_user, settings, key="gone")

    first = asyncio.ensure_future(send())
    await HeldTransport.asked.wait()
    first.cancel()  # the client went away
    HeldTransport.gate.set()
    for _ in range(500):  # until the placing has finished on its own (at most 5 s)
        if await ApiIdempotentRequest.objects.filter(key="gone", status__isnull=False).aexists():
            break
        await asyncio.sleep(0.01)
    again = await send()

    call = await Call.objects.aget()
    await sync_to_async(connections.close_all)()
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == call.pk and again.json()["state"] == call.state == "live"
    assert sim.calls_placed == 1


def test_a_key_left_under_way_by_a_dead_process_is_settled_from_what_it_wrote(alex, agent_user, contact, london, sim):
    """A process killed mid-request leaves its key 'under way'; after two minutes a repeat looks: the call it wrote
    answers (kept from then on), or, if it wrote none, the key is free and this request places the call."""
    from calls.api.calls import ABANDONED, PlaceCallIn, _digest

    body = {"to": "+447400123456"}
    digest = _digest(PlaceCallIn(**body))
    old = timezone.now() - ABANDONED - timedelta(seconds=1)
    row = ApiIdempotentRequest.objects.create(user=agent_user, key="key-1", request_digest=digest)
    ApiIdempotentRequest.objects.filter(pk=row.pk).update(created_at=old)

    placed = post(alex, body)  # nothing was written under it: the key is free, the call placed

    assert placed.status_code == 201 and Call.objects.count() == 1
    ApiIdempotentRequest.objects.filter(key="key-1").update(status=None, response=None, created_at=old)
    again = post(alex, body)  # its call is there: answered from it
    assert again.status_code == 201 and again.json()["id"] == placed.json()["id"] and Call.objects.count() == 1
    assert ApiIdempotentRequest.objects.get(key="key-1").status == 201


# --- The Call button's refusals, word for word ----------------------------------------------------------------


def assert_refused(response, sim, words: str, status: int = 422) -> None:
    body = problem(response, status)
    assert words in body["detail"]
    assert not Call.objects.exists() and sim.calls_placed == 0
    assert not ApiIdempotentRequest.objects.exists()  # nothing happened: the key may be sent again


def test_an_agent_may_not_call_a_do_not_call_number(alex, contact, london, sim):
    ContactPhone.objects.filter(pk=primary(contact).pk).update(do_not_call=True)

    response = post(alex, {"to": "+447400123456", "reason": "I really want to"})

    assert_refused(response, sim, "This number is marked do not call. Only a supervisor can call it")


def test_a_supervisor_must_say_why_and_may_then_call_it(priya, contact, london, sim):
    Contact.objects.filter(pk=contact.pk).update(do_not_call=True)

    assert_refused(
        post(priya, {"to": "+447400123456"}),
        sim,
        "This contact is marked do not call. To call anyway, send `reason` saying why",
    )
    response = post(priya, {"to": "+447400123456", "reason": "They asked us to call back"})  # the key was freed

    assert response.status_code == 201
    assert Call.objects.get().dnc_override_reason == "They asked us to call back"


def test_a_group_call_needs_a_ticked_group(priya, contact, london, sim):
    assert_refused(post(priya, {"to": "+447400123456", "via_groups": []}), sim, "Tick at least one group to call via.")


def test_an_agent_may_not_call_via_groups(alex, contact, london, sales, sim):
    response = post(alex, {"to": "+447400123456", "via_groups": [sales.pk]})

    assert_refused(response, sim, "You may not call via groups.", status=403)


def test_it_places_a_group_call(priya, contact, london, sales, support, sim):
    response = post(priya, {"to": "+447400123456", "via_groups": [sales.pk, support.pk]})

    assert response.status_code == 201
    call = Call.objects.get()
    assert response.json()["via_groups"] == [sales.pk, support.pk] and response.json()["agent"] is None
    assert call.request_body["from"]["groups"] == ["030", "200"]


def test_an_unknown_group_is_named(priya, contact, london, sim):
    assert_refused(post(priya, {"to": "+447400123456", "via_groups": [999]}), sim, "via_groups: there is no group 999")


def test_a_group_vcc_no_longer_has_is_refused_saying_so(priya, contact, london, sales, support, sim):
    AgentGroup.objects.filter(pk=support.pk).update(is_active=False)  # as the sync leaves it

    response = post(priya, {"to": "+447400123456", "via_groups": [sales.pk, support.pk]})

    assert_refused(response, sim, "The group Support (200) no longer exists in VCC")


def test_an_agent_on_a_call_is_told_to_finish_it_with_a_409(alex, contact, london, sim):
    other = Contact.objects.create(name="Ada Lovelace")
    ContactPhone.objects.create(contact=other, number="+447911123456", is_primary=True)
    assert post(alex, {"to": "+447400123456"}, key="first").status_code == 201

    body = problem(post(alex, {"to": "+447911123456"}, key="second"), 409)  # a conflict that ends with the call

    assert body["detail"] == "You are on a call now: finish it, then call again."
    assert Call.objects.count() == 1 and sim.calls_placed == 1


def test_a_caller_id_not_theirs_is_refused(alex, contact, london, manchester, sim):
    response = post(alex, {"to": "+447400123456", "caller_id": "0161 496 0200"})

    assert_refused(response, sim, "That caller ID is not one you may present")


def test_a_caller_id_of_theirs_is_presented(alex, contact, london, sim):
    from calls.models import CallbackNumber

    chicago = CallbackNumber.objects.create(number="+13125550100", label="Chicago")

    response = post(alex, {"to": "+447400123456", "caller_id": "+1 312 555 0100"})

    assert response.json()["caller_id"] == chicago.number
    assert Call.objects.get().clid_reason == "you chose it for this call"


@pytest.mark.parametrize("caller_id", ["+1 312 555 0199", "nonsense"])
def test_an_unknown_caller_id_is_refused(alex, contact, london, sim, caller_id):
    assert_refused(post(alex, {"to": "+447400123456", "caller_id": caller_id}), sim, "caller_id: ")


def test_a_person_without_an_agent_is_told_why(make_user, contact, london, sim):
    token = token_for(make_user("noagent", SUPERVISOR))

    assert_refused(post(token, {"to": "+447400123456"}), sim, "You have no active VCC agent")


@pytest.mark.parametrize(
    ("to", "words"),
    [("12", "is not a valid phone number"), ("call me", "is not a phone number"), ("+447400123999", "no contact has")],
)
def test_a_number_it_cannot_call_is_named(alex, contact, london, sim, to, words):
    assert_refused(post(alex, {"to": to}), sim, words)


def test_a_number_of_several_contacts_needs_the_contact(alex, contact, london, sim):
    twin = Contact.objects.create(name="Grace's twin")
    ContactPhone.objects.create(contact=twin, number="+447400123456", is_primary=True)

    assert_refused(post(alex, {"to": "+447400123456"}), sim, "name the one you mean in contact")
    response = post(alex, {"to": "+447400123456", "contact": twin.pk})

    assert response.status_code == 201 and response.json()["contact"] == twin.pk


def test_a_number_not_on_the_named_contact_is_refused(alex, contact, london, sim):
    other = Contact.objects.create(name="Ada Lovelace")

    assert_refused(post(alex, {"to": "+447400123456", "contact": other.pk}), sim, f"not a number of contact {other.pk}")
    assert_refused(post(alex, {"to": "+447400123456", "contact": 99999}), sim, "no contact 99999", status=404)


@pytest.mark.parametrize(
    ("body", "raw", "status"),
    [
        ({"to": "+447400123456", "colour": "red"}, None, 422),
        ({"to": "+447400123456", "reason": "a\x00b"}, None, 422),
        ({"to": "+447400123456", "contact": True}, None, 422),
        ({"to": "+447400123456", "contact": 2**64}, None, 422),
        ({"to": "+447400123456", "via_groups": ["1"]}, None, 422),
        ({"contact": 1}, None, 422),
        (None, '{"to": ', 400),
    ],
    ids=["unknown-field", "nul", "bool-id", "huge-id", "string-id", "no-to", "malformed"],
)
def test_a_malformed_body_is_a_problem_not_a_call(alex, contact, london, sim, body, raw, status):
    problem(post(alex, body, raw=raw), status)
    assert not Call.objects.exists() and sim.calls_placed == 0


# --- VCC's refusals -----------------------------------------------------------------------------------------


def test_vccs_refusal_is_a_502_in_plain_words_with_vccs_text_and_the_record(priya, contact, london, sim):
    out_of_hours = AgentGroup.objects.create(display_id="400", name="Out of hours")

    response = post(priya, {"to": "+447400123456", "via_groups": [out_of_hours.pk]})

    body = problem(response, 502)
    call = Call.objects.get()
    assert call.state == Call.State.FAILED
    assert body["detail"] == "VCC could not connect the call to an agent; try again in a moment."
    assert body["vcc"] == "Unable to place call to Agent. Please try again" and body["vcc_status"] == 400
    assert body["call"]["id"] == call.pk and body["call"]["state"] == "failed"
    assert body["call"]["error"] == body["detail"]
    again = post(priya, {"to": "+447400123456", "via_groups": [out_of_hours.pk]})
    assert again.status_code == 502 and again.json() == body
    assert Call.objects.count() == 1


def test_a_call_vcc_may_have_placed_is_a_502_that_says_so(alex, contact, london, sim):
    sim.set_fault("place_call", status=500)

    body = problem(post(alex, {"to": "+447400123456"}), 502)

    assert "the call may have been placed" in body["detail"]
    assert body["vcc"].startswith("Internal Server Error")
    assert Call.objects.get().state == Call.State.UNCONFIRMED
