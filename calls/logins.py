"""Failed logins limited per account and per address, refused before the password is checked.

An account that fails LOGIN_FAILURES_PER_ACCOUNT times within LOGIN_FAILURE_WINDOW_SECONDS, or an address that
fails LOGIN_FAILURES_PER_ADDRESS times (IPv6 counted by /64, what one host usually gets), is refused for
LOGIN_LOCKOUT_SECONDS, and told for how long and until when. The window slides: the failures of the last
LOGIN_FAILURE_WINDOW_SECONDS count, whenever the clock's quarter-hours fall. A refused attempt never reaches the
password hasher (the costly part: ~0.3 s of CPU), so a flood of guesses costs the app a cache read each (the
lock-out is noted there, CACHED_SECONDS at most, once the database has found it) and does not slow it for others.

Failures and lock-outs live in PostgreSQL (calls/models/logins.py), so every app process sees them, a Redis restart
or outage lifts none, and admins see the current lock-outs and lift them (calls/admin/lockouts.py). A new password
lifts the account's lock-out (`lift_on_new_password`, connected in calls/apps.py).

django-axes was weighed and not used: it counts an account's failures for as long as each comes within the cool-off
of the one before (not within a window), and compares every lock-out parameter with one AXES_FAILURE_LIMIT, so it
cannot lock an account after 5 failures and an address after 100. See README, Failed logins.
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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import connection, transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from calls import audit
from calls.cache import lifetime
from calls.models import LockOut, LoginFailure

log = logging.getLogger(__name__)

# Injected by tests: seconds since the epoch. Every time here comes from it (not from timezone.now()).
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


def _account(username: str) -> str:
    # Hashed: the failures table holds no list of the names guessed at (only a lock-out names its account).
    return "account:" + hashlib.sha256(_name(username).encode()).hexdigest()[:32]


def _name(username: str) -> str:
    return username.strip().lower()


def _subjects(username: str, address: str) -> list[tuple[str, str, str, int]]:
    """(subject, kind, name, limit) for the account and for the address."""
    return [
        (_account(username), LockOut.Kind.ACCOUNT, _name(username)[:150], settings.LOGIN_FAILURES_PER_ACCOUNT),
        (f"address:{address}", LockOut.Kind.ADDRESS, address, settings.LOGIN_FAILURES_PER_ADDRESS),
    ]


def now() -> datetime:
    return datetime.fromtimestamp(clock(), UTC)


# A lock-out found in the database is noted in the cache for at most this long, so that a flood of refused guesses
# costs a cache read each rather than a query (1.0 against 2.4 ms of CPU measured in-process). Lifting one deletes
# the note; if that delete is lost (Redis down at the time) or the cache is each process's own (5 s there), the
# lifted lock-out may hold this long.
CACHED_SECONDS = 60


def _cache_key(subject: str) -> str:
    return f"login-lockout:{subject}"


def locked_until(username: str, address: str) -> datetime | None:
    """Until when this account or this address is locked out; None when they may try now.

    A cache read, then (unless it finds a lock-out) one indexed query: the database has the last word."""
    subjects = [subject for subject, *_ in _subjects(username, address)]
    at = now()
    noted = [until for until in cache.get_many([_cache_key(s) for s in subjects]).values() if until > at.timestamp()]
    if noted:
        return datetime.fromtimestamp(max(noted), UTC)
    found = dict(LockOut.objects.filter(subject__in=subjects, until__gt=at).values_list("subject", "until"))
    for subject, until in found.items():
        seconds = min(math.ceil((until - at).total_seconds()), lifetime(CACHED_SECONDS))
        cache.set(_cache_key(subject), until.timestamp(), seconds)
    return max(found.values(), default=None)


def locked_for(username: str, address: str) -> int:
    """Seconds until this account and address may try again; 0 when they may now."""
    until = locked_until(username, address)
    return math.ceil((until - now()).total_seconds()) if until else 0


@dataclass(frozen=True)
class Failure:
    """What a failed login led to: until when the account or address is now locked out, or, when the account's
    next failure would lock it, until when that would be (were it now)."""

    locked_until: datetime | None = None
    one_more_locks_until: datetime | None = None


def record_failure(username: str, address: str) -> Failure:
    """Count a failed login against the account and the address; say whether it is now locked out, or will be at
    the account's next failure.

    The window slides: a subject is locked out when it has failed its limit of times in the last
    LOGIN_FAILURE_WINDOW_SECONDS, whenever they began. Locking out forgets the subject's failures, so that when the
    lock-out ends, counting starts afresh."""
    at = now()
    window_start = at - timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    until = at + timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
    subjects = _subjects(username, address)
    keys = [subject for subject, *_ in subjects]
    locked = None
    with transaction.atomic():
        # What no longer counts: failures older than the window (the index on `at` finds them), ended lock-outs.
        LoginFailure.objects.filter(at__lte=window_start).delete()
        LockOut.objects.filter(until__lte=at).delete()
        LoginFailure.objects.bulk_create([LoginFailure(subject=key, at=at) for key in keys])
        counts = dict(
            LoginFailure.objects.filter(subject__in=keys, at__gt=window_start)
            .values("subject")
            .annotate(n=Count("id"))
            .values_list("subject", "n")
        )
        warn = None
        for subject, kind, name, limit in subjects:
            count = counts.get(subject, 0)
            if kind == LockOut.Kind.ACCOUNT and count == limit - 1:
                warn = until
            if count < limit:
                continue
            LockOut.objects.bulk_create(
                [LockOut(subject=subject, kind=kind, name=name, since=at, until=until, failures=count)],
                update_conflicts=True,
                unique_fields=["subject"],
                update_fields=["kind", "name", "since", "until", "failures"],
            )
            LoginFailure.objects.filter(subject=subject).delete()
            locked = until
            audit.record(
                "lockout",
                object_type="lockout",
                object_id=subject[:64],
                after={"kind": str(kind), "name": name, "until": until.isoformat(), "failures": count},
            )
            # The address, not the username: enough to see an attack; admins see the account on the lock-outs page.
            log.warning(
                "logins paused for %d s: %d failed logins for one %s (from %s)",
                settings.LOGIN_LOCKOUT_SECONDS,
                count,
                kind,
                address,
                extra={"address": address, "subject": str(kind)},
            )
    return Failure(locked_until=locked, one_more_locks_until=None if locked else warn)


def record_success(username: str) -> None:
    """Forget the account's failures (not the address's: a guesser could log into their own account)."""
    LoginFailure.objects.filter(subject=_account(username)).delete()


def lift(lock_outs: QuerySet[LockOut], *, by: object) -> int:
    """Lift these lock-outs and forget their subjects' failures; return how many were lifted."""
    with transaction.atomic():
        lifted = list(lock_outs.select_for_update().values_list("subject", "kind", "name"))
        subjects = [subject for subject, *_ in lifted]
        LoginFailure.objects.filter(subject__in=subjects).delete()
        LockOut.objects.filter(subject__in=subjects).delete()
        for subject, kind, name in lifted:
            audit.record(
                "lockout.lift",
                object_type="lockout",
                object_id=subject[:64],
                before={"kind": str(kind), "name": name},
                after={"lifted by": str(by)},
            )
    cache.delete_many([_cache_key(subject) for subject in subjects])
    for _, kind, name in lifted:
        # As when it began: the address, never the username.
        subject = f"address {name}" if kind == LockOut.Kind.ADDRESS else "an account"
        log.warning("lock-out lifted by %s: %s", by, subject)
    return len(lifted)


