"""Request ids and structured logs: one line per request, and the request's id on every line it causes.

The id comes from the caller's `X-Request-ID` when it is well-formed (a load balancer or another service may
have started the trace), or is made here; it is returned in the response's `X-Request-ID` and can be stored on
rows the request writes (`Call.trace_id`), so a call, its log lines and the load balancer's log meet.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from django.utils.functional import empty

log = logging.getLogger("vccweb.request")

REQUEST_ID_HEADER = "X-Request-ID"
# Letters, digits and a few separators, 8 to 64 long: what tracing systems send, and nothing that could
# forge a log line or overflow Call.trace_id.
_WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,63}")

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar("request", default=None)


def current_request_id() -> str:
    """Return the id of the request being handled, or "" outside a request (a command, the worker)."""
    return _request_id.get()


def current_request() -> HttpRequest | None:
    """Return the request being handled, or None outside a request: the audit trail asks it who is acting (its
    user, once authentication has looked them up)."""
    return _request.get()


def new_request_id(incoming: str | None = None) -> str:
    """Keep a well-formed incoming id; otherwise make one."""
    if incoming and _WELL_FORMED.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Give each request an id, log one line when it is answered, and return the id in the response."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        is_async = iscoroutinefunction(self)  # not in the `if`: the type guard would narrow self to a function
        if is_async:
            return self._acall(request)
        tokens, started = self._start(request)
        try:
            response = self.get_response(request)
        finally:
            self._end(tokens)
        return self._finish(request, response, started)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        tokens, started = self._start(request)
        try:
            response = await self.get_response(request)
        finally:
            self._end(tokens)
        return self._finish(request, response, started)

    def _start(self, request: HttpRequest) -> tuple[tuple[contextvars.Token, contextvars.Token], float]:
        request_id = new_request_id(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        return (_request_id.set(request_id), _request.set(request)), time.perf_counter()

    @staticmethod
    def _end(tokens: tuple[contextvars.Token, contextvars.Token]) -> None:
        _request_id.reset(tokens[0])
        _request.reset(tokens[1])

    def _finish(self, request: HttpRequest, response: HttpResponseBase, started: float) -> HttpResponseBase:
        request_id = request.request_id  # type: ignore[attr-defined]
        response[REQUEST_ID_HEADER] = request_id
        # Only the path: a query string can carry what a person typed (a search), which the log need not keep.
        log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "request_id": request_id,
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "user_id": _user_id(request),
            },
        )
        return response


def _user_id(request: HttpRequest) -> int | None:
    """The logged-in user's id, if the request already looked them up (looking now would cost a query)."""
    user = getattr(request, "user", None)
    if user is None or getattr(user, "_wrapped", None) is empty:
        return None
    return user.pk if user.is_authenticated else None


def _id_of(record: logging.LogRecord) -> str:
    """The id of the request the record is about, else of the request being handled, else "".

    Django logs a 4xx/5xx response that a view returned ("Service Unavailable: /readyz") after the middleware has
    answered and reset the current id, but it passes the request itself (`extra={"request": ...}`)."""
    return getattr(getattr(record, "request", None), "request_id", None) or _request_id.get()


class RequestIdFilter(logging.Filter):
    """Put the request id on every record (as `request_id`), "-" outside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = _id_of(record) or "-"
        return True


# The attributes every LogRecord has; anything else on a record came from `extra=` and goes into the JSON.
# uvicorn adds `color_message` (the message with terminal colours) to its own records.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


def _record_request_id(record: logging.LogRecord) -> str | None:
    request_id = getattr(record, "request_id", None) or _id_of(record)
    return request_id if request_id and request_id != "-" else None


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request id, extras, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": _record_request_id(record),
        }
        for key, value in vars(record).items():
            # Django's own records carry the request object, whose text includes the query string (what a
            # person searched for): the request id already ties the line to its request.
            if key not in _STANDARD and key not in entry and not key.startswith("_") and key != "request":
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)
