"""The API's calls (calls/api/calls.py): placing a call through the Call button's use case behind an
Idempotency-Key, the call log with its filters and cursor, one call with its history, and the wrap-up. Calls are
placed against the sandbox simulator at the httpx transport, as the click's tests place them."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient, Client
from django.utils import timezone

from calls import calling
from calls.api.calls import PlaceCallIn, _digest
from calls.models import AgentGroup, ApiIdempotentRequest, ApiToken, Call, Contact, ContactPhone, DispositionCode
from calls.roles import SUPERVISOR
from tests._calls import make_call
from tests._sim import fresh_simulator, poll, primary
from vccsim.transport import sandbox_transport

pytestmark = pytest.mark.django_db

URL = "/api/v1/calls"
ENDED = 70  # simulator seconds after placing: 3 s ringing the agent, 5 s the number, 60 s talking
CALL_KEYS = {
    "id", "state", "outcome", "to", "to_agent", "contact", "agent", "answered_by", "via_groups", "caller_id",
    "placed_by", "requested_at", "connected_at", "ended_at", "duration_seconds", "disposition", "notes",
    "wrapped_up_at", "error", "vcc_call_id", "url",
}  # fmt: skip


@pytest.fixture(autouse=True)
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


def token_for(user, *scopes: str) -> str:
    return ApiToken.issue(user, name="test", scopes=list(scopes or ["calls:read", "calls:write"]))[1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post(token: str, body: object, *, key: str | None = "key-1", raw: str | None = None):
    headers = bearer(token) | ({"Idempotency-Key": key} if key is not None else {})
    data = raw if raw is not None else json.dumps(body)
    return Client().post(URL, data, content_type="application/json", headers=headers)


def get(token: str, path: str = "", params: dict | None = None):
    return Client().get(URL + path, params or {}, headers=bearer(token))


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    return body


@pytest.fixture
def alex(agent_user) -> str:
    return token_for(agent_user)


@pytest.fixture
def priya(supervisor_user) -> str:
    return token_for(supervisor_user)


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
    settings.VCC_TRANSPORT = "tests.test_api_calls.held_transport"
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

    assert_refused(post(priya, {"to": "+447400123456"}), sim, "This contact is marked do not call. To call anyway")
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


# --- The call log ---------------------------------------------------------------------------------------------


@pytest.fixture
def log_calls(agent_user, other_agent_user, sales):
    """Alex's calls an hour apart (newest first), one via Sales, and one of Tom's."""
    now = timezone.now()
    mine = [
        make_call(user=agent_user, agent=agent_user.agent, at=now - timedelta(hours=h), outcome=o)
        for h, o in [(1, "answered"), (2, "busy"), (3, "answered"), (4, "no_answer"), (5, "answered")]
    ]
    group = make_call(user=agent_user, groups=[sales], at=now - timedelta(hours=6), outcome="busy")
    theirs = make_call(user=other_agent_user, agent=other_agent_user.agent, at=now - timedelta(minutes=30))
    return mine, group, theirs


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["items"]]


def test_an_agent_reads_their_own_calls_newest_first(alex, log_calls):
    mine, group, _theirs = log_calls

    response = get(alex)

    assert ids(response) == [c.pk for c in [*mine, group]]
    assert response.json()["next"] is None
    assert set(response.json()["items"][0]) == CALL_KEYS


def test_a_supervisor_reads_everyones(priya, log_calls):
    mine, group, theirs = log_calls
    assert ids(get(priya)) == [theirs.pk, *(c.pk for c in mine), group.pk]


def test_the_cursor_walks_every_call_once_keeping_the_filters(priya, log_calls):
    mine, _group, _theirs = log_calls
    seen, response = [], get(priya, params={"agent": mine[0].from_agent_id, "limit": "2"})
    pages = 0
    while True:
        seen += ids(response)
        pages += 1
        following = response.json()["next"]
        if following is None:
            break
        assert following.startswith("http://testserver/api/v1/calls?") and "limit=2" in following
        assert f"agent={mine[0].from_agent_id}" in following
        response = Client().get(following, headers=bearer(priya))

    assert seen == [c.pk for c in mine] and pages == 3


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"outcome": "busy"}, lambda mine, group: [mine[1].pk, group.pk]),
        ({"via": "group"}, lambda mine, group: [group.pk]),
        ({"outcome": "answered", "sort": "time"}, lambda mine, group: [mine[4].pk, mine[2].pk, mine[0].pk]),
        ({"has_error": "yes"}, lambda mine, group: []),
    ],
)
def test_it_filters_as_the_call_log_does(alex, log_calls, params, expected):
    mine, group, _theirs = log_calls
    assert ids(get(alex, params=params)) == expected(mine, group)


@pytest.mark.parametrize("sort", ["-time", "time", "-duration", "duration"])
def test_every_sort_reads_the_whole_log_in_its_order_page_by_page(priya, log_calls, sort):
    """Two calls a page, following `next`: the order is the call log page's, calls without a talk time last."""
    for seconds, call in zip([30, None, 30, 5, 0, 12, None], Call.objects.order_by("pk"), strict=False):
        Call.objects.filter(pk=call.pk).update(duration_seconds=seconds)
    talk = {c.pk: -1 if c.duration_seconds is None else c.duration_seconds for c in Call.objects.all()}
    key = {"time": lambda c: (c.requested_at, c.pk), "duration": lambda c: (talk[c.pk], c.pk)}[sort.lstrip("-")]
    expected = [c.pk for c in sorted(Call.objects.all(), key=key, reverse=sort.startswith("-"))]

    seen, response = [], get(priya, params={"sort": sort, "limit": 2})
    while True:
        seen += ids(response)
        if not (following := response.json()["next"]):
            break
        response = Client().get(following, headers=bearer(priya))

    assert seen == expected and len(seen) == Call.objects.count() > 4


