"""The gateway User Admin client against httpx.MockTransport: token, scope, headers and pagination."""

from __future__ import annotations

import math
from urllib.parse import parse_qs

import httpx
import pytest
from django.core.cache import cache

from calls.vcc import UserAdminClient, VCCCallbackNumber, VCCError, VCCGroup, VCCUser
from tests import _gateway

AUTH, GATEWAY = _gateway.AUTH, _gateway.GATEWAY
ACCEPT = "application/vnd.newvoicemedia.v4+json"


def user_json(n: int) -> dict:
    return {
        "userId": f"user-{n}",
        "username": f"agent{n}",
        "name": f"Agent {n}",
        "email": f"agent{n}@example.com",
        "active": True,
        "userAccountConfiguration": {"role": "Agent", "agentConfiguration": {"agentDisplayId": str(1000 + n)}},
    }


class FakeGateway:
    """Serves the token endpoint and pages of `items[key]`, counting pages from `first_page`."""

    def __init__(self, key: str, items: list[dict], *, per_page: int = 2, first_page: int = 1, meta: bool = True):
        self.key, self.items, self.per_page, self.first_page, self.meta = key, items, per_page, first_page, meta
        self.token_requests: list[httpx.Request] = []
        self.requests: list[httpx.Request] = []
        self.replies: list[httpx.Response] = []  # served before any page, in order

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/Auth/connect/token":
            self.token_requests.append(request)
            return httpx.Response(200, json={"access_token": f"gw-{len(self.token_requests)}", "token_type": "Bearer"})
        self.requests.append(request)
        if self.replies:
            return self.replies.pop(0)
        page = int(request.url.params.get("page", self.first_page))
        index = page - self.first_page
        chunk = self.items[index * self.per_page : (index + 1) * self.per_page]
        body: dict = {self.key: chunk}
        if self.meta:
            page_count = math.ceil(len(self.items) / self.per_page)
            body["meta"] = {"page": page, "count": len(chunk), "pageCount": page_count, "totalCount": len(self.items)}
        return httpx.Response(200, json=body)

    def pages(self) -> list[str | None]:
        return [r.url.params.get("page") for r in self.requests]


gateway_settings = _gateway.gateway_settings  # fixture (autouse)


def client_for(fake: FakeGateway) -> UserAdminClient:
    return UserAdminClient(transport=httpx.MockTransport(fake))


def test_it_asks_for_a_users_read_token_with_client_credentials():
    fake = FakeGateway("users", [user_json(1)])
    client_for(fake).users()

    (token_request,) = fake.token_requests
    assert token_request.method == "POST"
    assert str(token_request.url) == f"{AUTH}/Auth/connect/token"
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(token_request.content.decode()) == {
        "grant_type": ["client_credentials"],
        "client_id": ["client-1"],
        "client_secret": ["s3cret"],
        "scope": ["users:read"],
    }


def test_it_reads_every_page_of_users():
    fake = FakeGateway("users", [user_json(n) for n in range(1, 6)], per_page=2)
    with client_for(fake) as client:
        users = client.users()

    assert [user.agent_display_id for user in users] == ["1001", "1002", "1003", "1004", "1005"]
    assert users[0] == VCCUser(
        user_id="user-1",
        name="Agent 1",
        username="agent1",
        email="agent1@example.com",
        active=True,
        agent_display_id="1001",
    )
    assert fake.pages() == [None, "2", "3"]
    first = fake.requests[0]
    assert first.method == "GET"
    assert first.url.path == "/useradmin/users"
    assert first.url.params["include"] == "Active"
    assert first.url.params["limit"] == "100"
    assert first.headers["Accept"] == ACCEPT
    assert first.headers["Authorization"] == "Bearer gw-1"
    assert len(fake.token_requests) == 1


def test_it_follows_zero_based_pages():
    fake = FakeGateway("users", [user_json(n) for n in range(1, 5)], per_page=2, first_page=0)
    assert len(client_for(fake).users()) == 4
    assert fake.pages() == [None, "1"]


