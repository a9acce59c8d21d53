"""The real VCC client against the simulator over a real socket: the two sides must agree on the wire."""

from __future__ import annotations

import base64
import logging

import pytest
from django.core.cache import cache
from django.test import Client

from calls.models import Call, CallbackNumber
from calls.sync import sync_from_vcc
from calls.vcc import (
    AsyncVCCClient,
    CallRequest,
    UserAdminClient,
    VCCClient,
    VCCError,
    budget,
    get_async_client,
    get_client,
)
from tests._sim import agent_user, click, only_call, primary
from vccsim import Clock, Simulator, load_account, start_server

NUMBER = "02072068800"  # the simulator answers numbers that don't end in 91-94


@pytest.fixture(scope="module")
def running_server():
    with start_server(Simulator(load_account(), clock=Clock(manual=True))) as running:
        yield running


@pytest.fixture
def server(running_server, settings):
    running_server.sim.reset()
    settings.VCC_BASE_URL = settings.VCC_AUTH_URL = settings.VCC_GATEWAY_URL = running_server.base_url
    settings.VCC_TRANSPORT = ""
    settings.VCC_ACCOUNT_KEY = "sandbox01"
    settings.VCC_API_TOKEN = "sandbox-api-token"
    settings.VCC_CLIENT_ID = "sandbox-client"
    settings.VCC_CLIENT_SECRET = "sandbox-secret"
    settings.VCC_API_VERSION = 6
    cache.clear()
    yield running_server
    cache.clear()


@pytest.fixture
def sim(server):
    return server.sim


@pytest.fixture
def client(server):
    with get_client() as vcc:
        yield vcc


def v0_tokens(sim) -> int:
    return sum(token.kind == "v0" for token in sim.tokens.values())


def test_it_gets_one_token_and_reuses_it(client, sim):
    client.agents_ready()
    client.agents_ready(["030"])
    assert v0_tokens(sim) == 1


@pytest.mark.parametrize(
    "req",
    [
        CallRequest(from_agent_id="1001", to_number=NUMBER),
        CallRequest(from_agent_id="1001", to_agent_id="1002"),
        CallRequest(from_groups=["030"], to_number=NUMBER),
        CallRequest(from_groups=["400", "200", "030"], to_number=NUMBER),
        CallRequest(from_agent_id="1001", presented_clid="+13125550100", to_number=NUMBER),
        CallRequest(
            from_agent_id="1001",
            presented_clid="+442079460100",
            to_number=NUMBER,
            reference="0012400000ATTUQ",
            application="vccweb",
        ),
        CallRequest(from_agent_id="1001", to_number=NUMBER, reference="http://testserver/contacts/7/"),
        CallRequest(from_agent_id="1001", consent="OneParty", to_number=NUMBER, to_consent="TwoParty"),
    ],
    ids=["agent-number", "agent-agent", "group", "groups", "clid", "reference-application", "url", "consent"],
)
def test_one_click_places_exactly_one_call_of_each_shape(client, sim, req):
    placed = client.place_call(req)

    assert sim.calls_placed == 1
    assert placed.status == "Active"
    assert placed.location and placed.location.endswith(f"/calls/{placed.call_id}")
    call = sim.calls[placed.call_id]
    assert call.to_party.get("telephoneNumber") == req.to_number
    assert call.dialled_agent_id == req.to_agent_id
    if req.presented_clid:
        assert placed.presented_clid == req.presented_clid
    if req.from_groups:
        assert "agentId" not in placed.raw["from"]  # named once an agent of the groups answers
        assert call.agent_id in {"1001", "1002", "1003", "1004"}
    assert call.application == req.application
    assert (call.regarding or {}).get("reference") == req.reference


def test_the_call_detail_follows_the_call_to_its_end(client, sim):
    placed = client.place_call(CallRequest(from_agent_id="1001", to_number=NUMBER))
    assert client.get_call(placed.call_id).is_live
    assert client.get_agent("1001").current_call_id == placed.call_id

    sim.clock.advance(3600)
    detail = client.get_call(placed.call_id)
    assert detail.has_ended and detail.status is None
    assert (detail.result_code, detail.result_party, detail.result_reason) == ("Success", "Destination", "Answered")


