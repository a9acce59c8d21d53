"""For load balancers and operators: liveness, readiness, and the error page that needs nothing but itself."""

from __future__ import annotations

import logging
import sys

from django.core.cache import cache
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse, HttpResponseServerError, JsonResponse
from django.template import loader
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from calls.observability import current_request_id

log = logging.getLogger(__name__)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """The process answers: no database, no cache, nothing that can be slow."""
    return HttpResponse("ok\n", content_type="text/plain")


def database_health() -> str:
    """Return "" when the database answers, else what is wrong; never waits for a pooled connection.

    PostgreSQL is asked with a short connection of its own (calls/dbbackend), so that the answer comes in a second
    or two whether it is down or every pooled connection is busy; other databases (SQLite) answer a query."""
    try:
        check_reachable = getattr(connection, "check_reachable", None)
        if check_reachable is not None:
            check_reachable()
        else:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
    except DatabaseError as error:
        log.warning("readyz: database not answering: %s: %s", type(error).__name__, error)
        return f"not answering ({type(error).__name__})"
    return ""


def cache_health() -> str:
    """Return "" when the shared cache answers (or is this process's own memory), else what is wrong."""
    health = getattr(cache, "health", None)
    problem = health() if health else ""
    if problem:
        log.warning("readyz: cache %s", problem)
    return problem


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to serve while the database answers: 200, or 503 when it does not. Redis down is named ("degraded")
    but answers 200: the app carries on without it (calls/cache.py), and with one Redis shared by every host a 503
    would take them all out of the load balancer at once.

    Each part is only "ok" or "not answering", for everyone: what went wrong (hosts, ports, errors) goes to the log
    and to the integration health page. Telling an admin apart would need the session and the user, read from the
    very database and cache being checked."""
    checks = {"database": database_health(), "cache": cache_health()}
    down = [name for name, problem in checks.items() if problem]
    how = "down" if checks["database"] else "degraded"
    status = f"{how}: {', '.join(down)}" if down else "ok"
    body = {"status": status, **{name: "not answering" if problem else "ok" for name, problem in checks.items()}}
    return JsonResponse(body, status=503 if checks["database"] else 200)


def _is_pool_timeout(error: BaseException | None) -> bool:
    try:
        from psycopg_pool import PoolTimeout
    except ImportError:
        return False
    while error is not None:
        if isinstance(error, PoolTimeout):
            return True
        error = error.__cause__
    return False


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 page, rendered without context processors: it must work when the database is down."""
    error = sys.exc_info()[1]
    # Unreachable, or every pooled connection busy for DB_POOL_TIMEOUT; not a query's own error (a bug).
    unreachable = isinstance(error, OperationalError | InterfaceError)
    busy = unreachable and _is_pool_timeout(error)
    context = {
        "database_down": unreachable and not busy,
        "database_busy": busy,
        "request_id": current_request_id(),
    }
    try:
        return HttpResponseServerError(loader.get_template("500.html").render(context))
    except Exception:  # the page itself failed: still answer, in plain words
        log.exception("the 500 page could not be rendered")
        return HttpResponseServerError(
            "Something went wrong on our side. Try again in a minute.\n", content_type="text/plain"
        )
