"""The events bench's load generator (a library, not a script: bench/events_bench.py's part 1). Signed
`channel.held.v1` CloudEvents about live calls, POSTed to the app's `/vcc/events/` at a steady rate for a time (open
loop, over keep-alive connections written by hand), one in a hundred a redelivery; or one at a time, each after the
last answer. Every send is timed and kept with what it got back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import _harness as h
import httpx
import jwt

SEND_TIMEOUT = 30.0  # seconds an answer may take before the event counts as not answered
IN_FLIGHT = 64  # connections the generator keeps open, one request on each at a time (VCC's own is not published)
REDELIVER_EVERY = 100  # one event in a hundred is sent again (a redelivery: same id, same body)


@dataclass
class Sent:
    event_id: str
    scheduled: float  # when it should have gone, seconds from the start
    started: float  # when it went
    latency_ms: float
    status: int | None
    error: str = ""


@dataclass
class Load:
    sent: list[Sent] = field(default_factory=list)
    seconds: float = 0.0
    unique_ids: int = 0
    redeliveries: int = 0


def signed(body: bytes, key: bytes) -> dict[str, str]:
    token = jwt.encode({"iat": int(time.time()), "payload_hash": hashlib.sha256(body).hexdigest()}, key, "HS256")
    return {"Content-Type": "application/cloudevents+json", "Vonage-Signature": f"Bearer {token}"}


def held_event(guid: str) -> tuple[str, bytes]:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    event_id = str(uuid.uuid4())
    event = {
        "specversion": "1.0",
        "id": event_id,
        "source": f"/vcc/{h.ACCOUNT_KEY}",
        "type": "channel.held.v1",
        "time": now,
        "subject": guid,
        "datacontenttype": "application/json",
        "data": {"interactionId": guid, "callGuid": guid, "party": {"role": "Customer"}},
    }
    return event_id, json.dumps(event, separators=(",", ":")).encode()


class Connection:
    """One keep-alive HTTP/1.1 connection to the app, written to and read by hand: a few tens of microseconds of
    CPU a request, where httpx took about 2 ms (measured: at 1,000 events/s httpx alone needed more than the
    machine's two cores). VCC sends from its own machines; here the sender shares the app's cores, so it must
    cost little to leave the receiver what it would have."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        try:
            self.writer.write(request)
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            length = next(
                (int(line.split(b":", 1)[1]) for line in lines[1:] if line.lower().startswith(b"content-length:")), 0
            )
            body = await self.reader.readexactly(length)
            if any(line.lower() == b"connection: close" for line in lines[1:]):
                await self.close()
            return status, body
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        writer, self.reader, self.writer = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def raw_request(host: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = ["POST /vcc/events/ HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def send_events(app_url: str, guids: list[str], key: bytes, args: argparse.Namespace) -> Load:
    """POST `rate` events a second for `seconds`, each at its scheduled time, and time each answer."""
    total = int(args.rate * args.seconds)
    url = httpx.URL(app_url)
    host, port = url.host, url.port or 80
    requests: list[tuple[str, bytes]] = []
    load = Load()
    for i in range(total):
        if i % REDELIVER_EVERY == REDELIVER_EVERY - 1:
            event_id, request = requests[i - REDELIVER_EVERY // 2]  # an event sent about half a second before
            load.redeliveries += 1
        else:
            event_id, body = held_event(guids[i % len(guids)])
            request = raw_request(f"{host}:{port}", body, signed(body, key))  # before the clock starts
            load.unique_ids += 1
        requests.append((event_id, request))

    # Open loop: each event is put in the queue when it is due; IN_FLIGHT connections take them as they come.
    due: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    origin = time.perf_counter()

    async def connection() -> None:
        conn = Connection(host, port)
        while (item := await due.get()) is not None:
            i, scheduled = item
            event_id, request = requests[i]
            started = time.perf_counter()
            try:
                status, body = await asyncio.wait_for(conn.post(request), SEND_TIMEOUT)
                error = "" if status == 200 else body.decode(errors="replace")[:200]
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as e:
                status, error = None, f"{type(e).__name__}: {e}"
            load.sent.append(
                Sent(event_id, scheduled, started - origin, (time.perf_counter() - started) * 1000, status, error)
            )
        await conn.close()

    senders = [asyncio.create_task(connection()) for _ in range(IN_FLIGHT)]
    i = 0
    while i < total:
        now = int((time.perf_counter() - origin) * args.rate) + 1
        while i < min(total, now):
            due.put_nowait((i, i / args.rate))
            i += 1
        await asyncio.sleep(0.001)
    for _ in senders:
        due.put_nowait(None)
    await asyncio.gather(*senders)
    load.seconds = time.perf_counter() - origin  # to the last answer
    return load


async def send_one_at_a_time(app_url: str, guids: list[str], key: bytes, count: int) -> list[Sent]:
    """The receiver's own latency, with no queue before it: one event at a time, each after the last answer."""
    sent = []
    async with httpx.AsyncClient(base_url=app_url, timeout=h.REQUEST_TIMEOUT, trust_env=False) as client:
        for i in range(count):
            event_id, body = held_event(guids[i % len(guids)])
            headers = signed(body, key)
            started = time.perf_counter()
            response = await client.post("/vcc/events/", content=body, headers=headers)
            latency = (time.perf_counter() - started) * 1000
            sent.append(Sent(event_id, 0.0, 0.0, latency, response.status_code))
    return sent
