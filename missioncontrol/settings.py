"""Settings come from the environment only; nothing secret is committed.

With no DATABASE_URL the project runs on an embedded SQLite file and a
broker that needs no server, so a newcomer can start everything with one
command. Production sets DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL.
"""

import os
from pathlib import Path

import dj_database_url
from django.utils.csp import CSP

from missioncontrol.observability import logs as observability_logs

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("MISSIONCONTROL_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG:
        # Only a development server may run without a configured key.
        SECRET_KEY = "insecure-development-key-" + "x" * 40
    else:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("SECRET_KEY must be set in the environment when DEBUG is off.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "planning",
    "retries",
    "missioncontrol.api",
    "missioncontrol.web",
    "missioncontrol.observability",
    "missioncontrol.alerts",
]

MIDDLEWARE = [
    # Outermost: request id, one log line and the latency of every request.
    "missioncontrol.observability.middleware.RequestObservabilityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    # Refuses what no view can handle (too long, too large, bad charset, NUL,
    # lone surrogates) and keeps every /api/ error in the JSON shape.
    "missioncontrol.middleware.InputHygieneMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "missioncontrol.middleware.NoStoreForLoggedInMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

if not DEBUG:
    # Production serves the collected static files itself; a DEBUG run uses
    # the staticfiles app (runserver, live_server) and needs no collectstatic.
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
        "whitenoise.middleware.WhiteNoiseMiddleware",
    )

ROOT_URLCONF = "missioncontrol.urls"
WSGI_APPLICATION = "missioncontrol.wsgi.application"

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

_sqlite_path = VAR_DIR / "missioncontrol.sqlite3"
if not os.environ.get("DATABASE_URL") or not os.environ.get("CELERY_BROKER_URL"):
    # The embedded default keeps its SQLite files here; a fresh checkout has no var/ yet.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{_sqlite_path}",
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "0")),
    )
}
# PostgreSQL: parameters bound on the server, and a statement prepared once it
# ran DATABASE_PREPARE_THRESHOLD times on a connection (default 5; "off" for
# client-side binding, e.g. behind PgBouncer in transaction mode). Measured
# in docs/performance.md: +15 % report pairs, +40 % heartbeats. Every raw
# statement casts its parameters (missioncontrol/db.py,
# retries/services/heartbeats.py), as server-side binding needs.
DEFAULT_PREPARE_THRESHOLD = "5"


def prepare_options(threshold: str) -> dict:
    """The connection OPTIONS for a DATABASE_PREPARE_THRESHOLD value (the
    benchmark's cases switch to the product's after seeding with "off")."""
    threshold = threshold.strip().lower()
    if threshold in ("off", "none", ""):
        return {"server_side_binding": False, "prepare_threshold": None}
    return {"server_side_binding": True, "prepare_threshold": int(threshold)}


if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        prepare_options(os.environ.get("DATABASE_PREPARE_THRESHOLD", DEFAULT_PREPARE_THRESHOLD))
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so two writers queue instead of
    # failing with "database is locked" half-way through a transition.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "board"
LOGOUT_REDIRECT_URL = "login"

# Security: strict by default; a plain-HTTP development run opts out with DEBUG.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Content-Security-Policy on every page: scripts, styles, images and
# connections from this origin only, no inline script or style, no eval
# (the dashboard sets htmx's allowEval and includeIndicatorStyles off), no
# framing, forms post only here. The API docs page relaxes style-src alone
# (missioncontrol/api/views.py).
SECURE_CSP = {
    "default-src": [CSP.NONE],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "manifest-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}
CSRF_FAILURE_VIEW = "missioncontrol.errorpages.csrf_failure"

# Request limits (README, "Limits"; the hostile-input suite in tests/hostile/).
# The largest body the contract allows is a batch of 500 native-run reports
# at their maximum field lengths: about 32.4 MB of UTF-8 JSON even when every
# character of every text field is written as a six-byte \u00XX escape
# (tests/hostile/test_limits.py computes it from the serializer). 40 MiB
# admits it with a margin; a larger body is a 413 before it is read.
DATA_UPLOAD_MAX_MEMORY_SIZE = 40 * 1024 * 1024
# Path and query string together, as sent. gunicorn.conf.py lets longer
# request lines through to Django, which answers 414 in the API's shape.
REQUEST_MAX_URL_BYTES = 4096
# Arrays and objects in a JSON body (missioncontrol.api.parsers); task params
# may nest 32 levels themselves.
API_MAX_JSON_DEPTH = 64

# How long a process trusts what it read of an API token (its user, roles
# and executor grants; missioncontrol/api/authentication.py). Changes made in
# the same process apply at once; another process sees them within this time.
API_AUTH_CACHE_SECONDS = float(os.environ.get("API_AUTH_CACHE_SECONDS", "5"))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "missioncontrol.api.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PARSER_CLASSES": ["missioncontrol.api.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "missioncontrol.api.errors.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "missioncontrol.api.pagination.ApiPagination",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Mission Control API",
    "DESCRIPTION": "Planning tasks, attempts and native runs, with safe reruns.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "missioncontrol.api.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "TaskStatusEnum": "planning.models.PlanningTask.Status",
        "PlanStatusEnum": "planning.models.Plan.Status",
        "AttemptStatusEnum": "retries.models.Attempt.Status",
        "AttemptKindEnum": "retries.models.Attempt.Kind",
        "NativeRunStatusEnum": "retries.models.NativeRun.Status",
        "BindingStateEnum": "retries.models.NativeRun.Binding",
        "AgentKindEnum": "planning.models.Agent.Kind",
        "ExecutorEnum": "planning.models.Procedure.Executor",
        "AlertEventEnum": "missioncontrol.alerts.events.ALERT_EVENTS",
        "WebhookFormatEnum": "missioncontrol.alerts.models.WebhookSubscription.Format",
        "DeliveryStateEnum": "missioncontrol.alerts.models.WebhookDelivery.State",
    },
}

