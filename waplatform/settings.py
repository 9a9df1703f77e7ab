"""Settings, all from the environment (django-environ).

With no environment at all the platform runs on one machine: SQLite (WAL)
under var/, the embedded Redis the launcher starts, DEBUG off, and a secret
key generated once into var/secret_key (untracked).
"""

import base64
import os
import secrets
import socket
import sys
from pathlib import Path

import environ
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from waplatform.redis_urls import (
    InvalidRedisURL,
    SentinelFollowingConnection,
    channels_host,
    parse_redis_url,
    retries_covering,
    rq_queue_config,
)
from waplatform.dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
load_dotenv()  # the launcher read it already; a bare `manage.py` command reads it here

VAR_DIR = Path(env("WAP_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# prometheus-client picks multiprocess mode at import time from this variable,
# so it is set before any app loads. The launcher empties the folder on start.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "prometheus"))
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)


def _generated_secret_key() -> str:
    # A key per checkout, kept out of git, so a demo never runs on a published key.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = env("SECRET_KEY", default=None) or _generated_secret_key()
# Read by the waplatform.E001 check: a key generated on one host is wrong for a database shared by several.
SECRET_KEY_GENERATED = not env("SECRET_KEY", default=None)


def _generated_encryption_key() -> str:
    # Like the secret key: one per checkout, untracked. Production sets SECRETS_ENCRYPTION_KEYS,
    # since a key that lives next to the database protects nothing when the disk leaks.
    key_file = VAR_DIR / "secrets_encryption_key"
    if not key_file.exists():
        key_file.write_text(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())  # a Fernet key
        key_file.chmod(0o600)
    return key_file.read_text().strip()


# Fernet keys, comma-separated: the first encrypts, every one decrypts (waplatform/fields.py;
# rotation in docs/security.md).
SECRETS_ENCRYPTION_KEYS = env.list("SECRETS_ENCRYPTION_KEYS", default=[]) or [_generated_encryption_key()]
SECRETS_ENCRYPTION_KEYS_GENERATED = not env.list("SECRETS_ENCRYPTION_KEYS", default=[])
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
PORT = env.int("PORT", default=8000)
BIND_HOST = env("BIND_HOST", default="127.0.0.1")
MAX_REQUEST_HEADER_BYTES = env.int("MAX_REQUEST_HEADER_BYTES", default=16 * 1024)
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default=f"http://127.0.0.1:{PORT}").rstrip("/")

# --- behind a reverse proxy (nginx at the edge; docs/deployment.md) ----------
# All off by default: a server reachable without the proxy would let any client
# claim https or another host by sending the headers itself. Turn them on only
# where daphne listens on an address that nothing but the proxy can reach.
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = env.bool("USE_X_FORWARDED_HOST", default=False)
USE_X_FORWARDED_PORT = env.bool("USE_X_FORWARDED_PORT", default=False)
# Cookies only over TLS once the edge terminates it; off, `make run` on plain http keeps working.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=False)

INSTALLED_APPS = [
    # daphne's app only swaps `runserver` for its ASGI server, and importing it loads Twisted
    # (~40 MB) into every worker, scheduler and command; the daphne processes load their server
    # themselves. So only for runserver.
    *(["daphne"] if "runserver" in sys.argv[1:2] else []),
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_rq",
    "channels",
    "waplatform",
    "tenants",
    "pooling",
    "messaging",
    "agents",
    "operations",
    "mirror",
    "inbox",
]

MIDDLEWARE = [
    # Outermost: under /api/ and /hooks/ every error answer leaves as {code, detail} JSON.
    "waplatform.api_errors.JsonErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files under daphne, which serves none itself (docs/inbox.md).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "waplatform.urls"
ASGI_APPLICATION = "waplatform.asgi.application"

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
            ],
        },
    },
]

# --- database -------------------------------------------------------------
SQLITE_PATH = VAR_DIR / "db.sqlite3"
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{SQLITE_PATH}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets readers run beside the one writer; IMMEDIATE takes the write
        # lock at BEGIN, which serialises allocations instead of failing them
        # half-way with "database is locked" on lock upgrade.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file, not Django's in-memory default: an in-memory test database is one
    # connection shared by every thread, so a live server answering a bridge's
    # webhook would interleave its savepoints with the test's. A file gives each
    # thread (and a worker subprocess) its own connection, as in production.
    # Per test run (inherited by subprocesses through the environment), so two runs never share it.
    os.environ.setdefault("WAP_TEST_RUN_ID", str(os.getpid()))
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.environ['WAP_TEST_RUN_ID']}.sqlite3")}

# PostgreSQL connections (docs/deployment.md, "PostgreSQL"): persistent per thread by default;
# DATABASE_POOL=true uses Django's psycopg pool instead, one pool per process and database.
DATABASE_POOL = env.bool("DATABASE_POOL", default=False)
DATABASE_POOL_MIN_SIZE = env.int("DATABASE_POOL_MIN_SIZE", default=2)
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=10)
DATABASE_POOL_TIMEOUT_SECONDS = env.float("DATABASE_POOL_TIMEOUT_SECONDS", default=10.0)
# Analytics reads (waplatform/db.py) go to this replica when set; a replica that does not
# answer within the connect timeout is left alone for DATABASE_REPLICA_RETRY_SECONDS.
DATABASE_REPLICA_URL = env("DATABASE_REPLICA_URL", default="")
DATABASE_REPLICA_CONNECT_TIMEOUT_SECONDS = env.int("DATABASE_REPLICA_CONNECT_TIMEOUT_SECONDS", default=3)
DATABASE_REPLICA_RETRY_SECONDS = env.float("DATABASE_REPLICA_RETRY_SECONDS", default=30.0)


