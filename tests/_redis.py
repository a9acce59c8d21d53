"""The real Redis the shared-state tests use: TEST_REDIS_URL, one database number per pytest-xdist worker.

Those tests empty their database (cache.clear() is FLUSHDB), so two workers must never share one: worker gwN
uses TEST_REDIS_URL's database number plus N. `make test` runs two workers, so the default uses 14 and 15.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

DEFAULT = "redis://127.0.0.1:6379/14"


def for_worker(url: str, worker: str | None) -> str:
    """url with its database number moved up by the worker's index (gw0: +0, gw1: +1); as is outside xdist."""
    if not worker:
        return url
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{base + int(worker.removeprefix('gw'))}"))


TEST_REDIS_URL = for_worker(os.environ.get("TEST_REDIS_URL", DEFAULT), os.environ.get("PYTEST_XDIST_WORKER"))
