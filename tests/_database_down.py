"""PostgreSQL really not answering: requests pointed at a port nothing listens on, and PostgreSQL coming back there."""

from __future__ import annotations

import contextlib
import copy
import socket
import threading
from collections.abc import Iterator

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import load_backend


def closed_port() -> int:
    """A port of 127.0.0.1 that refuses connections: bound to find a free one, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def default_database_at(port: int | None, *, pool: dict | None) -> Iterator[BaseDatabaseWrapper]:
    """Make requests use the test database at 127.0.0.1:port (None: its own address), through a new connection
    built from the settings' ENGINE, with a pool of its own (pool: its options) or none."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")
    settings_dict = copy.deepcopy(connection.settings_dict)
    if port is not None:
        settings_dict.update(HOST="127.0.0.1", PORT=str(port))
    settings_dict["OPTIONS"].pop("pool", None)
    if pool:
        settings_dict["OPTIONS"]["pool"] = pool
    # Django keeps one pool per alias and process: a new alias gets a new pool.
    wrapper = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, f"test-port-{port}")
    real = connections[DEFAULT_DB_ALIAS]
    connections[DEFAULT_DB_ALIAS] = wrapper
    try:
        yield wrapper
    finally:
        connections[DEFAULT_DB_ALIAS] = real
        wrapper.close()
        wrapper.close_pool()


class PostgresComesBack:
    """Once started, PostgreSQL answers on 127.0.0.1:port again: each connection is relayed to the test database."""

    def __init__(self, port: int) -> None:
        self.port = port
        settings_dict = connection.settings_dict
        self.target = (settings_dict["HOST"] or "localhost", int(settings_dict["PORT"] or 5432))
        self.listener: socket.socket | None = None
        self.sockets: list[socket.socket] = []

    def start(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._relay, args=(source, sink), daemon=True).start()

    @staticmethod
    def _relay(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def __enter__(self) -> PostgresComesBack:
        return self

    def __exit__(self, *exc) -> None:
        # shutdown() ends the connections now (PostgreSQL sees them go) and wakes the threads blocked on them.
        for sock in [self.listener, *self.sockets] if self.listener else []:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
