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

from collections.abc import Callable

from django.core.cache import cache

from calls.cache import generation_changed, lifetime, start_generation

GENERATION_KEY = "calls:directory:generation"
SECONDS = 60  # with a shared cache (calls.cache.lifetime)


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
            answers[key] = read()
            fresh[key] = (generation, answers[key])
    if fresh and generation:
        cache.set_many(fresh, lifetime(SECONDS))
    elif fresh:
        start_generation(GENERATION_KEY)  # the next click caches under it
    return answers
