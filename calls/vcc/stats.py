"""A tiny recorder of VCC requests for the health page: per-minute counts, the last success and the last failure,
and when each cached token expires. Never a token, a header or a body.

With Redis as the cache (several processes) each request costs one pipelined round trip and every process's
requests count together. With a process-local cache (local memory, the default) the figures stay in this process's
memory, as the local cache itself would keep them: no cache call at all. Recording never fails a request.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.core.cache.backends.redis import RedisCacheClient

logger = logging.getLogger(__name__)

WINDOW_MINUTES = 60
PREFIX = "vcc:stats"
ERROR_LENGTH = 300


@dataclass(frozen=True)
class Exchanged:
    """One request sent to VCC: answered with `status`, or failed without an answer (`status` None)."""

    at: float  # seconds since the epoch
    method: str
    path: str
    status: int | None
    error: str = ""  # empty: it worked

    @property
    def failed(self) -> bool:
        return bool(self.error)

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, "method": self.method, "path": self.path, "status": self.status, "error": self.error}


@dataclass(frozen=True)
class TokenIssued:
    """A token was stored under `cache_key` for `timeout` seconds; VCC says it expires at `expires_at`."""

    cache_key: str
    expires_at: float
    timeout: float


type Event = Exchanged | TokenIssued


def exchanged(request_method: str, url_path: str, *, at: float, status: int | None, error: str = "") -> Exchanged:
    # The account key is a path segment of every V0 request: keep it off the health page.
    path = re.sub(r"^/v0/(?!oauth2/)[^/]+", "/v0/{accountKey}", url_path, flags=re.IGNORECASE)
    return Exchanged(at=at, method=request_method, path=path, status=status, error=error[:ERROR_LENGTH])


@dataclass
class Snapshot:
    requests: int = 0
    failures: int = 0
    last_success: dict[str, Any] | None = None
    last_failure: dict[str, Any] | None = None


def _minute(at: float) -> int:
    return int(at // 60)


# --- Process memory (local caches) ----------------------------------------------------------------


@dataclass
class _Memory:
    lock: threading.Lock = field(default_factory=threading.Lock)
    minutes: dict[int, list[int]] = field(default_factory=dict)
    last_success: dict[str, Any] | None = None
    last_failure: dict[str, Any] | None = None
    tokens: dict[str, float] = field(default_factory=dict)

    def record(self, events: Iterable[Event]) -> None:
        with self.lock:
            for event in events:
                if isinstance(event, TokenIssued):
                    self.tokens[event.cache_key] = event.expires_at
                    continue
                minute = _minute(event.at)
                counts = self.minutes.setdefault(minute, [0, 0])
                counts[0] += 1
                counts[1] += event.failed
                if event.failed:
                    self.last_failure = event.as_dict()
                else:
                    self.last_success = event.as_dict()
                for old in [m for m in self.minutes if m <= minute - WINDOW_MINUTES]:
                    del self.minutes[old]


_memory = _Memory()


def reset() -> None:
    """Forget what this process recorded (tests)."""
    global _memory
    _memory = _Memory()


# --- Redis ----------------------------------------------------------------------------------------


def _redis(cache: Any) -> bool:
    return isinstance(getattr(cache, "_cache", None), RedisCacheClient)


def _key(cache: Any, name: str) -> str:
    return cache.make_and_validate_key(name)


def _record_redis(cache: Any, events: Iterable[Event]) -> None:
    pipe = cache._cache.get_client(None, write=True).pipeline(transaction=False)
    _queue(pipe, cache, events)
    pipe.execute()  # one round trip


def _queue(pipe: Any, cache: Any, events: Iterable[Event]) -> None:
    """Queue the counters' commands on a Redis pipeline."""
    ttl = (WINDOW_MINUTES + 5) * 60
    for event in events:
        if isinstance(event, TokenIssued):
            expires = _key(cache, event.cache_key + ":expires")
            pipe.set(expires, pickle.dumps(event.expires_at), ex=max(1, int(event.timeout)))
            continue
        minute = _minute(event.at)
        for name, counted in (("requests", True), ("failures", event.failed)):
            if counted:
                key = _key(cache, f"{PREFIX}:{name}:{minute}")
                pipe.incr(key)
                pipe.expire(key, ttl)
        last = "last_failure" if event.failed else "last_success"
        pipe.set(_key(cache, f"{PREFIX}:{last}"), pickle.dumps(event.as_dict()))


# --- The recorder's two doors ---------------------------------------------------------------------


def record(cache: Any, events: Iterable[Event]) -> None:
    """Count these events; never raises (a health figure is not worth a failed call)."""
    try:
        if _redis(cache):
            _record_redis(cache, events)
        else:
            _memory.record(events)
    except Exception as exc:
        logger.warning("VCC request statistics not recorded: %s", type(exc).__name__)


def needs_io(cache: Any) -> bool:
    """Whether the counts live on a server (Redis), shared by every process, rather than in this one."""
    return _redis(cache)


async def arecord(cache: Any, events: Iterable[Event]) -> None:
    """record(), for async callers: Redis is asked in a thread; memory is written in place."""
    try:
        if _redis(cache):
            await asyncio.to_thread(_record_redis, cache, events)
        else:
            _memory.record(events)
    except Exception as exc:
        logger.warning("VCC request statistics not recorded: %s", type(exc).__name__)


def snapshot(cache: Any, now: datetime) -> Snapshot:
    """Requests and failures in the hour up to now, and the last success and failure (from any process with Redis)."""
    current = _minute(now.timestamp())
    minutes = range(current - WINDOW_MINUTES + 1, current + 1)
    if not _redis(cache):
        with _memory.lock:
            counts = [_memory.minutes.get(m, [0, 0]) for m in minutes]
            return Snapshot(
                requests=sum(c[0] for c in counts),
                failures=sum(c[1] for c in counts),
                last_success=_memory.last_success,
                last_failure=_memory.last_failure,
            )
    names = [f"{PREFIX}:requests:{m}" for m in minutes] + [f"{PREFIX}:failures:{m}" for m in minutes]
    names += [f"{PREFIX}:last_success", f"{PREFIX}:last_failure"]
    found = cache.get_many(names)  # one round trip
    return Snapshot(
        requests=sum(int(v) for k, v in found.items() if k.startswith(f"{PREFIX}:requests:")),
        failures=sum(int(v) for k, v in found.items() if k.startswith(f"{PREFIX}:failures:")),
        last_success=found.get(f"{PREFIX}:last_success"),
        last_failure=found.get(f"{PREFIX}:last_failure"),
    )


def token_expiry(cache: Any, cache_key: str) -> datetime | None:
    """When VCC said the token cached under cache_key expires, if one is cached and its expiry was recorded."""
    if cache.get(cache_key) is None:
        return None
    if _redis(cache):
        expires_at = cache.get(cache_key + ":expires")
    else:
        with _memory.lock:
            expires_at = _memory.tokens.get(cache_key)
    return datetime.fromtimestamp(expires_at, UTC) if expires_at is not None else None
