"""The facts a click reads about the people, numbers and rules admins set up, kept in the cache between clicks.

A click needs the caller's agent, the callback numbers they may present and the consent table: four joined
queries, and most of a click's ORM work, for data that changes a few times a day. Each answer is cached (Redis in
production) with the generation number it was read under, and a click reads all of them in one round trip. Any
save, delete or membership change of an agent, group, callback number or consent rule moves the generation on
(calls/apps.py), at once and again when its transaction commits, so no click uses what an admin or the VCC sync
has just changed. Code that changes them with QuerySet.update(), which sends no signal,
calls `changed()` itself. Entries also expire after SECONDS, the most an outage of the cache could leave stale.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db import connection

from calls.cache import generation_changed, lifetime, start_generation

GENERATION_KEY = "calls:directory:generation"
SECONDS = 60  # with a shared cache (calls.cache.lifetime)
FLIGHT_WAIT = 2.0  # seconds a thread waits for another's read of the same entry before it reads for itself


def changed(**kwargs: object) -> None:
    """Make every cached answer stale (connected to the signals in calls/apps.py)."""
    generation_changed(GENERATION_KEY)


def remembered[T](key: str, read: Callable[[], T]) -> T:
    """read(), or its answer cached under the current generation; one round trip to the cache when it is there."""
    return remembered_many({key: read})[key]


def remembered_many[T](reads: dict[str, Callable[[], T]]) -> dict[str, T]:
    """Each key's read(), or its cached answer: one round trip for all of them, one more to store what was read."""
    found = cache.get_many([GENERATION_KEY, *reads])
    generation = found.get(GENERATION_KEY)
    answers: dict[str, T] = {}
    fresh: dict[str, tuple[object, T]] = {}
    for key, read in reads.items():
        entry = found.get(key)
        if generation and entry and entry[0] == generation:
            answers[key] = entry[1]
        else:
            answers[key] = read_once(key, generation, read)
            fresh[key] = (generation, answers[key])
    if fresh and generation:
        cache.set_many(fresh, lifetime(SECONDS))
    elif fresh:
        start_generation(GENERATION_KEY)  # the next click caches under it
    return answers


# --- One read at a time of an entry missing from the cache ----------------------------------------------------------


@dataclass
class _Flight:
    """A read of one entry under way in this process, how many threads wait for it, and its answer for them
    (pickled: each thread unpickles its own copy, as it would from the cache)."""

    done: threading.Event = field(default_factory=threading.Event)
    answer: bytes | None = None
    waiting: int = 0


_flights: dict[tuple[str, object], _Flight] = {}
_flights_lock = threading.Condition()  # also told of each read and each wait that starts (tests/test_directory.py)


def read_once[T](key: str, generation: object, read: Callable[[], T]) -> T:
    """read(), for an entry missing from the cache; threads of this process that miss the same entry (under the same
    generation) meanwhile take this read's answer instead of reading too. When an entry expires, every request in
    flight misses it at once: 200 agents asking for their next contact together read the calling hours 200 times
    (bench/queue_bench.py, the round after the 5 s a process keeps them without Redis). A thread waits at most
    FLIGHT_WAIT, then reads for itself: the one reading may be waiting for a pooled connection that those waiting
    on it hold."""
    if connection.in_atomic_block:
        return read()  # what a transaction reads may not be committed yet: for it alone
    flight_key, mine = (key, generation), _Flight()
    with _flights_lock:
        other = _flights.setdefault(flight_key, mine)
        if other is not mine:
            other.waiting += 1
        _flights_lock.notify_all()
    if other is not mine:
        if other.done.wait(FLIGHT_WAIT) and other.answer is not None:
            answer: T = pickle.loads(other.answer)
            return answer
        return read()  # it failed, or is slow: read as if alone
    try:
        answer = read()
        with _flights_lock:  # no one joins once it is gone: those who came are all counted
            del _flights[flight_key]
        if mine.waiting:  # a copy for them (pickled once), none for a read alone
            mine.answer = pickle.dumps(answer, pickle.HIGHEST_PROTOCOL)
        return answer
    finally:
        with _flights_lock:
            _flights.pop(flight_key, None)  # a read that failed
        mine.done.set()
