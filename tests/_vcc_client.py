"""What the VCC client tests share: VCC's documented examples, a fake VCC behind httpx.MockTransport, the settings."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import httpx
import pytest
from django.core.cache import cache

from calls.vcc import CallRequest, VCCClient

BASE = "https://emea.vcc.test"
KEY = "a1b2c3d4e5"
# The worked example on VCC's "Getting a bearer access token" page.
API_TOKEN = "9pBl+xY1MW+AbsdZk4xpv7NwWxG8+oqduKiSqVybM9Y="
DOC_BASIC = "Basic YTFiMmMzZDRlNTo5cEJsK3hZMU1XK0Fic2RaazR4cHY3TndXeEc4K29xZHVLaVNxVnliTTlZPQ=="
CALLS_URL = f"{BASE}/v0/{KEY}/calls/"
CALL_ID = "017db4a2-44b5-672e-8b9f-1a805fed07ad"

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


# Every documented example of placing a call (the async client's tests place the first three).
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
