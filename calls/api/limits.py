"""How many requests a token may send: `API_RATE_PER_MINUTE` (600) in all, `API_CALL_RATE_PER_MINUTE` (60) of them
placing calls. Counted per token and clock minute in the cache, so every process and host shares the count where
Redis is configured (calls/cache.py: while Redis is down a count is unknown and the request goes through, as for
any throttle there). Over the limit is a 429 problem with `Retry-After`: the seconds to the next minute.

A token's calls also draw from the VCC request budget like the pages' clicks (calls/vcc/budget.py): placing goes
through the same use case, at the click's priority."""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.http import HttpRequest
from ninja.throttling import BaseThrottle

from calls.cache import count


def clock() -> float:
    """Seconds since the epoch: the hosts' clocks number the shared minutes. Tests replace it."""
    return time.time()


class TokenRate(BaseThrottle):
    """At most so many requests a clock minute per token, for each (kind, setting) given: every kind is counted at
    each request, in one round trip to the cache (calls/cache.py count); the settings are read at each request."""

    def __init__(self, *kinds: tuple[str, str]) -> None:
        self.kinds = kinds

    def allow_request(self, request: HttpRequest) -> bool:
        token = getattr(request, "auth", None)
        if token is None:  # not authenticated: the 401 is answered first
            return True
        minute = int(clock() // 60)
        counts = count([f"api-rate:{kind}:{token.pk}:{minute}" for kind, _ in self.kinds], 120)
        return all(n <= int(getattr(settings, setting)) for n, (_, setting) in zip(counts, self.kinds, strict=True))

    def wait(self) -> float:
        return max(1.0, math.ceil(60 - clock() % 60))


EVERY = ("all", "API_RATE_PER_MINUTE")
ALL = TokenRate(EVERY)
PLACING = TokenRate(EVERY, ("place", "API_CALL_RATE_PER_MINUTE"))  # a call placed counts in both