def _postgres_connections(config: dict, *, pool_timeout: float) -> dict:
    if DATABASE_POOL:
        config["CONN_MAX_AGE"] = 0  # Django refuses persistent connections with a pool
        config.setdefault("OPTIONS", {})["pool"] = {
            "min_size": DATABASE_POOL_MIN_SIZE,
            "max_size": DATABASE_POOL_MAX_SIZE,
            "timeout": pool_timeout,
        }
    else:
        config.setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    # With a pool Django turns this into the pool's check on checkout: a connection the server
    # dropped (restart, failover) is replaced before a query meets it.
    config["CONN_HEALTH_CHECKS"] = True
    return config


if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    _postgres_connections(DATABASES["default"], pool_timeout=DATABASE_POOL_TIMEOUT_SECONDS)
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = env.db_url_config(DATABASE_REPLICA_URL)
    if DATABASES["replica"]["ENGINE"] != DATABASES["default"]["ENGINE"]:
        raise environ.ImproperlyConfigured("DATABASE_REPLICA_URL must be the same kind of database as DATABASE_URL")
    if DATABASES["replica"]["ENGINE"] != "django.db.backends.sqlite3":
        DATABASES["replica"].setdefault("OPTIONS", {})["connect_timeout"] = DATABASE_REPLICA_CONNECT_TIMEOUT_SECONDS
        _postgres_connections(DATABASES["replica"], pool_timeout=DATABASE_REPLICA_CONNECT_TIMEOUT_SECONDS)
    # Tests: the replica alias is the test database itself, never a database of its own.
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["waplatform.db.AnalyticsRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- redis ----------------------------------------------------------------
EMBEDDED_REDIS_PORT = env.int("EMBEDDED_REDIS_PORT", default=6390)
REDIS_URL = env("REDIS_URL", default=f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0")
# Three roles, each on REDIS_URL unless given its own (docs/deployment.md, "Redis: three
# roles"; the roles of each use in waplatform/redis.py). Any of them may be a Sentinel URL:
# redis+sentinel://host1:26379,host2:26379/SERVICE/DB (waplatform/redis_urls.py).
REDIS_QUEUES_URL = env("REDIS_QUEUES_URL", default="") or REDIS_URL
REDIS_CHANNELS_URL = env("REDIS_CHANNELS_URL", default="") or REDIS_URL
REDIS_CACHE_URL = env("REDIS_CACHE_URL", default="") or REDIS_URL
try:
    _REDIS_ADDRESSES = {name: parse_redis_url(url) for name, url in (
        ("REDIS_QUEUES_URL", REDIS_QUEUES_URL), ("REDIS_CHANNELS_URL", REDIS_CHANNELS_URL),
        ("REDIS_CACHE_URL", REDIS_CACHE_URL))}
except InvalidRedisURL as exc:
    raise environ.ImproperlyConfigured(str(exc)) from None

# The seed's client settings: keep-alive and a health check every 30 s, 10 s to
# connect, 3 retries with backoff on connection errors. redis-py opens
# connections lazily, on first command.
REDIS_CLIENT_KWARGS = {
    "socket_keepalive": True,
    "health_check_interval": 30,
    "socket_connect_timeout": 10,
    "retry": Retry(ExponentialBackoff(cap=2, base=0.1), 3),
    "retry_on_error": [RedisConnectionError, RedisTimeoutError],
}
# Through Sentinel a command that meets a dead master keeps retrying (asking the sentinels
# for the master before each new connection) for about this long, so a failover is ridden
# through instead of failing the request or the job. Set it above the sentinels'
# down-after-milliseconds plus the failover itself (docs/deployment.md, "Redis Sentinel").
REDIS_SENTINEL_FOLLOW_SECONDS = env.float("REDIS_SENTINEL_FOLLOW_SECONDS", default=15.0)
REDIS_SENTINEL_CLIENT_KWARGS = {
    **REDIS_CLIENT_KWARGS,
    "retry": Retry(ExponentialBackoff(cap=2, base=0.1), retries_covering(REDIS_SENTINEL_FOLLOW_SECONDS)),
    "connection_class": SentinelFollowingConnection,
}


def _client_kwargs(address) -> dict:
    return REDIS_SENTINEL_CLIENT_KWARGS if address.is_sentinel else REDIS_CLIENT_KWARGS


# No code of the platform uses Django's cache today (its caches are in waplatform/redis.py's
# cache Redis); it is configured so that whatever does lands on the cache Redis too. A list,
# not a string: Django splits a LOCATION string on commas, which a Sentinel URL contains.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": [REDIS_CACHE_URL],
        "KEY_PREFIX": "wap",
        "OPTIONS": {
            "pool_class": "waplatform.redis_cache.ConnectionPool",
            "socket_keepalive": True,
            "health_check_interval": 30,
            "socket_connect_timeout": 10,
        },
    }
}

# --- queues (django-rq) ---------------------------------------------------
QUEUE_NAMES = ["high", "medium", "low", "ai", "webhooks", "media", "maintenance"]
QUEUE_MAX_WAITING = env.int("QUEUE_MAX_WAITING", default=1000)
QUEUE_RETRY_AFTER_SECONDS = env.int("QUEUE_RETRY_AFTER_SECONDS", default=5)
RQ_QUEUES = {
    name: {
        **rq_queue_config(_REDIS_ADDRESSES["REDIS_QUEUES_URL"], _client_kwargs(_REDIS_ADDRESSES["REDIS_QUEUES_URL"])),
        "DEFAULT_TIMEOUT": 300,
        "REDIS_CLIENT_KWARGS": REDIS_CLIENT_KWARGS,
    }
    for name in QUEUE_NAMES
}
RQ_SHOW_ADMIN_LINK = True

