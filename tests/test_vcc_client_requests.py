"""The VCC client's requests against httpx.MockTransport: placing a call, validating input, the other operations."""

from __future__ import annotations

import httpx
import pytest

from calls.vcc import CallRequest, VCCError
from tests import _vcc_client
from tests._vcc_client import (
    BASE,
    CALL_ID,
    CALLS_URL,
    DOC_BASIC,
    DOCUMENTED_CALLS,
    KEY,
    LOCATION,
    PLACED_BODY,
    FakeVCC,
    client_for,
    created,
    sent_json,
)

vcc_settings = _vcc_client.vcc_settings  # autouse fixture

AGENT_CALL_ID = "01461e37-deb9-b2bf-240d-032be5fe917e"


# --- Placing a call: every documented example ----------------------------------------------------


@pytest.mark.parametrize(("req", "body"), DOCUMENTED_CALLS)
def test_it_sends_each_documented_call_exactly(req, body):
    fake = FakeVCC(created())
    with client_for(fake) as client:
        client.place_call(req)

    request = fake.request
    assert request.method == "POST"
    assert str(request.url) == CALLS_URL
    assert request.headers["Authorization"] == "Bearer token-1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json;version=6"
    assert sent_json(request) == body


def test_it_asks_for_the_configured_api_version(vcc_settings):
    vcc_settings.VCC_API_VERSION = 4
    fake = FakeVCC(created())
    client_for(fake).place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))
    assert fake.request.headers["Accept"] == "application/json;version=4"


def test_it_fetches_the_v0_token_with_basic_auth():
    fake = FakeVCC(created())
    client_for(fake).place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))

    (token_request,) = fake.token_requests
    assert token_request.method == "POST"
    assert str(token_request.url) == f"{BASE}/v0/oauth2/token"
    assert token_request.headers["Authorization"] == DOC_BASIC
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert token_request.content == b"grant_type=client_credentials"


def test_it_reads_the_placed_call():
    fake = FakeVCC(created())
    placed = client_for(fake).place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))

    assert placed.call_id == CALL_ID
    assert placed.location == LOCATION
    assert placed.status == "Active"
    assert placed.recording_status == "Stopped"
    assert placed.disposition_code is None
    assert placed.presented_clid == "123456789"
    assert placed.raw == PLACED_BODY


def test_it_takes_the_call_id_from_location_when_vcc_echoes_the_request():
    echo = {"from": {"agentId": "1234", "presentedCLID": "08008888888"}, "to": {"telephoneNumber": "02072068888"}}
    placed = client_for(FakeVCC(created(echo))).place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))
    assert placed.call_id == CALL_ID
    assert placed.presented_clid == "08008888888"


# --- Validation: bad input never leaves the app -------------------------------------------------

INVALID_CALLS = [
    (CallRequest(from_agent_id="12a4", to_number="02072068888"), "Agent Id must contain digits only"),
    (CallRequest(from_agent_id="123456789012", to_number="02072068888"), "Agent Id exceeds 11 digits"),
    (CallRequest(from_agent_id="1234", to_agent_id="45x"), "Agent Id must contain digits only"),
    (CallRequest(from_agent_id="1234", to_agent_id="123456789012"), "Agent Id exceeds 11 digits"),
    (CallRequest(from_agent_id="1234", to_number="0" * 31), "Telephone number exceeds 30 characters"),
    (CallRequest(from_agent_id="1234"), "Either telephone number or agent id required"),
    (
        CallRequest(from_agent_id="1234", to_number="02072068888", to_agent_id="4567"),
        "Either telephone number or agent id required, not both",
    ),
    (CallRequest(to_number="02072068888"), "Agent Id must be specified"),
    (
        CallRequest(from_agent_id="1234", from_groups=["030"], to_number="02072068888"),
        "Either agent id or groups required, not both",
    ),
    (CallRequest(from_groups=["030", " "], to_number="02072068888"), "Group Id must not be blank"),
    (
        CallRequest(from_agent_id="1234", to_number="02072068888", reference="x" * 2001),
        "Reference exceeded 2000 characters",
    ),
    (
        CallRequest(from_agent_id="1234", to_number="02072068888", reference="not a reference!"),
        "Reference contained invalid characters",
    ),
    (
        CallRequest(from_agent_id="1234", to_number="02072068888", reference="ftp://example.com/x"),
        "Reference contained invalid characters",
    ),
    (
        CallRequest(from_agent_id="1234", to_number="02072068888", application="a" * 33),
        "Application exceeded 32 characters",
    ),
    (
        CallRequest(from_agent_id="1234", to_number="02072068888", application="app name"),
        "Application contains non-alphanumeric characters",
    ),
    (
        CallRequest(from_agent_id="1234", to_number="02072068888", consent="Maybe"),
        "Consent must be one of Unknown, OneParty, TwoParty",
    ),
    (
        CallRequest(from_agent_id="1234", to_number="02072068888", to_consent="oneparty"),
        "Consent must be one of Unknown, OneParty, TwoParty",
    ),
]