def test_an_unanswered_call_ends_with_its_reason(client, sim):
    placed = client.place_call(CallRequest(from_agent_id="1001", to_number="02072068892"))
    sim.clock.advance(3600)
    detail = client.get_call(placed.call_id)
    assert (detail.result_code, detail.result_reason) == ("Failure", "NoAnswer")


def test_it_pauses_and_resumes_recording(client, sim):
    placed = client.place_call(CallRequest(from_agent_id="1001", to_number=NUMBER))
    sim.clock.advance(10)  # connected
    assert client.get_call(placed.call_id).recording_status == "Started"

    assert client.set_recording(placed.call_id, "Paused") == "Paused"
    sim.clock.advance(2)  # VCC applies it asynchronously
    assert client.get_call(placed.call_id).recording_status == "Paused"
    assert client.set_recording(placed.call_id, "Started") == "Started"
    sim.clock.advance(2)
    assert client.get_call(placed.call_id).recording_status == "Started"


def test_recording_an_ended_call_is_refused(client, sim):
    placed = client.place_call(CallRequest(from_agent_id="1001", to_number=NUMBER))
    sim.clock.advance(3600)
    with pytest.raises(VCCError) as caught:
        client.set_recording(placed.call_id, "Paused")
    assert caught.value.status == 400
    assert caught.value.message == "Unable to control recording - call is not active"


def test_it_sets_a_disposition_code(client, sim):
    placed = client.place_call(CallRequest(from_agent_id="1001", to_number=NUMBER))
    sim.clock.advance(3600)
    assert client.set_disposition(placed.call_id, "Wrong Number", "1001") == "Wrong Number"
    assert client.get_call(placed.call_id).disposition_code == "Wrong Number"


def test_an_unknown_call_is_a_404(client):
    with pytest.raises(VCCError) as caught:
        client.get_call("94e5928c-7f7e-4645-ad72-61010f906449")
    assert caught.value.status == 404 and "24 hours" in caught.value.user_message


def test_it_counts_and_lists_ready_agents(client):
    assert client.agents_ready().count == 4
    assert client.agents_ready(["030"]).count == 3
    assert client.agents_ready(["400"]).count == 0
    assert client.agents_ready(["200", "030"], count_only=False).agent_ids == ("1001", "1002", "1003", "1004")


def test_a_placed_call_makes_its_agent_busy(client):
    client.place_call(CallRequest(from_agent_id="1001", to_number=NUMBER))
    assert client.agents_ready(["030"]).count == 2


@pytest.mark.parametrize(
    ("req", "text", "user_text"),
    [
        (
            CallRequest(from_agent_id="1006", to_number=NUMBER),
            "Unable to place call - Agent number busy",
            "Your phone is busy: finish your current call, then try again.",
        ),
        (
            CallRequest(from_agent_id="1999", to_number=NUMBER),
            "Unable to place call - Agent Id is unknown",
            "ask an admin",
        ),
        (CallRequest(from_agent_id="1001", to_agent_id="1999"), "Unable to place call - invalid Agent Id", "agent ID"),
        (
            CallRequest(from_agent_id="1001", to_agent_id="1005"),
            "Unable to place call - dialed Agent is not currently available",
            "not available",
        ),
        (CallRequest(from_agent_id="1001", to_number="12345"), "Unable to place call - number is invalid", "number"),
        (
            CallRequest(from_groups=["400"], to_number=NUMBER),
            "Unable to place call to Agent. Please try again",
            "again",
        ),
        (
            CallRequest(from_agent_id="1001", presented_clid="+441614960200", to_number=NUMBER),
            "Unable to place call - presented CLID is not available to this agent",
            "VCC refused the request: Unable to place call - presented CLID",
        ),
    ],
    ids=["busy", "unknown-agent", "unknown-dialled-agent", "dialled-agent-away", "bad-number", "nobody-ready", "clid"],
)
def test_vccs_refusals_reach_the_caller_as_vcc_errors(client, sim, req, text, user_text):
    with pytest.raises(VCCError) as caught:
        client.place_call(req)
    assert caught.value.status == 400
    assert caught.value.message == text
    assert user_text in caught.value.user_message
    assert not caught.value.may_have_placed
    assert sim.calls_placed == 0


