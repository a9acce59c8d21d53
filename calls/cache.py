"""Redis as Django's cache, degrading instead of failing when Redis is unreachable or hung.

Everything vccweb keeps there can be lost or done without: a missing token is fetched again, a throttle lets the
request through, a cached count is asked for again. The dialling locks do not rely on it (calls/locks.py keeps
them in the database). An outage is logged once; it never turns a click into an error page.

A hung Redis (it accepts connections and never answers) costs each operation a whole socket timeout, so after a
failure a breaker stops asking Redis for `breaker_seconds` (an OPTIONS key, default 10): every operation answers
its fallback at once. Then one caller tries again; if Redis answers, the breaker closes.

The async methods (sessions and permissions use them on every async request) talk to Redis with redis.asyncio
on the request's own event loop. Django's defaults would send each one to a thread: a hop per cache read.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

BREAKER_SECONDS = 10.0
ASYNC_TIMEOUT_FACTOR = 4  # see _aclient
ASYNC_CONNECTIONS = 1000  # per process at most (see _aclient); each operation holds one until its answer is read


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
_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()
# And one asyncio client per location and event loop: its connections belong to the loop that opened them.
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = weakref.WeakKeyDictionary()


class SharedClientRedisCacheClient(RedisCacheClient):
    """Django's Redis cache client, keeping one redis.Redis per connection pool. Django builds a new redis.Redis
    (its option parsing and tables of response callbacks) for every operation: 0.2 to 0.3 ms of CPU each. A
    redis.Redis is safe to share between threads: each command takes a connection from the pool."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._redis_by_pool: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)
        client = self._redis_by_pool.get(id(pool))  # the pools live as long as this client: ids are not reused
        if client is None:
            client = self._redis_by_pool.setdefault(id(pool), self._client(connection_pool=pool))
        return client