# Worker processes per queue group: the seed's counts (26 workers, sized for a 16-core host)
# times WORKER_SCALE, rounded up, never below one. WORKER_SCALE defaults to the share of those
# 16 cores this machine has (capped at 1): 2 cores run 7 workers, not 26 (~60 MB each).
SEED_WORKER_CORES = 16
WORKER_COUNTS = {
    "high": env.int("WORKERS_HIGH", default=10),
    "medium": env.int("WORKERS_MEDIUM", default=5),
    "low": env.int("WORKERS_LOW", default=2),
    "ai": env.int("WORKERS_AI", default=3),
    "webhooks": env.int("WORKERS_WEBHOOKS", default=5),
    # Media downloads and uploads are slow and large: their own workers, so a burst
    # of voice notes never waits behind (or holds up) sends and webhooks.
    "media": env.int("WORKERS_MEDIA", default=2),
    "maintenance": env.int("WORKERS_MAINTENANCE", default=1),
}
WORKER_SCALE = env.float("WORKER_SCALE", default=min(1.0, (os.cpu_count() or 1) / SEED_WORKER_CORES))

# What the launcher starts on this host (waplatform/roles.py; docs/deployment.md "Roles"):
# unset is every role, the whole platform on one machine.
WAP_ROLES = env("WAP_ROLES", default="")
# This host's name: the bridges it starts are recorded under it and only it checks or stops
# their processes; its bridges role serves the `bridges@<WAP_HOST>` queue (pooling.hosts).
WAP_HOST = env("WAP_HOST", default="") or socket.gethostname()
RQ_QUEUES[f"bridges@{WAP_HOST}"] = dict(RQ_QUEUES["maintenance"])
# daphne processes the `web` role runs, on PORT, PORT+1, ... (nginx's WEB_UPSTREAMS lists them).
WEB_PROCESSES = max(1, env.int("WEB_PROCESSES", default=os.cpu_count() or 1))
# The scheduler's Redis lease (waplatform/scheduler_lease.py): one scheduler of several
# enqueues; a standby takes over at most this long after the holder stops renewing.
SCHEDULER_LEASE_SECONDS = env.float("SCHEDULER_LEASE_SECONDS", default=30)
# A worker past this RSS is replaced after its current job (the seed's PM2 restart).
WORKER_MAX_MEMORY_MB = env.int("WORKER_MAX_MEMORY_MB", default=512)

# /readyz answers 503 once the scheduler's heartbeat (every 30 s) is older than
# this; never-seen heartbeats do not count (docs/operations.md, "Probes").
SCHEDULER_HEARTBEAT_STALE_SECONDS = env.float("SCHEDULER_HEARTBEAT_STALE_SECONDS", default=90)

# --- channels -------------------------------------------------------------
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [channels_host(_REDIS_ADDRESSES["REDIS_CHANNELS_URL"],
                                           follow_seconds=REDIS_SENTINEL_FOLLOW_SECONDS)]},
    }
}

# --- REST API -------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.authentication.ApiKeyAuthentication",
        "tenants.authentication.MemberSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.permissions.IsTenantMember"],
    "DEFAULT_THROTTLE_CLASSES": ["tenants.throttling.TierRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "waplatform.api_schema.PlatformAutoSchema",
    "EXCEPTION_HANDLER": "waplatform.api_errors.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "waplatform.parsers.LimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "WA Platform API",
    "DESCRIPTION": "Multi-tenant WhatsApp messaging: sessions, messages, agents, webhooks.",
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
    "PREPROCESSING_HOOKS": ["waplatform.api_schema.public_endpoints_only"],
    # Operations are tagged by waplatform.api_schema.TAG_BY_SEGMENT; this is their order and blurb.
    "TAGS": [
        {"name": "tenant", "description": "The calling tenant: identity, limits, API keys, usage."},
        {"name": "session", "description": "The tenant's WhatsApp session: start, QR code, stop, log out."},
        {"name": "messages", "description": "Send messages and read them back."},
        {"name": "conversations", "description": "Conversations with contacts, and their messages."},
        {"name": "webhooks", "description": "Endpoints that receive signed events, and their deliveries."},
        {"name": "agents", "description": "AI agents, their triggers and knowledge, and hand-off."},
        {"name": "media", "description": "Media files sent and received."},
        {"name": "staff", "description": "Operators only: staff users (session or HTTP Basic), not API keys."},
    ],
    # Swagger UI keeps the key across page reloads.
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True},
    # The {code, detail} error answers every operation can give (waplatform/openapi.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "waplatform.openapi.add_error_responses",
    ],
}
# Resolved API keys (with tenant and tier) kept per process (tenants/key_cache.py, docs/security.md
# "API key cache"): any change to a key, tenant or tier drops every process's copies at once through
# a version stamp in the cache Redis; this is only the bound should that stamp be lost. 0: no cache.
API_KEY_CACHE_SECONDS = env.float("API_KEY_CACHE_SECONDS", default=60.0)
API_KEY_CACHE_SIZE = env.int("API_KEY_CACHE_SIZE", default=10_000)
# Each tenant's active webhook endpoints, kept per process the same way (messaging/webhooks_out.py,
# docs/webhooks.md): every event asks, and most tenants have none.
WEBHOOK_ENDPOINT_CACHE_SECONDS = env.float("WEBHOOK_ENDPOINT_CACHE_SECONDS", default=60.0)
WEBHOOK_ENDPOINT_CACHE_SIZE = env.int("WEBHOOK_ENDPOINT_CACHE_SIZE", default=20_000)
# Which tenant a slot's session name belongs to, for the bridges' webhooks (pooling/webhook_routes.py,
# docs/pools.md): dropped everywhere when a tenant, session or assignment is deleted.
WEBHOOK_ROUTE_CACHE_SECONDS = env.float("WEBHOOK_ROUTE_CACHE_SECONDS", default=300.0)
WEBHOOK_ROUTE_CACHE_SIZE = env.int("WEBHOOK_ROUTE_CACHE_SIZE", default=50_000)
# A plain Django view at /bench/bare (waplatform/bench_view.py): the `api` benchmark's floor for
# one request through the same middleware. Off in every deployment; the bench turns it on.
BENCH_BARE_VIEW = env.bool("BENCH_BARE_VIEW", default=False)

