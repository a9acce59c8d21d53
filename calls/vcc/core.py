"""The I/O-free core shared by the sync and async clients.

Each operation is a *flow*: a generator that yields effects (draw from the request budget, send this request,
read or write this cache key, sleep) and receives their results. `run_sync` and `run_async` perform the effects,
and are the only code that does I/O, so token caching, refresh on 401, the 429 retry, the request budget and error
mapping exist once for both clients.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from django.core.cache import BaseCache

from . import budget, stats
from .errors import VCCError
from .types import Json

logger = logging.getLogger("calls.vcc")

RETRY_AFTER_CAP = 5.0  # longest Retry-After a GET waits out once before giving up with an error
SYNC_429_TRIES = 3  # how many more times a sync's GET is sent after a 429, each after the back-off it began
TOKEN_LIFETIME_USED = 0.9  # refresh a token once 90% of its `expires_in` has passed
LOCK_POLL = 0.05


# --- Effects --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    request: httpx.Request


@dataclass(frozen=True)
class CacheGet:
    key: str


@dataclass(frozen=True)
class CacheAdd:
    key: str
    value: str
    timeout: float


@dataclass(frozen=True)
class CacheSet:
    key: str
    value: str
    timeout: float


@dataclass(frozen=True)
class CacheDelete:
    key: str


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Record:
    """Note requests (and token expiries) for the health page: see `stats`. Costs at most one cache round trip."""

    events: tuple[stats.Event, ...]


@dataclass(frozen=True)
class Draw:
    """Take one request from the deployment's VCC budget (see `budget`); raises `budget.BudgetExhausted` when
    this priority has no room now."""

    priority: budget.Priority


@dataclass(frozen=True)
class Limited:
    """VCC answered 429: hold back every priority but clicks for `seconds` (None: VCC gave no Retry-After)."""

    seconds: float | None


Effect = Send | CacheGet | CacheAdd | CacheSet | CacheDelete | Sleep | Record | Draw | Limited
type Flow[T] = Generator[Effect, Any, T]


def sleep(seconds: float) -> None:
    """How a `Sleep` waits in sync code. Tests replace it (and `asleep`) so that no test waits on the wall clock:
    tests/conftest.py moves the budget's clock on instead."""
    time.sleep(seconds)


async def asleep(seconds: float) -> None:
    """How a `Sleep` waits in async code (see `sleep`)."""
    await asyncio.sleep(seconds)


def run_sync[T](flow: Flow[T], http: httpx.Client, cache: BaseCache) -> T:
    def perform(effect: Effect) -> Any:
        match effect:
            case Send(request):
                return http.send(request)
            case CacheGet(key):
                return cache.get(key)
            case CacheAdd(key, value, timeout):
                return cache.add(key, value, timeout)
            case CacheSet(key, value, timeout):
                return cache.set(key, value, timeout)
            case CacheDelete(key):
                return cache.delete(key)
            case Sleep(seconds):
                return sleep(seconds)
            case Record(events):
                return stats.record(cache, events)
            case Draw(priority):
                return budget.draw(cache, priority)
            case Limited(seconds):
                return budget.limited(cache, seconds)

    value: Any = None
    error: Exception | None = None
    while True:
        try:
            effect = flow.throw(error) if error else flow.send(value)
        except StopIteration as stop:
            return stop.value
        try:
            value, error = perform(effect), None
        except Exception as exc:  # handed to the flow, which maps the ones it expects
            value, error = None, exc


async def run_async[T](flow: Flow[T], http: httpx.AsyncClient, cache: BaseCache) -> T:
    async def perform(effect: Effect) -> Any:
        match effect:
            case Send(request):
                return await http.send(request)
            case CacheGet(key):
                return await cache.aget(key)
            case CacheAdd(key, value, timeout):
                return await cache.aadd(key, value, timeout)
            case CacheSet(key, value, timeout):
                return await cache.aset(key, value, timeout)
            case CacheDelete(key):
                return await cache.adelete(key)
            case Sleep(seconds):
                return await asleep(seconds)
            case Record(events):
                return await stats.arecord(cache, events)
            case Draw(priority):
                return await budget.adraw(cache, priority)
            case Limited(seconds):
                return await budget.alimited(cache, seconds)

    value: Any = None
    error: Exception | None = None
    while True:
        try:
            effect = flow.throw(error) if error else flow.send(value)
        except StopIteration as stop:
            return stop.value
        try:
            value, error = await perform(effect), None
        except Exception as exc:
            value, error = None, exc