@pytest.mark.parametrize(("first_page", "pages"), [(0, [None, "1", "2"]), (1, [None, "1", "2", "3"])])
def test_without_meta_it_asks_for_page_1_to_learn_where_pages_start(first_page, pages):
    """vcc-api.md §10.1 documents GET /users as {"users": [...]} alone; 250 users at 0-based pages were read as 150."""
    fake = FakeGateway("users", [user_json(n) for n in range(1, 251)], per_page=100, first_page=first_page, meta=False)
    users = client_for(fake).users()
    assert [user.user_id for user in users] == [f"user-{n}" for n in range(1, 251)]
    assert fake.pages() == pages  # from 1: page 1 is the first page again, dropped


@pytest.mark.parametrize(("first_page", "pages"), [(0, [None, "1", "2"]), (1, [None, "1", "2", "3"])])
def test_without_meta_it_stops_at_an_empty_page_after_full_ones(monkeypatch, first_page, pages):
    monkeypatch.setattr("calls.vcc.gateway.PAGE_SIZE", 2)
    fake = FakeGateway("users", [user_json(n) for n in range(1, 5)], per_page=2, first_page=first_page, meta=False)
    assert len(client_for(fake).users()) == 4
    assert fake.pages() == pages


def test_without_meta_it_stops_at_a_short_page(monkeypatch):
    monkeypatch.setattr("calls.vcc.gateway.PAGE_SIZE", 2)
    fake = FakeGateway("users", [user_json(n) for n in range(1, 4)], per_page=2, meta=False)
    assert len(client_for(fake).users()) == 3
    assert fake.pages() == [None, "1", "2"]


def test_a_short_first_page_is_the_whole_list():
    fake = FakeGateway("users", [user_json(1)], meta=False)
    assert len(client_for(fake).users()) == 1
    assert fake.pages() == [None]


def page_of(*numbers: int, meta: dict | None = None) -> httpx.Response:
    return httpx.Response(200, json={"users": [user_json(n) for n in numbers], **({"meta": meta} if meta else {})})


@pytest.mark.parametrize(
    "replies",
    [
        [page_of(1, 2), page_of(2, 3)],  # page 1 neither repeats the first page nor follows it: the list moved
        [page_of(1, 2, meta={"page": 1, "pageCount": 3})] * 2,  # a server that ignores `page`
        [page_of(1, 2), httpx.Response(200, json={"message": "Sorry"})],  # a page without the list
        [httpx.Response(200, json={"meta": {"page": 1}, "user": []})],
    ],
)
def test_a_list_it_cannot_read_to_its_end_raises_rather_than_coming_back_short(monkeypatch, replies):
    monkeypatch.setattr("calls.vcc.gateway.PAGE_SIZE", 2)
    fake = FakeGateway("users", [user_json(n) for n in range(1, 7)])
    fake.replies.extend(replies)
    with pytest.raises(VCCError) as caught:
        client_for(fake).users()
    assert caught.value.retryable
    assert caught.value.user_message == "VCC's list could not be read to its end; try again in a moment."


def test_it_gives_up_past_max_pages_with_an_error(monkeypatch):
    monkeypatch.setattr("calls.vcc.gateway.PAGE_SIZE", 2)
    monkeypatch.setattr("calls.vcc.gateway.MAX_PAGES", 3)
    fake = FakeGateway("users", [user_json(n) for n in range(1, 10)], per_page=2)
    with pytest.raises(VCCError, match="more than 3 pages") as caught:
        client_for(fake).users()
    assert not caught.value.retryable
    assert fake.pages() == [None, "2", "3"]


def test_it_stops_at_an_empty_page():
    fake = FakeGateway("groups", [])
    assert client_for(fake).groups() == []
    assert len(fake.requests) == 1


def test_it_can_include_archived_users():
    fake = FakeGateway("users", [])
    client_for(fake).users(include="All")
    assert fake.requests[0].url.params["include"] == "All"