# --- inputs (docs/security.md "Inputs") ------------------------------------
# JSON bodies on the API and the bridge intake: deeper or larger is refused
# (400 / 413) before parsing. Django's own body limit is the same number.
API_JSON_MAX_DEPTH = env.int("API_JSON_MAX_DEPTH", default=32)
API_JSON_MAX_BYTES = env.int("API_JSON_MAX_BYTES", default=2_621_440)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_JSON_MAX_BYTES
# Signed bridge events older than this are replays (or too late to matter) and are
# refused. Messages and statuses: Meta redelivers a failed webhook for a while.
INTAKE_MAX_EVENT_AGE_SECONDS = env.int("INTAKE_MAX_EVENT_AGE_SECONDS", default=24 * 3600)
# Session state changes (WAHA session.status) go stale much sooner: WAHA's retries
# (exponential from 2 s, 10 attempts) are over in about 35 minutes.
INTAKE_MAX_STATE_AGE_SECONDS = env.int("INTAKE_MAX_STATE_AGE_SECONDS", default=3600)
# Events dated further ahead than this are refused too (a bridge's clock may run a little fast).
INTAKE_MAX_CLOCK_SKEW_SECONDS = env.int("INTAKE_MAX_CLOCK_SKEW_SECONDS", default=300)

# --- auth, i18n, static ---------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/admin/login/"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns per process when it is missing
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").exists() else []

# --- bridges --------------------------------------------------------------
CLOUD_API_BASE_URL = env("CLOUD_API_BASE_URL", default="https://graph.facebook.com/v21.0")
CLOUD_API_APP_SECRET = env("CLOUD_API_APP_SECRET", default="")
CLOUD_API_VERIFY_TOKEN = env("CLOUD_API_VERIFY_TOKEN", default="")
SANDBOX_AUTO_SCAN_SECONDS = env.float("SANDBOX_AUTO_SCAN_SECONDS", default=3)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
# rq logs every job start, result and cron tick at INFO: thousands of lines an hour that bury
# the ones that matter. Its workers and scheduler log at this level (INFO to watch jobs go by).
RQ_LOG_LEVEL = env("RQ_LOG_LEVEL", default="WARNING").upper()
LOGGING["loggers"]["rq"] = {"level": RQ_LOG_LEVEL}
# httpx logs every request at INFO, so each bridge health ping (every slot, every 30 s) made a line.
LOGGING["loggers"]["httpx"] = {"level": "WARNING"}

# COMMIT_MODE auto: django-rq's own on-commit deferral would hide the job (and
# the queue-cap refusal) from the caller; waplatform.queues.enqueue_on_commit
# is the one place that defers, and plain enqueue means "now".
RQ = {"WORKER_CLASS": "waplatform.workers.PlatformWorker", "COMMIT_MODE": "auto"}

# --- events: the transactional outbox (waplatform/events.py, waplatform/outbox.py) ---
# Hand each event to the subscribers right after commit in the publishing process;
# off, the relay (a maintenance job woken per commit) does all the fan-out.
EVENTS_INLINE_DELIVERY = env.bool("EVENTS_INLINE_DELIVERY", default=True)
# The relay leaves a fresh event to the fast path for this long before taking it over.
OUTBOX_RELAY_GRACE_SECONDS = env.float("OUTBOX_RELAY_GRACE_SECONDS", default=5)
OUTBOX_RETRY_BASE_SECONDS = env.float("OUTBOX_RETRY_BASE_SECONDS", default=2)
OUTBOX_RETRY_MAX_DELAY_SECONDS = env.float("OUTBOX_RETRY_MAX_DELAY_SECONDS", default=300)
OUTBOX_BATCH_SIZE = env.int("OUTBOX_BATCH_SIZE", default=500)
OUTBOX_RELAY_TIME_BUDGET_SECONDS = env.float("OUTBOX_RELAY_TIME_BUDGET_SECONDS", default=20)
OUTBOX_RETENTION_HOURS = env.float("OUTBOX_RETENTION_HOURS", default=24)
# How long a wake-up of the relay stands for "a relay job is on its way" (later commits enqueue no other).
OUTBOX_WAKE_FLAG_SECONDS = env.float("OUTBOX_WAKE_FLAG_SECONDS", default=30)

