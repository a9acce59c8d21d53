"""What the per-person click throttle adds to a click, timed with the app's own settings (run by click_bench.py).

The throttle is one cache read a click (`_throttled` in calls/calling/placing.py): how many of the person's clicks
VCC refused this minute. This process is set up as the app's (the same environment, so the same cache: Redis, as
in production, when REDIS_URL is set) and times `_throttled` in blocks, alternating with blocks of the same loop
that skip it, so both are measured in the same run on the same connection. Each block uses users who have no
refusals: an ordinary click, a cache miss.

Reads a JSON plan on stdin ({"reads": N, "block": B}) and prints a JSON answer on stdout: the cache backend, and
CPU and wall time a click with and without the throttle, in microseconds (medians over the blocks), and the time
Django's Redis client takes to build the redis.Redis it makes for each operation (`client_*`; 0 without Redis).
Run as a script with the project on PYTHONPATH, never imported by the app.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vccweb.settings")
    django.setup()

    from django.core.cache import caches
    from django.utils import timezone

    from calls.calling.placing import _throttled

    cache = caches["default"]
    plan = json.load(sys.stdin)
    block, rounds = plan["block"], max(1, plan["reads"] // plan["block"])
    sides = ("with", "without", "client")
    per_click: dict[str, dict[str, list[float]]] = {side: {"cpu": [], "wall": []} for side in sides}
    # Django's RedisCacheClient builds a redis.Redis (and its table of reply callbacks) for every operation: timed
    # alone too, to see what share of a read that is.
    redis_client = getattr(getattr(cache, "_cache", None), "get_client", None)
    _throttled(0, timezone.now())  # the connection to Redis is opened before anything is timed
    user = 1_000_000  # no bench user: nobody has refusals
    for round_ in range(rounds):
        for side in sides if round_ % 2 == 0 else reversed(sides):
            at = timezone.now()
            cpu, wall = time.process_time_ns(), time.perf_counter_ns()
            for user_id in range(user, user + block):
                if side == "with" and _throttled(user_id, at) is not None:
                    raise RuntimeError(f"user {user_id} is throttled: the bench's Redis db is not empty")
                if side == "client" and redis_client is not None:
                    redis_client()
            per_click[side]["cpu"].append((time.process_time_ns() - cpu) / block / 1000)
            per_click[side]["wall"].append((time.perf_counter_ns() - wall) / block / 1000)
            user += block
    answer = {
        "cache": f"{type(cache).__module__}.{type(cache).__qualname__}",
        "location": getattr(cache, "location", "") or "(this process)",
        "reads": rounds * block,
        **{
            f"{side}_{kind}_us": statistics.median(values)
            for side, kinds in per_click.items()
            for kind, values in kinds.items()
        },
    }
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
