"""The VCC V0 client against httpx.MockTransport: exact requests, parsing, validation, errors and the token cache."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

import httpx
import pytest
from django.core.cache import cache, caches

from calls.vcc import AsyncVCCClient, CallRequest, VCCClient, VCCError, get_async_client, get_client

BASE = "https://emea.vcc.test"
KEY = "a1b2c3d4e5"
# The worked example on VCC's "Getting a bearer access token" page.
API_TOKEN = "9pBl+xY1MW+AbsdZk4xpv7NwWxG8+oqduKiSqVybM9Y="
DOC_BASIC = "Basic YTFiMmMzZDRlNTo5cEJsK3hZMU1XK0Fic2RaazR4cHY3TndXeEc4K29xZHVLaVNxVnliTTlZPQ=="
CALLS_URL = f"{BASE}/v0/{KEY}/calls/"
CALL_ID = "017db4a2-44b5-672e-8b9f-1a805fed07ad"
AGENT_CALL_ID = "01461e37-deb9-b2bf-240d-032be5fe917e"

# The v6 "Successful response" example from "Making a call".
PLACED_BODY = {
    "id": CALL_ID,
    "links": [{"href": f"https://emea.cc.vonage.com/V0/lmccg0ujju4/Calls/{CALL_ID}", "rel": "_self"}],
    "from": {"presentedClid": "123456789", "agentId": "1234"},
    "to": {"telephoneNumber": "02072068888"},
    "regarding": {"reference": "0012400000ATTUQ"},
    "status": "Active",
    "recordingStatus": "Stopped",
    "application": "ExampleAppName",
    "dispositionCode": None,
}
LOCATION = f"https://emea.newvoicemedia.com/v0/{KEY}/calls/{CALL_ID}"

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class FakeVCC:
    """Answers the token endpoint itself (token-1, token-2, ...) and everything else from `replies`, in order."""

    def __init__(self, *replies: Reply, expires_in: int | None = 3600, token_gate: threading.Event | None = None):
        self.replies = list(replies)
        self.expires_in = expires_in
        self.token_gate = token_gate  # when given, the token endpoint answers only once it is set
        self.token_requests: list[httpx.Request] = []
        self.requests: list[httpx.Request] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v0/oauth2/token":
            with self._lock:
                self.token_requests.append(request)
                number = len(self.token_requests)
            if self.token_gate is not None:
                self.token_gate.wait(timeout=10)
            body = {"access_token": f"token-{number}", "token_type": "bearer"}
            if self.expires_in is not None:
                body["expires_in"] = self.expires_in
            return httpx.Response(200, json=body)
        with self._lock:
            self.requests.append(request)
            reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, httpx.Response):  # a fresh copy: a response is read once, by one kind of client
            return httpx.Response(reply.status_code, headers=reply.headers, content=reply.content)
        return reply(request)

    @property
    def request(self) -> httpx.Request:
        assert len(self.requests) == 1
        return self.requests[0]


def created(body: dict | None = None) -> httpx.Response:
    return httpx.Response(201, json=PLACED_BODY if body is None else body, headers={"Location": LOCATION})


def message(status: int, text: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"message": text}, headers=headers)


def sent_json(request: httpx.Request) -> dict:
    return json.loads(request.content)


@pytest.fixture(autouse=True)
def vcc_settings(settings):
    settings.VCC_BASE_URL = BASE
    settings.VCC_ACCOUNT_KEY = KEY
    settings.VCC_API_TOKEN = API_TOKEN
    settings.VCC_TRANSPORT = ""
    settings.VCC_API_VERSION = 6
    cache.clear()
    yield settings
    cache.clear()


def client_for(fake: FakeVCC) -> VCCClient:
    return VCCClient(transport=httpx.MockTransport(fake))


# --- Placing a call: every documented example ----------------------------------------------------

DOCUMENTED_CALLS = [
    pytest.param(
        CallRequest(from_agent_id="1234", to_number="02072068888"),
        {"from": {"agentId": "1234"}, "to": {"telephoneNumber": "02072068888"}},
        id="agent-to-number",
    ),
    pytest.param(
        CallRequest(from_agent_id="1234", to_agent_id="4567"),
        {"from": {"agentId": "1234"}, "to": {"agentId": "4567"}},
        id="agent-to-agent",
    ),
    pytest.param(
        CallRequest(from_groups=["030"], to_number="02072068888"),
        {"from": {"groups": ["030"]}, "to": {"telephoneNumber": "02072068888"}},
        id="group-to-number",
    ),
    pytest.param(
        CallRequest(from_groups=("030", "200", "400"), to_number="02072068888"),
        {"from": {"groups": ["030", "200", "400"]}, "to": {"telephoneNumber": "02072068888"}},
        id="groups-to-number",
    ),
    pytest.param(
        CallRequest(from_agent_id="1234", presented_clid="08008888888", to_number="02072068888"),
        {"from": {"agentId": "1234", "presentedCLID": "08008888888"}, "to": {"telephoneNumber": "02072068888"}},
        id="presented-clid",
    ),
    pytest.param(
        CallRequest(
            from_agent_id="1234",
            presented_clid="08008888888",
            to_number="02072068888",
            reference="0012400000ATTUQ",
            application="appName",
        ),
        {
            "from": {"agentId": "1234", "presentedCLID": "08008888888"},
            "to": {"telephoneNumber": "02072068888"},
            "regarding": {"reference": "0012400000ATTUQ"},
            "application": "appName",
        },
        id="reference-and-application",
    ),
    pytest.param(
        CallRequest(from_agent_id="1234", consent="OneParty", to_number="02072068888", to_consent="TwoParty"),
        {
            "from": {"agentId": "1234", "consent": "OneParty"},
            "to": {"telephoneNumber": "02072068888", "consent": "TwoParty"},
        },
        id="consent",
    ),
    pytest.param(
        CallRequest(from_agent_id="1001", to_number="+442079460000", reference="https://crm.example.com/contacts/7/"),
        {
            "from": {"agentId": "1001"},
            "to": {"telephoneNumber": "+442079460000"},
            "regarding": {"reference": "https://crm.example.com/contacts/7/"},
        },
        id="url-reference",
    ),
]


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


# --- Errors ---------------------------------------------------------------------------------------

PLACEMENT_FAILURES = [
    ("Unable to place call - Agent number busy", "Your phone is busy: finish your current call, then try again.", True),
    ("Unable to place call - Agent Id is unknown", "ask an admin", False),
    ("Unable to place call - invalid Agent Id", "check the agent ID", False),
    ("Unable to place call - invalid Agent Id.", "check the agent ID", False),
    ("Unable to place call - dialed Agent is not currently available", "not available right now", True),
    ("Unable to place call - number is invalid", "check the number", False),
    ("Ccxml must be enabled for this account", "contact Vonage", False),
    ("Unable to place call to Agent. Please try again", "try again in a moment", True),
    ("Something VCC never documented", "VCC refused the request: Something VCC never documented", False),
]


@pytest.mark.parametrize(("text", "user_text", "retryable"), PLACEMENT_FAILURES)
def test_it_explains_each_placement_failure(text, user_text, retryable):
    fake = FakeVCC(message(400, text))
    with pytest.raises(VCCError) as caught:
        client_for(fake).place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))

    error = caught.value
    assert error.message == text
    assert error.status == 400
    assert user_text in error.user_message
    assert error.retryable is retryable
    assert error.may_have_placed is False
    assert len(fake.requests) == 1


def test_it_refreshes_the_token_once_on_401_then_succeeds():
    fake = FakeVCC(message(401, "The access token is invalid or has expired"), created())
    placed = client_for(fake).place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))

    assert placed.call_id == CALL_ID
    assert len(fake.token_requests) == 2
    assert [r.headers["Authorization"] for r in fake.requests] == ["Bearer token-1", "Bearer token-2"]
    # The fresh token replaced the stale one in the cache.
    fake.replies = [httpx.Response(200, json=PLACED_BODY)]
    client_for(fake).get_call(CALL_ID)
    assert fake.requests[-1].headers["Authorization"] == "Bearer token-2"
    assert len(fake.token_requests) == 2


def test_it_gives_up_after_a_second_401():
    fake = FakeVCC(message(401, "The access token is invalid or has expired"))
    with pytest.raises(VCCError) as caught:
        client_for(fake).place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))

    assert caught.value.status == 401
    assert caught.value.message == "The access token is invalid or has expired"
    assert "ask an admin" in caught.value.user_message
    assert not caught.value.retryable
    assert len(fake.token_requests) == 2 and len(fake.requests) == 2


def test_it_explains_a_refused_token_request():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "invalid_client"})

    with pytest.raises(VCCError) as caught:
        VCCClient(transport=httpx.MockTransport(handler)).get_call(CALL_ID)
    assert caught.value.status == 400
    assert "invalid_client" in caught.value.message
    assert "credentials" in caught.value.user_message


def test_it_reports_a_token_response_without_a_token():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"token_type": "bearer"})

    with pytest.raises(VCCError) as caught:
        VCCClient(transport=httpx.MockTransport(handler)).get_call(CALL_ID)
    assert "access_token" in caught.value.message and caught.value.retryable


@pytest.mark.parametrize(
    ("status", "text", "user_text"),
    [
        (403, "Forbidden", "ask an admin"),
        (404, "The requested resource was not found.", "does not know this call"),
        (415, "The requested resource does not support content type 'multipart/form-data'.", "fault in vccweb"),
    ],
)
def test_it_explains_other_refusals(status, text, user_text):
    fake = FakeVCC(message(status, text))
    with pytest.raises(VCCError) as caught:
        client_for(fake).get_call(CALL_ID)
    assert caught.value.status == status
    assert caught.value.message == text
    assert user_text in caught.value.user_message
    assert not caught.value.retryable


def test_it_retries_a_get_once_after_a_short_retry_after():
    fake = FakeVCC(message(429, "Too Many Requests", **{"Retry-After": "0.01"}), httpx.Response(200, json=PLACED_BODY))
    assert client_for(fake).get_call(CALL_ID).call_id == CALL_ID
    assert len(fake.requests) == 2


def test_it_does_not_wait_out_a_long_retry_after():
    fake = FakeVCC(message(429, "Too Many Requests", **{"Retry-After": "60"}))
    with pytest.raises(VCCError) as caught:
        client_for(fake).get_call(CALL_ID)
    assert caught.value.status == 429
    assert caught.value.retry_after == 60
    assert caught.value.retryable
    assert caught.value.user_message == "VCC is limiting requests; try again in a moment."
    assert len(fake.requests) == 1


def test_a_get_retries_a_429_only_once():
    fake = FakeVCC(message(429, "Too Many Requests", **{"Retry-After": "0"}))
    with pytest.raises(VCCError) as caught:
        client_for(fake).agents_ready()
    assert caught.value.status == 429 and len(fake.requests) == 2


def test_it_reads_retry_after_as_a_date():
    fake = FakeVCC(message(429, "Too Many Requests", **{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    fake.replies.append(httpx.Response(200, json={"count": 0}))
    assert client_for(fake).agents_ready().count == 0  # a date in the past means "now"


def test_it_never_retries_a_call_request_after_429():
    fake = FakeVCC(message(429, "Too Many Requests", **{"Retry-After": "0"}), created())
    with pytest.raises(VCCError) as caught:
        client_for(fake).place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))
    assert caught.value.status == 429
    assert caught.value.retryable and caught.value.retry_after == 0
    assert not caught.value.may_have_placed
    assert len(fake.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_it_reports_vcc_server_errors_on_reads_as_retryable(status):
    fake = FakeVCC(httpx.Response(status, text="<html>Bad gateway</html>"))
    with pytest.raises(VCCError) as caught:
        client_for(fake).get_call(CALL_ID)
    assert caught.value.status == status
    assert caught.value.retryable and not caught.value.may_have_placed
    assert caught.value.message == "<html>Bad gateway</html>"
    assert "VCC is having a problem" in caught.value.user_message
    assert len(fake.requests) == 1


@pytest.mark.parametrize(("status", "may_have_placed"), [(500, True), (502, True), (503, False), (504, True)])
def test_a_server_error_on_a_call_request_is_never_retried(status, may_have_placed):
    fake = FakeVCC(message(status, "Internal Server Error"), created())
    with pytest.raises(VCCError) as caught:
        client_for(fake).place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))
    assert caught.value.may_have_placed is may_have_placed
    assert caught.value.retryable is not may_have_placed
    assert ("check your phone" in caught.value.user_message) is may_have_placed
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(201, headers={"Location": LOCATION}),
        httpx.Response(201, text="{not json", headers={"Location": LOCATION}),
        httpx.Response(201, json=["not", "an", "object"]),
        httpx.Response(201, json={"status": "Active"}),
    ],
    ids=["no-body", "malformed", "not-an-object", "no-id"],
)
def test_an_unreadable_201_says_the_call_may_have_been_placed(reply):
    fake = FakeVCC(reply)
    with pytest.raises(VCCError) as caught:
        client_for(fake).place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))
    assert caught.value.status == 201
    assert caught.value.may_have_placed and not caught.value.retryable
    assert "call log" in caught.value.user_message
    assert len(fake.requests) == 1


def test_an_unreadable_201_keeps_the_location_for_the_log_and_names_the_call():
    with pytest.raises(VCCError) as caught:
        client_for(FakeVCC(httpx.Response(201, headers={"Location": LOCATION}))).place_call(
            CallRequest(from_agent_id="1234", to_number="02072068888")
        )
    assert LOCATION in caught.value.message
    assert caught.value.call_id == LOCATION.rsplit("/", 1)[1]


def test_an_unreadable_201_without_a_location_names_no_call():
    with pytest.raises(VCCError) as caught:
        client_for(FakeVCC(httpx.Response(201, text="{not json"))).place_call(
            CallRequest(from_agent_id="1234", to_number="02072068888")
        )
    assert caught.value.call_id is None


def test_malformed_json_on_a_read_is_a_retryable_error():
    with pytest.raises(VCCError) as caught:
        client_for(FakeVCC(httpx.Response(200, text="<html>"))).get_call(CALL_ID)
    assert caught.value.status == 200 and caught.value.retryable
    assert "malformed JSON" in caught.value.message


def test_a_read_timeout_on_a_call_request_may_have_placed_it():
    fake = FakeVCC(httpx.ReadTimeout("timed out"), created())
    with pytest.raises(VCCError) as caught:
        client_for(fake).place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))
    assert caught.value.may_have_placed and not caught.value.retryable
    assert caught.value.status is None
    assert "did not answer in time" in caught.value.user_message and "call log" in caught.value.user_message
    assert len(fake.requests) == 1


def test_a_read_timeout_on_a_read_is_retryable():
    with pytest.raises(VCCError) as caught:
        client_for(FakeVCC(httpx.ReadTimeout("timed out"))).get_call(CALL_ID)
    assert caught.value.retryable and not caught.value.may_have_placed
    assert caught.value.user_message == "VCC did not answer in time; try again in a moment."


@pytest.mark.parametrize("exc", [httpx.ConnectError("Connection refused"), httpx.ConnectTimeout("timed out")])
def test_a_connection_failure_never_placed_the_call(exc):
    fake = FakeVCC(exc)
    with pytest.raises(VCCError) as caught:
        client_for(fake).place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))
    assert not caught.value.may_have_placed and caught.value.retryable
    assert caught.value.user_message == "vccweb could not reach VCC; try again in a moment."


def test_a_dropped_connection_after_sending_may_have_placed_the_call():
    fake = FakeVCC(httpx.RemoteProtocolError("Server disconnected without sending a response."))
    with pytest.raises(VCCError) as caught:
        client_for(fake).place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))
    assert caught.value.may_have_placed


def test_a_dropped_connection_after_sending_is_not_sent_again_for_a_call():
    fake = FakeVCC(httpx.RemoteProtocolError("Server disconnected"), created())
    with pytest.raises(VCCError):
        client_for(fake).place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))
    assert len(fake.requests) == 1


def test_a_dropped_connection_on_a_read_is_tried_once_more():
    fake = FakeVCC(httpx.ReadError("Connection reset by peer"), httpx.Response(200, json=PLACED_BODY))
    assert client_for(fake).get_call(CALL_ID).call_id == PLACED_BODY["id"]
    assert len(fake.requests) == 2


def test_a_call_request_that_never_left_is_sent_again_once():
    fake = FakeVCC(httpx.ConnectError("Connection refused"), created())
    assert client_for(fake).place_call(CallRequest(from_agent_id="1234", to_number="02072068888")).call_id
    assert len(fake.requests) == 2


def test_a_read_timeout_is_not_waited_out_twice():
    fake = FakeVCC(httpx.ReadTimeout("timed out"), httpx.Response(200, json=PLACED_BODY))
    with pytest.raises(VCCError):
        client_for(fake).get_call(CALL_ID)
    assert len(fake.requests) == 1


def test_an_unreadable_201_with_a_garbled_location_still_says_the_call_may_have_been_placed():
    fake = FakeVCC(httpx.Response(201, headers={"Location": "http://host:abc/v0/k/calls/x"}))
    with pytest.raises(VCCError) as caught:
        client_for(fake).place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))
    assert caught.value.may_have_placed
    assert caught.value.call_id is None


@pytest.mark.parametrize(("expires_in", "cached_for"), [("900", 810), (900.0, 810), ("soon", 3240), (-5, 3240)])
def test_it_honours_expires_in_sent_as_a_string(expires_in, cached_for, monkeypatch):
    fake = FakeVCC(httpx.Response(200, json=PLACED_BODY), expires_in=expires_in)
    stored = []
    original = cache.set
    monkeypatch.setattr(
        cache, "set", lambda key, value, timeout=None, **kw: stored.append(timeout) or original(key, value, timeout)
    )
    client_for(fake).get_call(CALL_ID)
    assert stored == [pytest.approx(cached_for)]


def test_a_refused_connection_to_the_token_endpoint_is_a_vcc_error():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    with pytest.raises(VCCError) as caught:
        VCCClient(transport=httpx.MockTransport(handler)).place_call(
            CallRequest(from_agent_id="1234", to_number="02072068888")
        )
    assert "Connection refused" in caught.value.message
    assert caught.value.retryable and not caught.value.may_have_placed


# --- The token cache ------------------------------------------------------------------------------


def test_it_reuses_the_cached_token():
    fake = FakeVCC(httpx.Response(200, json=PLACED_BODY))
    client_for(fake).get_call(CALL_ID)
    client_for(fake).get_call(CALL_ID)
    assert len(fake.token_requests) == 1
    assert [r.headers["Authorization"] for r in fake.requests] == ["Bearer token-1", "Bearer token-1"]


def test_it_refetches_the_token_before_it_expires(monkeypatch):
    from django.core.cache.backends import locmem

    fake = FakeVCC(httpx.Response(200, json=PLACED_BODY), expires_in=100)
    client = client_for(fake)
    client.get_call(CALL_ID)
    client.get_call(CALL_ID)
    assert len(fake.token_requests) == 1
    now = time.time()
    monkeypatch.setattr(locmem.time, "time", lambda: now + 89)  # the cache's clock: not yet 90% of expires_in
    client.get_call(CALL_ID)
    assert len(fake.token_requests) == 1
    monkeypatch.setattr(locmem.time, "time", lambda: now + 91)  # past 90%, though the token has not expired
    client.get_call(CALL_ID)
    assert len(fake.token_requests) == 2
    assert fake.requests[-1].headers["Authorization"] == "Bearer token-2"


def test_it_assumes_an_hour_when_expires_in_is_missing(monkeypatch):
    lifetimes = []
    real_set = cache.set

    def recording_set(key, value, timeout):
        lifetimes.append(timeout)
        real_set(key, value, timeout)

    monkeypatch.setattr(cache, "set", recording_set)
    client_for(FakeVCC(httpx.Response(200, json=PLACED_BODY), expires_in=None)).get_call(CALL_ID)
    assert lifetimes == [pytest.approx(3600 * 0.9)]


def test_the_token_cache_is_per_account(vcc_settings):
    fake = FakeVCC(httpx.Response(200, json=PLACED_BODY))
    client_for(fake).get_call(CALL_ID)
    vcc_settings.VCC_ACCOUNT_KEY = "otheraccount"
    client_for(fake).get_call(CALL_ID)
    assert len(fake.token_requests) == 2


def test_concurrent_callers_fetch_one_token(monkeypatch):
    # The token endpoint answers only once every caller has tried the fetch lock: all six are then waiting on
    # the one fetch in flight.
    gate, lock, callers = threading.Event(), threading.Lock(), set()
    # On the backend's class: `cache` is a per-thread proxy, so patching it would reach this thread only, and the
    # gate would open by its timeout instead of by the six callers.
    backend = type(caches["default"])
    real_add = backend.add

    def counting_add(self, key, *args, **kwargs):
        if key.endswith(":lock"):
            with lock:
                callers.add(threading.current_thread().name)
                if len(callers) == 6:
                    gate.set()
        return real_add(self, key, *args, **kwargs)

    monkeypatch.setattr(backend, "add", counting_add)
    fake = FakeVCC(httpx.Response(200, json=PLACED_BODY), token_gate=gate)
    errors: list[Exception] = []

    def call() -> None:
        try:
            client_for(fake).get_call(CALL_ID)
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(callers) == 6  # every caller went for the fetch lock while the one fetch was in flight
    assert len(fake.token_requests) == 1
    assert len(fake.requests) == 6


def test_a_failed_token_fetch_releases_the_lock():
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"message": "down"})

    with pytest.raises(VCCError):
        VCCClient(transport=httpx.MockTransport(refuse)).get_call(CALL_ID)
    fake = FakeVCC(httpx.Response(200, json=PLACED_BODY))
    client_for(fake).get_call(CALL_ID)  # would wait for the lock if it had been left behind
    assert len(fake.token_requests) == 1


# --- Logging --------------------------------------------------------------------------------------


def test_no_log_record_contains_a_secret(caplog):
    caplog.set_level(logging.DEBUG)
    fake = FakeVCC(
        message(401, "The access token is invalid or has expired"),
        created(),
        message(400, "Unable to place call - Agent number busy"),
        httpx.ReadTimeout("timed out"),
    )
    client = client_for(fake)
    client.place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))
    for _ in range(2):
        with pytest.raises(VCCError):
            client.place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))

    assert caplog.records, "the client logs its requests"
    secrets = ["token-1", "token-2", API_TOKEN, DOC_BASIC, DOC_BASIC.split()[1], "Bearer"]
    for record in caplog.records:
        logged = record.getMessage() + repr(record.args) + repr(getattr(record, "exc_info", ""))
        for secret in secrets:
            assert secret not in logged


def test_the_client_config_does_not_show_secrets():
    assert API_TOKEN not in repr(VCCClient(transport=httpx.MockTransport(FakeVCC(created()))).config)


# --- Factory and settings -------------------------------------------------------------------------

_module_fake = FakeVCC(created())


def module_transport() -> httpx.MockTransport:
    return httpx.MockTransport(_module_fake)


def test_get_client_uses_the_transport_named_in_settings(vcc_settings):
    vcc_settings.VCC_TRANSPORT = f"{__name__}.module_transport"
    _module_fake.requests.clear()
    with get_client() as client:
        client.place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))
    assert str(_module_fake.request.url) == CALLS_URL


def test_get_client_has_explicit_timeouts_and_one_retry_layer(vcc_settings):
    vcc_settings.VCC_CONNECT_TIMEOUT = 2.0
    vcc_settings.VCC_READ_TIMEOUT = 7.0
    with get_client() as client:
        assert client._http.timeout == httpx.Timeout(7.0, connect=2.0)
        assert isinstance(client._http._transport, httpx.HTTPTransport)
        # Retries live only in core.exchange (one more try when safe): the transport itself never retries,
        # so a closed port costs two connection attempts, not six.
        assert client._http._transport._pool._retries == 0


def test_settings_can_be_overridden_per_client():
    fake = FakeVCC(created())
    VCCClient(transport=httpx.MockTransport(fake), base_url="http://other.test/", account_key="k2").place_call(
        CallRequest(from_agent_id="1234", to_number="02072068888")
    )
    assert str(fake.request.url) == "http://other.test/v0/k2/calls/"
    assert str(fake.token_requests[0].url) == "http://other.test/v0/oauth2/token"


def test_unknown_overrides_are_refused():
    with pytest.raises(TypeError):
        VCCClient(base_uri="http://typo.test")


# --- The async client -----------------------------------------------------------------------------


def async_client_for(fake: FakeVCC) -> AsyncVCCClient:
    return AsyncVCCClient(transport=httpx.MockTransport(fake))


@pytest.mark.parametrize(("req", "body"), DOCUMENTED_CALLS[:3])
async def test_async_it_places_documented_calls(req, body):
    fake = FakeVCC(created())
    async with async_client_for(fake) as client:
        placed = await client.place_call(req)
    assert placed.call_id == CALL_ID and placed.presented_clid == "123456789"
    assert str(fake.request.url) == CALLS_URL
    assert fake.request.headers["Accept"] == "application/json;version=6"
    assert fake.request.headers["Authorization"] == "Bearer token-1"
    assert sent_json(fake.request) == body


async def test_async_it_runs_every_operation_with_one_token():
    fake = FakeVCC(
        httpx.Response(200, json=PLACED_BODY),
        httpx.Response(202, json={"recordingStatus": "Paused"}),
        httpx.Response(200, json={"dispositionCode": "Sale"}),
        httpx.Response(200, json={"count": 2}),
        httpx.Response(200, json={"id": "1001", "currentCallGuid": CALL_ID}),
    )
    async with async_client_for(fake) as client:
        assert (await client.get_call(CALL_ID)).is_live
        assert await client.set_recording(CALL_ID, "Paused") == "Paused"
        assert await client.set_disposition(CALL_ID, "Sale", "1001") == "Sale"
        assert (await client.agents_ready(["030"])).count == 2
        assert (await client.get_agent("1001")).current_call_id == CALL_ID
    assert len(fake.token_requests) == 1
    assert [r.method for r in fake.requests] == ["GET", "POST", "POST", "GET", "GET"]


async def test_async_it_refreshes_the_token_once_on_401():
    fake = FakeVCC(message(401, "The access token is invalid or has expired"), created())
    async with async_client_for(fake) as client:
        await client.place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))
    assert [r.headers["Authorization"] for r in fake.requests] == ["Bearer token-1", "Bearer token-2"]


async def test_async_a_read_timeout_on_a_call_request_is_not_retried():
    fake = FakeVCC(httpx.ReadTimeout("timed out"), created())
    async with async_client_for(fake) as client:
        with pytest.raises(VCCError) as caught:
            await client.place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))
    assert caught.value.may_have_placed and len(fake.requests) == 1


async def test_async_it_explains_a_busy_agent():
    async with async_client_for(FakeVCC(message(400, "Unable to place call - Agent number busy"))) as client:
        with pytest.raises(VCCError) as caught:
            await client.place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))
    assert caught.value.user_message == "Your phone is busy: finish your current call, then try again."


async def test_async_it_retries_a_get_after_a_short_429():
    fake = FakeVCC(message(429, "Too Many Requests", **{"Retry-After": "0"}), httpx.Response(200, json={"count": 1}))
    async with async_client_for(fake) as client:
        assert (await client.agents_ready()).count == 1
    assert len(fake.requests) == 2


async def test_async_validation_sends_nothing():
    fake = FakeVCC(created())
    async with async_client_for(fake) as client:
        with pytest.raises(VCCError, match="Agent Id must be specified"):
            await client.place_call(CallRequest(to_number="02072068888"))
    assert fake.requests == [] and fake.token_requests == []


async def test_get_async_client_uses_the_transport_named_in_settings(vcc_settings):
    vcc_settings.VCC_TRANSPORT = f"{__name__}.module_transport"
    _module_fake.requests.clear()
    async with get_async_client() as client:
        await client.place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))
    assert str(_module_fake.request.url) == CALLS_URL


# --- The event loop's connection pool, over real sockets -------------------------------------------------------


async def test_the_loops_pool_keeps_more_clicks_in_flight_than_httpxs_default_of_100():
    """On a slow VCC every click in flight holds a connection: the 101st must not wait for another's answer."""
    import asyncio

    from calls.vcc.config import _loop_pool

    in_flight, wanted = 0, 101
    all_in = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal in_flight
        await reader.readuntil(b"\r\n\r\n")
        in_flight += 1
        if in_flight == wanted:
            all_in.set()
        await all_in.wait()  # VCC answers nobody until all of them are asking at once
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=256)
    port = server.sockets[0].getsockname()[1]
    async with server, httpx.AsyncClient(transport=_loop_pool(), trust_env=False) as client:
        try:
            # A pool that holds the 101st back fails it with PoolTimeout after httpx's 5 s.
            answers = await asyncio.gather(*(client.get(f"http://127.0.0.1:{port}/") for _ in range(wanted)))
        finally:
            all_in.set()  # lets the server's handlers end either way
    assert [a.status_code for a in answers] == [200] * wanted
