"""Settings for the VSM organization site.

One file, read from the environment. With nothing set, the project runs on the
*embedded default*: SQLite under ``var/``, the embedded SQLite Celery broker
(``vsmsite/broker.py``), Celery results in the database and an in-process
channel layer. ``DATABASE_URL`` switches to PostgreSQL; ``REDIS_URL`` switches
the Celery broker and the channel layer to Redis. docs/operations.md lists
every variable.
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from vsmsite.broker_paths import doorbell_directory

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# Runtime files of the embedded default (SQLite databases, broker) live here.
VAR_DIR = Path(env.str("VSM_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

# ---------------------------------------------------------------------------
# Core
# ---------------------------------------------------------------------------
# Off unless asked for: a debug page shows settings and tracebacks to whoever can reach the
# server, and rendering one can cost seconds of CPU. `make run` (devstack on a loopback
# address) turns it on for its processes; devstack refuses it on any other address.
DEBUG = env.bool("DJANGO_DEBUG", default=False)
# The embedded default is for a single operator's machine; production must set a key
# (`manage.py check --deploy` says so while it is this one).
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="insecure-embedded-default-change-me")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# ---------------------------------------------------------------------------
# HTTPS (production): DJANGO_HTTPS=true when users reach the site over HTTPS.
# https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/
# ---------------------------------------------------------------------------
HTTPS = env.bool("DJANGO_HTTPS", default=False)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
# Browsers remember HSTS for this long: start low (e.g. 3600) on a new domain, then raise it.
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31_536_000) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=HTTPS)
# Behind a proxy that ends TLS: trust its X-Forwarded-Proto (only if it always sets it),
# or every request looks like plain HTTP and SECURE_SSL_REDIRECT loops.
if env.bool("DJANGO_TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    # daphne first: its runserver serves HTTP and websockets through vsmsite/asgi.py.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_celery_beat",
    "django_celery_results",
    "channels",
    "organization",
    "ledger",
    "trials",
    "workers",
    # For project-wide management commands (beat_sync) that may import every app.
    "vsmsite",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outages answer 503 with Retry-After, and /api/ answers every error in JSON
    # (vsmsite/errors.py). Outside the others, to see their errors as well.
    "vsmsite.errors.ErrorsMiddleware",
    # Before anything reads the URL or the body: NULs (400) and oversized bodies (413).
    "vsmsite.api_input.InputGuardMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "vsmsite.urls"
WSGI_APPLICATION = "vsmsite.wsgi.application"
ASGI_APPLICATION = "vsmsite.asgi.application"

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

# ---------------------------------------------------------------------------
# Database
# https://docs.djangoproject.com/en/5.2/ref/databases/#sqlite-notes
# ---------------------------------------------------------------------------
_SQLITE_DEFAULT = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASES = {"default": env.db_url("DATABASE_URL", default=_SQLITE_DEFAULT)}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, beat) share the file: WAL lets readers run
    # beside the single writer, and IMMEDIATE transactions take the write lock at
    # BEGIN so two writers queue on busy_timeout instead of failing with
    # "database is locked" when a read lock would have to be upgraded.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests that start worker processes need a file database they can share.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Parameters travel beside the statement instead of being quoted into it in Python:
    # large JSON payloads (every envelope, every event) cost no client-side escaping.
    # https://docs.djangoproject.com/en/5.2/ref/databases/#server-side-parameters-binding
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True
    # A statement a connection has run this many times is prepared on the server and then
    # only bound and executed: a hop's statements (the claim, the head lock, the ledger
    # append) are the same text every time. Empty: never (a transaction-mode pooler older
    # than PgBouncer 1.21 cannot keep prepared statements). docs/operations.md, "Running on
    # PostgreSQL and Redis".
    _prepare = env.str("DATABASE_PREPARE_THRESHOLD", default="5").strip()
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = int(_prepare) if _prepare else None

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The web process (daphne) serves at most this many HTTP requests at once; the others
# wait their turn. Each holds one database connection while it runs and closes it when
# it ends (vsmsite/web.py), so the web process needs at most this many plus one.
# docs/operations.md, "The web process and database connections".
VSM_WEB_MAX_REQUESTS = env.int("VSM_WEB_MAX_REQUESTS", default=16)
# An outage (database or broker not answering) is a 503 telling clients to retry after
# this many seconds (vsmsite/errors.py).
VSM_RETRY_AFTER_SECONDS = env.int("VSM_RETRY_AFTER_SECONDS", default=5)

# ---------------------------------------------------------------------------
# Auth, i18n, static files
# ---------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Our own login page: the admin's accepts only staff, and viewers and operators are not staff
# (docs/operations.md, "Roles").
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
# whitenoise serves files straight from the finders (no collectstatic needed), DEBUG or not.
WHITENOISE_USE_FINDERS = True

# ---------------------------------------------------------------------------
# REST API
# ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Every API view names the permission each method needs (organization/access.py).
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "organization.access.RolePermission",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "organization.api_schema.StrictPageNumberPagination",
    "PAGE_SIZE": 50,
    # JSON only, bounded in size and depth (vsmsite/api_input.py); a form is a 415.
    "DEFAULT_PARSER_CLASSES": ["vsmsite.api_input.BoundedJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "vsmsite.api_input.JsonOnlyNegotiation",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# The largest request body read, API or form (Django's default, 2.5 MB): larger is a 413.
# https://docs.djangoproject.com/en/5.2/ref/settings/#data-upload-max-memory-size
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("VSM_MAX_REQUEST_BYTES", default=2_621_440)
SPECTACULAR_SETTINGS = {
    "TITLE": "VSM organization API",
    "DESCRIPTION": "Directives, nodes and signals of a recursive Viable System Model.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The machine is offline at run time: Swagger UI and ReDoc come from static files.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Every operation that needs a login may also answer 403 for a missing permission.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "organization.api_schema.document_forbidden",
    ],
}

# ---------------------------------------------------------------------------
# Celery
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
# ---------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")

# The embedded broker is a SQLite file of its own, apart from the application
# database, so broker polling never contends with application writes.
EMBEDDED_BROKER_PATH = VAR_DIR / "broker.sqlite3"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "embedded://localhost")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
# Celery's worker pool. On the embedded broker a worker runs its tasks in threads of one
# process: Celery drives a polling transport with its blocking prefork pool, whose processes
# share one queue lock, and a pool process killed while it holds it (idle ones wait on it)
# stalls the whole worker with its messages claimed (billiard#104, celery#2011). One process
# dies whole, and its claims are released (docs/operations.md, "Delivery guarantees").
# Elsewhere Celery's default (prefork, asynchronous on Redis). VSM_WORKER_POOL overrides.
_DEFAULT_POOL = "threads" if CELERY_BROKER_URL.startswith("embedded://") else "prefork"
CELERY_WORKER_POOL = env.str("VSM_WORKER_POOL", default=_DEFAULT_POOL)
if CELERY_BROKER_URL.startswith("embedded://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "database": str(Path(env.str("VSM_BROKER_PATH", default=str(EMBEDDED_BROKER_PATH)))),
        # Seconds between polls of an idle queue: the fallback, since a publish or an ack
        # wakes a waiting consumer at once (vsmsite/broker.py, its doorbells).
        "polling_interval": env.float("VSM_BROKER_POLLING_INTERVAL", default=0.01),
    }
elif CELERY_BROKER_URL.startswith("redis"):
    # Unacked messages come back after this many seconds if a worker vanished;
    # it must exceed the longest task (see CELERY_TASK_TIME_LIMIT).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("VSM_REDIS_VISIBILITY_TIMEOUT", default=3600),
        # Look for messages of vanished workers every N seconds (kombu's default
        # throttle would make that every 100 s).
        "unacked_restore_interval": env.int("VSM_REDIS_RESTORE_INTERVAL", default=10),
        "unacked_restore_throttle": 1,
    }

CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
# At-least-once delivery: a message is acknowledged after its task ran, and a
# worker that dies mid-task gets its message redelivered (handlers dedupe).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=30 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=25 * 60)
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Resource bargaining (docs/rules/bargaining.md): token and message budgets of an edge are per
# epoch of this many seconds, aligned to the Unix epoch (3600: the reference's hourly epochs).
# See docs/operations.md, "Resource budgets".
VSM_EPOCH_SECONDS = env.int("VSM_EPOCH_SECONDS", default=3600)
# "shared": every leaf listens on queue "leaves"; "per-node": leaf X on "leaf.X", so a
# machine can serve chosen leaves (docs/operations.md, "Queues").
VSM_LEAF_QUEUES = env.str("VSM_LEAF_QUEUES", default="shared")
if VSM_LEAF_QUEUES not in ("shared", "per-node"):
    raise ImproperlyConfigured('VSM_LEAF_QUEUES must be "shared" or "per-node"')
# The outbox sweeper (docs/operations.md, "Work waiting to be sent"): an envelope still
# unhandled this many seconds after it was committed (or last sent) is sent again.
VSM_OUTBOX_GRACE_SECONDS = env.int("VSM_OUTBOX_GRACE_SECONDS", default=60)
# A worker that consumes the controllers' queue runs the controller hop that a hop it ran
# sent next itself, up to this many in a row, instead of a round trip through the broker;
# 0 sends every hop through the broker (docs/operations.md, "Queues").
VSM_LOCAL_CONTROLLER_HOPS = env.int("VSM_LOCAL_CONTROLLER_HOPS", default=8)
if VSM_LOCAL_CONTROLLER_HOPS < 0:
    raise ImproperlyConfigured("VSM_LOCAL_CONTROLLER_HOPS must be 0 or more")
# A leaf that starts a task holds its envelope this long: no resend while the task may
# still be running (it is killed at the hard time limit), a resend soon after if it died.
VSM_LEAF_LEASE_SECONDS = CELERY_TASK_TIME_LIMIT + VSM_OUTBOX_GRACE_SECONDS
# Each task runs its provider and acceptance checks in <root>/<task id>.
VSM_WORKSPACE_ROOT = Path(env.str("VSM_WORKSPACE_ROOT", default=str(VAR_DIR / "workspaces")))
# Signs ledger checkpoints (`ledger_verify --checkpoint` / `--against`), at least 32
# characters. Kept outside the database on purpose, so that someone who can rewrite the whole
# chain cannot sign a checkpoint of the rewrite; no default (docs/operations.md, "Ledger
# checkpoints").
VSM_LEDGER_CHECKPOINT_KEY = env.str("VSM_LEDGER_CHECKPOINT_KEY", default="")

# ---------------------------------------------------------------------------
# The agent sandbox: `command` agents and acceptance verifiers run inside bubblewrap
# (docs/operations.md, "The agent sandbox"; workers/providers/sandbox.py).
# ---------------------------------------------------------------------------
# DANGEROUS. Where bubblewrap is missing or cannot create namespaces, command nodes and
# verifier commands are refused; true runs them as plain processes instead, able to read the
# worker's files (the database, the broker, var/), its environment through /proc, and to write
# anywhere the worker can. Only for a machine that runs nothing but trusted agents.
VSM_ALLOW_UNSANDBOXED_AGENTS = env.bool("VSM_ALLOW_UNSANDBOXED_AGENTS", default=False)
# Extra read-only paths an agent sees beside the system's /usr and /etc (a toolchain outside
# /usr, an agent CLI's install directory). Comma-separated absolute paths.
VSM_SANDBOX_READ_ONLY_PATHS = [
    Path(path) for path in env.list("VSM_SANDBOX_READ_ONLY_PATHS", default=[])
]


def _sqlite_files(name: object) -> list[Path]:
    if not name or str(name) == ":memory:":
        return []
    return [Path(f"{name}{suffix}") for suffix in ("", "-wal", "-shm", "-journal")]


# Never visible inside the sandbox, even under a read-only path above: the runtime directory
# (databases, broker, recordings, other tasks' workspaces), the SQLite files and the broker
# file and its doorbells wherever they are, and the project's .env. A task's own workspace
# is bound on top.
VSM_SANDBOX_HIDDEN_PATHS = [
    VAR_DIR,
    Path(VSM_WORKSPACE_ROOT),
    BASE_DIR / ".env",
    *(
        _sqlite_files(DATABASES["default"].get("NAME"))
        + _sqlite_files(DATABASES["default"].get("TEST", {}).get("NAME"))
        if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
        else []
    ),
    *_sqlite_files(CELERY_BROKER_TRANSPORT_OPTIONS.get("database")),
    # The broker's doorbells (its consumers' wake-up sockets, vsmsite/broker.py): beside
    # it, or under the temp dir when that path is too long for a socket address.
    *(
        [Path(doorbell_directory(str(CELERY_BROKER_TRANSPORT_OPTIONS["database"])))]
        if CELERY_BROKER_TRANSPORT_OPTIONS.get("database")
        else []
    ),
]

# ---------------------------------------------------------------------------
# Channels
# ---------------------------------------------------------------------------
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        # channels-redis waits for a channel's next message with a 5 s
                        # blocking pop (BZPOPMIN); redis-py's default 5 s socket timeout
                        # would end that wait first, and every idle websocket would crash
                        # and close with 1011. The socket waits longer than the pop.
                        # https://github.com/django/channels_redis (brpop_timeout)
                        "socket_timeout": 15,
                        "socket_connect_timeout": 5,
                    }
                ],
                # A crashed web process leaves its channels in the "ledger" group; they
                # collect bells until they expire, so let them expire soon.
                "group_expiry": 300,
            },
        }
    }
else:
    # In-process only: the ledger stays the stream's source of truth and
    # consumers poll it, so nothing is lost across processes.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# ---------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # One line per record: Django's own console handler would repeat what root prints.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.channels.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "INFO"},
        # "over capacity" for an abandoned channel is expected after a crash (see group_expiry).
        "channels_redis.core": {"level": "WARNING"},
    },
}
