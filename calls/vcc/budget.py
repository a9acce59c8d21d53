"""One budget of VCC requests for the whole deployment, shared by every process and host, with priorities.

VCC's fair use policy is about 160 requests a minute for everything an account asks of every VCC API (vcc-api.md
§3.3); past it VCC answers 429. Every request we send (tokens, clicks, polls, syncs) first draws from
`VCC_REQUESTS_PER_MINUTE` (150 by default: a little under VCC's figure, for clock drift and other tools on the
account). The core draws before each request (`core.Draw`) and reports each 429 (`core.Limited`).

**Priorities.** The caller says what a request is for with `with budget.priority(budget.FOLLOW): ...` (a context
variable, so it reaches the token fetch and every request under it, and every task started inside it). A priority
may go while the requests sent in the last 60 seconds, of every priority, stay within its share of the budget:

| priority | share | at 150 a minute | why |
| --- | --- | --- | --- |
| CLICK | 100 % (and past it) | always | a person clicked and waits; VCC is the judge, not us |
| RECORDING (recording, wrap-up) | 90 % | 135 | a person pressed a button; rare |
| FOLLOW (following live calls) | 70 % | 105 | the bulk of the traffic; a poll refused now is asked again in seconds |
| READINESS (who is ready, checks) | 50 % | 75 | a hint before a click: "unknown" is acceptable |
| SYNC (User Admin sync) | 30 % | 45 | can take its time |

So the last 10 % of every 60 seconds is kept for clicks, the last 30 % for clicks and people's buttons, and however
busy the background gets, a click finds room. A click is never refused nor made to wait: it is counted and sent,
even past the budget and during a back-off. Any other request that finds no room is refused at once with
`BudgetExhausted`, a `VCCError` that says when to try again (`retry_after`), which callers treat as VCC's own 429:
following backs the call off, readiness shows "unknown". The sync alone waits for room (up to `SYNC_WAIT` a
request): it runs in the worker, nobody watches it, and refusing it would start a large account's sync from the
beginning every time; for the same reason a sync request VCC answers 429 is sent again once the back-off below is
over (`core.authorized`). A request with no priority set counts as READINESS: low enough not to crowd out people's
requests, high enough that an unmarked admin check is not starved by the sync.

**The window** is the last 60 seconds, counted request by request (the time each was sent), not estimated from
clock minutes: a burst near the end of one minute (following claiming 50 calls at once, the end of a back-off) stays
counted until it is 60 seconds old, so no 60 seconds ever hold more than a priority's share (clicks apart). A refused
request is told when the oldest requests it waits on leave the window.

**A 429 from VCC** stops every priority but clicks for its `Retry-After` (at most 5 minutes), in every process:
the back-off is kept in Redis, and in the process that saw it. Without a Retry-After (VCC documents none: "the
limit will automatically be reset after a short period") it is 10 s: one request to find out costs little, while a
longer pause leaves every live call's panel saying "lost contact" for as long.

**Where it is kept.** With Redis (`REDIS_URL`), one Lua script checks and counts a request atomically, in one
round trip, for every process and host: a sorted set of the requests of the last 60 seconds, scored by the hosts'
clocks (which NTP keeps within a fraction of a second), trimmed and counted before each request is added. Each
process also counts its own requests in memory (a queue of their times), and notes how many processes drew in
the last five minutes. When Redis is down (its breaker open, calls/cache.py), each process goes on alone with its
share: the budget divided by the processes it last saw (2 if it never saw Redis answer), so together they stay
within it. Without Redis at all (one process: a quick look, the tests) the process has the whole budget. The keys
name the account (a hash of its key), as VCC's limit does. With Redis a request costs one more round trip, in a
thread for async callers, before it is sent; a click too, since it must be counted.

`snapshot()` gives the health page the requests of the last 60 seconds against the budget, this clock minute's by
priority, and the 429s of the last hour.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from django.conf import settings
from django.core.cache.backends.redis import RedisCacheClient
from redis.exceptions import RedisError

from .errors import VCCError

logger = logging.getLogger(__name__)


class Priority(IntEnum):
    CLICK = 0
    RECORDING = 1
    FOLLOW = 2
    READINESS = 3
    SYNC = 4


CLICK, RECORDING, FOLLOW, READINESS, SYNC = Priority
DEFAULT = READINESS
SHARE = {CLICK: 1.0, RECORDING: 0.9, FOLLOW: 0.7, READINESS: 0.5, SYNC: 0.3}
# The longest a sync request waits for room before it is refused: past a back-off, two minutes always free room.
SYNC_WAIT = 120.0
BACKOFF_DEFAULT = 10.0  # a 429 without Retry-After (see above)
BACKOFF_MAX = 300.0  # a garbled or huge Retry-After must not stop following calls for hours
PROCESSES_SEEN_FOR = 300  # a process that drew within this many seconds counts as running
UNKNOWN_PROCESSES = 2  # the share while Redis is down, for a process that never saw it answer: web and worker
LIMITED_WINDOW_MINUTES = 60  # 429s are counted for the last hour
WINDOW = 60  # seconds: a request counts against the budget until it is this old

_current: ContextVar[Priority] = ContextVar("vcc_priority", default=DEFAULT)


@contextlib.contextmanager
def priority(value: Priority) -> Iterator[None]:
    """Requests to VCC made inside this block (and tasks started in it) draw from the budget at this priority."""
    token = _current.set(value)
    try:
        yield
    finally:
        _current.reset(token)


def current() -> Priority:
    return _current.get()


class BudgetExhausted(VCCError):
    """Not sent: the deployment's VCC budget has no room for this priority now (or VCC asked us to back off)."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(
            message,
            user_message="vccweb is holding back requests to VCC to stay within its limit; try again in a moment.",
            retryable=True,
            retry_after=retry_after,
            local=True,
        )


