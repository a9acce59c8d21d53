"""The webhooks bench's receivers (a library, not a script: bench/webhooks_bench.py runs three). Each is an
asyncio HTTP/1.1 server on 127.0.0.1 that verifies every delivery's signature with the `standardwebhooks` library,
answers 204 (or 400 when it does not verify) and records its webhook-id, event type, call and arrival time; stopped,
it refuses connections, as a host that is down does.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import _harness as h
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Arrival:
    msg_id: str
    type: str
    call: Any  # the payload's data.id: the call's (or contact's) id
    at: float  # time.time() when its body was read


@dataclass
class Receiver:
    """An HTTP/1.1 server on 127.0.0.1 (keep-alive, Content-Length bodies) that verifies and records deliveries."""

    name: str
    port: int = field(default_factory=h.free_port)
    secret: str = ""
    arrivals: list[Arrival] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)  # signatures that did not verify, by why
    server: asyncio.Server | None = None
    writers: set[asyncio.StreamWriter] = field(default_factory=set)
    down_at: float | None = None
    up_at: float | None = None

    @property
    def url(self) -> str:
        return f"http://{h.HOST}:{self.port}/hooks/{self.name}"

    def received(self) -> set[str]:
        return {a.msg_id for a in self.arrivals}

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.serve, h.HOST, self.port, reuse_address=True)

    async def stop(self) -> None:
        """Stop listening and drop the open connections: new attempts are refused, as by a host that is down."""
        if self.server is not None:
            self.server.close()
            for writer in list(self.writers):
                writer.transport.abort()
            await self.server.wait_closed()
            self.server = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                status = self.take(headers, body, time.time())
                writer.write(f"HTTP/1.1 {status} {'No Content' if status == 204 else 'Bad Request'}\r\n".encode())
                writer.write(b"Content-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    def take(self, headers: dict[str, str], body: bytes, at: float) -> int:
        try:
            payload = Webhook(self.secret).verify(body, headers)
        except (WebhookVerificationError, ValueError) as e:  # a signature that does not verify; no secret yet
            self.refused[f"{type(e).__name__}: {e}"] += 1
            return 400
        data = payload.get("data") or {}
        self.arrivals.append(Arrival(headers["webhook-id"], payload.get("type", ""), data.get("id"), at))
        return 204