# --- Tokens ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenSource:
    """Where one kind of bearer token comes from, and how long to wait for another process fetching it."""

    url: str
    form: dict[str, str] = field(repr=False)
    basic_auth: tuple[str, str] | None = field(repr=False)
    default_expires_in: float
    lock_wait: float
    identity: str  # what distinguishes tokens in the shared cache (URL, client id, scope); not secret

    @property
    def cache_key(self) -> str:
        return "vcc:token:" + hashlib.sha256(self.identity.encode()).hexdigest()[:40]

    def build_request(self) -> httpx.Request:
        headers = {"Accept": "application/json"}
        if self.basic_auth:
            credentials = base64.b64encode(":".join(self.basic_auth).encode()).decode()
            headers["Authorization"] = f"Basic {credentials}"
        return httpx.Request("POST", self.url, data=self.form, headers=headers)


def get_token(source: TokenSource, *, stale: str | None = None) -> Flow[str]:
    """Return a cached token other than `stale`, fetching one if needed, one fetcher at a time across processes."""
    key, lock = source.cache_key, source.cache_key + ":lock"
    token = yield CacheGet(key)
    if token and token != stale:
        return token
    deadline = time.monotonic() + source.lock_wait
    while True:
        # The lock outlives the longest fetch, so a crashed holder cannot block everyone for long.
        if (yield CacheAdd(lock, "1", source.lock_wait * 2)):
            try:
                token = yield CacheGet(key)  # someone may have stored a fresh one just before we locked
                if not token or token == stale:
                    token, expires_in = yield from _fetch_token(source)
                    lifetime = expires_in * TOKEN_LIFETIME_USED
                    yield CacheSet(key, token, lifetime)
                    yield Record((stats.TokenIssued(key, expires_at=time.time() + expires_in, timeout=lifetime),))
            except Exception:
                yield CacheDelete(lock)
                raise
            yield CacheDelete(lock)
            return token
        if time.monotonic() >= deadline:
            raise VCCError(
                "Timed out waiting for another process to fetch a VCC token",
                user_message="vccweb could not get access to VCC in time; try again in a moment.",
                retryable=True,
            )
        yield Sleep(LOCK_POLL)
        token = yield CacheGet(key)
        if token and token != stale:
            return token


def _fetch_token(source: TokenSource) -> Flow[tuple[str, float]]:
    response = yield from exchange(source.build_request())
    if response.status_code in (400, 401, 403):
        raise VCCError(
            vcc_message(response),
            status=response.status_code,
            user_message="VCC rejected vccweb's credentials; ask an admin to check the VCC API settings.",
        )
    if not response.is_success:
        raise error_from_response(response)
    body = json_body(response)
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise _unreadable(response, "VCC's token response has no access_token")
    expires_in = _seconds(body.get("expires_in")) or source.default_expires_in
    return token, expires_in


def _seconds(value: object) -> float | None:
    """A positive number of seconds, also when sent as a string ("3600"); None otherwise."""
    if isinstance(value, bool):
        return None
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return seconds if seconds > 0 and seconds != float("inf") else None


# --- Requests -------------------------------------------------------------------------------------


