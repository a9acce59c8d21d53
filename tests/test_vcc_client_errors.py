"""The VCC client's errors: VCC's refusals explained, retries, timeouts, dropped connections, unreadable answers."""

from __future__ import annotations

import httpx
import pytest
from django.core.cache import cache

from calls.vcc import CallRequest, VCCClient, VCCError
from tests import _vcc_client
from tests._vcc_client import CALL_ID, LOCATION, PLACED_BODY, FakeVCC, client_for, created, message

vcc_settings = _vcc_client.vcc_settings  # autouse fixture


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


def test_it_reads_vccs_message_whatever_the_case_of_its_name():
    # ASP.NET Web API's own errors say "Message" unless camel-cased; VCC's docs print "message" (UNCONFIRMED).
    fake = FakeVCC(httpx.Response(400, json={"Message": "Unable to place call - Agent number busy"}))
    with pytest.raises(VCCError) as caught:
        client_for(fake).place_call(CallRequest(from_agent_id="1234", to_number="02072068888"))

    assert caught.value.message == "Unable to place call - Agent number busy"
    assert caught.value.user_message == "Your phone is busy: finish your current call, then try again."
    assert caught.value.retryable


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
