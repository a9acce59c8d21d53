"""Redis as Django's cache, degrading instead of failing when Redis is unreachable.

Everything vccweb keeps there can be lost or done without: a missing token is fetched again, a lock that cannot
be taken is treated as taken by us (the database's unique click id still stops a second call), a throttle lets the
request through. An outage is logged; it never turns a click into an error page.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class TolerantRedisCache(RedisCache):
    def _outage(self, operation: str, error: RedisError) -> None:
        log.warning("cache unavailable (%s): %s: %s", operation, type(error).__name__, error)

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        try:
            return super().get(key, default, version)
        except RedisError as error:
            self._outage("get", error)
            return default

    def add(self, key: Any, value: Any, timeout: Any = None, version: int | None = None) -> bool:
        try:
            return super().add(key, value, timeout, version)
        except RedisError as error:
            self._outage("add", error)
            return True

    def set(self, key: Any, value: Any, timeout: Any = None, version: int | None = None) -> None:
        try:
            super().set(key, value, timeout, version)
        except RedisError as error:
            self._outage("set", error)

    def delete(self, key: Any, version: int | None = None) -> bool:
        try:
            return super().delete(key, version)
        except RedisError as error:
            self._outage("delete", error)
            return False
