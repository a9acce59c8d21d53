"""Django's ASGI handler, without Django's `request_started` receivers when they have nothing to do.

Django runs each request's sync code on a thread of its own, started on the request's first trip to sync code and
joined when it ends. Django's two `request_started` receivers look at that thread's database connections: they
close the ones past their age and clear DEBUG's query log. A new thread has no connections, so with CONN_MAX_AGE 0
and DEBUG off they have nothing to do, and are disconnected: a request is not sent to its thread just to run them.

(Lending each request a thread from a pool, instead of starting and joining one, leaned on private names of
asgiref and saved no CPU per click when measured alone: bench/README.md, "Private names".)
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.handlers.asgi import ASGIHandler
from django.db import close_old_connections, reset_queries

from calls.import_files import MAX_BYTES as IMPORT_MAX_BYTES
from calls.vcc.events import MAX_BODY
from calls.vcc.receiver import Receiver

# The REST API's bodies (calls/api/auth.py MAX_BODY, which a test keeps equal): not imported from there, as calls.api
# loads models, and this module is imported before Django's apps are ready.
API_MAX_BODY = 1024 * 1024


def start_receivers_idle() -> bool:
    """Whether Django's request_started receivers have nothing to do (see the module's text)."""
    return not settings.DEBUG and all(not db.get("CONN_MAX_AGE") for db in settings.DATABASES.values())


class Handler(ASGIHandler):
    """Django's handler, with VCC's events taken in the event loop, and a body over its path's limit refused before
    Django reads it.

    POST /vcc/events/ goes to calls/vcc/receiver.py (VCC sends a thousand a second; that module says why) unless it
    leaves the request to Django (not PostgreSQL, a host not allowed, plain HTTP under SECURE_SSL_REDIRECT).

    Django reads a request's whole body (to memory, then a temporary file) before any view runs, so a view cannot
    bound what an unauthenticated client sends: a POST of any size to the login page filled the disk before its 403.
    POST /vcc/events/ (no login; VCC's events are small) gets a 413 from the Content-Length header, or as soon as the
    body read so far passes the limit (chunked bodies too); so does every other path, at its own limit: the contact
    import's upload (twice its file's limit, so that a file a little over it still reaches the form, which says by
    how much), the REST API, and everything else at DATA_UPLOAD_MAX_MEMORY_SIZE and a margin for a form's framing
    (Django refuses more than that once it has read it all, as no other form takes a file)."""

    body_limits = {"/vcc/events/": MAX_BODY, "/contacts/import/": 2 * IMPORT_MAX_BYTES}
    prefix_limits = {"/api/v1/": API_MAX_BODY}  # the REST API: refused as a problem (calls/api/errors.py)
    FORM_FRAMING = 64 * 1024  # bytes a multipart form's boundaries and headers may add to its fields

    def __init__(self) -> None:
        super().__init__()
        self.events = Receiver()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.events.handles(scope):
            return await self.events(scope, receive, send)
        path = scope.get("path", "") if scope.get("type") == "http" else ""
        limit = self.body_limits.get(path)
        api = limit is None and path.startswith(tuple(self.prefix_limits))
        if api:
            limit = next(size for prefix, size in self.prefix_limits.items() if path.startswith(prefix))
        if limit is None and path and settings.DATA_UPLOAD_MAX_MEMORY_SIZE is not None:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE + self.FORM_FRAMING
        if limit is None:
            return await super().__call__(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            status = 400 if not length.isdigit() else 413
            return await (_problem(send, status, limit) if api else _plain(send, status, _too_big(path, limit, length)))
        read, over = 0, False

        async def bounded() -> dict[str, Any]:
            nonlocal read, over
            message = await receive()
            if message.get("type") == "http.request":
                read += len(message.get("body", b""))
                if read > limit:
                    over = True
                    return {"type": "http.disconnect"}  # Django stops reading and answers nothing
            return message

        await super().__call__(scope, bounded, send)
        if over:
            await (_problem(send, 413, limit) if api else _plain(send, 413, _too_big(path, limit, b"more")))


def _too_big(path: str, limit: int, length: bytes) -> str:
    if not length.isdigit() and length != b"more":
        return "Content-Length must be a number of bytes.\n"
    if path == "/vcc/events/":
        return f"An event delivery may be at most {limit // 1024} KB.\n"
    if path == "/contacts/import/":
        return f"The file is larger than {IMPORT_MAX_BYTES // 2**20} MB: split it and import each part.\n"
    return f"What was sent is larger than the {limit / 2**20:.1f} MB vccweb takes here: send less.\n"


async def _problem(send: Any, status: int, limit: int) -> None:
    """The REST API's answer to a body it will not read: an RFC 9457 problem, as its other refusals."""
    detail = (
        "Content-Length must be a number of bytes."
        if status == 400
        else f"The body may be at most {limit // 2**20} MB."
    )
    title = "Bad request" if status == 400 else "Request too large"
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _plain(send: Any, status: int, text: str) -> None:
    body = text.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def get_asgi_application() -> ASGIHandler:
    """As django.core.asgi.get_asgi_application, without Django's request_started receivers when they have nothing
    to do (see the module's text)."""
    import django

    django.setup(set_prefix=False)
    if start_receivers_idle():
        signals.request_started.disconnect(close_old_connections)
        signals.request_started.disconnect(reset_queries)
    return Handler()