def exchange(request: httpx.Request, *, places_call: bool = False) -> Flow[httpx.Response]:
    """Send one request, trying again once when that is safe; turn transport failures into `VCCError`.

    Each attempt first draws from the deployment's request budget at the caller's priority (`budget.priority`),
    and a 429 holds the budget back for every process. Never logs headers or bodies. A request that never left
    (connection refused) is always safe to send again; a dropped connection only when the request cannot have
    placed a call.
    """
    for attempt in (1, 2):
        yield from _draw(budget.current())
        started = time.monotonic()
        try:
            response = yield Send(request)
        except httpx.HTTPError as exc:
            logger.warning("VCC %s %s failed: %s", request.method, request.url, type(exc).__name__)
            yield _record(request, None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
            if attempt == 1 and _safe_to_send_again(exc, places_call=places_call):
                continue
            raise transport_error(exc, places_call=places_call) from exc
        logger.info(
            "VCC %s %s -> %s in %.0f ms",
            request.method,
            request.url,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        if response.status_code == 429:
            yield Limited(retry_after(response))
        failed = response.status_code >= 400
        yield _record(
            request, response.status_code, f"HTTP {response.status_code}: {vcc_message(response)}" if failed else ""
        )
        return response
    raise AssertionError("unreachable")


def _draw(priority: budget.Priority) -> Flow[None]:
    """Draw from the budget; the sync waits for room (up to `budget.SYNC_WAIT`), everything else is refused at once."""
    waited = 0.0
    while True:
        try:
            yield Draw(priority)
            return
        except budget.BudgetExhausted as exc:
            if priority != budget.SYNC or waited >= budget.SYNC_WAIT:
                raise
            delay = min(exc.retry_after or 1.0, budget.SYNC_WAIT - waited)
            waited += delay
            yield Sleep(delay)


def _record(request: httpx.Request, status: int | None, error: str) -> Record:
    return Record((stats.exchanged(request.method, request.url.path, at=time.time(), status=status, error=error),))


def _safe_to_send_again(exc: httpx.HTTPError, *, places_call: bool) -> bool:
    if isinstance(exc, _NEVER_SENT):
        return True
    # A timeout would double the wait; a dropped connection is worth one more try, unless a phone may ring.
    return not places_call and isinstance(exc, httpx.TransportError) and not isinstance(exc, httpx.TimeoutException)


def authorized(
    source: TokenSource, build: Callable[[str], httpx.Request], *, places_call: bool = False
) -> Flow[httpx.Response]:
    """Send `build(token)`, refreshing the token once on 401 and waiting out one short 429 on GETs (a sync's GET:
    up to SYNC_429_TRIES, however long VCC asks, within the budget's SYNC_WAIT)."""
    token = yield from get_token(source)
    response = yield from exchange(build(token), places_call=places_call)
    if response.status_code == 401:
        # A 401 means VCC refused the request, so even a call request is safe to send again.
        token = yield from get_token(source, stale=token)
        response = yield from exchange(build(token), places_call=places_call)
    if response.status_code == 429 and response.request.method == "GET" and budget.current() == budget.SYNC:
        # The sync may wait: its next draw waits out the back-off this 429 began (Retry-After, or 10 s without one,
        # which VCC does not promise), instead of failing a run of hundreds of requests at one 429 (the limit is
        # shared with every other tool on the account) and starting it over. Vonage's own sample tries 3 more times.
        for _ in range(SYNC_429_TRIES):
            response = yield from exchange(build(token), places_call=places_call)
            if response.status_code != 429:
                break
    elif response.status_code == 429 and response.request.method == "GET":
        delay = retry_after(response)
        if delay is not None and delay <= RETRY_AFTER_CAP:
            yield Sleep(delay)
            response = yield from exchange(build(token), places_call=places_call)
    return response


# --- Errors ---------------------------------------------------------------------------------------

MAY_HAVE_PLACED = "so the call may have been placed: check your phone and the call log before trying again."

# VCC's 400 texts for placing a call (lower-cased, without trailing full stops) -> (user message, retryable).
_PLACEMENT_FAILURES = {
    "unable to place call - agent number busy": (
        "Your phone is busy: finish your current call, then try again.",
        True,
    ),
    "unable to place call - agent id is unknown": (
        "VCC does not know your agent ID; ask an admin to check your agent settings.",
        False,
    ),
    "unable to place call - invalid agent id": (
        "VCC does not know the agent you are calling; check the agent ID.",
        False,
    ),
    "unable to place call - dialed agent is not currently available": (
        "The agent you are calling is not available right now; try again later.",
        True,
    ),
    "unable to place call - number is invalid": (
        "VCC says the number is invalid; check the number and try again.",
        False,
    ),
    "ccxml must be enabled for this account": (
        "The VCC account is not set up for placing calls (CCXML is off); ask an admin to contact Vonage.",
        False,
    ),
    "unable to place call to agent. please try again": (
        # VCC's "Call Failed"; also what a group call gets when nobody in the groups is free (INFERRED).
        "VCC could not connect the call to an agent; try again in a moment.",
        True,
    ),
}


def _placement_failure(message: str) -> tuple[str, bool] | None:
    """What one of VCC's known 400 texts for placing a call means: (user message, retryable); None if unknown."""
    return _PLACEMENT_FAILURES.get(message.strip().rstrip(".").lower())


def refusal_retryable(status: int | None, message: str) -> bool:
    """Whether VCC's refusal of a request (its status and its own message, verbatim) says that trying again later
    could help: a busy or unavailable agent, a group with nobody free, VCC limiting requests or down. A refusal of
    the request itself (an invalid number, an unknown agent), or one made here before sending (no status), is not."""
    if status == 400:
        return bool((known := _placement_failure(message)) and known[1])
    return status is not None and (status == 429 or status >= 500)


def vcc_message(response: httpx.Response) -> str:
    """VCC's own error text, verbatim; failing that, the start of the body or the status line.

    VCC's docs print `{"message": ...}`; its V0 API looks like ASP.NET Web API, whose own errors (a refused token, a
    wrong method) say `Message` unless camel-cased, so the names are matched in any case (UNCONFIRMED, §7.1)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("message", "error_description", "error"):
            found = body.get(key, next((v for k, v in body.items() if str(k).lower() == key), None))
            if isinstance(found, str) and found.strip():
                return found
    text = " ".join(response.text.split())[:200]
    return text or f"HTTP {response.status_code} {response.reason_phrase}".strip()


def error_from_response(response: httpx.Response, *, places_call: bool = False) -> VCCError:
    status, message = response.status_code, vcc_message(response)
    retryable, delay, may_have_placed = False, None, False
    if status == 400:
        user_message, retryable = _placement_failure(message) or (f"VCC refused the request: {message.strip()}", False)
    elif status == 401:
        user_message = "VCC rejected vccweb's credentials; ask an admin to check the VCC API settings."
    elif status == 403:
        user_message = "VCC refused access; ask an admin to check what the VCC API credentials may do."
    elif status == 404:
        user_message = "VCC does not know this call or agent (VCC keeps call details for 24 hours)."
    elif status == 415:
        user_message = "VCC refused the request format. This is a fault in vccweb: please report it."
    elif status == 429:
        user_message, retryable, delay = "VCC is limiting requests; try again in a moment.", True, retry_after(response)
    elif status >= 500:
        # Only a 503 clearly comes before any work; after other 5xx a call request may have gone through.
        may_have_placed = places_call and status != 503
        retryable = not may_have_placed
        user_message = (
            f"VCC had a problem ({status}), {MAY_HAVE_PLACED}"
            if may_have_placed
            else "VCC is having a problem; try again in a moment."
        )
    else:
        user_message = f"VCC answered unexpectedly ({status}): {message}"
    logger.warning("VCC %s %s -> %s: %s", response.request.method, response.request.url, status, message)
    return VCCError(
        message,
        status=status,
        user_message=user_message,
        retryable=retryable,
        retry_after=delay,
        may_have_placed=may_have_placed,
    )


_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def transport_error(exc: httpx.HTTPError, *, places_call: bool) -> VCCError:
    # Nothing reached VCC if the connection never opened; after that, a call request may have been received.
    never_sent = isinstance(exc, _NEVER_SENT)
    may_have_placed = places_call and not never_sent
    if never_sent:
        message = f"Could not connect to VCC: {type(exc).__name__}: {exc}"
        what = "vccweb could not reach VCC"
    elif isinstance(exc, httpx.TimeoutException):
        message = f"VCC did not answer in time ({type(exc).__name__})"
        what = "VCC did not answer in time"
    else:
        message = f"The connection to VCC failed: {type(exc).__name__}: {exc}"
        what = "The connection to VCC failed"
    return VCCError(
        message,
        user_message=f"{what}, {MAY_HAVE_PLACED}" if may_have_placed else f"{what}; try again in a moment.",
        retryable=not may_have_placed,
        may_have_placed=may_have_placed,
    )


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# --- Responses ------------------------------------------------------------------------------------


def json_body(response: httpx.Response, *, places_call: bool = False) -> Json:
    """The JSON object of a successful response, or a `VCCError` saying the reply could not be read."""
    if not response.content.strip():
        raise _unreadable(response, f"VCC answered {response.status_code} without a body", places_call=places_call)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _unreadable(response, f"VCC answered {response.status_code} with malformed JSON", places_call=places_call)
    return body


def _unreadable(response: httpx.Response, message: str, *, places_call: bool = False) -> VCCError:
    if places_call:
        location = response.headers.get("Location")
        return VCCError(
            f"{message} (Location: {location})" if location else message,
            status=response.status_code,
            user_message=f"VCC accepted the call request but its reply could not be read, {MAY_HAVE_PLACED}",
            may_have_placed=True,
            call_id=last_segment(location) if response.status_code == 201 else None,
        )
    return VCCError(
        message,
        status=response.status_code,
        user_message="VCC sent a reply vccweb could not read; try again in a moment.",
        retryable=True,
    )


def text(value: Any) -> str | None:
    """A JSON scalar as a string (VCC sends ids as strings but the docs also print bare numbers)."""
    if value is None or isinstance(value, dict | list | bool):
        return None
    return str(value)


def last_segment(url: str | None) -> str | None:
    if not url:
        return None
    try:
        path = httpx.URL(url).path
    except httpx.InvalidURL:  # a garbled Location must not hide that a call was placed
        return None
    return path.rstrip("/").rsplit("/", 1)[-1] or None