@pytest.mark.parametrize(("req", "text"), INVALID_CALLS)
def test_it_refuses_invalid_calls_without_sending_anything(req, text):
    fake = FakeVCC(created())
    with pytest.raises(VCCError) as caught:
        client_for(fake).place_call(req)

    assert caught.value.message == text
    assert caught.value.local is True
    assert caught.value.status is None
    assert caught.value.retryable is False
    assert text in caught.value.user_message
    assert fake.requests == [] and fake.token_requests == []


def test_it_accepts_the_limits_exactly():
    fake = FakeVCC(created())
    req = CallRequest(
        from_agent_id="12345678901",
        to_number="0" * 30,
        reference="x" * 2000,
        application="a" * 32,
        consent="Unknown",
    )
    client_for(fake).place_call(req)
    assert sent_json(fake.request)["to"] == {"telephoneNumber": "0" * 30}


@pytest.mark.parametrize(
    ("call", "text"),
    [
        (lambda c: c.set_recording(CALL_ID, "Stopped"), "Recording status must be one of Paused, Started"),
        (lambda c: c.set_disposition(CALL_ID, "  ", "1234"), "Disposition code field was expected. "),
        (lambda c: c.set_disposition(CALL_ID, "x" * 256, "1234"), "Disposition code excceeds 255 characters."),
        (lambda c: c.set_disposition(CALL_ID, "Sale", "12a"), "Agent Id must contain digits only"),
        (lambda c: c.get_call("../agents/1"), "Call Id is not valid"),
        (lambda c: c.get_agent("1/../2"), "Agent Id must contain digits only"),
        (lambda c: c.agents_ready(["030", "1,2"]), "Group Id must not be blank or contain commas"),
    ],
)
def test_it_refuses_invalid_arguments_to_other_operations(call, text):
    fake = FakeVCC(httpx.Response(200, json={}))
    with pytest.raises(VCCError) as caught:
        call(client_for(fake))
    assert caught.value.message == text and caught.value.local
    assert ".." not in caught.value.user_message
    assert fake.requests == []


# --- Other operations -----------------------------------------------------------------------------


def test_it_gets_a_failed_calls_detail():
    # The "where the call failed" example from "Retrieving the call detail".
    body = {
        "id": "94e5928c-7f7e-4645-ad72-61010f906449",
        "links": [],
        "from": {"telephoneNumber": "02072068888", "agentId": "10"},
        "to": {"telephoneNumber": "02072068888"},
        "status": None,
        "recordingStatus": None,
        "result": {"code": "Failure", "party": "Originator", "reason": "NoAnswer"},
        "dispositionCode": "Wrong Number",
    }
    fake = FakeVCC(httpx.Response(200, json=body))
    detail = client_for(fake).get_call("94e5928c-7f7e-4645-ad72-61010f906449")

    request = fake.request
    assert request.method == "GET"
    assert str(request.url) == f"{BASE}/v0/{KEY}/calls/94e5928c-7f7e-4645-ad72-61010f906449"
    assert request.headers["Authorization"] == "Bearer token-1"
    assert request.headers["Accept"] == "application/json;version=6"
    assert (detail.result_code, detail.result_party, detail.result_reason) == ("Failure", "Originator", "NoAnswer")
    assert detail.disposition_code == "Wrong Number"
    assert detail.status is None and detail.recording_status is None
    assert detail.has_ended and not detail.is_live


