"""The audit trail: who changed, exported or erased what, when, and from which request.

- Row changes (contacts, numbers, call wrap-ups, caller IDs, consent rules, dispositions, agents, groups, users,
  roles, API tokens, webhook endpoints) are written by PostgreSQL's triggers (calls/audit/triggers.py), whatever
  code or SQL makes them. Who and which request reach the trigger in a comment at the end of each write this
  process sends (`comment`), put there by a wrapper on every database connection (`install`): the request being
  handled (calls/observability.py keeps it, with its id), or whom a job acts for (`acting`).
- Exports, imports, logins and lock-outs are written here (`record`), by the code that does them.

`AuditEntry` (calls/models/audit.py) is the one table; `/audit/` (calls/views/audit.py) shows it to admins.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.utils.functional import empty

from calls.observability import current_request, current_request_id

log = logging.getLogger(__name__)

# The longest reason a person may give for clearing do-not-call (it travels hex-encoded in each write's comment).
MAX_REASON = 500


@dataclass(frozen=True)
class Actor:
    """Who is acting, as far as the audit trail knows: a user's id (None: nobody), the request id, a reason."""

    user_id: int | None = None
    request_id: str = ""
    reason: str = ""
    username: str = ""  # when known already (the request's user); else `record` looks it up


_acting: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("audit_acting", default=None)
_reason: contextvars.ContextVar[str] = contextvars.ContextVar("audit_reason", default="")


def _user_of(request: HttpRequest | None) -> tuple[int | None, str]:
    """The request's user's id and username if they are known already (looking them up now would cost queries
    inside a query)."""
    user = getattr(request, "user", None)
    if user is None or getattr(user, "_wrapped", None) is empty or not user.is_authenticated:
        return None, ""
    return user.pk, user.get_username()


def current() -> Actor:
    """Who is acting now: set by `acting` (a job, a command), else the request being handled."""
    acting = _acting.get()
    reason = _reason.get()
    if acting is not None:
        return Actor(acting.user_id, acting.request_id, reason or acting.reason)
    user_id, username = _user_of(current_request())
    return Actor(user_id, current_request_id(), reason, username)


@contextmanager
def acting(*, user_id: int | None, request_id: str = "") -> Iterator[None]:
    """Record what is written meanwhile as done by user_id from request_id (a job doing a person's bidding)."""
    token = _acting.set(Actor(user_id, request_id))
    try:
        yield
    finally:
        _acting.reset(token)


@contextmanager
def quiet() -> Iterator[None]:
    """Inside the transaction already open, the row triggers record nothing until the block ends: for erasure and
    retention, whose writes remove personal data the entries would otherwise keep (their values before). They
    record what they did themselves (`record`), by counts. `SET LOCAL` lasts at most to the transaction's end, so a
    pooled connection never carries it into another request."""
    from django.db import DatabaseError, connection

    if connection.vendor != "postgresql":  # no triggers
        yield
        return
    if not connection.in_atomic_block:
        raise RuntimeError("audit.quiet() needs an open transaction (transaction.atomic)")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL calls.audit_quiet = 'on'")
    try:
        yield
    finally:
        # After an error the transaction may refuse every statement: the setting then ends with it, and the reset
        # must not replace the error (a lock timeout that retention retries) with "current transaction is aborted".
        with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
            cursor.execute("SET LOCAL calls.audit_quiet = 'off'")


@contextmanager
def reason(text: str) -> Iterator[None]:
    """Record text as the reason of what is written meanwhile (clearing do-not-call)."""
    token = _reason.set(text.strip()[:MAX_REASON])
    try:
        yield
    finally:
        _reason.reset(token)


# What a write statement starts with. Reads (SELECT), savepoints and the like carry no comment: they change nothing.
_WRITES = ("INSERT", "UPDATE", "DELETE", "WITH", "MERGE", "EXECUTE", "COPY")
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-")


def comment(actor: Actor) -> str:
    """The comment the trigger reads (calls/audit/triggers.py): digits, safe letters and hex only, no % or */."""
    request_id = "".join(c for c in actor.request_id[:64] if c in _SAFE)
    user = "" if actor.user_id is None else str(int(actor.user_id))
    return f" /*audit u={user} r={request_id} w={actor.reason.encode().hex()} */"


def _annotate(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    """The connection's execute wrapper: say who is acting at the end of each write."""
    if sql.lstrip()[:7].upper().startswith(_WRITES):
        actor = current()
        if actor.user_id is not None or actor.request_id or actor.reason:
            sql += comment(actor)  # at the end: the statement still starts as it did (logs, tests, pg_stat)
    return execute(sql, params, many, context)


def install(sender: object, connection: Any, **kwargs: object) -> None:
    """connection_created receiver: wrap the connection's statements (once: a pooled connection comes back)."""
    if connection.vendor == "postgresql" and _annotate not in connection.execute_wrappers:
        connection.execute_wrappers.append(_annotate)


def record(
    kind: str,
    *,
    actor: Actor | None = None,
    object_type: str = "",
    object_id: object = "",
    contact_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
) -> None:
    """Write one entry that no trigger writes (an export, an import, a login, a lock-out), as `actor` (default:
    whoever is acting now)."""
    from django.contrib.auth import get_user_model

    from calls.models import AuditEntry

    actor = actor or current()
    name = actor.username
    if actor.user_id is not None and not name:
        model = get_user_model()
        name = model.objects.filter(pk=actor.user_id).values_list(model.USERNAME_FIELD, flat=True).first() or ""
    AuditEntry.objects.create(
        kind=kind,
        actor_id=actor.user_id,
        actor_name=name,
        request_id=actor.request_id[:64],
        object_type=object_type,
        object_id=str(object_id),
        contact_id=contact_id,
        before=before,
        after=after,
        reason=reason or actor.reason,
    )


def on_login(sender: object, request: HttpRequest | None, user: Any, **kwargs: object) -> None:
    """user_logged_in receiver."""
    actor = Actor(user.pk, current_request_id(), username=user.get_username())
    record("login", actor=actor, object_type="user", object_id=user.pk)


def connect() -> None:
    """Wrap every PostgreSQL connection and record logins (CallsConfig.ready calls this)."""
    from django.contrib.auth.signals import user_logged_in
    from django.db.backends.signals import connection_created

    connection_created.connect(install, dispatch_uid="calls.audit.install")
    user_logged_in.connect(on_login, dispatch_uid="calls.audit.login")
