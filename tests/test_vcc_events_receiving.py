"""POST /vcc/events/ (VCC's Webhooks API): the signature and its refusals, redeliveries, limits, what is accepted."""

from __future__ import annotations

import hashlib
import json
import time
import warnings

import jwt
import pytest
from django.test import Client

from calls.calling.events import refused_last_hour
from calls.models import VccEvent
from calls.vcc import events
from tests import _vcc_events
from tests._jobs import queued
from tests._vcc_events import CE, KEY, OLD_KEY, URL, deliver, event, sign

pytestmark = pytest.mark.django_db

secrets = _vcc_events.secrets  # autouse fixture


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
            "must use HS256, HS384 or HS512",
        ),
        (lambda body: sign(body, b"w" * 64, algorithm="HS512"), "key vccweb does not know"),
        (lambda body: sign(body, iat=int(time.time()) + 120), "after this server's time: clocks apart; check"),
        (lambda body: sign(body, exp=int(time.time()) - 120), "before this server's time: an old delivery sent"),
    ],
    ids=[
        "missing",
        "not bearer",
        "malformed",
        "wrong key",
        "wrong hash",
        "no hash",
        "alg none",
        "HS512 wrong key",
        "iat 2 min ahead",
        "expired 2 min ago",
    ],
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


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "https://crm.example.com/vcc/events/"},
        {"iat": int(time.time()) + 30},
        {"nbf": int(time.time()) + 30},
        {"algorithm": "HS384"},
        {"algorithm": "HS512"},
    ],
    ids=["aud", "iat 30 s ahead", "nbf 30 s ahead", "HS384", "HS512"],
)
def test_a_signature_vonages_sample_receiver_accepts_is_accepted(claims):
    # The sample (webhook-consumer/app.js) verifies with jsonwebtoken's defaults: any HMAC algorithm, no audience
    # check; the 60 s leeway is for clocks apart.
    payload = event(interactionId="abc")
    body = json.dumps(payload).encode()

    response = deliver(body, signature=sign(body, **claims))

    assert response.status_code == 200, response.content
    assert VccEvent.objects.get().event_id == payload["id"]


@pytest.mark.parametrize("algorithm", events.ALGORITHMS)
@pytest.mark.parametrize("length", [16, 32, 48, 64, 100], ids=lambda n: f"{n} bytes")
def test_a_signature_is_checked_without_a_warning_about_vccs_key_length(algorithm, length):
    # VCC signs with the subscription's secret as it is (32 bytes by `vcc_webhooks subscribe`, 16 in Vonage's sample):
    # its length is warned of once at start (calls.W002), not by pyjwt at every event.
    key = bytes(range(1, length + 1))
    body = json.dumps(event()).encode()
    signature = sign(body, key, algorithm=algorithm)
    forged = sign(body, key + b"x", algorithm=algorithm)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        events.verify(signature, body, [key])
        with pytest.raises(events.Refused, match="key vccweb does not know"):
            events.verify(forged, body, [key])


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


@pytest.mark.parametrize("length", ["lots", "²"])  # a superscript two (latin-1, as headers are): isdigit() is true
def test_a_content_length_that_is_not_a_number_is_a_400_not_a_500(length):
    response = Client().post(URL, b"{}", content_type=CE, headers={"Content-Length": length})
    assert response.status_code == 400 and "Content-Length must be a number" in response.content.decode()


def test_get_is_refused_405_with_a_sentence():
    response = Client().get(URL)
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert "with POST" in response.content.decode()


def test_no_csrf_token_is_needed():
    assert deliver(event(), client=Client(enforce_csrf_checks=True)).status_code == 200