# Celery. The embedded default is kombu's SQLAlchemy transport on a SQLite file:
# durable, shared by every local process, and no server to install.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", f"sqla+sqlite:///{VAR_DIR / 'broker.sqlite3'}")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# Lose nothing: a message is acknowledged only after its task finished, and a
# worker that dies mid-task gives the message back to the queue.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis and SQS redeliver an unacknowledged message after the visibility
# timeout, which must exceed the longest task. The SQLAlchemy transport hands
# its options to create_engine(), which refuses this one.
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {} if CELERY_BROKER_URL.startswith(("sqla+", "sqlalchemy+")) else {"visibility_timeout": 3600}
)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
RECONCILE_INTERVAL_SECONDS = float(os.environ.get("RECONCILE_INTERVAL_SECONDS", "5"))
# A launch still pending this long after it was requested is sent again by
# reconciliation (retries/reconcile.py reads this setting).
RECONCILE_RELAUNCH_AFTER_SECONDS = float(os.environ.get("RECONCILE_RELAUNCH_AFTER_SECONDS", "60"))
CELERY_BEAT_SCHEDULE = {
    "reconcile": {
        "task": "retries.tasks.reconcile",
        "schedule": RECONCILE_INTERVAL_SECONDS,
        # A pass nobody ran in time is dropped, not queued up: the next one
        # does the same work (workers down for an hour must not find 720).
        "options": {"expires": max(RECONCILE_INTERVAL_SECONDS * 2, 10)},
    },
}
# The demo's old runtime that keeps reporting its failed run (refused every
# time); only `make run` turns it on, for the beat process.
if env_bool("DEMO_STALE_REPORTER", False):
    CELERY_BEAT_SCHEDULE["demo-stale-runtime"] = {"task": "retries.tasks.demo_stale_report", "schedule": 15.0}

# What the local executor's phases do. Off, every phase passes; on, they
# follow the demo's fault-injection task params (retries/demo/faults.py:
# fail_phase, stall_phase, phase_seconds, ...). On by default in development,
# which is what `make run` and `make test` run.
LOCAL_EXECUTOR_FAULTS = env_bool("LOCAL_EXECUTOR_FAULTS", DEBUG)
LOCAL_EXECUTOR_PHASES = (
    "retries.demo.faults.TaskParamFaults" if LOCAL_EXECUTOR_FAULTS else "retries.executors.local.PhaseBehaviour"
)

# A legacy report (no attempt id) whose created_at lies further in the future
# than this is refused as created_in_future (rule 2's clock skew).
# A heartbeat (a report that only says "still running") moves a run's
# liveness at most once per this interval; stall detection allows for it
# (retries/services/heartbeats.py).
HEARTBEAT_COALESCE_SECONDS = float(os.environ.get("HEARTBEAT_COALESCE_SECONDS", "5"))
REPORT_CLOCK_SKEW_SECONDS = float(os.environ.get("REPORT_CLOCK_SKEW_SECONDS", "300"))

HTTP_EXECUTOR_URL = os.environ.get("HTTP_EXECUTOR_URL", "")
HTTP_EXECUTOR_TOKEN = os.environ.get("HTTP_EXECUTOR_TOKEN", "")
HTTP_EXECUTOR_TIMEOUT = float(os.environ.get("HTTP_EXECUTOR_TIMEOUT", "5"))

IDEMPOTENCY_KEY_TTL_SECONDS = 24 * 3600

# Observability (docs/operations.md). Structured logs: JSON lines, or
# readable lines for a person at a terminal (the default with DEBUG).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "console" if DEBUG else "json")
LOGGING = observability_logs.configure(fmt=LOG_FORMAT, level=os.environ.get("LOG_LEVEL", "INFO"))

# Prometheus multiprocess mode: each process writes its counters here and
# GET /metrics sums them. Whoever starts web and worker wipes it first
# (make run does); it is created here if missing.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

# Alert webhooks (missioncontrol/alerts).
WEBHOOK_MAX_TRIES = int(os.environ.get("WEBHOOK_MAX_TRIES", "8"))
WEBHOOK_BACKOFF_SECONDS = float(os.environ.get("WEBHOOK_BACKOFF_SECONDS", "10"))
WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "5"))
WEBHOOKS_ALLOW_PRIVATE = env_bool("WEBHOOKS_ALLOW_PRIVATE", False)
CELERY_BEAT_SCHEDULE["webhook-sweep"] = {
    "task": "missioncontrol.alerts.tasks.sweep",
    "schedule": float(os.environ.get("WEBHOOK_SWEEP_SECONDS", "60")),
    "options": {"expires": 60},
}
