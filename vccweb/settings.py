"""vccweb settings: everything comes from the environment (see .env.example and README)."""

from __future__ import annotations

import base64
import binascii
import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
import phonenumbers
from croniter import croniter  # type: ignore[import-untyped]  # Procrastinate's own dependency
from dj_database_url import DBConfig
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


def env_str(name: str, default: str = "") -> str:
    """Read a string, preferring the file named by NAME_FILE (for secrets mounted as files). Blank means the default,
    as for every other kind: `TIME_ZONE=` left empty in a copy of `.env.example` is Europe/London, not ""."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as e:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {path!r}: {e.strerror}") from e
    return os.environ.get(name, "").strip() or default


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true, false, 1 or 0 (any case), not {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, "").strip().lower() or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def env_url(name: str, default: str) -> str:
    """Read an http(s) URL without its trailing slash; blank (as `.env.example` leaves them) means the default."""
    value = (env_str(name) or default).rstrip("/")
    if value and not re.match(r"^https?://[^/\s]+", value):
        raise ImproperlyConfigured(f"{name} must be an http:// or https:// URL, not {value!r}")
    return value


# --- Django core -----------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", False)

_MAKE_A_KEY = "make one with: python -c 'import secrets; print(secrets.token_urlsafe(50))'"
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            f"SECRET_KEY must be set when DEBUG is off (or set DEBUG=true for development); {_MAKE_A_KEY}"
        )
    SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"
elif not DEBUG and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure-")):
    # The same test as Django's deploy check (security.W009), made fatal: a guessable key signs sessions.
    raise ImproperlyConfigured(
        f"SECRET_KEY is not a real secret: it needs at least 50 characters, 5 of them different, "
        f"and no 'django-insecure-' prefix; {_MAKE_A_KEY}"
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off (comma-separated host names)")

SITE_URL = env_url("SITE_URL", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    # The task engine (calls/tasks.py, calls/worker.py): its models, migrations and admin-less job tables.
    "procrastinate.contrib.django",
    # The REST API (calls/api/): its Swagger UI is served from ninja's own static files, not a CDN.
    "ninja",
    "calls",
]

MIDDLEWARE = [
    # First, so that every log line of a request, redirects and errors included, carries its request id.
    "calls.observability.RequestIdMiddleware",
    # Django's own, as subclasses that under ASGI run in the event loop rather than a thread (calls/middleware.py).
    "calls.middleware.SecurityMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "calls.staticfiles.AsyncWhiteNoiseMiddleware",
    "calls.middleware.private_pages",  # Cache-Control: private, no-store, on all but static files
    "calls.middleware.SessionMiddleware",
    "calls.middleware.CommonMiddleware",
    "calls.middleware.CsrfViewMiddleware",
    "calls.middleware.AuthenticationMiddleware",
    "calls.middleware.MessageMiddleware",
    "calls.middleware.XFrameOptionsMiddleware",
    "calls.middleware.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]
# vccweb's 404 and 500 pages with DEBUG on too (`make run`, the demo); DEBUG_TECHNICAL_ERRORS=true shows Django's
# technical pages instead, for whoever is debugging.
DEBUG_TECHNICAL_ERRORS = env_bool("DEBUG_TECHNICAL_ERRORS", False)
if DEBUG and not DEBUG_TECHNICAL_ERRORS:
    MIDDLEWARE.append("calls.errorpages.FriendlyErrorPages")
# How often an open page asks for the progress of a call going on (the call panel and the call bar, in ms). VCC is
# asked about a call at most every 2 s whatever this is (calls/calling/following.py); the browser tests shorten it.
CALL_POLL_MS = 2000
QUEUE_BAR_POLL_MS = 10_000  # the queue bar's refresh: a sign the agent is still there, and the held call's state
# Django's deploy checks W001-W003 want its own class names above; calls.W001 checks for the subclasses instead.
SILENCED_SYSTEM_CHECKS = ["security.W001", "security.W002", "security.W003"]

# Only for bench/private_bench.py, not for running vccweb: the speed pieces that lean on private names of Django,
# asgiref or redis-py (tests/test_private_names.py), switched off one at a time to measure what each saves.
PRIVATE_PIECES = (
    "inloop_middleware",
    "one_cache_client",
    "cached_perms",
)
BENCH_DISABLE = frozenset(env_list("VCCWEB_BENCH_DISABLE", []))
if unknown := BENCH_DISABLE - set(PRIVATE_PIECES):
    raise ImproperlyConfigured(f"VCCWEB_BENCH_DISABLE: no such piece {', '.join(sorted(unknown))}")

ROOT_URLCONF = "vccweb.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
                "calls.context_processors.vccweb",
            ],
        },
    },
]

WSGI_APPLICATION = "vccweb.wsgi.application"
ASGI_APPLICATION = "vccweb.asgi.application"

# --- Data ------------------------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL")
try:
    DATABASES: dict[str, DBConfig] = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0, minimum=0))
        if DATABASE_URL
        else {"ENGINE": "django.db.backends.sqlite3", "NAME": str(BASE_DIR / "db.sqlite3")}
    }
except ValueError as e:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL Django understands: {e}") from e

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, but with PostgreSQL down a request fails at once instead of waiting DB_POOL_TIMEOUT for
    # the pool, and /readyz asks PostgreSQL with a short connection of its own (calls/dbbackend/base.py).
    DATABASES["default"]["ENGINE"] = "calls.dbbackend"
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    # A PostgreSQL that does not answer must not hang a request (or /readyz) for minutes.
    _options.setdefault("connect_timeout", env_int("DB_CONNECT_TIMEOUT", 5, minimum=1))
    # Each process borrows connections from its own bounded pool, so processes × DB_POOL_MAX_SIZE (plus the
    # workers') is all PostgreSQL ever sees, whatever the number of requests in flight. Off behind PgBouncer.
    if env_bool("DB_POOL", True):
        if DATABASES["default"]["CONN_MAX_AGE"]:
            raise ImproperlyConfigured(
                "DB_CONN_MAX_AGE must be 0 while the connection pool is on (DB_POOL=true): the pool keeps the "
                "connections; set DB_POOL=false to use persistent connections instead"
            )
        _pool_min = env_int("DB_POOL_MIN_SIZE", 2, minimum=0)
        _pool_max = env_int("DB_POOL_MAX_SIZE", 10, minimum=1)
        if _pool_max < _pool_min:
            raise ImproperlyConfigured(
                f"DB_POOL_MAX_SIZE ({_pool_max}) must be at least DB_POOL_MIN_SIZE ({_pool_min})"
            )
        _options["pool"] = {
            "min_size": _pool_min,
            "max_size": _pool_max,
            # Seconds a request waits for a free connection while all are busy, before it fails (a 500 that says
            # vccweb is too busy). With PostgreSQL down it fails at once instead (calls/dbbackend/base.py).
            "timeout": env_int("DB_POOL_TIMEOUT", 10, minimum=1),
        }

# At most this many clicks per process do their database work before VCC at once; the rest wait their turn, first
# come first served. That work is CPU-bound on the process's one core for Python, so more at once only adds
# contention, and a burst of clicks would otherwise hold the pooled connections while other people's pages wait.
CLICKS_STARTING_AT_ONCE = env_int("CLICKS_STARTING_AT_ONCE", 2, minimum=1)

REDIS_URL = env_str("REDIS_URL")
REDIS_TIMEOUT = env_int("REDIS_TIMEOUT_MS", 500, minimum=1) / 1000
if REDIS_URL:
    if not re.match(r"^rediss?://", REDIS_URL):
        raise ImproperlyConfigured("REDIS_URL must start with redis:// or rediss://")
    CACHES = {
        "default": {
            # Django's RedisCache, but an outage degrades (see calls/cache.py) instead of failing each request.
            "BACKEND": "calls.cache.TolerantRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "vccweb",
            "OPTIONS": {
                # Redis on the same network answers in a millisecond: waiting longer only stalls requests.
                "socket_connect_timeout": REDIS_TIMEOUT,
                "socket_timeout": REDIS_TIMEOUT,
                # After a failure, stop asking Redis for this long (per process); see calls/cache.py.
                "breaker_seconds": env_int("REDIS_BREAKER_SECONDS", 10, minimum=1),
            },
        }
    }
else:
    # Django's local-memory cache, with async methods that run in place (calls/cache.py).
    CACHES = {"default": {"BACKEND": "calls.cache.InProcessCache", "LOCATION": "vccweb"}}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Background jobs: Procrastinate, in the same PostgreSQL (calls/tasks.py, calls/worker.py, `manage.py worker`) --
# Off PostgreSQL (a SQLite quick look, the SQLite test run) its tables are not created (calls/routers.py) and no
# worker can run; `make run` and `make serve` use PostgreSQL.
JOBS_DATABASE = DATABASES["default"]["ENGINE"] == "calls.dbbackend"
DATABASE_ROUTERS = ["calls.routers.JobsRouter"]
WORKER_HEARTBEAT_SECONDS = env_int("WORKER_HEARTBEAT_SECONDS", 5, minimum=1)
WORKER_STALLED_SECONDS = env_int("WORKER_STALLED_SECONDS", 30, minimum=1)
if WORKER_STALLED_SECONDS < 3 * WORKER_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        f"WORKER_STALLED_SECONDS ({WORKER_STALLED_SECONDS}) must be at least three heartbeats "
        f"(3 × WORKER_HEARTBEAT_SECONDS = {3 * WORKER_HEARTBEAT_SECONDS}), or a busy worker is taken for dead"
    )
# A cron line; a sixth field, last, counts seconds: "* * * * * */10" is every 10 s.
JOBS_STALLED_CHECK_CRON = env_str("JOBS_STALLED_CHECK_CRON", "* * * * * */10")
# Checked here: Procrastinate reads it only in the worker, whose periodic jobs then stop at each start, forever.
if not croniter.is_valid(JOBS_STALLED_CHECK_CRON):
    raise ImproperlyConfigured(
        f"JOBS_STALLED_CHECK_CRON must be a cron line of 5 fields, or 6 with seconds last (such as '* * * * * */10', "
        f"every 10 s), not {JOBS_STALLED_CHECK_CRON!r}"
    )
# The webhooks' queue has a Procrastinate worker of its own in each worker process, with these slots: one pass of
# an endpoint runs at a time, and the fan-out and retry tick beside them (calls/worker.py).
WEBHOOK_WORKER_CONCURRENCY = env_int("WEBHOOK_WORKER_CONCURRENCY", 6, minimum=2)
PROCRASTINATE_WORKER_DEFAULTS = {
    # Jobs wait on VCC or PostgreSQL, rarely on the CPU: eight at a time per worker process.
    "concurrency": env_int("WORKER_CONCURRENCY", 8, minimum=1),
    # A worker beats every WORKER_HEARTBEAT_SECONDS; one silent for WORKER_STALLED_SECONDS is dead (kill -9, a lost
    # host) and retry_stalled_jobs (every JOBS_STALLED_CHECK_CRON) puts its jobs back in the queue: a dead worker's
    # job starts again within stalled + check seconds, 30-40 s by default. The stall must be several heartbeats, or a
    # busy worker is taken for dead and its jobs run twice. The fault tests use 1 s, 3 s and every second.
    "update_heartbeat_interval": float(WORKER_HEARTBEAT_SECONDS),
    "stalled_worker_timeout": float(WORKER_STALLED_SECONDS),
    # Ask for new jobs on LISTEN/NOTIFY at once; poll as a fallback.
    "fetch_job_polling_interval": 2.0,
    "shutdown_graceful_timeout": 30.0,
}

# --- Auth, i18n, static -----------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Django's backend, with each user's permissions cached between requests (calls/auth.py).
AUTHENTICATION_BACKENDS = ["calls.auth.CachedPermissionBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"  # Today: their callbacks and queues (the contact list for those with neither)
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("TIME_ZONE", "Europe/London")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env_str("STATIC_ROOT") or BASE_DIR / "staticfiles"
# With DEBUG on (development and tests) WhiteNoise serves the files straight from the app folders. With it off,
# pages link to content-hashed, compressed copies (cached for ever by browsers) that `manage.py collectstatic`
# writes to STATIC_ROOT; `make serve` runs it.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Security --------------------------------------------------------------------------------------

SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}

SESSION_COOKIE_HTTPONLY = True
# Sessions are read from the cache (Redis in production) and written through to the database: a page or a click
# costs no query to find out who is asking, and a flushed cache loses no one's login.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Load balancers probe these over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
# Browser features no page here uses, denied to the pages and anything they could embed: sent as Permissions-Policy
# by django-permissions-policy's middleware (an unknown feature name stops the app at start).
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
}

# Failed logins: an account, or an address, that fails this often within the window is refused for
# LOGIN_LOCKOUT_SECONDS, before its password is checked (calls/logins.py).
LOGIN_FAILURES_PER_ACCOUNT = env_int("LOGIN_FAILURES_PER_ACCOUNT", 5, minimum=1)
# Generous per address: a whole floor of agents may reach the app from one office address (NAT).
LOGIN_FAILURES_PER_ADDRESS = env_int("LOGIN_FAILURES_PER_ADDRESS", 100, minimum=1)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 900, minimum=1)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 900, minimum=1)
# A process checks one password at a time; a login that waits longer than this for its turn is told to try again.
LOGIN_CHECK_WAIT_SECONDS = env_int("LOGIN_CHECK_WAIT_SECONDS", 10, minimum=1)

# Production defaults when DEBUG is off; each can be switched off on its own (e.g. TLS ends elsewhere).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
if env_bool("SECURE_PROXY_SSL_HEADER", not DEBUG):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# --- VCC -------------------------------------------------------------------------------------------


def _gateway_url_for(base_url: str) -> str:
    """The gateway APIs' URL beside a V0 host (vcc-api.md §2): `{region}.api.cc.vonage.com` for
    `{region}.cc.vonage.com`, `{region}.api.newvoicemedia.com` for the legacy `{region}.newvoicemedia.com`. Any
    other host (a simulator) serves them itself."""
    scheme, netloc, path, _, _ = urlsplit(base_url)
    vcc = re.fullmatch(r"([a-z0-9-]+)\.(cc\.vonage\.com|newvoicemedia\.com)(:\d+)?", netloc.lower())
    if vcc is None:
        return base_url
    return urlunsplit((scheme, f"{vcc[1]}.api.{vcc[2]}{vcc[3] or ''}", path, "", ""))


VCC_REGION = env_choice("VCC_REGION", "emea", ("emea", "nam", "apac"))
VCC_ACCOUNT_KEY = env_str("VCC_ACCOUNT_KEY")
VCC_API_TOKEN = env_str("VCC_API_TOKEN")

# Sandbox mode: no account key means the app talks to the in-process simulator loaded with the demo account.
VCC_SANDBOX = not VCC_ACCOUNT_KEY
VCC_BASE_URL = env_url("VCC_BASE_URL", f"https://{VCC_REGION}.cc.vonage.com")
# The gateway token is served by the V0 host (`{base}/Auth/connect/token`, vcc-api.md §3.2), the gateway APIs by its
# `api.` neighbour: setting VCC_BASE_URL alone moves all three.
VCC_AUTH_URL = env_url("VCC_AUTH_URL", VCC_BASE_URL)
VCC_GATEWAY_URL = env_url("VCC_GATEWAY_URL", _gateway_url_for(VCC_BASE_URL))
VCC_CLIENT_ID = env_str("VCC_CLIENT_ID")
VCC_CLIENT_SECRET = env_str("VCC_CLIENT_SECRET")
# Dotted path to a callable returning an httpx transport, or "" for real sockets. Chosen here, in one place,
# so that `calls` never imports `vccsim`.
VCC_TRANSPORT = ""
# In sandbox mode several processes (web workers, the call-following worker) must share one simulator: VCCSIM_URL
# names one served on its own (`python -m vccsim`, started by `make run` and `make serve`); without it each
# process simulates VCC in-process, which suits one process (tests, a quick look).
VCCSIM_URL = env_url("VCCSIM_URL", "")
if VCC_SANDBOX:
    VCC_BASE_URL = VCC_AUTH_URL = VCC_GATEWAY_URL = VCCSIM_URL or "http://vccsim.sandbox"
    VCC_TRANSPORT = "" if VCCSIM_URL else "vccsim.transport.sandbox_transport"
    VCC_ACCOUNT_KEY = "sandbox01"
    VCC_API_TOKEN = "sandbox-api-token"
    VCC_CLIENT_ID = VCC_CLIENT_ID or "sandbox-client"
    VCC_CLIENT_SECRET = VCC_CLIENT_SECRET or "sandbox-secret"
elif not VCC_API_TOKEN:
    raise ImproperlyConfigured("VCC_API_TOKEN must be set when VCC_ACCOUNT_KEY is set")
VCC_SYNC_ENABLED = bool(VCC_CLIENT_ID and VCC_CLIENT_SECRET)

# How often the worker syncs agents, groups and callback numbers from VCC: "off", or every N minutes ("30m", N
# dividing 60) or hours ("1h", N dividing 24), as a periodic job (calls/tasks.py). The admin's button enqueues one.
VCC_SYNC_EVERY = env_str("VCC_SYNC_EVERY", "1h").strip().lower()
_every = re.fullmatch(r"(\d+)([mh])", VCC_SYNC_EVERY)
if VCC_SYNC_EVERY == "off":
    VCC_SYNC_CRON = ""
elif _every and _every[2] == "m" and int(_every[1]) in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30):
    VCC_SYNC_CRON = f"*/{int(_every[1])} * * * *"
elif _every and _every[2] == "h" and int(_every[1]) in (1, 2, 3, 4, 6, 8, 12, 24):
    VCC_SYNC_CRON = f"0 */{int(_every[1])} * * *" if int(_every[1]) < 24 else "0 0 * * *"
else:
    raise ImproperlyConfigured(
        f"VCC_SYNC_EVERY must be off, or minutes or hours that divide an hour or a day (such as 30m, 1h or 24h), "
        f"not {VCC_SYNC_EVERY!r}"
    )

# The REST API (calls/api/): requests a token may send a minute, in all and placing calls (calls/api/limits.py).
API_RATE_PER_MINUTE = env_int("API_RATE_PER_MINUTE", 600, minimum=1)
API_CALL_RATE_PER_MINUTE = env_int("API_CALL_RATE_PER_MINUTE", 60, minimum=1)

# Outgoing webhooks (calls/webhooks/): hosts, comma-separated, that may be sent to over plain http and may resolve to
# loopback or private addresses (a receiver inside your network); link-local and metadata addresses never.
WEBHOOK_ALLOWED_HOSTS = [host.lower().rstrip(".") for host in env_list("WEBHOOK_ALLOWED_HOSTS", [])]
# Outgoing webhooks' events and delivery attempts are kept this many days (the prune_webhooks job).
WEBHOOK_KEEP_DAYS = env_int("WEBHOOK_KEEP_DAYS", 7, minimum=1)

# Privacy (calls/privacy/): the key of the salted hash that keeps an erased contact's do-not-call numbers blocked.
# SECRET_KEY when unset; set it before rotating SECRET_KEY, to the old key, or erased opt-outs are forgotten.
ERASURE_HASH_KEY = env_str("ERASURE_HASH_KEY")

# VCC's events (Webhooks API) are accepted at POST /vcc/events/ when signed with one of these secrets: the base64
# text each subscription was given, comma-separated (two while one is rotated); VCC_WEBHOOK_SECRETS_FILE accepted.
# One shorter than 32 bytes is accepted with a warning (calls/checks.py): Vonage's own sample's is 16.
VCC_WEBHOOK_SECRETS = [text.strip() for text in env_str("VCC_WEBHOOK_SECRETS").split(",") if text.strip()]
# A live call that had an event within this many seconds is not polled; one without is polled as before.
EVENT_SILENCE_SECONDS = env_int("EVENT_SILENCE_SECONDS", 60, minimum=5)
VCC_WEBHOOK_KEYS: list[bytes] = []  # the signing keys: each secret base64-decoded (calls/vcc/events.py)
for _position, _text in enumerate(VCC_WEBHOOK_SECRETS, start=1):
    try:
        _key = base64.b64decode(_text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ImproperlyConfigured(f"secret {_position} of VCC_WEBHOOK_SECRETS is not base64 text") from e
    VCC_WEBHOOK_KEYS.append(_key)

VCC_APPLICATION = env_str("VCC_APPLICATION", "vccweb")
if not re.fullmatch(r"[A-Za-z0-9]{1,32}", VCC_APPLICATION):
    raise ImproperlyConfigured("VCC_APPLICATION must be 1 to 32 letters or digits (VCC refuses anything else)")
VCC_API_VERSION = env_int("VCC_API_VERSION", 6, minimum=1)
# The Webhooks API's version, sent as `Accept: application/vnd.newvoicemedia.vN+json` (the gateway's APIs want one;
# VCC's docs name none for Webhooks, so 1).
VCC_WEBHOOKS_API_VERSION = env_int("VCC_WEBHOOKS_API_VERSION", 1, minimum=1)
# Requests a minute to VCC for the whole deployment, every process and host together (calls/vcc/budget.py): VCC's
# fair use policy allows about 160 for everything an account asks, and answers 429 past it. At least 10, so each
# priority's share holds a request or more.
VCC_REQUESTS_PER_MINUTE = env_int("VCC_REQUESTS_PER_MINUTE", 150, minimum=10)
VCC_CONNECT_TIMEOUT = 3.0
VCC_READ_TIMEOUT = 10.0

DEFAULT_PHONE_REGION = env_str("DEFAULT_PHONE_REGION", "GB").upper()
if not re.fullmatch(r"[A-Z]{2}", DEFAULT_PHONE_REGION) or not phonenumbers.country_code_for_region(
    DEFAULT_PHONE_REGION
):
    raise ImproperlyConfigured(
        f"DEFAULT_PHONE_REGION must be a two-letter ISO country code with a phone plan, such as GB or US, "
        f"not {DEFAULT_PHONE_REGION!r}"
    )

DEMO_PASSWORD = env_str("DEMO_PASSWORD", "demo")

# --- Logging: to stdout; never log secrets (the VCC client redacts Authorization itself) ------------

# json: one JSON object a line (production); text: for people reading a terminal. Every line carries the
# request id (calls/observability.py); calls.observability logs one line per request.
LOG_FORMAT = env_choice("LOG_FORMAT", "text" if DEBUG else "json", ("json", "text"))
_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_LEVEL = env_choice("LOG_LEVEL", "info", _LEVELS).upper()
# Procrastinate's own lines: a line for every job started and ended at INFO (follow_calls runs every second).
PROCRASTINATE_LOG_LEVEL = env_choice("PROCRASTINATE_LOG_LEVEL", "warning", _LEVELS).upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "calls.observability.RequestIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "calls.observability.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # calls.observability logs each request once, with its id; Django's own 4xx/5xx lines would repeat it.
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        # Procrastinate logs every job started and finished at INFO (follow_calls runs every second): its warnings
        # and errors are kept; calls.worker says what the jobs did.
        "procrastinate": {"level": PROCRASTINATE_LOG_LEVEL},
    },
}
