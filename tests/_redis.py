"""The real Redis the shared-state tests use: TEST_REDIS_URL, one database number per pytest-xdist worker.

Those tests empty their database (cache.clear() is FLUSHDB), so two workers must never share one: worker gwN
uses TEST_REDIS_URL's database number plus N. `make test` runs three workers, so the default uses 13, 14 and 15.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

DEFAULT = "redis://127.0.0.1:6379/13"


def for_worker(url: str, worker: str | None) -> str:
    """url with its database number moved up by the worker's index (gw0: +0, gw1: +1); as is outside xdist."""
    if not worker:
        return url
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{base + int(worker.removeprefix('gw'))}"))


TEST_REDIS_URL = for_worker(os.environ.get("TEST_REDIS_URL", DEFAULT), os.environ.get("PYTEST_XDIST_WORKER"))


def out_of_range(url: str = TEST_REDIS_URL) -> str:
    """What to fix when this worker's database number is past the Redis server's last one (16 databases, 0 to 15,
    unless configured otherwise): more workers than the base number leaves room for. "" when it is not, or when no
    Redis answers (the tests that need one then say so themselves)."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.ResponseError as exc:
        if "out of range" not in str(exc):
            raise
        base = os.environ.get("TEST_REDIS_URL", DEFAULT)
        return (
            f"Redis has no database {url.rsplit('/', 1)[-1]} ({exc}): worker gwN uses TEST_REDIS_URL's number plus N "
            f"({base}); with TEST_WORKERS=W, set TEST_REDIS_URL=redis://HOST:PORT/B with B + W at most 16."
        )
    except redis.ConnectionError:
        pass
    return ""