# --- messaging (issue 5; docs/messaging.md, docs/webhooks.md) ---------------
# Send retries: exponential backoff with jitter on transient bridge errors.
MESSAGE_MAX_ATTEMPTS = env.int("MESSAGE_MAX_ATTEMPTS", default=8)
MESSAGE_RETRY_BASE_SECONDS = env.float("MESSAGE_RETRY_BASE_SECONDS", default=2.0)
MESSAGE_RETRY_MAX_DELAY_SECONDS = env.float("MESSAGE_RETRY_MAX_DELAY_SECONDS", default=300.0)
# While a slot is down/provisioning the message waits (not counted as an attempt), polling this often.
MESSAGE_SESSION_WAIT_SECONDS = env.float("MESSAGE_SESSION_WAIT_SECONDS", default=15.0)
# A message still undelivered this long after acceptance fails with code "expired".
MESSAGE_EXPIRE_AFTER_SECONDS = env.int("MESSAGE_EXPIRE_AFTER_SECONDS", default=24 * 3600)
# How long one job may hold a message in `sending` before another may take it over.
MESSAGE_SEND_LEASE_SECONDS = env.float("MESSAGE_SEND_LEASE_SECONDS", default=90.0)
# Imported by a worker pool's parent before it forks (waplatform/worker_preload.py): libraries a
# worker would otherwise import on its first job, and ("module:function") what it would build
# then and keep. "*": every pool.
WORKER_PRELOAD_MODULES = {
    "*": ["httpcore", "h11", "channels_redis.pubsub", "pooling.bridges._http:tls_context"],
    "ai": ["rank_bm25"],
}
# Batched sends (docs/messaging.md "Batched sends"): one job per lane of a tenant claims up to
# SEND_BATCH_SIZE due messages in one statement, sends them over one bridge client, records
# SEND_BATCH_RECORD_EVERY results per transaction, and re-enqueues itself after
# SEND_BATCH_SECONDS so the other tenants of its queue get their turn.
SEND_BATCH_SIZE = env.int("SEND_BATCH_SIZE", default=100)
# A tenant's sends run in this many lanes, a recipient always in the same one (contact id
# modulo lanes): one job at a time per lane, so a recipient's messages stay in order while a
# tenant's backlog uses that many workers of its queue.
SEND_BATCH_LANES = env.int("SEND_BATCH_LANES", default=2)
if SEND_BATCH_LANES < 1:
    raise environ.ImproperlyConfigured(f"SEND_BATCH_LANES must be 1 or more (1: one job at a time per tenant), "
                                       f"not {SEND_BATCH_LANES}")
SEND_BATCH_SECONDS = env.float("SEND_BATCH_SECONDS", default=5.0)
SEND_BATCH_RECORD_EVERY = env.int("SEND_BATCH_RECORD_EVERY", default=25)
# How long "a batch job is waiting for this tenant" holds back further enqueues.
SEND_BATCH_FLAG_SECONDS = env.float("SEND_BATCH_FLAG_SECONDS", default=60.0)
# The sweeper re-enqueues a `queued` message or an open webhook delivery this long past its due time.
SWEEP_STUCK_AFTER_SECONDS = env.float("SWEEP_STUCK_AFTER_SECONDS", default=60.0)
SWEEP_BATCH_SIZE = env.int("SWEEP_BATCH_SIZE", default=2000)
# Fast recovery (docs/operations.md, "Recovery in seconds"): how often a cron job looks for
# `sending` messages whose worker process died (their lease ends at once instead of after
# MESSAGE_SEND_LEASE_SECONDS), and for a Redis that lost its data (waplatform.redis_epoch).
ORPHAN_CHECK_SECONDS = env.int("ORPHAN_CHECK_SECONDS", default=5)
REDIS_EPOCH_CHECK_SECONDS = env.int("REDIS_EPOCH_CHECK_SECONDS", default=5)
# Enqueued on `maintenance` when Redis lost its data: each re-enqueues, from the database,
# the work whose jobs were only in Redis.
REDIS_LOSS_RECOVERY_JOBS = [
    "messaging.jobs.requeue_lost_jobs",
    "messaging.jobs.sweep_media",
    "agents.jobs.sweep",
    "mirror.jobs.sweep_backlog",
    "waplatform.jobs.relay_events",
    "pooling.jobs.run_health_checks",
]
PENDING_STATUS_TTL_SECONDS = env.int("PENDING_STATUS_TTL_SECONDS", default=3600)
MESSAGE_MAX_TEXT_LENGTH = 4096
# Pacing, per sending number (Redis): Cloud API 80 msg/s by default; bridge
# (WhatsApp Web) sessions at the tier's messages_per_second plus random jitter.
CLOUD_MESSAGES_PER_SECOND = env.float("CLOUD_MESSAGES_PER_SECOND", default=80.0)
PACING_BURST = env.int("PACING_BURST", default=5)
CLOUD_PACING_BURST = env.int("CLOUD_PACING_BURST", default=1)
# Meta's spam rate limit (131048): every send of the tenant waits this long, and an alert opens.
SPAM_PAUSE_SECONDS = env.int("SPAM_PAUSE_SECONDS", default=3600)
PACING_JITTER_SECONDS = env.float("PACING_JITTER_SECONDS", default=0.5)
PACING_INLINE_WAIT_SECONDS = env.float("PACING_INLINE_WAIT_SECONDS", default=0.5)
# Per-recipient pair limit (Meta error 131056): a burst, then one message per interval.
PAIR_BURST = env.int("PAIR_BURST", default=10)
PAIR_INTERVAL_SECONDS = env.float("PAIR_INTERVAL_SECONDS", default=1.0)
# USD per delivered message by Cloud API pricing category; bridge messages cost 0.
MESSAGE_PRICES = {
    "service": env("MESSAGE_PRICE_SERVICE", default="0"),
    "utility": env("MESSAGE_PRICE_UTILITY", default="0.004"),
    "marketing": env("MESSAGE_PRICE_MARKETING", default="0.025"),
    "authentication": env("MESSAGE_PRICE_AUTHENTICATION", default="0.0035"),
}
# Webhooks out.
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=10.0)
WEBHOOK_RETRY_MAX_DELAY_SECONDS = env.float("WEBHOOK_RETRY_MAX_DELAY_SECONDS", default=3600.0)
WEBHOOK_RETRY_WINDOW_SECONDS = env.int("WEBHOOK_RETRY_WINDOW_SECONDS", default=24 * 3600)
WEBHOOK_DELIVERY_LEASE_SECONDS = env.float("WEBHOOK_DELIVERY_LEASE_SECONDS", default=60.0)

