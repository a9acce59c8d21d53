"""A webhook receiver over a real socket for the webhook tests: an HTTP server on 127.0.0.1 in a thread of its own,
answering each request as the test says (`answers`: a status to give, or a callable writing its own answer), and
keeping what it received."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    peer: int = 0  # the sender's port: one per connection


Answer = int | Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Receiver:
    port: int
    received: list[Received] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)  # taken in order; then `otherwise`
    otherwise: Answer = 204
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def next_answer(self) -> Answer:
        with self.lock:
            return self.answers.pop(0) if self.answers else self.otherwise


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with receiver.lock:
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.received.append(Received(self.path, headers, body, self.client_address[1]))
            answer = receiver.next_answer()
            if callable(answer):
                answer(self)
                return
            body = b"" if answer in (204, 304) else b"ok"
            self.send_response(answer)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    # The engine opens up to 16 connections at once; the default backlog of 5 drops some (a ReadError, a retry).
    request_queue_size = 64


def serve(settings) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 (allowed: WEBHOOK_ALLOWED_HOSTS), for a fixture to yield from."""
    server = _Server(("127.0.0.1", 0), _handler(Receiver(0)))
    receiver = Receiver(server.server_address[1])
    server.RequestHandlerClass = _handler(receiver)
    server.daemon_threads = True
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    # shutdown() waits for serve_forever's next poll: 50 ms, not the default half second at every test's end.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
