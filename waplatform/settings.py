"""Settings, all from the environment (django-environ).

With no environment at all the platform runs on one machine: SQLite (WAL)
under var/, the embedded Redis the launcher starts, DEBUG off, and a secret
key generated once into var/secret_key (untracked).
"""

import base64
import os
import secrets
from pathlib import Path

import environ
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

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
    "daphne",
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
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- redis ----------------------------------------------------------------
EMBEDDED_REDIS_PORT = env.int("EMBEDDED_REDIS_PORT", default=6390)
REDIS_URL = env("REDIS_URL", default=f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0")

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

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "wap",
        "OPTIONS": {
            "socket_keepalive": True,
            "health_check_interval": 30,
            "socket_connect_timeout": 10,
        },
    }
}

# --- queues (django-rq) ---------------------------------------------------
QUEUE_NAMES = ["high", "medium", "low", "ai", "webhooks", "maintenance"]
QUEUE_MAX_WAITING = env.int("QUEUE_MAX_WAITING", default=1000)
QUEUE_RETRY_AFTER_SECONDS = env.int("QUEUE_RETRY_AFTER_SECONDS", default=5)
RQ_QUEUES = {
    name: {
        "URL": REDIS_URL,
        "DEFAULT_TIMEOUT": 300,
        "REDIS_CLIENT_KWARGS": REDIS_CLIENT_KWARGS,
    }
    for name in QUEUE_NAMES
}
RQ_SHOW_ADMIN_LINK = True

# Worker processes per queue group. The seed's counts; WORKER_SCALE shrinks
# them all for small machines (0.25 on a 2-core laptop), never below one.
WORKER_COUNTS = {
    "high": env.int("WORKERS_HIGH", default=10),
    "medium": env.int("WORKERS_MEDIUM", default=5),
    "low": env.int("WORKERS_LOW", default=2),
    "ai": env.int("WORKERS_AI", default=3),
    "webhooks": env.int("WORKERS_WEBHOOKS", default=5),
    "maintenance": env.int("WORKERS_MAINTENANCE", default=1),
}
WORKER_SCALE = env.float("WORKER_SCALE", default=1.0)

# What the launcher starts on this host (waplatform/roles.py; docs/deployment.md "Roles"):
# unset is every role, the whole platform on one machine.
WAP_ROLES = env("WAP_ROLES", default="")
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
        "CONFIG": {"hosts": [REDIS_URL]},
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
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "waplatform.api_errors.exception_handler",
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
}

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
# The sweeper re-enqueues a `queued` message or an open webhook delivery this long past its due time.
SWEEP_STUCK_AFTER_SECONDS = env.float("SWEEP_STUCK_AFTER_SECONDS", default=60.0)
SWEEP_BATCH_SIZE = env.int("SWEEP_BATCH_SIZE", default=2000)
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
# whitenoise serves STATIC_ROOT (collectstatic, run by the launcher); with finders it serves
# the apps' static folders directly, for development and the browser tests.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=DEBUG)
WHITENOISE_AUTOREFRESH = WHITENOISE_USE_FINDERS