# --- media (issue 17; docs/media.md) ----------------------------------------------
# Where media bytes live: Django's storage API, the "media" alias of STORAGES below.
# "local" (default): the filesystem under MEDIA_ROOT; "s3": any S3-compatible store.
MEDIA_STORAGE = env("MEDIA_STORAGE", default="local")
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_S3_BUCKET = env("MEDIA_S3_BUCKET", default="")
MEDIA_S3_ENDPOINT_URL = env("MEDIA_S3_ENDPOINT_URL", default="")  # unset: AWS itself
MEDIA_S3_REGION = env("MEDIA_S3_REGION", default="us-east-1")
MEDIA_S3_ACCESS_KEY_ID = env("MEDIA_S3_ACCESS_KEY_ID", default="")
MEDIA_S3_SECRET_ACCESS_KEY = env("MEDIA_S3_SECRET_ACCESS_KEY", default="")
MEDIA_S3_PREFIX = env("MEDIA_S3_PREFIX", default="media/")
if MEDIA_STORAGE == "s3":
    if not MEDIA_S3_BUCKET:
        raise environ.ImproperlyConfigured("MEDIA_STORAGE=s3 needs MEDIA_S3_BUCKET")
    _media_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": MEDIA_S3_BUCKET, "endpoint_url": MEDIA_S3_ENDPOINT_URL or None,
            "region_name": MEDIA_S3_REGION, "access_key": MEDIA_S3_ACCESS_KEY_ID or None,
            "secret_key": MEDIA_S3_SECRET_ACCESS_KEY or None, "location": MEDIA_S3_PREFIX.strip("/"),
            # The platform serves the bytes itself (tenant-scoped, signed URLs): the bucket stays private.
            "default_acl": None, "querystring_auth": False,
            # Keys are content hashes: the same key always holds the same bytes.
            "file_overwrite": True,
        },
    }
elif MEDIA_STORAGE == "local":
    _media_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage",
                      "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": None}}
else:
    raise environ.ImproperlyConfigured(f"MEDIA_STORAGE must be local or s3, not {MEDIA_STORAGE!r}")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "media": _media_storage,
}
# Cap on any one file, inbound or uploaded, on top of WhatsApp's per-type limits (docs/media.md).
MEDIA_MAX_BYTES = env.int("MEDIA_MAX_BYTES", default=100 * 1024 * 1024)
# Inbound downloads: attempts (with backoff) before the media is marked failed.
MEDIA_FETCH_MAX_ATTEMPTS = env.int("MEDIA_FETCH_MAX_ATTEMPTS", default=6)
MEDIA_FETCH_RETRY_BASE_SECONDS = env.float("MEDIA_FETCH_RETRY_BASE_SECONDS", default=5.0)
MEDIA_FETCH_RETRY_MAX_DELAY_SECONDS = env.float("MEDIA_FETCH_RETRY_MAX_DELAY_SECONDS", default=600.0)
MEDIA_FETCH_TIMEOUT_SECONDS = env.float("MEDIA_FETCH_TIMEOUT_SECONDS", default=60.0)
# Signed download links in payloads and webhooks (media.url): valid this long, at least.
MEDIA_URL_TTL_SECONDS = env.int("MEDIA_URL_TTL_SECONDS", default=7 * 24 * 3600)
# Days media is kept, per tier name (then deleted by the hourly cleanup); other tiers: the default.
MEDIA_RETENTION_DAYS = {
    "standard": env.int("MEDIA_RETENTION_DAYS_STANDARD", default=30),
    "professional": env.int("MEDIA_RETENTION_DAYS_PROFESSIONAL", default=90),
    "enterprise": env.int("MEDIA_RETENTION_DAYS_ENTERPRISE", default=365),
}
MEDIA_RETENTION_DEFAULT_DAYS = env.int("MEDIA_RETENTION_DEFAULT_DAYS", default=30)
# USD per GB-month stored, counted in the tenant's cost ("media").
MEDIA_PRICE_PER_GB_MONTH = env("MEDIA_PRICE_PER_GB_MONTH", default="0.023")
# How a WAHA bridge gets outbound media: "data" (the bytes, base64, in the send call) or
# "url" (a signed PUBLIC_BASE_URL link it downloads; the bridge must reach PUBLIC_BASE_URL).
MEDIA_WAHA_SEND_MODE = env("MEDIA_WAHA_SEND_MODE", default="data")
MEDIA_THUMBNAIL_PIXELS = env.int("MEDIA_THUMBNAIL_PIXELS", default=320)

# --- egress: URLs the platform calls for a tenant (waplatform/egress.py, docs/security.md) ---
# On: tenant URLs may reach private, loopback and link-local addresses (development only).
# WEBHOOK_ALLOW_PRIVATE_URLS is the deprecated name, still read when the new one is unset.
EGRESS_ALLOW_PRIVATE_URLS = env.bool(
    "EGRESS_ALLOW_PRIVATE_URLS", default=env.bool("WEBHOOK_ALLOW_PRIVATE_URLS", default=DEBUG))