def test_fields_an_older_api_version_lacks_never_leave_the_app(client, sim, settings):
    settings.VCC_API_VERSION = 3
    with get_client() as old:
        with pytest.raises(VCCError, match="need API version 4 or later") as caught:
            old.place_call(CallRequest(from_agent_id="1001", to_number=NUMBER, application="vccweb"))
        assert caught.value.local
        settings.VCC_API_VERSION = 5
    with get_client() as v5, pytest.raises(VCCError, match="Consent needs API version 6 or later"):
        v5.place_call(CallRequest(from_agent_id="1001", to_number=NUMBER, consent="OneParty"))
    assert sim.calls_placed == 0


def test_an_expired_token_is_refreshed_once_and_the_call_placed_once(client, sim):
    client.agents_ready()
    sim.set_fault("place_call", expire_tokens=True, count=1)
    placed = client.place_call(CallRequest(from_agent_id="1001", to_number=NUMBER))
    assert placed.call_id in sim.calls
    assert sim.calls_placed == 1
    assert v0_tokens(sim) == 2


def test_a_server_error_on_a_read_is_retryable(client, sim):
    sim.set_fault("agents", status=502, count=1)
    with pytest.raises(VCCError) as caught:
        client.agents_ready()
    assert caught.value.status == 502 and caught.value.retryable
    assert client.agents_ready().count == 4


def test_a_server_error_on_a_call_request_is_not_retried(client, sim):
    sim.set_fault("place_call", status=500, count=1)
    with pytest.raises(VCCError) as caught:
        client.place_call(CallRequest(from_agent_id="1001", to_number=NUMBER))
    assert caught.value.status == 500 and caught.value.may_have_placed
    assert sim.calls_placed == 0  # the simulator refused before placing, and the client did not try again


def test_a_429_on_a_read_is_waited_out_once(client, sim, vcc_waits):
    sim.set_fault("get_call", status=429, retry_after=1, count=1)
    placed = client.place_call(CallRequest(from_agent_id="1001", to_number=NUMBER))
    assert client.get_call(placed.call_id).call_id == placed.call_id
    assert vcc_waits == [1]  # its Retry-After, waited once


def test_a_429_on_a_call_request_is_reported_not_retried(client, sim):
    sim.set_fault("place_call", status=429, retry_after=1, count=1)
    with pytest.raises(VCCError) as caught:
        client.place_call(CallRequest(from_agent_id="1001", to_number=NUMBER))
    assert caught.value.status == 429 and caught.value.retry_after == 1
    assert caught.value.user_message == "VCC is limiting requests; try again in a moment."
    assert sim.calls_placed == 0


def test_the_fair_use_limit_reaches_the_caller(client, sim):
    client.agents_ready()
    sim.set_fair_use(0)
    with pytest.raises(VCCError) as caught:
        client.place_call(CallRequest(from_agent_id="1001", to_number=NUMBER))
    assert caught.value.status == 429 and caught.value.retryable


def test_a_slow_vcc_times_out_and_the_call_is_not_placed_twice(client, server, sim, settings, monkeypatch):
    """VCC places the call but holds its answer past the read timeout, until the test lets it go."""
    import threading

    import vccsim.server

    handled, answer = threading.Event(), threading.Event()

    class HeldAnswer:
        @staticmethod
        def sleep(seconds: float) -> None:  # the server's wait before a delayed answer
            if seconds:
                handled.set()
                answer.wait(30)

    monkeypatch.setattr(vccsim.server, "time", HeldAnswer)
    client.agents_ready()  # the token, fetched with the usual timeout: under load it took 250 ms
    settings.VCC_READ_TIMEOUT = 0.3
    sim.set_fault("place_call", latency_ms=1000, count=1)
    try:
        with get_client() as slow_to_answer, pytest.raises(VCCError) as caught:
            slow_to_answer.place_call(CallRequest(from_agent_id="1001", to_number=NUMBER))
        assert handled.wait(30)  # the server's thread has handled the request (it may lag the client's timeout)
    finally:
        answer.set()
    assert caught.value.may_have_placed and not caught.value.retryable
    assert sim.calls_placed == 1  # VCC did place it: retrying would have rung the phone twice
    assert v0_tokens(sim) == 1  # the token in the cache served the slow request