def lift_on_new_password(
    sender: type[AbstractBaseUser],
    instance: AbstractBaseUser,
    update_fields: frozenset[str] | None = None,
    **kwargs: object,
) -> None:
    """pre_save of the user model: a password set by anyone (an admin's reset, `changepassword`, the user) lifts the
    account's lock-out, and the failures that led to it."""
    if instance.pk is None or (update_fields is not None and "password" not in update_fields):
        return
    saved = sender._default_manager.filter(pk=instance.pk).values_list("password", flat=True).first()
    if saved is not None and saved != instance.password:
        lift(LockOut.objects.filter(subject=_account(instance.get_username())), by="a new password")


def lockout_message(until: datetime, at: datetime | None = None) -> str:
    """How long, and until when in the site's time zone (rounded up to the minute: trying at that time works)."""
    seconds = math.ceil((until - (at or now())).total_seconds())
    if seconds < 60:
        wait = f"{seconds} second{'s' if seconds != 1 else ''}"
    else:
        minutes = math.ceil(seconds / 60)
        wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
    local = _rounded_up(timezone.localtime(until))
    return (
        f"Too many failed logins. For your security, logging in is paused for {wait}, "
        f"until {local:%H:%M} {local.tzname()}: try again then."
    )


def last_try_message(until: datetime) -> str:
    """The warning before the failure that locks the account: what it would do, and until when were it now."""
    local = _rounded_up(timezone.localtime(until))
    minutes = math.ceil(settings.LOGIN_LOCKOUT_SECONDS / 60)
    return (
        f"One more wrong password locks this account for {minutes} minute{'s' if minutes != 1 else ''} "
        f"(until {local:%H:%M} {local.tzname()} if it were now). If you are not sure of it, ask an admin to reset it."
    )


def _rounded_up(local: datetime) -> datetime:
    if local.second or local.microsecond:
        return local.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return local


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


def _refuse_if_locked_out(username: str, address: str) -> None:
    if until := locked_until(username, address):
        raise ValidationError(lockout_message(until), code="locked_out")


class LimitedLogin:
    """For a login form: refuse a locked-out account or address before authenticating; count each failure."""

    cleaned_data: dict
    request: HttpRequest | None

    def clean(self) -> dict:
        username = self.cleaned_data.get("username") or ""
        address = client_address(self.request)
        _refuse_if_locked_out(username, address)
        with password_check_turn():
            # Again: the guesses checked while this login waited its turn may have locked them out. And a failure is
            # counted before the turn is given back: the guess waiting behind this one must see the lock-out it makes.
            _refuse_if_locked_out(username, address)
            try:
                cleaned = super().clean()  # type: ignore[misc]
            except ValidationError as error:
                if any(e.code == "invalid_login" for e in error.error_list):
                    failure = record_failure(username, address)
                    if failure.locked_until:
                        raise ValidationError(lockout_message(failure.locked_until), code="locked_out") from None
                    if failure.one_more_locks_until:
                        last = ValidationError(last_try_message(failure.one_more_locks_until), code="last_try")
                        raise ValidationError([*error.error_list, last]) from None
                raise
        record_success(username)
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
