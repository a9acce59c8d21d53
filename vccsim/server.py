"""The simulator over a real socket: a threaded HTTP server on loopback, for integration tests and ``-m vccsim``."""

from __future__ import annotations

import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from vccsim.simulator import Simulator
from vccsim.state import load_account


class _Handler(BaseHTTPRequestHandler):
    # Headers and body go out in separate writes: without this, each reply on a kept-alive connection
    # waits for the client's delayed ACK (~40 ms), which would swamp every latency we measure.
    disable_nagle_algorithm = True
    server: _SimServer
    protocol_version = "HTTP/1.1"
    timeout = 60  # seconds an idle keep-alive connection is held

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        host, port = self.server.server_address[:2]
        url = f"http://{self.headers.get('Host') or f'{host}:{port}'}{self.path}"
        response = self.server.sim.handle(self.command, url, dict(self.headers.items()), body)
        time.sleep(response.delay)
        if response.drop:
            self.close_connection = True  # hang up without a word
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: object) -> None:
        if self.server.log:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")


class _SimServer(ThreadingHTTPServer):
    server_address: tuple[str, int]  # bound to an IPv4 host and port (typeshed allows any socket address)

    request_queue_size = 1024  # socketserver's default of 5 (and 128) dropped bursts: 200 agents clicking at once
    daemon_threads = True

    def __init__(self, sim: Simulator, host: str, port: int, log: bool) -> None:
        self.sim = sim
        self.log = log
        self.connections_accepted = 0  # lets tests see whether clients reuse their connections
        super().__init__((host, port), _Handler)

    def process_request(self, request: socket.socket | tuple[bytes, socket.socket], client_address: object) -> None:
        self.connections_accepted += 1
        super().process_request(request, client_address)

    def handle_error(self, request: socket.socket | tuple[bytes, socket.socket], client_address: object) -> None:
        # A client that hung up before its answer (a timeout on its side) is not the server's error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class RunningServer:
    """A simulator serving HTTP in a daemon thread until ``stop()`` (or the end of a ``with`` block)."""

    def __init__(self, server: _SimServer) -> None:
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="vccsim", daemon=True
        )
        self._thread.start()

    @property
    def sim(self) -> Simulator:
        return self._server.sim

    @property
    def connections_accepted(self) -> int:
        return self._server.connections_accepted

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.sim.stop_delivery()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def start_server(
    sim: Simulator | None = None, *, host: str = "127.0.0.1", port: int = 0, log: bool = False
) -> RunningServer:
    """Serve ``sim`` (a fresh one with the sample account if None) on ``host:port``; port 0 picks a free port.

    The served simulator delivers its webhooks on its own (a background thread), until ``stop()``.
    """
    server = _SimServer(sim or Simulator(load_account()), host, port, log)
    server.sim.start_delivery()
    return RunningServer(server)