def test_it_reads_groups():
    items = [
        {"groupId": "g-1", "groupName": "Sales UK", "groupDisplayId": "030"},
        {"groupId": "g-2", "groupName": "Support", "groupDisplayId": "200"},
        {"groupId": "g-3", "groupName": "Overflow", "groupDisplayId": "400"},
    ]
    fake = FakeGateway("groups", items)
    groups = client_for(fake).groups()
    assert groups == [
        VCCGroup(group_id="g-1", name="Sales UK", display_id="030"),
        VCCGroup(group_id="g-2", name="Support", display_id="200"),
        VCCGroup(group_id="g-3", name="Overflow", display_id="400"),
    ]
    assert fake.requests[0].url.path == "/useradmin/groups"


def test_it_reads_a_groups_members():
    items = [{"userId": "user-1", "username": "agent1", "name": "Agent 1", "agentDisplayId": "1001"}]
    fake = FakeGateway("users", items)
    (member,) = client_for(fake).group_members("g-1")
    assert member.user_id == "user-1" and member.agent_display_id == "1001" and member.active
    assert fake.requests[0].url.path == "/useradmin/groups/g-1/users"


def test_it_reads_a_users_callback_numbers_across_pages():
    items = [
        {"callbackNumberId": f"cb-{n}", "callbackNumberName": f"Line {n}", "callbackNumberClid": f"+4420794601{n:02}"}
        for n in range(3)
    ]
    fake = FakeGateway("callbackNumbers", items, per_page=2)
    numbers = client_for(fake).callback_numbers("user-1")
    assert numbers[0] == VCCCallbackNumber(callback_number_id="cb-0", name="Line 0", clid="+442079460100")
    assert len(numbers) == 3
    assert fake.requests[0].url.path == "/useradmin/users/user-1/callbackNumbers"
    assert fake.pages() == [None, "2"]


def test_it_reuses_the_gateway_token_and_keeps_it_apart_from_the_v0_token():
    fake = FakeGateway("users", [])
    client = client_for(fake)
    client.group_members("g-1")
    client.users()
    assert len(fake.token_requests) == 1
    source = client.config.gateway_token
    assert cache.get(source.cache_key) == "gw-1"
    assert cache.get(source.cache_key + ":lock") is None
    assert source.cache_key != client.config.v0_token.cache_key


def test_it_refreshes_the_token_once_on_401():
    fake = FakeGateway("groups", [{"groupId": "g-1", "groupName": "Sales", "groupDisplayId": "030"}])
    fake.replies.append(httpx.Response(401, json={"message": "The access token is invalid or has expired"}))
    assert len(client_for(fake).groups()) == 1
    assert [r.headers["Authorization"] for r in fake.requests] == ["Bearer gw-1", "Bearer gw-2"]


@pytest.mark.parametrize(
    ("reply", "status", "retryable"),
    [
        (httpx.Response(500, json={"message": "An internal server error occurred"}), 500, True),
        (httpx.Response(400, json={"statusCode": 400, "error": "Bad Request", "message": "Bad version"}), 400, False),
        (httpx.Response(404, json={"message": "The requested resource was not found."}), 404, False),
        (httpx.Response(200, text="<html>"), 200, True),
    ],
)
def test_it_raises_vcc_errors(reply, status, retryable):
    fake = FakeGateway("users", [])
    fake.replies.append(reply)
    with pytest.raises(VCCError) as caught:
        client_for(fake).group_members("g-404")
    assert caught.value.status == status and caught.value.retryable is retryable


def test_a_refused_gateway_token_is_a_credentials_error():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "invalid_scope", "error_description": "You must specify a scope"})

    with pytest.raises(VCCError) as caught:
        UserAdminClient(transport=httpx.MockTransport(handler)).users()
    assert caught.value.status == 400
    assert "You must specify a scope" in caught.value.message
    assert "credentials" in caught.value.user_message
