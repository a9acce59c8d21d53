"""What the tests of VCC's events share: the signing keys, CloudEvents signed and delivered, events stored for a
call, and events of calls vccweb did not place."""

from __future__ import annotations

import hashlib
import json
import uuid
import warnings
from datetime import UTC, datetime

import jwt
import pytest
from django.test import Client
from django.utils import timezone

from calls.models import Call, VccEvent
from tests._sim import fresh_simulator

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


def sign(body: bytes, key: bytes = KEY, *, algorithm: str = "HS256", **claims) -> str:
    with warnings.catch_warnings():  # as VCC, which signs with the secret it was given, whatever its length
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        token = jwt.encode({"payload_hash": hashlib.sha256(body).hexdigest(), **claims}, key, algorithm=algorithm)
    return f"Bearer {token}"


def deliver(payload, *, key: bytes = KEY, signature: str | None = None, content_type: str = CE, client=None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Vonage-Signature": signature if signature is not None else sign(body, key)}
    return (client or Client()).post(URL, body, content_type=content_type, headers=headers)


def stored(type_: str, call: Call, *, at: datetime, **data) -> VccEvent:
    return VccEvent.objects.create(
        event_id=str(uuid.uuid4()),
        type=type_,
        source="/vcc/sandbox01",
        time=at,
        data={"interactionId": call.vcc_call_id, **data},
        received_at=timezone.now(),
    )


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