def test_it_filters_by_group(alex, log_calls, sales):
    assert ids(get(alex, params={"group": sales.pk})) == [log_calls[1].pk]


def test_an_agent_cannot_read_another_agents_calls_by_filter(alex, log_calls, other_agent_user):
    assert ids(get(alex, params={"agent": other_agent_user.agent.pk})) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"outcome": "great"}, "outcome"),
        ({"after": "yesterday"}, "after"),
        ({"start": "2026-13-01"}, "start"),
        ({"start": "2026-03-02", "end": "2026-03-01"}, "end"),
        ({"agent": "x"}, "agent"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "²"}, "limit"),
        ({"outcomes": "busy"}, "outcomes"),
        ({"before": "1_1"}, "before"),
        ({"disposition": "a\x00b"}, "disposition"),
    ],
)
def test_a_malformed_filter_or_cursor_is_a_400_naming_it(alex, params, field):
    assert problem(get(alex, params=params), 400)["detail"].startswith(f"{field}: ")


def test_a_token_without_calls_read_is_a_403(agent_user):
    assert "calls:read" in problem(get(token_for(agent_user, "contacts:read")), 403)["detail"]


def test_the_lists_queries_do_not_grow_with_rows(alex, agent_user, sales, django_assert_max_num_queries):
    make_call(user=agent_user, agent=agent_user.agent)
    # Once first: a connection prepares the page's statement at its first page (calls/api/callrows.py), whichever
    # test that was; what is counted is every page after.
    get(alex, params={"limit": "200"})
    with django_assert_max_num_queries(6):
        assert len(ids(get(alex, params={"limit": "200"}))) == 1
    for n in range(30):
        make_call(user=agent_user, agent=agent_user.agent, contact=Contact.objects.create(name=f"C{n}"))
        make_call(user=agent_user, groups=[sales], outcome="busy")
    with django_assert_max_num_queries(6):
        assert len(ids(get(alex, params={"limit": "200"}))) == 61


# --- One call -------------------------------------------------------------------------------------------------


def test_it_reads_one_call_with_its_history(alex, contact, london, sim):
    placed = post(alex, {"to": "+447400123456"}).json()

    response = get(alex, f"/{placed['id']}")

    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in CALL_KEYS} == placed
    assert body["history"][0]["what"] == "Asked VCC to place the call"
    assert any(line["what"] == "VCC placed the call" for line in body["history"])
    assert body["events"] == []


def test_another_agents_call_is_a_404_and_a_supervisor_sees_it(alex, priya, other_agent_user, contact):
    theirs = make_call(user=other_agent_user, agent=other_agent_user.agent)

    assert problem(get(alex, f"/{theirs.pk}"), 404)
    assert get(priya, f"/{theirs.pk}").json()["id"] == theirs.pk


@pytest.mark.parametrize("path", ["/99999", f"/{2**70}", "/abc"])
def test_a_call_that_is_not_there_is_a_problem(alex, path):
    response = get(alex, path)
    assert response.status_code in (404, 422) and response["Content-Type"] == "application/problem+json"


# --- Wrap-up ----------------------------------------------------------------------------------------------------


def wrap(token: str, call_id: int, body: object):
    return Client().post(
        f"{URL}/{call_id}/wrap-up", json.dumps(body), content_type="application/json", headers=bearer(token)
    )