def wall_clock() -> float:
    """Seconds since the epoch: the hosts' clocks number the shared minutes. Tests replace it."""
    return time.time()


def _now() -> float:
    return wall_clock()  # looked up at each call, so a replaced wall_clock is seen everywhere


def limit_for(per_minute: float, value: Priority) -> float:
    """How many requests may have been sent in the last 60 seconds for a request of this priority to go."""
    return max(1.0, math.floor(per_minute * SHARE[value] + 1e-9))  # 10 * 0.7 is 7.000000000000001


def _minute(at: float) -> int:
    return int(at // 60)


def _wait_for_room(leaves_at: float, at: float) -> float:
    """Whole seconds (at least 1) until the request whose leaving the window makes room was sent 60 seconds ago."""
    return max(1.0, math.ceil(leaves_at + WINDOW - at))


# --- This process's own counts --------------------------------------------------------------------


@dataclass
class Memory:
    """What one process counted: when it sent each request of the last 60 seconds, what it sent and refused by
    clock minute and priority (the health page), the 429s it saw, its own back-off, and how many processes Redis
    last said were drawing."""

    process: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    lock: threading.Lock = field(default_factory=threading.Lock)
    window: deque[float] = field(default_factory=deque)  # when each request of the last 60 s was sent, oldest first
    drawn: int = 0  # requests counted by this process: with `process`, each request's member in Redis's window
    minutes: dict[int, Counter[str]] = field(default_factory=dict)
    refused: dict[int, Counter[str]] = field(default_factory=dict)
    limited: dict[int, int] = field(default_factory=dict)
    backoff_until: float = 0.0
    processes_seen: int | None = None

    def in_window(self, at: float) -> deque[float]:
        """The times of the requests sent in the 60 seconds before `at`, oldest first."""
        while self.window and self.window[0] <= at - WINDOW:
            self.window.popleft()
        return self.window

    def count(self, value: Priority, at: float, *, refused: bool = False) -> None:
        if not refused:
            self.window.append(at)
        minute = _minute(at)
        (self.refused if refused else self.minutes).setdefault(minute, Counter())[value.name] += 1
        for counts in (self.minutes, self.refused):
            for old in [m for m in counts if m < minute - 1]:
                del counts[old]

    def note_limited(self, until: float, at: float) -> None:
        self.backoff_until = max(self.backoff_until, until)
        minute = _minute(at)
        self.limited[minute] = self.limited.get(minute, 0) + 1
        for old in [m for m in self.limited if m <= minute - LIMITED_WINDOW_MINUTES]:
            del self.limited[old]


_memory = Memory()


def reset() -> None:
    """Forget what this process counted (tests)."""
    global _memory
    _memory = Memory()


# --- Redis ----------------------------------------------------------------------------------------

# KEYS: the window (a sorted set: a member per request sent, scored by when), this minute's counts by priority, the
# back-off, the processes drawing, this minute's refusals.
# ARGV: priority, limit, now, process, always (1: count and go whatever the counts), seconds processes are kept,
# this request's member (unique), the window's seconds.
# Returns: went (1/0), requests in the window before this one, when the request whose leaving makes room was sent
# (0 if none), seconds of back-off left, processes drawing.
_DRAW = """
local now, window = tonumber(ARGV[3]), tonumber(ARGV[8])
redis.call('ZADD', KEYS[4], now, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[6]))
redis.call('EXPIRE', KEYS[4], 2 * tonumber(ARGV[6]))
local processes = redis.call('ZCARD', KEYS[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
local limit = math.floor(tonumber(ARGV[2]))
local backoff = math.max(0, tonumber(redis.call('GET', KEYS[3]) or '0') - now)
if ARGV[5] ~= '1' and (backoff > 0 or used + 1 > limit) then
  redis.call('HINCRBY', KEYS[5], ARGV[1], 1)
  redis.call('EXPIRE', KEYS[5], 180)
  local leaves = '0'
  if used >= limit then
    leaves = redis.call('ZRANGE', KEYS[1], used - limit, used - limit, 'WITHSCORES')[2]
  end
  return {0, used, leaves, tostring(backoff), processes}
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[7])
redis.call('EXPIRE', KEYS[1], window)
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('EXPIRE', KEYS[2], 180)
return {1, used, '0', tostring(backoff), processes}
"""

# KEYS: the back-off, this minute's 429 count. ARGV: until (seconds since the epoch), seconds to keep the key.
_LIMITED = """
if tonumber(ARGV[1]) > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], 3900)
"""


def _redis(cache: Any) -> bool:
    return isinstance(getattr(cache, "_cache", None), RedisCacheClient)


@dataclass(frozen=True)
class Snapshot:
    """The budget now, for the health page."""

    per_minute: int  # the budget: VCC_REQUESTS_PER_MINUTE
    used: int  # requests sent in the last 60 seconds, every priority (what the budget judges by)
    this_minute: dict[str, int]  # requests sent in the current clock minute, by priority name
    refused_this_minute: dict[str, int]  # requests held back in the current clock minute, by priority name
    limits: dict[str, int]  # how many the last 60 seconds may hold for each priority to go
    backing_off_for: float  # seconds left of a back-off VCC asked for with a 429 (0: none)
    limited_last_hour: int  # 429s from VCC in the last hour
    shared: bool  # counted in Redis for every process (False: this process's own counts)


class Budget:
    """The deployment's budget as seen from one process: `cache` says where it is kept (Redis or not), `memory`
    holds this process's own counts, `clock` gives seconds since the epoch."""

    def __init__(
        self,
        cache: Any,
        *,
        per_minute: int | None = None,
        account: str | None = None,
        memory: Memory | None = None,
        clock: Callable[[], float] = _now,
    ) -> None:
        self.cache = cache
        self.per_minute = per_minute if per_minute is not None else settings.VCC_REQUESTS_PER_MINUTE
        account = account if account is not None else settings.VCC_ACCOUNT_KEY
        self.prefix = "vcc:budget:" + hashlib.sha256(account.encode()).hexdigest()[:12]
        self.memory = memory if memory is not None else _memory
        self.clock = clock
        self.shared = _redis(cache)

    # Redis, guarded by the cache's breaker: None when Redis cannot be asked (then this process goes on alone).

    def _key(self, name: str) -> str:
        return self.cache.make_and_validate_key(f"{self.prefix}:{name}")

    def _ask_redis[T](self, operation: str, call: Callable[[Any], T]) -> T | None:
        if not self.shared:
            return None

        def run() -> T:
            return call(self.cache._cache.get_client(None, write=True))

        guarded = getattr(self.cache, "_guarded", None)
        if guarded is not None:  # calls.cache.TolerantRedisCache: its breaker, and the outage logged once
            return guarded(f"vcc budget {operation}", None, run)
        try:
            return run()
        except RedisError as error:
            logger.warning("VCC budget: Redis unavailable (%s), counting in this process alone", error)
            return None

    # Drawing.

    def draw(self, value: Priority) -> None:
        """Count a request about to be sent at this priority; raise BudgetExhausted when it may not go."""
        now = self.clock()
        always = value == CLICK
        limit = limit_for(self.per_minute, value)
        minute = _minute(now)
        with self.memory.lock:
            backoff = self.memory.backoff_until - now
            self.memory.drawn += 1
            member = f"{self.memory.process}:{self.memory.drawn}"
        if backoff > 0 and not always:  # this process saw a 429: no need to ask Redis
            with self.memory.lock:
                self.memory.count(value, now, refused=True)
            raise _paused(backoff)
        answer = self._ask_redis(
            "draw",
            lambda client: client.register_script(_DRAW)(
                keys=[
                    self._key("window"),
                    self._key(f"sent:{minute}"),
                    self._key("backoff"),
                    self._key("processes"),
                    self._key(f"refused:{minute}"),
                ],
                args=[
                    value.name,
                    limit,
                    repr(now),
                    self.memory.process,
                    int(always),
                    PROCESSES_SEEN_FOR,
                    member,
                    WINDOW,
                ],
                client=client,
            ),
        )
        with self.memory.lock:
            sent = self.memory.in_window(now)
            if answer is not None:
                went, used, leaves_at, backoff, processes = answer
                self.memory.processes_seen = int(processes)
                went, leaves_at, backoff = bool(went), float(leaves_at), float(backoff)
            else:
                share = 1 if not self.shared else (self.memory.processes_seen or UNKNOWN_PROCESSES)
                limit = limit_for(self.per_minute / share, value)
                used, backoff = len(sent), max(0.0, self.memory.backoff_until - now)
                went = always or (backoff <= 0 and used + 1 <= limit)
                # Room comes when all but limit - 1 of them have left: when the one after those was sent.
                leaves_at = sent[used - int(limit)] if not went and used >= limit else 0.0
            self.memory.count(value, now, refused=not went)
        if went:
            return
        if backoff > 0:
            raise _paused(backoff)
        raise BudgetExhausted(
            f"Not sent: the VCC request budget for {value.name.lower()} is used up "
            f"({used} of {limit:.0f} in the last 60 s)",
            retry_after=_wait_for_room(leaves_at, now),
        )

    def limited(self, seconds: float | None) -> float:
        """VCC answered 429: stop every priority but clicks for `seconds` (its Retry-After), in every process.
        Returns the back-off applied."""
        now = self.clock()
        seconds = min(BACKOFF_MAX, BACKOFF_DEFAULT if seconds is None else seconds)
        until = now + seconds
        with self.memory.lock:
            self.memory.note_limited(until, now)
        self._ask_redis(
            "limited",
            lambda client: client.register_script(_LIMITED)(
                keys=[self._key("backoff"), self._key(f"limited:{_minute(now)}")],
                args=[repr(until), math.ceil(seconds) + 60],
                client=client,
            ),
        )
        logger.warning("VCC answered 429: only clicks go for the next %.0f s", seconds)
        return seconds

    # The health page.

    def snapshot(self) -> Snapshot:
        now = self.clock()
        minute = _minute(now)
        limits = {p.name: math.floor(limit_for(self.per_minute, p)) for p in Priority}

        def read(client: Any) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            pipe.zcount(self._key("window"), f"({now - WINDOW!r}", "+inf")
            pipe.hgetall(self._key(f"sent:{minute}"))
            pipe.hgetall(self._key(f"refused:{minute}"))
            pipe.get(self._key("backoff"))
            minutes = range(minute - LIMITED_WINDOW_MINUTES + 1, minute + 1)
            pipe.mget([self._key(f"limited:{m}") for m in minutes])
            return pipe.execute()  # one round trip

        found = self._ask_redis("snapshot", read)
        if found is not None:
            used, sent, refused, backoff, limited = found
            this_minute = {k.decode(): int(v) for k, v in sent.items()}
            refused_now = {k.decode(): int(v) for k, v in refused.items()}
            until = max(float(backoff or 0), self.memory.backoff_until)
            limited_count = sum(int(v) for v in limited if v is not None)
        else:
            with self.memory.lock:
                used = len(self.memory.in_window(now))
                this_minute = dict(self.memory.minutes.get(minute, Counter()))
                refused_now = dict(self.memory.refused.get(minute, Counter()))
                until = self.memory.backoff_until
                recent = range(minute - LIMITED_WINDOW_MINUTES + 1, minute + 1)
                limited_count = sum(n for m, n in self.memory.limited.items() if m in recent)
        return Snapshot(
            per_minute=self.per_minute,
            used=used,
            this_minute={p.name: this_minute.get(p.name, 0) for p in Priority},
            refused_this_minute={p.name: refused_now.get(p.name, 0) for p in Priority},
            limits=limits,
            backing_off_for=max(0.0, until - now),
            limited_last_hour=limited_count,
            shared=found is not None,
        )


def _paused(backoff: float) -> BudgetExhausted:
    return BudgetExhausted(
        f"Not sent: VCC asked for a pause (429), {backoff:.0f} s left; only clicks go meanwhile",
        retry_after=math.ceil(backoff),
    )


# --- The doors the core's runners use (calls/vcc/core.py), and the health page's ------------------


def draw(cache: Any, value: Priority) -> None:
    Budget(cache).draw(value)


async def adraw(cache: Any, value: Priority) -> None:
    """draw(), for async callers: Redis is asked in a thread; memory is counted in place."""
    budget = Budget(cache)
    if budget.shared:
        await asyncio.to_thread(budget.draw, value)
    else:
        budget.draw(value)


def limited(cache: Any, seconds: float | None) -> None:
    Budget(cache).limited(seconds)


async def alimited(cache: Any, seconds: float | None) -> None:
    budget = Budget(cache)
    if budget.shared:
        await asyncio.to_thread(budget.limited, seconds)
    else:
        budget.limited(seconds)


def snapshot() -> Snapshot:
    """The deployment's VCC budget now: requests this minute by priority against the budget, and recent 429s."""
    from django.core.cache import cache

    return Budget(cache).snapshot()
