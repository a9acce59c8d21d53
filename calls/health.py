"""The integration health page's facts: how vccweb's link to VCC is doing, read cheaply, with no secret in them.

Workers say they are alive with `record_heartbeat(name, now)`; the page reads everything through
`integration_health(now=...)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet

from calls.models import VCC_RETENTION, Call, CallbackNumber, SyncRun, WorkerHeartbeat
from calls.vcc import VCCConfig
from calls.vcc import stats as vcc_stats

HEARTBEAT_LATE = timedelta(minutes=5)  # a worker silent for longer is shown as not running
LIVE_TOO_LONG = timedelta(hours=2)  # calls "live" for longer probably ended without VCC telling us
UNCONFIRMED_RECENT = VCC_RETENTION  # an unconfirmed call can be checked with VCC only while VCC keeps it
SHOWN = 5  # rows listed for each kind of call that needs a look
COUNT_CAP = 1000  # counts stop here: the page never counts a million rows

WORKERS = {"follow_calls": "Call-following worker"}


def record_heartbeat(name: str, now: datetime) -> None:
    """Note that the worker `name` is alive at `now`: one row in the database, which every process sees whatever
    the cache is (each process's own memory without Redis, or a Redis that is down)."""
    WorkerHeartbeat.objects.update_or_create(name=name, defaults={"seen_at": now})


def last_heartbeat(name: str) -> datetime | None:
    return WorkerHeartbeat.objects.filter(name=name).values_list("seen_at", flat=True).first()


def mask(secret: str) -> str:
    """Say whether a secret is set, never any of it."""
    return "set (hidden)" if secret else "not set"


@dataclass
class Worker:
    name: str
    label: str
    last_seen: datetime | None
    late: bool


@dataclass
class CacheState:
    """Redis as the shared cache (REDIS_URL), or each process's own memory; and whether Redis answers."""

    shared: bool
    where: str = ""  # Redis's address, never its password
    error: str = ""  # what went wrong asking it ("" when it answers)
    retry_seconds: float = 0  # each process asks again after this long (REDIS_BREAKER_SECONDS)

    @property
    def down(self) -> bool:
        return self.shared and bool(self.error)


def without_credentials(location: str) -> str:
    """A Redis URL (or several, comma-separated) with no user name or password: scheme, host, port, database."""
    shown = []
    for url in location.split(","):
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        shown.append(f"{parts.scheme}://{host}{port}{parts.path}")
    return ",".join(shown)


def cache_state() -> CacheState:
    """Ask Redis for a PING (a process whose breaker is open does not ask: it reports the last error)."""
    check = getattr(cache, "health", None)
    if check is None:
        return CacheState(shared=False)
    problem = check()
    breaker = getattr(cache, "breaker", None)
    error = ((breaker.last_error if breaker else "") or problem) if problem else ""
    return CacheState(
        shared=True,
        where=without_credentials(getattr(cache, "location", "")),
        error=error,
        retry_seconds=breaker.seconds if breaker else 0,
    )


@dataclass
class Request:
    at: datetime
    method: str
    path: str
    status: int | None
    error: str


@dataclass
class Health:
    now: datetime
    sandbox: bool
    region: str
    config: list[tuple[str, str]]
    v0_token_expires: datetime | None
    gateway_token_expires: datetime | None
    requests_last_hour: int
    failures_last_hour: int
    last_success: Request | None
    last_failure: Request | None
    unconfirmed_count: int
    unconfirmed: list[Call]
    long_live_count: int
    long_live: list[Call]
    not_listed: list[CallbackNumber]
    never_checked: list[CallbackNumber]
    last_sync: SyncRun | None
    last_applied_sync: SyncRun | None
    sync_enabled: bool
    workers: list[Worker]
    shared_counts: bool
    cache: CacheState
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _request(data: dict[str, Any] | None) -> Request | None:
    if not data:
        return None
    return Request(
        at=datetime.fromtimestamp(data["at"], tz=UTC),
        method=data["method"],
        path=data["path"],
        status=data["status"],
        error=data["error"],
    )


def _capped_count(queryset: QuerySet) -> int:
    return queryset.order_by()[:COUNT_CAP].count()


def integration_health(*, now: datetime) -> Health:
    """Everything the page shows, as of `now`."""
    cache_now = cache_state()  # first: a hung Redis costs one timeout here, then every read below falls back at once
    config = VCCConfig.from_settings()
    recorded = vcc_stats.snapshot(cache, now)
    unconfirmed = Call.objects.filter(state=Call.State.UNCONFIRMED, requested_at__gte=now - UNCONFIRMED_RECENT)
    long_live = Call.objects.filter(state=Call.State.LIVE, requested_at__lt=now - LIVE_TOO_LONG)
    last_applied = SyncRun.objects.filter(dry_run=False, finished_at__isnull=False, error="").first()
    never_checked = (
        list(CallbackNumber.objects.filter(is_active=True, vcc_listing_synced_at__isnull=True)) if last_applied else []
    )
    workers = []
    for name, label in WORKERS.items():
        seen = last_heartbeat(name)
        late = seen is None or seen < now - HEARTBEAT_LATE
        workers.append(Worker(name=name, label=label, last_seen=seen, late=late))
    health = Health(
        now=now,
        sandbox=settings.VCC_SANDBOX,
        region=settings.VCC_REGION,
        config=[
            ("V0 API (calls)", config.base_url),
            ("Token host (gateway)", config.auth_url),
            ("Gateway API (User Admin)", config.gateway_url),
            ("Account key", config.account_key),
            ("API authentication token", mask(config.api_token)),
            ("Gateway client ID", config.client_id or "not set"),
            ("Gateway client secret", mask(config.client_secret)),
            ("Application name sent", settings.VCC_APPLICATION),
            ("API version", str(config.api_version)),
        ],
        v0_token_expires=vcc_stats.token_expiry(cache, config.v0_token.cache_key),
        gateway_token_expires=vcc_stats.token_expiry(cache, config.gateway_token.cache_key),
        requests_last_hour=recorded.requests,
        failures_last_hour=recorded.failures,
        last_success=_request(recorded.last_success),
        last_failure=_request(recorded.last_failure),
        unconfirmed_count=_capped_count(unconfirmed),
        unconfirmed=list(unconfirmed.select_related("from_agent", "contact")[:SHOWN]),
        long_live_count=_capped_count(long_live),
        long_live=list(long_live.select_related("from_agent", "contact").order_by("requested_at")[:SHOWN]),
        not_listed=list(CallbackNumber.objects.not_listed_by_vcc()),
        never_checked=never_checked,
        last_sync=SyncRun.objects.select_related("by").first(),
        last_applied_sync=last_applied,
        sync_enabled=settings.VCC_SYNC_ENABLED,
        workers=workers,
        shared_counts=vcc_stats.needs_io(cache),
        cache=cache_now,
    )
    health.problems = _problems(health)
    return health


def _problems(h: Health) -> list[str]:
    problems = []
    if h.cache.down:
        problems.append("Redis (the shared cache) is not answering: see above for what works differently meanwhile.")
    if h.last_failure and (not h.last_success or h.last_failure.at > h.last_success.at):
        problems.append("The last request to VCC failed.")
    if h.unconfirmed_count:
        problems.append(f"{h.unconfirmed_count} call(s) not confirmed: VCC may have placed them.")
    if h.long_live_count:
        problems.append(f"{h.long_live_count} call(s) live for more than {_hours(LIVE_TOO_LONG)} hours.")
    if h.not_listed:
        problems.append(f"{len(h.not_listed)} caller ID(s) VCC lists for nobody.")
    if h.last_sync and h.last_sync.error:
        problems.append("The last sync from VCC failed.")
    problems += [f"{w.label}: not running." for w in h.workers if w.late]
    return problems


def _hours(delta: timedelta) -> int:
    return int(delta.total_seconds() // 3600)