@pytest.fixture
def ended(alex, agent_client, contact, london, sim) -> Call:
    post(alex, {"to": "+447400123456"})
    call = Call.objects.get()
    sim.clock.advance(ENDED)
    poll(agent_client, call)
    call.refresh_from_db()
    assert call.state == Call.State.ENDED
    return call


def test_it_wraps_up_as_the_call_panel_does(alex, ended, sim):
    response = wrap(alex, ended.pk, {"disposition": "Wrong number", "notes": "  They were cross  "})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["disposition"] == "Wrong number" and body["notes"] == "They were cross"
    assert body["wrapped_up_at"] is not None
    assert body["changed"] == ["07400 123456 is now marked do not call."]
    assert sim.calls[ended.vcc_call_id].disposition_code == "Wrong number"
    assert ContactPhone.objects.get(pk=ended.phone_id).do_not_call


def test_a_call_not_ended_is_a_409_in_the_panels_words(alex, contact, london, sim):
    placed = post(alex, {"to": "+447400123456"}).json()

    body = problem(wrap(alex, placed["id"], {"disposition": "Interested"}), 409)

    assert body["detail"] == "Wrap up once the call has ended."
    assert Call.objects.get().notes == ""


@pytest.mark.parametrize("code", ["Nonsense", "Interested"])
def test_an_unknown_or_inactive_disposition_is_refused(alex, ended, code):
    DispositionCode.objects.filter(code="Interested").update(is_active=False)

    assert problem(wrap(alex, ended.pk, {"disposition": code}), 422)["detail"] == "Choose how the call went."
    ended.refresh_from_db()
    assert ended.wrapped_up_at is None


def test_a_vcc_failure_keeps_the_notes_and_is_a_502(alex, ended, sim):
    sim.set_fault("disposition", status=500)

    body = problem(wrap(alex, ended.pk, {"disposition": "Interested", "notes": "Call back Tuesday"}), 502)

    assert "Your notes are saved; send the outcome again." in body["detail"]
    assert body["vcc_status"] == 500 and body["vcc"]  # VCC's own text, as placing's 502 carries it
    ended.refresh_from_db()
    assert ended.notes == "Call back Tuesday" and ended.wrapped_up_at is None
    assert body["call"]["notes"] == "Call back Tuesday"


def test_another_agent_cannot_wrap_up_the_call(ended, other_agent_user):
    problem(wrap(token_for(other_agent_user), ended.pk, {"disposition": "Interested"}), 404)


def test_wrapping_up_needs_calls_write(agent_user, ended):
    token = token_for(agent_user, "calls:read")
    assert "calls:write" in problem(wrap(token, ended.pk, {"disposition": "Interested"}), 403)["detail"]


def test_a_page_of_the_log_shows_each_call_as_its_own_resource_does(priya, log_calls, london, sales, other_agent_user):
    """The log's page is read as rows, not models (for speed): each item must still be what GET /calls/{id} says."""
    from calls.api.callrows import ROW, rows_as_items
    from calls.api.calls import as_json, resource, with_parties

    mine, group, _ = log_calls
    group.from_groups.add(AgentGroup.objects.create(display_id="150", name="Alpha"))  # two groups, in their order
    Call.objects.filter(pk=mine[0].pk).update(
        presented_clid=london.number, disposition_code="SALE", notes="Keen", error_display="", vcc_call_id="abc"
    )
    make_call(user=other_agent_user, agent=other_agent_user.agent, to_number="", to_agent=mine[0].from_agent)
    whole_second = mine[1].requested_at.replace(microsecond=0)
    Call.objects.filter(pk=mine[1].pk).update(
        requested_at=whole_second,  # no fraction written
        connected_at=whole_second + timedelta(microseconds=500),  # under a millisecond: ".000"
        ended_at=whole_second + timedelta(seconds=3, microseconds=999_999),  # milliseconds cut, not rounded
        notes='Zoë said "call me"\n\tat 5 \\ o\'clock',
    )

    Call.objects.filter(pk=group.pk).update(connected_at=None, duration_seconds=0)  # ended, never connected

    items = get(priya, params={"limit": 200}).json()["items"]

    assert next(i for i in items if i["id"] == group.pk)["duration_seconds"] is None  # no talk time, as on the page
    expected = {c.pk: as_json(resource(c)) for c in with_parties(Call.objects.all())}
    assert len(items) == len(expected) and all(item == expected[item["id"]] for item in items)
    # The rows as Python makes them (where PostgreSQL does not write the JSON) say the same.
    rows = list(Call.objects.values_list(*ROW))
    assert {item["id"]: item for item in rows_as_items(rows, "/calls/")} == expected
    assert next(i for i in items if i["id"] == group.pk)["via_groups"] == [
        g.pk for g in AgentGroup.objects.filter(calls=group)
    ]


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
