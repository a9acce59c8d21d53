"""Failed logins limited per account and per address, refused before the password is checked.

An account that fails LOGIN_FAILURES_PER_ACCOUNT times within LOGIN_FAILURE_WINDOW_SECONDS, or an address that
fails LOGIN_FAILURES_PER_ADDRESS times (IPv6 counted by /64, what one host usually gets), is refused for
LOGIN_LOCKOUT_SECONDS, and told for how long. A refused attempt never reaches the password hasher (the costly
part: ~0.5 s of CPU), so a flood of guesses costs the app a cache read each and does not slow it for others.

The counts live in the shared cache (Redis in production), so every app process sees them. If Redis is down the
limit is not enforced (calls/cache.py lets the attempt through) rather than locking everyone out.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import connection
from django.http import HttpRequest, HttpResponse

log = logging.getLogger(__name__)

# Injected by tests: seconds since the epoch.
clock: Callable[[], float] = time.time


def client_address(request: HttpRequest | None) -> str:
    """The client's address as uvicorn passed it (it reads X-Forwarded-For from trusted proxies only)."""
    raw = (request.META.get("REMOTE_ADDR") or "") if request is not None else ""
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw[:64] or "unknown"
    if address.version == 6:
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _subjects(username: str, address: str) -> list[tuple[str, int]]:
    # Usernames are hashed: cache keys stay short and safe, and Redis holds no list of who tried.
    account = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return [
        (f"login-failures:account:{account}", settings.LOGIN_FAILURES_PER_ACCOUNT),
        (f"login-failures:address:{address}", settings.LOGIN_FAILURES_PER_ADDRESS),
    ]


def _bucket(now: float) -> int:
    return int(now // settings.LOGIN_FAILURE_WINDOW_SECONDS)


def locked_for(username: str, address: str) -> int:
    """Seconds until this account and address may try again; 0 when they may now."""
    now = clock()
    until = cache.get_many([f"{key}:locked" for key, _ in _subjects(username, address)])
    remaining = max((float(value) - now for value in until.values()), default=0)
    return math.ceil(remaining) if remaining > 0 else 0


def record_failure(username: str, address: str) -> int:
    """Count a failed login; return the seconds it is now locked out for (0 if not)."""
    now = clock()
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    lockout = settings.LOGIN_LOCKOUT_SECONDS
    locked = 0
    for (key, limit), subject in zip(_subjects(username, address), ("account", "address"), strict=True):
        counter = f"{key}:{_bucket(now)}"
        cache.add(counter, 0, timeout=2 * window)
        try:
            count = cache.incr(counter)
        except ValueError:  # expired between add and incr
            count = 1
        if count >= limit:
            cache.set(f"{key}:locked", now + lockout, timeout=lockout + 60)
            locked = lockout
            # The address, not the username: enough to see an attack, and no list of who was targeted.
            log.warning(
                "logins paused for %d s: %d failed logins for one %s (from %s)",
                lockout,
                count,
                subject,
                address,
                extra={"address": address, "subject": subject},
            )
    return locked


def record_success(username: str, address: str) -> None:
    """Forget the account's failures (not the address's: a guesser could log into their own account)."""
    key, _ = _subjects(username, address)[0]
    cache.delete(f"{key}:{_bucket(clock())}")


def lockout_message(seconds: int) -> str:
    if seconds < 60:
        wait = f"{seconds} second{'s' if seconds != 1 else ''}"
    else:
        minutes = math.ceil(seconds / 60)
        wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"Too many failed logins. For your security, logging in is paused for {wait}: try again then."


_checking = threading.BoundedSemaphore(1)


@contextlib.contextmanager
def password_check_turn() -> Iterator[None]:
    """One password check at a time in this process; the others wait their turn without a database connection.

    A check is PBKDF2, about 0.3 s of a core, and meant to be slow. A flood of guesses checked all at once took
    every core from the people using the app until the guessers were locked out; one at a time per process (and
    one process per core, WEB_CONCURRENCY's default) leaves each core to pages half the time, and checks as many
    passwords a second as before, since the cores were the limit anyway."""
    if not connection.in_atomic_block:  # tests run inside a transaction: leave theirs alone
        connection.close()  # back to the pool while waiting: the pages need it more
    # Not for ever: during a flood a real person would wait behind every queued guess. Told to try again instead,
    # their password unchecked and no failure counted.
    if not _checking.acquire(timeout=settings.LOGIN_CHECK_WAIT_SECONDS):
        raise ValidationError("Many logins are being checked right now: try again in a moment.", code="busy")
    try:
        yield
    finally:
        _checking.release()


class LimitedLogin:
    """For a login form: refuse a locked-out account or address before authenticating; count each failure."""

    cleaned_data: dict
    request: HttpRequest | None

    def clean(self) -> dict:
        username = self.cleaned_data.get("username") or ""
        address = client_address(self.request)
        wait = locked_for(username, address)
        if wait:
            raise ValidationError(lockout_message(wait), code="locked_out")
        try:
            with password_check_turn():
                cleaned = super().clean()  # type: ignore[misc]
        except ValidationError as error:
            if any(e.code == "invalid_login" for e in error.error_list):
                wait = record_failure(username, address)
                if wait:
                    raise ValidationError(lockout_message(wait), code="locked_out") from None
            raise
        record_success(username, address)
        return cleaned


class LimitedAuthenticationForm(LimitedLogin, AuthenticationForm):
    pass


class LimitedAdminAuthenticationForm(LimitedLogin, AdminAuthenticationForm):
    pass


class LimitedLoginView(LoginView):
    authentication_form = LimitedAuthenticationForm
    redirect_authenticated_user = True

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        if form.has_error(NON_FIELD_ERRORS, "locked_out") or form.has_error(NON_FIELD_ERRORS, "busy"):
            response.status_code = 429
        return response


login = LimitedLoginView.as_view()
