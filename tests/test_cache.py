"""TolerantRedisCache: short timeouts, and a breaker that stops asking a dead or hung Redis for a while.

The hung Redis is a socket server on 127.0.0.1 that accepts connections and never answers. The breaker's clock
is injected: nothing here sleeps; the only waiting is one short socket timeout per real attempt.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading

import pytest

from calls import cache as tolerant
from calls.cache import Breaker, TolerantRedisCache
from tests._redis import TEST_REDIS_URL

REDIS_URL = TEST_REDIS_URL  # this worker's own database
TIMEOUT = 0.05  # seconds: the one wall-clock wait per attempt that reaches the hung server
# Against the real Redis: a timeout no loaded machine reaches. With TIMEOUT, a busy machine that kept Redis or this
# process waiting 50 ms opened the breaker, and a test that expected Redis's answer got the fallback.
LIVE_TIMEOUT = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class HungRedis:
    """Accepts connections, never answers; bytes_received is what its clients have sent so far.

    Nothing serves it in a thread: the kernel completes each connection and keeps what clients send in the
    socket's buffer, and bytes_received reads it there when asked. A thread that read it as it came counted late
    whenever a loaded machine kept that thread waiting past the client's 50 ms timeout: too few bytes right after
    a request, then bytes that looked sent while the breaker was open.
    """

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._received = 0
        self._closed = False

    @property
    def bytes_received(self) -> int:
        if not self._closed:
            self._read_what_was_sent()
        return self._received

    def _read_what_was_sent(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while True:
                conn, _ = self.listener.accept()
                conn.setblocking(False)
                self.connections.append(conn)
        for conn in self.connections:
            with contextlib.suppress(OSError):
                while data := conn.recv(65536):
                    self._received += len(data)

    def close(self) -> None:
        """Stop listening; bytes_received keeps counting what had been sent until now."""
        self._read_what_was_sent()
        self._closed = True
        for conn in self.connections:
            conn.close()
        self.listener.close()


@pytest.fixture(autouse=True)
def _fresh_breakers():
    tolerant._breakers.clear()
    yield
    tolerant._breakers.clear()


@pytest.fixture
def hung():
    server = HungRedis()
    yield server
    server.close()


def make_cache(location: str, clock: Clock, seconds: float = 10, timeout: float = TIMEOUT) -> TolerantRedisCache:
    cache = TolerantRedisCache(
        location,
        {
            "KEY_PREFIX": "vccweb-test",
            "OPTIONS": {"socket_connect_timeout": timeout, "socket_timeout": timeout, "breaker_seconds": seconds},
        },
    )
    cache.breaker.clock = clock
    return cache


def test_a_hung_redis_is_asked_once_then_left_alone_until_the_pause_ends(hung):
    clock = Clock()
    cache = make_cache(f"redis://127.0.0.1:{hung.port}/0", clock)

    assert cache.get("token", "fallback") == "fallback"  # waited one socket timeout
    assert cache.breaker.is_open
    asked = hung.bytes_received
    assert asked > 0

    # While open: every operation answers its fallback at once, without a byte sent.
    assert cache.get("token", "fallback") == "fallback"
    assert cache.add("k", 1) is True
    assert cache.set("k", 1) is None
    assert cache.delete("k") is False
    assert cache.get_many(["a", "b"]) == {}
    assert cache.incr("n") == 1
    assert cache.has_key("k") is False
    assert cache.set_many({"a": 1, "b": 2}) == ["a", "b"]
    assert hung.bytes_received == asked

    clock.now += 9.9
    cache.get("token")
    assert hung.bytes_received == asked

    clock.now += 0.2  # the pause is over: one caller tries again (and fails again: still hung)
    assert cache.get("token", "fallback") == "fallback"
    assert hung.bytes_received > asked
    assert cache.breaker.is_open


def test_the_breaker_is_shared_by_the_cache_objects_of_one_process(hung):
    """Django makes a cache object per thread: one of them finding Redis hung spares the others the wait."""
    clock = Clock()
    location = f"redis://127.0.0.1:{hung.port}/0"
    first, second = make_cache(location, clock), make_cache(location, clock)
    first.get("x")
    asked = hung.bytes_received
    assert second.get("x", "fallback") == "fallback"
    assert hung.bytes_received == asked


def test_a_refused_connection_opens_the_breaker_and_readyz_health_says_so():
    clock = Clock()
    cache = make_cache("redis://127.0.0.1:1/0", clock)
    assert cache.health().startswith("not answering (ConnectionError")
    assert cache.breaker.is_open
    assert cache.health().startswith("not answering (ConnectionError")  # from the breaker, not asked again


def test_the_outage_is_logged_once(hung, caplog):
    cache = make_cache(f"redis://127.0.0.1:{hung.port}/0", Clock())
    for _ in range(5):
        cache.get("x")
    outages = [r for r in caplog.records if "cache unavailable" in r.getMessage()]
    assert len(outages) == 1
    assert "not asking it again for 10 s" in outages[0].getMessage()


@pytest.fixture
def live_redis():
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        pytest.skip(f"Redis is not running at {REDIS_URL} (CI starts one)")
    return REDIS_URL


def test_when_redis_answers_again_the_breaker_closes(live_redis, caplog):
    caplog.set_level(logging.INFO, logger="calls.cache")
    clock = Clock()
    cache = make_cache(live_redis, clock, timeout=LIVE_TIMEOUT)
    cache.breaker.failed(ConnectionError("it was down"))
    assert cache.get("k", "fallback") == "fallback"  # still paused

    clock.now += 10
    cache.set("k", "v")
    assert not cache.breaker.is_open
    assert cache.get("k") == "v"
    assert cache.health() == ""
    assert any("cache available again" in r.getMessage() for r in caplog.records)
    cache.delete("k")


def test_half_open_lets_one_caller_try_and_keeps_the_others_waiting():
    clock = Clock()
    breaker = Breaker(seconds=10, clock=clock)
    assert breaker.allows()
    assert breaker.failed(RuntimeError("down")) is True
    assert breaker.failed(RuntimeError("down")) is False  # already open: not logged again
    assert not breaker.allows()
    clock.now += 10
    assert breaker.allows()  # the one that tries
    assert not breaker.allows()  # everyone else, meanwhile
    assert breaker.succeeded() is True
    assert breaker.allows()
    assert breaker.succeeded() is False


# --- The async methods: Django's, each running its sync twin in a thread, behind the same breaker ------------


async def test_the_async_methods_read_and_write_what_the_sync_ones_do(live_redis):
    cache = make_cache(live_redis, Clock(), timeout=LIVE_TIMEOUT)
    cache.set("sync", {"written": "sync"})
    assert await cache.aget("sync") == {"written": "sync"}
    await cache.aset("async", [1, 2])
    assert cache.get("async") == [1, 2]
    assert await cache.aget("nothing", "fallback") == "fallback"

    await cache.aset_many({"a": 1, "b": "two"}, 60)
    assert await cache.aget_many(["a", "b", "missing"]) == {"a": 1, "b": "two"}
    assert await cache.aincr("a", 2) == 3
    assert cache.get("a") == 3
    with pytest.raises(ValueError):
        await cache.aincr("missing")
    assert await cache.aadd("a", 99) is False  # there already
    assert await cache.aadd("new", "x", 60) is True
    assert await cache.ahas_key("new")
    assert await cache.atouch("new", 120)
    assert await cache.adelete("new") is True
    assert not await cache.ahas_key("new")
    await cache.adelete_many(["a", "b", "sync", "async"])
    assert cache.get_many(["a", "b", "sync", "async"]) == {}


async def test_an_async_read_of_a_hung_redis_answers_its_fallback_and_opens_the_breaker(hung, caplog):
    clock = Clock()
    cache = make_cache(f"redis://127.0.0.1:{hung.port}/0", clock)

    assert await cache.aget("k", "fallback") == "fallback"  # one socket timeout
    assert cache.breaker.is_open
    asked = hung.bytes_received
    assert await cache.aget_many(["k"]) == {}
    assert await cache.aadd("k", 1) is True  # as for a new key: nothing is blocked by mistake
    assert hung.bytes_received == asked  # the open breaker did not ask again
    assert sum("cache unavailable" in r.getMessage() for r in caplog.records) == 1


def test_a_generation_is_moved_on_even_while_the_breaker_is_open(live_redis, settings):
    from django.core.cache import caches

    from calls.cache import bump_generation

    settings.CACHES = {"default": {"BACKEND": "calls.cache.TolerantRedisCache", "LOCATION": live_redis}}
    backend = caches["default"]
    backend.set("gen", 7, None)
    backend.breaker.failed(ConnectionError("a blip, long over"))
    assert backend.get("gen") is None  # the breaker answers the fallback
    bump_generation("gen")
    backend.breaker.succeeded()
    assert backend.get("gen") == 8
    backend.delete("gen")
    bump_generation("gen")  # gone (evicted): started again from the clock, never back at a small number
    assert backend.get("gen") > 10**18
    backend.delete("gen")


def test_one_cache_client_serves_every_thread_of_a_process(live_redis):
    """Django builds a cache client (and its connection pools) per cache object, so per thread and per request;
    ours keeps one per location and process, shared by the threads."""
    cache = make_cache(live_redis, Clock(), timeout=LIVE_TIMEOUT)
    other = make_cache(live_redis, Clock(), timeout=LIVE_TIMEOUT)

    cache.set("k", "v")
    seen = []
    thread = threading.Thread(target=lambda: seen.append((other.get("k"), other._cache)))
    thread.start()
    thread.join()

    assert seen == [("v", cache._cache)]
    cache.delete("k")


def test_count_adds_one_to_each_counter_in_one_round_trip_and_keeps_the_first_lifetime(live_redis, monkeypatch):
    import redis

    cache = make_cache(live_redis, Clock(), timeout=LIVE_TIMEOUT)
    raw = cache._cache.get_client(write=True)
    cache.delete_many(["hits", "places"])
    trips = []
    for kind, method in (("pipeline", redis.client.Pipeline.execute), ("command", redis.client.Redis.execute_command)):
        monkeypatch.setattr(
            getattr(redis.client, "Pipeline" if kind == "pipeline" else "Redis"),
            "execute" if kind == "pipeline" else "execute_command",
            lambda self, *args, _method=method, _kind=kind, **kw: trips.append(_kind) or _method(self, *args, **kw),
        )

    assert cache.count(["hits", "places"], 120) == [1, 1]
    assert cache.count(["hits"], 120) == [2]
    assert trips == ["pipeline", "pipeline"]  # one round trip a count, whatever the number of counters
    monkeypatch.undo()
    raw.expire(cache.make_and_validate_key("hits"), 30)
    assert cache.count(["hits", "places"], 120) == [3, 2]

    assert cache.get("hits") == 3  # a counter reads back as the number it is
    assert 0 < raw.ttl(cache.make_and_validate_key("hits")) <= 30  # a count does not make it live longer
    assert 60 < raw.ttl(cache.make_and_validate_key("places")) <= 120
    cache.delete_many(["hits", "places"])


def test_the_apps_count_goes_through_the_redis_cache_in_one_round_trip(redis_cache, monkeypatch):
    import redis

    trips = []

    def counted(cls: type, name: str) -> None:
        method = getattr(cls, name)
        monkeypatch.setattr(cls, name, lambda self, *a, **kw: trips.append(name) or method(self, *a, **kw))

    counted(redis.client.Pipeline, "execute")
    counted(redis.client.Redis, "execute_command")

    assert tolerant.count(["rate:all", "rate:place"], 120) == [1, 1]
    assert tolerant.count(["rate:all", "rate:place"], 120) == [2, 2]
    assert trips == ["execute", "execute"]  # a pipeline each: not EXISTS and INCR for each counter


def test_count_answers_one_each_while_redis_is_away(hung):
    clock = Clock()
    cache = make_cache(f"redis://127.0.0.1:{hung.port}/0", clock)

    assert cache.count(["a", "b"], 60) == [1, 1]  # unknown: nobody is refused by mistake
    assert cache.breaker.is_open


def test_a_worker_past_the_last_redis_database_is_told_what_to_set():
    """TEST_WORKERS=4 with the default TEST_REDIS_URL (database 14) gave worker 2 database 16: every Redis test
    failed "DB index is out of range". The session now stops at once, saying what to set."""
    import redis

    from tests._redis import out_of_range

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        pytest.skip(f"Redis is not running at {REDIS_URL} (CI starts one)")
    assert out_of_range(REDIS_URL) == ""
    told = out_of_range(REDIS_URL.rsplit("/", 1)[0] + "/99")
    assert "Redis has no database 99" in told and "B + W at most 16" in told
