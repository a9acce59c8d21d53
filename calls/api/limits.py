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
from django.core.cache import cache
from django.http import HttpRequest
from ninja.throttling import BaseThrottle


def clock() -> float:
    """Seconds since the epoch: the hosts' clocks number the shared minutes. Tests replace it."""
    return time.time()


class TokenRate(BaseThrottle):
    """At most `setting` requests a clock minute per token (the setting read at each request)."""

    def __init__(self, kind: str, setting: str) -> None:
        self.kind, self.setting = kind, setting

    def limit(self) -> int:
        return int(getattr(settings, self.setting))

    def allow_request(self, request: HttpRequest) -> bool:
        token = getattr(request, "auth", None)
        if token is None:  # not authenticated: the 401 is answered first
            return True
        key = f"api-rate:{self.kind}:{token.pk}:{int(clock() // 60)}"
        try:
            count = cache.incr(key)  # one round trip for every request but the minute's first
        except ValueError:  # the minute's first request (or another process's came at the same moment)
            if cache.add(key, 1, 120):
                return True
            count = cache.incr(key)
        return count <= self.limit()

    def wait(self) -> float:
        return max(1.0, math.ceil(60 - clock() % 60))


ALL = TokenRate("all", "API_RATE_PER_MINUTE")
PLACING = TokenRate("place", "API_CALL_RATE_PER_MINUTE")
