"""Redis as Django's cache, degrading instead of failing when Redis is unreachable or hung.

Everything vccweb keeps there can be lost or done without: a missing token is fetched again, a throttle lets the
request through, a cached count is asked for again. The dialling locks do not rely on it (calls/locks.py keeps
them in the database). An outage is logged once; it never turns a click into an error page.

A hung Redis (it accepts connections and never answers) costs each operation a whole socket timeout, so after a
failure a breaker stops asking Redis for `breaker_seconds` (an OPTIONS key, default 10): every operation answers
its fallback at once. Then one caller tries again; if Redis answers, the breaker closes.

The async methods are Django's: each runs its sync twin on the request's thread. Methods of their own on
redis.asyncio, in the event loop, cost more CPU per click than the hops they spared (bench/README.md, "Private
names").
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

BREAKER_SECONDS = 10.0


class Breaker:
    """Closed until a failure; then open (nobody asks) for `seconds`; then one caller at a time may try."""

    def __init__(self, *, seconds: float = BREAKER_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self.last_error = ""
        self._open_until: float | None = None  # None: closed
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._open_until is not None

    def allows(self) -> bool:
        """May Redis be asked now? After the pause this says yes to one caller and keeps the rest waiting."""
        if self._open_until is None:
            return True
        with self._lock:
            if self._open_until is None:
                return True
            now = self.clock()
            if now < self._open_until:
                return False
            self._open_until = now + self.seconds  # this caller tries; the others keep using fallbacks
            return True

    def failed(self, error: Exception) -> bool:
        """Open (again); True when it was closed, so the outage is logged once."""
        with self._lock:
            was_closed = self._open_until is None
            self._open_until = self.clock() + self.seconds
            self.last_error = f"{type(error).__name__}: {error}"
            return was_closed

    def succeeded(self) -> bool:
        """Close; True when it was open, so the recovery is logged once."""
        if self._open_until is None:
            return False
        with self._lock:
            was_open = self._open_until is not None
            self._open_until = None
            return was_open


# One breaker per Redis location and process: Django makes a cache object per thread, and they must agree.
_breakers: dict[str, Breaker] = {}
_breakers_lock = threading.Lock()


def breaker_for(location: str, seconds: float = BREAKER_SECONDS) -> Breaker:
    with _breakers_lock:
        return _breakers.setdefault(location, Breaker(seconds=seconds))


# One Redis client, and so one connection pool, per location and process. Django makes a cache object per thread
# and per async context (each request), and each would otherwise open its own pool and connections to Redis.
_clients: dict[str, RedisCacheClient] = {}
_clients_lock = threading.Lock()


class TolerantRedisCache(RedisCache):
    # Set by RedisCache.__init__, which django-stubs leaves out: the client class, its servers and its options.
    _class: type[RedisCacheClient]
    _servers: list[str]
    _options: dict[str, Any]

    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        options = dict(params.get("OPTIONS") or {})
        seconds = float(options.pop("breaker_seconds", BREAKER_SECONDS))
        super().__init__(server, {**params, "OPTIONS": options})
        self.location = server if isinstance(server, str) else ",".join(server)
        self.breaker = breaker_for(self.location, seconds)
        self._client_key = f"{self.location}|{sorted(self._options.items())!r}"  # which shared client is ours
        # Django's way, for bench/private_bench.py: a client (and connection pools) per cache object.
        own = "one_cache_client" in settings.BENCH_DISABLE
        self._own_client = self._class(self._servers, **self._options) if own else None

    @property
    def _cache(self) -> RedisCacheClient:
        if self._own_client is not None:
            return self._own_client
        client = _clients.get(self._client_key)
        if client is None:
            with _clients_lock:
                client = _clients.setdefault(self._client_key, self._class(self._servers, **self._options))
        return client

    def _guarded[T](self, operation: str, fallback: T, call: Callable[[], T]) -> T:
        if not self.breaker.allows():
            return fallback
        try:
            result = call()
        except RedisError as error:
            return self._failed(operation, error, fallback)
        return self._answered(result)

    def _failed[T](self, operation: str, error: RedisError, fallback: T) -> T:
        if self.breaker.failed(error):
            log.warning(
                "cache unavailable (%s): %s; not asking it again for %g s",
                operation,
                self.breaker.last_error,
                self.breaker.seconds,
            )
        return fallback

    def _answered[T](self, result: T) -> T:
        if self.breaker.succeeded():
            log.info("cache available again")
        return result

    def health(self) -> str:
        """Return "" when Redis answers a PING, else what is wrong (for /readyz); an open breaker is not asked."""
        if not self.breaker.allows():
            return f"not answering ({self.breaker.last_error})"
        try:
            self._cache.get_client(write=True).ping()
        except RedisError as error:
            self.breaker.failed(error)
            return f"not answering ({self.breaker.last_error})"
        self.breaker.succeeded()
        return ""

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return self._guarded("get", default, lambda: super(TolerantRedisCache, self).get(key, default, version))

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return self._guarded("add", True, lambda: super(TolerantRedisCache, self).add(key, value, timeout, version))

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        self._guarded("set", None, lambda: super(TolerantRedisCache, self).set(key, value, timeout, version))

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return self._guarded("touch", False, lambda: super(TolerantRedisCache, self).touch(key, timeout, version))

    def delete(self, key: Any, version: int | None = None) -> bool:
        return self._guarded("delete", False, lambda: super(TolerantRedisCache, self).delete(key, version))

    def get_many(self, keys: Any, version: int | None = None) -> dict[Any, Any]:
        return self._guarded("get_many", {}, lambda: super(TolerantRedisCache, self).get_many(keys, version))

    def has_key(self, key: Any, version: int | None = None) -> bool:
        return self._guarded("has_key", False, lambda: super(TolerantRedisCache, self).has_key(key, version))

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        # Unknown while Redis is away: answer as for a new key, so a counter never blocks anyone by mistake.
        return self._guarded("incr", delta, lambda: super(TolerantRedisCache, self).incr(key, delta, version))

    def count(self, keys: list[str], timeout: int) -> list[int]:
        """Add one to each counter (made at 1, living `timeout` seconds, when new) in one round trip: Django's incr
        costs two (EXISTS, INCR) and a new key a third. Unknown while Redis is away: 1 each, as incr answers. SET NX
        then INCR rather than INCR then EXPIRE NX, which needs Redis 7."""

        def pipeline() -> list[int]:
            names = [self.make_and_validate_key(key) for key in keys]
            batch = self._cache.get_client(write=True).pipeline(transaction=False)
            for name in names:
                batch.set(name, 0, ex=timeout, nx=True)  # made, with its lifetime, only when new (any Redis)
                batch.incr(name)
            return [int(n) for n in batch.execute()[1::2]]

        return self._guarded("count", [1] * len(keys), pipeline)

    def set_many(self, data: dict[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> list[Any]:
        return self._guarded(
            "set_many", list(data), lambda: super(TolerantRedisCache, self).set_many(data, timeout, version)
        )

    def delete_many(self, keys: Any, version: int | None = None) -> None:
        self._guarded("delete_many", None, lambda: super(TolerantRedisCache, self).delete_many(keys, version))

    def clear(self) -> None:  # as BaseCache says: nothing returned (Django's RedisCache passes on a bool)
        self._guarded("clear", None, lambda: super(TolerantRedisCache, self).clear())


class InProcessCache(LocMemCache):
    """Django's local-memory cache (one process, no Redis), whose async methods run in place: nothing to wait on."""

    async def aget(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return self.get(key, default, version)

    async def aget_many(self, keys: Any, version: int | None = None) -> dict[Any, Any]:
        return self.get_many(keys, version)

    async def aset(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        self.set(key, value, timeout, version)

    async def aadd(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return self.add(key, value, timeout, version)

    async def aset_many(
        self, data: dict[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list[Any]:
        return self.set_many(data, timeout, version)

    async def adelete(self, key: Any, version: int | None = None) -> bool:
        return self.delete(key, version)

    async def adelete_many(self, keys: Any, version: int | None = None) -> None:
        self.delete_many(keys, version)

    async def ahas_key(self, key: Any, version: int | None = None) -> bool:
        return self.has_key(key, version)

    async def atouch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return self.touch(key, timeout, version)

    async def aincr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        return self.incr(key, delta, version)


# --- Generations: one counter per kind of cached entry; moving it on makes every entry of that kind stale ------


def count(keys: list[str], timeout: int) -> list[int]:
    """Add one to each of these counters in the default cache and return them; a counter is made at 1, to live
    `timeout` seconds, when it is new. One round trip to Redis (TolerantRedisCache.count)."""
    from django.core.cache import caches

    cache = caches["default"]  # the backend itself: `django.core.cache.cache` is a proxy, never a TolerantRedisCache
    if isinstance(cache, TolerantRedisCache):
        return cache.count(keys, timeout)
    counts = []
    for key in keys:
        try:
            counts.append(cache.incr(key))
        except ValueError:  # new (or expired a moment ago)
            counts.append(1 if cache.add(key, 1, timeout) else cache.incr(key))
    return counts


def shared() -> bool:
    """Whether the cache is shared by every process (Redis), so a generation moved on in one is seen by all."""
    from django.core.cache import caches

    return not isinstance(caches["default"], LocMemCache)


LOCAL_SECONDS = 5  # the most an entry lives in a process's own cache (tests/conftest.py lifts it)


def lifetime(seconds: int) -> int:
    """How long to keep an entry cached under a generation: `seconds` with a shared cache; LOCAL_SECONDS (5 s) in a
    process's own cache, which cannot see another process move the generation on."""
    return seconds if shared() else min(seconds, LOCAL_SECONDS)


def generation_changed(key: str) -> None:
    """Make every entry cached under this generation stale, now and once the change is committed: a reader in
    between saw the old data and cached it under the new number."""
    from django.db import transaction

    bump_generation(key)
    transaction.on_commit(functools.partial(bump_generation, key))


def start_generation(key: str) -> None:
    """Start a generation counter if there is none, from the clock: a counter that was evicted and started again
    never comes back to a number old entries were stored under."""
    from django.core.cache import cache

    cache.add(key, time.time_ns(), None)


async def astart_generation(key: str) -> None:
    """start_generation, from the event loop."""
    from django.core.cache import cache

    await cache.aadd(key, time.time_ns(), None)


def bump_generation(key: str) -> None:
    """Move a generation counter on. Asked of Redis even while this process's breaker is open, since a lost move
    leaves stale entries in use until they expire; a failure is logged as an error."""
    from django.core.cache import caches

    backend = caches["default"]
    incr, set_ = (
        (functools.partial(RedisCache.incr, backend), functools.partial(RedisCache.set, backend))
        if isinstance(backend, TolerantRedisCache)
        else (backend.incr, backend.set)
    )
    try:
        try:
            incr(key)
        except ValueError:  # none yet (or evicted): nothing is cached under it
            set_(key, time.time_ns(), None)
    except RedisError as error:
        log.error("cache generation %s not moved on (%s): its entries stay in use until they expire", key, error)
