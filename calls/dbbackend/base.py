"""Django's PostgreSQL backend, with a connection pool that says at once when PostgreSQL is not answering.

With the pool on (DB_POOL), a request takes its connection from psycopg_pool and waits up to DB_POOL_TIMEOUT for
one. The wait is right when every connection is lent to other requests (busy). But when PostgreSQL refuses or
ignores every attempt to connect, the pool has nothing to give: each request used to wait the whole timeout and
then say the pool was busy, and /readyz answered after the same wait. So, before a request joins the pool's queue
(and again if it waited the whole timeout):

- when the pool has a connection ready, or none of its attempts to connect has failed since PostgreSQL last
  answered, the request waits its turn as before (busy, or the pool is still connecting);
- otherwise this process asks PostgreSQL directly, with a connection of its own and a short timeout, at most once
  a second (requests in between share the answer), and fails at once with "not answering" if that fails too.

Two more things make it recover as soon as PostgreSQL is back. Requests stay out of the pool's queue while it is
down, so the first one after a good answer makes the pool connect at once. And the pool retries a lost connection
in the background for RECONNECT_SECONDS instead of psycopg_pool's 5 minutes, whose waits between attempts double
up to a minute or more: the connections it gives up on are made again on demand, without waiting. /readyz asks
with the same direct connection (check_reachable), never through the pool.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import psycopg
from django.db.backends.postgresql import base
from django.utils.asyncio import async_unsafe
from psycopg_pool import ConnectionPool, PoolTimeout

log = logging.getLogger(__name__)

# Ask PostgreSQL directly at most this often, per process (seconds).
ASK_INTERVAL = 1.0
# The direct connection's timeout: libpq's shortest (it rounds anything shorter up to 2 seconds).
ASK_CONNECT_TIMEOUT = 2
# How long the pool keeps trying to replace a lost connection in the background (seconds).
RECONNECT_SECONDS = 5.0


class Reachability:
    """What this process last learnt by asking PostgreSQL directly; it asks again after ASK_INTERVAL at the soonest."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._asked_at: float | None = None
        self._problem = ""  # why the last direct connection failed, or "" if it succeeded
        # The pool's connections_errors when PostgreSQL last answered: a request asks only after new ones. -1 until
        # then: a new pool has not failed yet, so the first request that finds no connection ready asks directly
        # (one short connection per process) rather than wait out DB_POOL_TIMEOUT on a PostgreSQL that is down.
        self.errors_seen = -1

    def problem(self, ask: Callable[[], None], pool_errors: int) -> str:
        """Return why PostgreSQL does not answer, or "" if it does; ask() it unless that was done just now."""
        with self._lock:  # one request asks; those arriving meanwhile wait for its answer
            if self._asked_at is None or self.clock() - self._asked_at >= ASK_INTERVAL:
                try:
                    ask()
                except psycopg.Error as error:  # base.Database is psycopg: the pool needs psycopg 3
                    # Full (every connection slot taken) is answering: those requests wait their turn as before.
                    full = getattr(error, "sqlstate", None) == "53300" or "too many clients" in str(error)
                    problem = "" if full else f"{type(error).__name__}: {error}".strip()
                else:
                    problem = ""
                if not problem:  # failures counted so far came before this answer: only new ones make us ask again
                    self.errors_seen = max(self.errors_seen, pool_errors)
                if problem and not self._problem:
                    log.warning("PostgreSQL is not answering; requests fail at once until it does: %s", problem)
                elif self._problem and not problem:
                    log.warning("PostgreSQL answers again")
                self._problem, self._asked_at = problem, self.clock()
            return self._problem


class DatabaseWrapper(base.DatabaseWrapper):
    # One per pool, as Django keeps one pool per database alias and process.
    _reachability: weakref.WeakKeyDictionary[ConnectionPool, Reachability] = weakref.WeakKeyDictionary()

    @property
    def pool(self) -> ConnectionPool | None:
        pool = super().pool
        if pool is not None and pool not in self._reachability:
            # A new pool, not yet open (Django opens it on the first request).
            pool.reconnect_timeout = min(pool.reconnect_timeout, RECONNECT_SECONDS)
            self._reachability.setdefault(pool, Reachability())
        return pool

    @property
    def reachability(self) -> Reachability | None:
        pool = self.pool
        return None if pool is None else self._reachability[pool]

    def ask_directly(self) -> None:
        """Open a connection of our own (not the pool's) with a short timeout, and close it; raise if that fails."""
        params = {**self.get_connection_params(), "connect_timeout": ASK_CONNECT_TIMEOUT}
        self.Database.connect(**params).close()

    def _ask(self, pool: ConnectionPool | None) -> None:
        """Raise psycopg's OperationalError unless PostgreSQL accepts a direct connection (with the pool: at most
        one attempt a second, whose answer stands in between)."""
        if pool is None:
            self.ask_directly()
        elif problem := self._reachability[pool].problem(
            self.ask_directly, pool.get_stats().get("connections_errors", 0)
        ):
            raise self.Database.OperationalError(f"PostgreSQL is not answering (asked directly): {problem}")

    @async_unsafe
    def get_new_connection(self, conn_params: dict[str, Any]) -> psycopg.Connection[Any]:
        pool = self.pool
        if pool is None:
            return super().get_new_connection(conn_params)
        pool.open()
        self._refuse_if_unreachable(pool, waited=False)
        try:
            return super().get_new_connection(conn_params)
        except PoolTimeout:
            # Waited DB_POOL_TIMEOUT: every connection was busy, unless PostgreSQL went away meanwhile.
            self._refuse_if_unreachable(pool, waited=True)
            raise

    def _refuse_if_unreachable(self, pool: ConnectionPool, *, waited: bool) -> None:
        """Fail now if the pool cannot connect and neither can we. Otherwise the request waits its turn for a
        connection as with Django's backend: one is ready, or connecting has not failed since PostgreSQL last
        answered (every connection is lent out, or the pool is still making them)."""
        stats = pool.get_stats()
        ready = stats.get("pool_available", 0) > 0 and not waited
        if not ready and stats.get("connections_errors", 0) > self._reachability[pool].errors_seen:
            self._ask(pool)

    @async_unsafe
    def check_reachable(self) -> None:
        """For /readyz: raise OperationalError unless PostgreSQL accepts a connection, asked directly and never
        through the pool (with the pool, at most once a second; in between, the last answer)."""
        with self.wrap_database_errors:
            self._ask(self.pool)