class TolerantRedisCache(RedisCache):
    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        options = dict(params.get("OPTIONS") or {})
        seconds = float(options.pop("breaker_seconds", BREAKER_SECONDS))
        super().__init__(server, {**params, "OPTIONS": options})
        self._class = SharedClientRedisCacheClient
        self.location = server if isinstance(server, str) else ",".join(server)
        self.breaker = breaker_for(self.location, seconds)
        self._client_key = f"{self.location}|{sorted(self._options.items())!r}"  # which shared client is ours

    @property
    def _cache(self):
        client = _clients.get(self._client_key)
        if client is None:
            with _clients_lock:
                client = _clients.setdefault(self._client_key, self._class(self._servers, **self._options))
        return client

    def _aclient(self):
        """This event loop's redis.asyncio client (the first server: Django's client reads and writes there too)."""
        from redis import asyncio as aioredis

        key = self._client_key
        loop = asyncio.get_running_loop()
        if loop not in _async_clients:
            for old in [other for other in list(_async_clients) if other.is_closed()]:
                _async_clients.pop(old, None)  # a finished loop's clients (async_to_sync, tests): let them go
        per_loop = _async_clients.setdefault(loop, {})
        client = per_loop.get(key)
        if client is None:
            options = {k: v for k, v in self._options.items() if k not in ("serializer", "pool_class", "parser_class")}
            # A read in the event loop times out by the loop's clock, and a reply that came in a millisecond waits
            # behind every request already queued on the loop: in a burst of 200 clicks, over 500 ms, which opened
            # the breaker on a healthy Redis (and sent every session and user read to PostgreSQL for 10 s). The
            # loop's timeouts are ASYNC_TIMEOUT_FACTOR times the sync client's; a hung Redis still costs one of
            # them before the breaker opens.
            for name in ("socket_timeout", "socket_connect_timeout"):
                if options.get(name):
                    options[name] = options[name] * ASYNC_TIMEOUT_FACTOR
            # redis.asyncio's pool refuses a 101st connection at once (MaxConnectionsError), which opened the
            # breaker when 200 clicks arrived together. A pool that makes callers wait for a free connection
            # (BlockingConnectionPool) cost each operation more CPU, so the limit is raised instead: Redis takes
            # 10,000 clients, and a process never has more operations in flight than requests.
            pool = aioredis.ConnectionPool.from_url(self._servers[0], max_connections=ASYNC_CONNECTIONS, **options)
            client = per_loop[key] = aioredis.Redis(connection_pool=pool)
        return client

    @property
    def _serializer(self):
        return self._cache._serializer

    def _guarded(self, operation: str, fallback: Any, call: Callable[[], Any]) -> Any:
        if not self.breaker.allows():
            return fallback
        try:
            result = call()
        except RedisError as error:
            return self._failed(operation, error, fallback)
        return self._answered(result)

    async def _aguarded(self, operation: str, fallback: Any, call: Callable[[], Awaitable[Any]]) -> Any:
        if not self.breaker.allows():
            return fallback
        try:
            result = await call()
        except RedisError as error:
            return self._failed(operation, error, fallback)
        return self._answered(result)

    def _failed(self, operation: str, error: RedisError, fallback: Any) -> Any:
        if self.breaker.failed(error):
            log.warning(
                "cache unavailable (%s): %s; not asking it again for %g s",
                operation,
                self.breaker.last_error,
                self.breaker.seconds,
            )
        return fallback

    def _answered(self, result: Any) -> Any:
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

    def set_many(self, data: dict[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> list:
        return self._guarded(
            "set_many", list(data), lambda: super(TolerantRedisCache, self).set_many(data, timeout, version)
        )

    def delete_many(self, keys: Any, version: int | None = None) -> None:
        self._guarded("delete_many", None, lambda: super(TolerantRedisCache, self).delete_many(keys, version))

    def clear(self) -> bool:
        return self._guarded("clear", False, lambda: super(TolerantRedisCache, self).clear())

    # --- async: the same operations on this event loop's connection (see the module's docstring) -------------

    def _timeout(self, timeout: Any) -> int | None:
        return self.get_backend_timeout(timeout)

    async def aget(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        key = self.make_and_validate_key(key, version=version)

        async def get() -> Any:
            value = await self._aclient().get(key)
            return default if value is None else self._serializer.loads(value)

        return await self._aguarded("get", default, get)

    async def aget_many(self, keys: Any, version: int | None = None) -> dict[Any, Any]:
        key_map = {self.make_and_validate_key(key, version=version): key for key in keys}
        if not key_map:
            return {}

        async def get_many() -> dict[Any, Any]:
            values = await self._aclient().mget(list(key_map))
            found = zip(key_map, values, strict=True)
            return {key_map[k]: self._serializer.loads(v) for k, v in found if v is not None}

        return await self._aguarded("get_many", {}, get_many)

    async def aset(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        key, seconds = self.make_and_validate_key(key, version=version), self._timeout(timeout)

        async def set_() -> None:
            if seconds == 0:
                await self._aclient().delete(key)
            else:
                await self._aclient().set(key, self._serializer.dumps(value), ex=seconds)

        await self._aguarded("set", None, set_)

    async def aadd(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        key, seconds = self.make_and_validate_key(key, version=version), self._timeout(timeout)

        async def add() -> bool:
            client = self._aclient()
            if seconds == 0:
                if added := bool(await client.set(key, self._serializer.dumps(value), nx=True)):
                    await client.delete(key)
                return added
            return bool(await client.set(key, self._serializer.dumps(value), ex=seconds, nx=True))

        return await self._aguarded("add", True, add)

    async def aset_many(self, data: dict[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> list:
        if not data:
            return []
        safe = {self.make_and_validate_key(key, version=version): value for key, value in data.items()}
        seconds = self._timeout(timeout)

        async def set_many() -> list:
            async with self._aclient().pipeline() as pipe:
                pipe.mset({k: self._serializer.dumps(v) for k, v in safe.items()})
                if seconds is not None:
                    for key in safe:
                        pipe.expire(key, seconds)
                await pipe.execute()
            return []

        return await self._aguarded("set_many", list(data), set_many)

    async def adelete(self, key: Any, version: int | None = None) -> bool:
        key = self.make_and_validate_key(key, version=version)

        async def delete() -> bool:
            return bool(await self._aclient().delete(key))

        return await self._aguarded("delete", False, delete)

    async def adelete_many(self, keys: Any, version: int | None = None) -> None:
        safe = [self.make_and_validate_key(key, version=version) for key in keys]
        if not safe:
            return

        async def delete_many() -> None:
            await self._aclient().delete(*safe)

        await self._aguarded("delete_many", None, delete_many)

    async def ahas_key(self, key: Any, version: int | None = None) -> bool:
        key = self.make_and_validate_key(key, version=version)

        async def has_key() -> bool:
            return bool(await self._aclient().exists(key))

        return await self._aguarded("has_key", False, has_key)

    async def atouch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        key, seconds = self.make_and_validate_key(key, version=version), self._timeout(timeout)

        async def touch() -> bool:
            client = self._aclient()
            return bool(await (client.persist(key) if seconds is None else client.expire(key, seconds)))

        return await self._aguarded("touch", False, touch)

    async def aincr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        key = self.make_and_validate_key(key, version=version)

        async def incr() -> int:
            client = self._aclient()
            if not await client.exists(key):
                raise ValueError(f"Key '{key}' not found.")
            return await client.incr(key, delta)

        return await self._aguarded("incr", delta, incr)


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

    async def aset_many(self, data: dict[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> list:
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
