"""Django's ASGI handler, without Django's `request_started` receivers when they have nothing to do.

Django runs each request's sync code on a thread of its own, started on the request's first trip to sync code and
joined when it ends. Django's two `request_started` receivers look at that thread's database connections: they
close the ones past their age and clear DEBUG's query log. A new thread has no connections, so with CONN_MAX_AGE 0
and DEBUG off they have nothing to do, and are disconnected: a request is not sent to its thread just to run them.

(Lending each request a thread from a pool, instead of starting and joining one, leaned on private names of
asgiref and saved no CPU per click when measured alone: bench/README.md, "Private names".)
"""

from __future__ import annotations

from django.conf import settings
from django.core import signals
from django.core.handlers.asgi import ASGIHandler
from django.db import close_old_connections, reset_queries


def start_receivers_idle() -> bool:
    """Whether Django's request_started receivers have nothing to do (see the module's text)."""
    return not settings.DEBUG and all(not db.get("CONN_MAX_AGE") for db in settings.DATABASES.values())


def get_asgi_application() -> ASGIHandler:
    """As django.core.asgi.get_asgi_application, without Django's request_started receivers when they have nothing
    to do (see the module's text)."""
    import django

    django.setup(set_prefix=False)
    if start_receivers_idle():
        signals.request_started.disconnect(close_old_connections)
        signals.request_started.disconnect(reset_queries)
    return ASGIHandler()