def test_a_connection_dropped_after_placing_is_reported_as_maybe_placed(client, sim):
    sim.set_fault("place_call", drop="after", count=1)
    with pytest.raises(VCCError) as caught:
        client.place_call(CallRequest(from_agent_id="1001", to_number=NUMBER))
    assert caught.value.may_have_placed
    assert sim.calls_placed == 1


@pytest.mark.parametrize("body", ["truncated", "empty"])
def test_an_unreadable_201_is_reported_as_maybe_placed(client, sim, body):
    sim.set_fault("place_call", body=body, count=1)
    with pytest.raises(VCCError) as caught:
        client.place_call(CallRequest(from_agent_id="1001", to_number=NUMBER))
    assert caught.value.status == 201 and caught.value.may_have_placed
    assert "/calls/" in caught.value.message  # the Location, for whoever reconciles the call
    assert sim.calls_placed == 1


def test_a_malformed_read_is_retryable(client, sim):
    sim.set_fault("agents", body="truncated", count=1)
    with pytest.raises(VCCError) as caught:
        client.agents_ready()
    assert caught.value.retryable


def test_wrong_credentials_are_a_vcc_error(server):
    with VCCClient(api_token="wrong") as client, pytest.raises(VCCError) as caught:
        client.agents_ready()
    assert caught.value.status == 400 and "credentials" in caught.value.user_message


def test_a_refused_connection_is_a_vcc_error(server):
    with start_server() as stopped:
        url = stopped.base_url
    with VCCClient(base_url=url) as client, pytest.raises(VCCError) as caught:
        client.place_call(CallRequest(from_agent_id="1001", to_number=NUMBER))
    assert caught.value.retryable and not caught.value.may_have_placed
    assert caught.value.user_message == "vccweb could not reach VCC; try again in a moment."


async def test_the_async_client_places_and_follows_a_call(server, sim):
    async with AsyncVCCClient() as client:
        placed = await client.place_call(CallRequest(from_groups=["030"], to_number=NUMBER))
        assert (await client.get_call(placed.call_id)).is_live
        sim.clock.advance(3600)
        assert (await client.get_call(placed.call_id)).has_ended
        assert await client.set_disposition(placed.call_id, "Sale", None) == "Sale"
    assert sim.calls_placed == 1


async def test_the_async_client_reports_a_busy_agent(server, sim):
    async with AsyncVCCClient() as client:
        with pytest.raises(VCCError) as caught:
            await client.place_call(CallRequest(from_agent_id="1006", to_number=NUMBER))
    assert caught.value.user_message == "Your phone is busy: finish your current call, then try again."


# --- Gateway User Admin ---------------------------------------------------------------------------


def test_it_syncs_users_groups_members_and_callback_numbers(server, sim):
    with UserAdminClient() as admin:
        users = admin.users()
        groups = admin.groups()
        sales = next(group for group in groups if group.display_id == "030")
        members = admin.group_members(sales.group_id)
        by_agent = {user.agent_display_id: user for user in users}
        alex_numbers = admin.callback_numbers(by_agent["1001"].user_id)
        priya_numbers = admin.callback_numbers(by_agent["1002"].user_id)

    assert sorted(by_agent) == ["1001", "1002", "1003", "1004", "1005", "1006"]
    assert by_agent["1001"].name == "Alex Morgan" and by_agent["1001"].email == "alex.morgan@example.com"
    assert {group.display_id: group.name for group in groups} == {
        "030": "Sales UK",
        "200": "Support",
        "400": "Out of hours",
    }
    assert [member.agent_display_id for member in members] == ["1001", "1003", "1004"]
    assert [number.clid for number in alex_numbers] == ["+442079460100", "+13125550100"]
    # As VCC lists them: the sample account holds Manchester in national format.
    assert [number.clid for number in priya_numbers] == ["+442079460100", "01614960200", "+13125550100"]
    assert sum(token.kind == "gateway" and token.scopes == {"users:read"} for token in sim.tokens.values()) == 1