# CIDRs the operator trusts although they are private (e.g. an internal LLM gateway).
EGRESS_ALLOWED_NETWORKS = env.list("EGRESS_ALLOWED_NETWORKS", default=[])
EGRESS_MAX_RESPONSE_BYTES = env.int("EGRESS_MAX_RESPONSE_BYTES", default=2 * 1024 * 1024)
EGRESS_TOTAL_TIMEOUT_SECONDS = env.float("EGRESS_TOTAL_TIMEOUT_SECONDS", default=60.0)
# (host, port) -> [addresses]; every guarded connection resolves through it, once.
EGRESS_RESOLVER = env("EGRESS_RESOLVER", default="waplatform.egress.resolve_system")

# --- pools ----------------------------------------------------------------
POOL_PROVISIONER = env("POOL_PROVISIONER", default="local")  # local | static
POOL_LOCAL_MIN_FREE_MB = env.int("POOL_LOCAL_MIN_FREE_MB", default=512)
# The address this host's sandbox bridges listen on and are reached at by the other hosts
# (workers send through them): loopback on one machine, the host's private address past it.
BRIDGE_BIND_HOST = env("BRIDGE_BIND_HOST", default="127.0.0.1")
# A bridges role beats every BRIDGE_HOST_BEAT_SECONDS; a host not heard from for
# BRIDGE_HOST_TTL_SECONDS is gone: its slots go down and their tenants fail over.
BRIDGE_HOST_BEAT_SECONDS = env.float("BRIDGE_HOST_BEAT_SECONDS", default=5)
BRIDGE_HOST_TTL_SECONDS = env.float("BRIDGE_HOST_TTL_SECONDS", default=30)
POOL_PROVISION_TIMEOUT_SECONDS = env.float("POOL_PROVISION_TIMEOUT_SECONDS", default=20)
POOL_PROVISION_MAX_ATTEMPTS = env.int("POOL_PROVISION_MAX_ATTEMPTS", default=3)
POOL_HEALTH_FAILURES_BEFORE_DOWN = env.int("POOL_HEALTH_FAILURES_BEFORE_DOWN", default=3)
POOL_HEALTH_TIMEOUT_SECONDS = env.float("POOL_HEALTH_TIMEOUT_SECONDS", default=3)
POOL_SESSION_START_TIMEOUT_SECONDS = env.int("POOL_SESSION_START_TIMEOUT_SECONDS", default=120)
POOL_SESSION_IDLE_HOURS = env.float("POOL_SESSION_IDLE_HOURS", default=36)
POOL_WARM_SPARE_ABOVE = env.float("POOL_WARM_SPARE_ABOVE", default=0.8)
POOL_PACK_BELOW = env.float("POOL_PACK_BELOW", default=0.3)

# --- operations: metrics and alerts ----------------------------------------
METRICS_TOKEN = env("METRICS_TOKEN", default="")  # set it when /metrics is reachable from outside
ALERT_PROCESS_MEMORY_MB = env.int("ALERT_PROCESS_MEMORY_MB", default=3584)
ALERT_QUEUE_WAITING = env.int("ALERT_QUEUE_WAITING", default=1000)
ALERT_POOL_UTILISATION = env.float("ALERT_POOL_UTILISATION", default=0.9)
ALERT_WEBHOOK_URL = env("ALERT_WEBHOOK_URL", default="")

# --- agents (issue 6; docs/agents.md) ----------------------------------------
# Inbound messages closer together than this get one reply (the last one's job answers them all).
AGENTS_DEBOUNCE_SECONDS = env.float("AGENTS_DEBOUNCE_SECONDS", default=2.0)
# A person's outbound message (API, inbox, phone) pauses automation in that conversation.
AGENTS_PAUSE_ON_MANUAL_REPLY = env.bool("AGENTS_PAUSE_ON_MANUAL_REPLY", default=True)
AGENTS_MANUAL_PAUSE_SECONDS = env.int("AGENTS_MANUAL_PAUSE_SECONDS", default=30 * 60)
AGENTS_CONTEXT_MESSAGES = env.int("AGENTS_CONTEXT_MESSAGES", default=20)
AGENTS_KB_CONFIDENCE_THRESHOLD = env.float("AGENTS_KB_CONFIDENCE_THRESHOLD", default=0.35)
AGENTS_FALLBACK_TEXT = env("AGENTS_FALLBACK_TEXT",
                           default="Sorry, I don't have an answer for that. A colleague will get back to you.")
AGENTS_ANSWER_GROUPS = env.bool("AGENTS_ANSWER_GROUPS", default=False)
# Loop guard: at most this many automated replies per conversation per minute.
AGENTS_MAX_REPLIES_PER_MINUTE = env.int("AGENTS_MAX_REPLIES_PER_MINUTE", default=6)
# Tenant regex triggers: time limit per pattern and message; past it the trigger is disabled.
AGENTS_PATTERN_TIMEOUT_MS = env.int("AGENTS_PATTERN_TIMEOUT_MS", default=50)
# The agents sweep (agents.jobs.sweep, every 15 s): an inbound message still unanswered this long
# after its debounced job was due is answered again (a job lost with Redis or a killed worker);
# older than AGENTS_RESUME_MAX_AGE_SECONDS it is left alone (a late answer to a stale question,
# e.g. after a suspension, does more harm than none).
AGENTS_SWEEP_GRACE_SECONDS = env.float("AGENTS_SWEEP_GRACE_SECONDS", default=10.0)
AGENTS_SWEEP_BATCH = env.int("AGENTS_SWEEP_BATCH", default=200)
AGENTS_RESUME_MAX_AGE_SECONDS = env.int("AGENTS_RESUME_MAX_AGE_SECONDS", default=30 * 60)
AGENTS_TRIGGER_CACHE_SECONDS = env.int("AGENTS_TRIGGER_CACHE_SECONDS", default=24 * 3600)
AGENTS_RESPONSE_CACHE_SECONDS = env.int("AGENTS_RESPONSE_CACHE_SECONDS", default=3600)
# LLM agents: any OpenAI-compatible /chat/completions. Agent fields win, then the tenant's
# agent config, then these. The key is read from the environment variable named here.
AGENTS_LLM_BASE_URL = env("AGENTS_LLM_BASE_URL", default="")
AGENTS_LLM_MODEL = env("AGENTS_LLM_MODEL", default="")
AGENTS_LLM_API_KEY_ENV = env("AGENTS_LLM_API_KEY_ENV", default="OPENAI_API_KEY")
AGENTS_LLM_DEFAULT_SYSTEM_PROMPT = env(
    "AGENTS_LLM_DEFAULT_SYSTEM_PROMPT",
    default="You answer a business's customers on WhatsApp. Be brief, friendly and accurate; "
            "if you do not know, say so and offer to connect them with a person.")
