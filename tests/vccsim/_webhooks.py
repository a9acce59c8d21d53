"""What vccsim's webhook tests share: a receiver on a real socket, an admin client, subscriptions, signature checks."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest

from vccsim import Simulator
from vccsim.transport import SimTransport

KEY = bytes(range(32))
SECRET = base64.b64encode(KEY).decode()
ACCEPT = "application/vnd.newvoicemedia.v1+json"  # the gateway's versioned Accept (vcc-api.md §1.3)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


class Receiver:
    """A webhook receiver on a real socket: records every POST and answers the statuses it is told, then 200."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.statuses: deque[int] = deque()
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.changed:
                    receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                    status = receiver.statuses.popleft() if receiver.statuses else 200
                    receiver.changed.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/vcc/events"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def events(self) -> list[dict[str, Any]]:
        return [request.event() for request in self.requests]

    def types(self) -> list[str]:
        return [event["type"] for event in self.events()]

    def wait_for(self, count: int, deadline: float = 10.0) -> None:
        """Wait until ``count`` requests arrived, failing after ``deadline`` seconds."""
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.requests) >= count, timeout=deadline), self.requests

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.stop()


@contextlib.contextmanager
def gateway_client(sim: Simulator, scope: str) -> Iterator[httpx.Client]:
    """A client holding a gateway token with ``scope``, sending the Webhooks API's versioned Accept."""
    with httpx.Client(transport=SimTransport(sim), base_url="http://vccsim.test") as client:
        answer = client.post(
            "/Auth/connect/token",
            data={"grant_type": "client_credentials", "scope": scope},
            auth=("sandbox-client", "sandbox-secret"),
        )
        client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        client.headers["Accept"] = ACCEPT
        yield client


@pytest.fixture
def admin(sim: Simulator) -> Iterator[httpx.Client]:
    with gateway_client(sim, "admin:write") as client:
        yield client


def subscription(url: str, events: list[str] | None = None) -> dict[str, Any]:
    """A valid subscription body."""
    events = ["channel.*.v1", "agent.*.v1"] if events is None else events
    return {"name": "vccweb", "url": url, "events": events, "enabled": True, "secret": SECRET}


def verified(request: Received, key: bytes = KEY) -> dict[str, Any]:
    """The event, once its Vonage-Signature checks out the way VCC's sample receiver checks it."""
    scheme, _, token = request.headers["Vonage-Signature"].partition(" ")
    assert scheme == "Bearer"
    claims = jwt.decode(token, key, algorithms=["HS256"], options={"require": ["iat", "payload_hash"]})
    assert hmac.compare_digest(claims["payload_hash"], hashlib.sha256(request.body).hexdigest())
    return request.event()