@pytest.mark.django_db
def test_a_click_presenting_a_number_vcc_lists_in_national_format_is_placed(server, sim, make_user, contact):
    """VCC lists Manchester support as 01614960200: the sync reads it, and the click sends that form back."""
    priya = agent_user(make_user, "priya", "1002", "Priya Shah")
    with UserAdminClient() as admin:
        sync_from_vcc(admin)
    manchester = CallbackNumber.objects.get(number="+441614960200")
    browser = Client()
    browser.force_login(priya)

    response = click(browser, primary(contact), clid=manchester.pk)

    assert response.status_code == 200
    call = only_call()
    assert call.state == Call.State.LIVE and call.vcc_call_id in sim.calls
    assert call.request_body["from"]["presentedCLID"] == "01614960200"
    assert sim.calls[call.vcc_call_id].from_party["presentedClid"] == "01614960200"
    assert call.presented_clid == "+441614960200" and call.callback_number == manchester


@pytest.mark.parametrize(("retry_after", "waited"), [(None, 10), (1, 1), (30, 30)])
def test_a_sync_request_limited_by_vcc_waits_out_the_back_off_and_goes_on(server, sim, vcc_waits, retry_after, waited):
    sim.set_fault("users", status=429, retry_after=retry_after, count=2)  # with or without Retry-After, twice
    with budget.priority(budget.SYNC), UserAdminClient() as admin:
        assert len(admin.users()) == 6
    assert vcc_waits == [waited, waited]  # the back-off each 429 began (10 s without Retry-After), then sent again


def test_a_sync_request_gives_up_after_four_429s(server, sim, vcc_waits):
    sim.set_fault("users", status=429, count=4)
    with budget.priority(budget.SYNC), UserAdminClient() as admin, pytest.raises(VCCError) as caught:
        admin.users()
    assert caught.value.status == 429 and caught.value.retryable  # the sync job tries again later
    assert vcc_waits == [10, 10, 10]


def test_it_reads_every_page_of_users(server, monkeypatch):
    monkeypatch.setattr("calls.vcc.gateway.PAGE_SIZE", 4)
    with UserAdminClient() as admin:
        assert len(admin.users()) == 6


def test_no_log_record_over_a_real_socket_contains_a_secret(client, sim, caplog):
    caplog.set_level(logging.DEBUG)
    sim.set_fault("place_call", expire_tokens=True, count=1)
    client.place_call(CallRequest(from_agent_id="1001", to_number=NUMBER))

    secrets = [*sim.tokens, "sandbox-api-token", base64.b64encode(b"sandbox01:sandbox-api-token").decode()]
    assert len(secrets) == 4
    logged = "\n".join(record.getMessage() + repr(record.args) for record in caplog.records)
    assert "calls/" in logged
    for secret in secrets:
        assert secret not in logged


async def test_async_clients_in_one_event_loop_share_their_connections_to_vcc(settings):
    """Each click builds its own client; in one worker's loop they reuse one pool of connections."""
    with start_server(Simulator(load_account())) as server:
        settings.VCC_TRANSPORT = ""
        settings.VCC_BASE_URL = server.base_url
        settings.VCC_ACCOUNT_KEY, settings.VCC_API_TOKEN = "sandbox01", "sandbox-api-token"
        seen: list[int] = []
        for _ in range(3):
            async with get_async_client() as client:
                assert (await client.agents_ready(["030"])).count == 3
                seen.append(id(client._http._transport.pool))
        assert len(set(seen)) == 1
        assert server.connections_accepted == 1