AGENTS_LLM_TIMEOUT_SECONDS = env.float("AGENTS_LLM_TIMEOUT_SECONDS", default=20.0)
AGENTS_LLM_MAX_ATTEMPTS = env.int("AGENTS_LLM_MAX_ATTEMPTS", default=3)
AGENTS_LLM_RETRY_BASE_SECONDS = env.float("AGENTS_LLM_RETRY_BASE_SECONDS", default=0.5)
# USD per 1,000 tokens, for agents.selectors.ai_cost_for_tenant (the tenant's "ai" cost).
AGENTS_LLM_PRICE_PER_1K_PROMPT_TOKENS = env("AGENTS_LLM_PRICE_PER_1K_PROMPT_TOKENS", default="0.0005")
AGENTS_LLM_PRICE_PER_1K_COMPLETION_TOKENS = env("AGENTS_LLM_PRICE_PER_1K_COMPLETION_TOKENS", default="0.0015")

# --- Firestore mirror (issue 8; docs/firestore.md) -------------------------------
# Unset = off: the event subscriber returns at once and nothing else runs.
FIRESTORE_PROJECT = env("FIRESTORE_PROJECT", default="")
FIRESTORE_DATABASE = env("FIRESTORE_DATABASE", default="(default)")
# host:port of an emulator; the Google client then needs no credentials.
FIRESTORE_EMULATOR_HOST = env("FIRESTORE_EMULATOR_HOST", default="")
FIRESTORE_TIMEOUT_SECONDS = env.float("FIRESTORE_TIMEOUT_SECONDS", default=10.0)
FIRESTORE_MIRROR_QUEUE = env("FIRESTORE_MIRROR_QUEUE", default="maintenance")
FIRESTORE_MIRROR_MAX_ATTEMPTS = env.int("FIRESTORE_MIRROR_MAX_ATTEMPTS", default=10)
FIRESTORE_MIRROR_RETRY_BASE_SECONDS = env.float("FIRESTORE_MIRROR_RETRY_BASE_SECONDS", default=2.0)
FIRESTORE_MIRROR_RETRY_MAX_DELAY_SECONDS = env.float("FIRESTORE_MIRROR_RETRY_MAX_DELAY_SECONDS", default=300.0)
# Service-account key that signs Firebase custom tokens (POST /api/v1/firebase/token).
FIREBASE_SERVICE_ACCOUNT_FILE = env("FIREBASE_SERVICE_ACCOUNT_FILE",
                                    default=env("GOOGLE_APPLICATION_CREDENTIALS", default=""))
if FIRESTORE_MIRROR_QUEUE not in QUEUE_NAMES:
    raise environ.ImproperlyConfigured(f"FIRESTORE_MIRROR_QUEUE must be one of {QUEUE_NAMES}")

# --- live inbox (issue 7; docs/inbox.md) -------------------------------------------
# Live WebSocket connections per tenant (the seed's 200 listeners); one more is closed with 4429.
INBOX_MAX_CONNECTIONS_PER_TENANT = env.int("INBOX_MAX_CONNECTIONS_PER_TENANT", default=200)
# A connection counts toward the cap for this long after its last renewal; its consumer renews
# it every third of that, so a daphne that died stops counting within this time.
INBOX_CONNECTION_LEASE_SECONDS = env.float("INBOX_CONNECTION_LEASE_SECONDS", default=90.0)
# How far back the inbox searches message text (icontains scans; the bound keeps it cheap).
INBOX_SEARCH_DAYS = env.int("INBOX_SEARCH_DAYS", default=365)
# whitenoise serves STATIC_ROOT (collectstatic, run by the launcher); with finders it serves
# the apps' static folders directly, for development and the browser tests.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=DEBUG)
WHITENOISE_AUTOREFRESH = WHITENOISE_USE_FINDERS

# --- credentials (issue 13; docs/security.md, "Credentials") --------------------------
# `seed_demo` seeds a new database (no user, no tenant) with demo users and tenants; false: never.
DEMO = env.bool("DEMO", default=True)
# Failed sign-ins (admin, inbox) per client address: past the limit, every sign-in from that
# address answers 429 until the window (started by the first failure) ends.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=900)
# Likewise for unknown or revoked API keys (REST and WebSocket).
API_KEY_FAILURE_LIMIT = env.int("API_KEY_FAILURE_LIMIT", default=20)
API_KEY_FAILURE_WINDOW_SECONDS = env.int("API_KEY_FAILURE_WINDOW_SECONDS", default=300)
# POST /api/v1/ws-ticket: how long a WebSocket ticket may wait for its one connection.
WS_TICKET_SECONDS = env.int("WS_TICKET_SECONDS", default=30)