def test_it_reads_a_live_call():
    fake = FakeVCC(httpx.Response(200, json=PLACED_BODY))
    detail = client_for(fake).get_call(CALL_ID)
    assert detail.is_live and not detail.has_ended
    assert detail.presented_clid == "123456789"
    assert detail.recording_status == "Stopped"


@pytest.mark.parametrize("status", ["Paused", "Started"])
def test_it_sets_recording(status):
    fake = FakeVCC(httpx.Response(202, json={"recordingStatus": status}))
    assert client_for(fake).set_recording(CALL_ID, status) == status

    request = fake.request
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/v0/{KEY}/calls/{CALL_ID}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer token-1"
    assert sent_json(request) == {"recordingStatus": status}


def test_it_accepts_a_recording_change_without_a_body():
    assert client_for(FakeVCC(httpx.Response(202))).set_recording(CALL_ID, "Paused") == "Paused"


def test_it_sets_a_disposition_code():
    fake = FakeVCC(httpx.Response(200, json={"dispositionCode": "Wrong Number"}))
    assert client_for(fake).set_disposition(CALL_ID, "Wrong Number", "1234") == "Wrong Number"

    request = fake.request
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/v0/{KEY}/calls/{CALL_ID}/dispositionCode"
    assert request.headers["Content-Type"] == "application/json"
    assert sent_json(request) == {"dispositionCode": "Wrong Number", "agentId": "1234"}


def test_it_sets_a_disposition_code_without_an_agent():
    fake = FakeVCC(httpx.Response(200, json={"dispositionCode": "Sale"}))
    client_for(fake).set_disposition(CALL_ID, "Sale", None)
    assert sent_json(fake.request) == {"dispositionCode": "Sale"}


def test_it_counts_ready_agents_in_groups():
    fake = FakeVCC(httpx.Response(200, json={"count": 3}))
    availability = client_for(fake).agents_ready(["124", "654", "002"])

    request = fake.request
    assert request.method == "GET"
    assert (
        str(request.url)
        == f"{BASE}/v0/{KEY}/agents/?availability=readyForPhoneCall&groups=124%2C654%2C002&fields=count"
    )
    assert request.headers["Accept"] == "application/json"
    assert availability.count == 3 and availability.agent_ids == ()


def test_it_lists_ready_agents():
    body = {"count": 3, "agents": [{"id": "5464", "links": []}, {"id": "67668", "links": []}, {"id": "67697"}]}
    fake = FakeVCC(httpx.Response(200, json=body))
    availability = client_for(fake).agents_ready(count_only=False)

    assert str(fake.request.url) == f"{BASE}/v0/{KEY}/agents/?availability=readyForPhoneCall"
    assert availability.count == 3
    assert availability.agent_ids == ("5464", "67668", "67697")


def test_it_gets_an_agents_current_call():
    body = {
        "id": "462",
        "links": [
            {"href": f"https://x.newvoicemedia.com/V0/{KEY}/Agents/462", "rel": "_self"},
            {
                "href": f"https://x.newvoicemedia.com/V0/{KEY}/Calls/{AGENT_CALL_ID}",
                "rel": "currentCall",
            },
        ],
        "currentCallGuid": AGENT_CALL_ID,
    }
    fake = FakeVCC(httpx.Response(200, json=body))
    agent = client_for(fake).get_agent("462")

    assert str(fake.request.url) == f"{BASE}/v0/{KEY}/agents/462"
    assert fake.request.headers["Accept"] == "application/json"
    assert agent.agent_id == "462"
    assert agent.current_call_id == AGENT_CALL_ID


def test_it_finds_the_current_call_from_links_alone():
    body = {"id": "462", "links": [{"href": f"https://x/V0/{KEY}/Calls/abc-123", "rel": "currentCall"}]}
    assert client_for(FakeVCC(httpx.Response(200, json=body))).get_agent("462").current_call_id == "abc-123"


def test_an_idle_agent_has_no_current_call():
    agent = client_for(FakeVCC(httpx.Response(200, json={"id": "462", "links": []}))).get_agent("462")
    assert agent.current_call_id is None
