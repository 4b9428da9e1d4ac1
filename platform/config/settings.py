"""OpenAisle settings: one module, driven by environment variables.

No variable set means *embedded mode*: SQLite in the project folder, Celery
tasks run in-process, a local cache. `DATABASE_URL` and `REDIS_URL` (or
`CELERY_BROKER_URL`) switch to PostgreSQL, Redis and real workers.
"""

from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

PROJECT_ROOT = Path(__file__).resolve().parents[2]

env = environ.Env()
# Where the embedded mode keeps its database and uploads, and the demo its log and the Stripe stand-in's data.
VAR_DIR = Path(env.str("VAR_DIR", default=str(PROJECT_ROOT / "var")))

DEBUG = env.bool("DEBUG", default=False)
EMBEDDED = "DATABASE_URL" not in env and "REDIS_URL" not in env
HTTPS = env.bool("HTTPS", default=False)
if HTTPS and "SECRET_KEY" not in env:
    raise ImproperlyConfigured("SECRET_KEY must be set when HTTPS is on (production).")
SECRET_KEY = env.str("SECRET_KEY", default="embedded-mode-insecure-key-set-SECRET_KEY-in-production")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "unfold",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "core",
    "tenants",
    "catalog",
    "stores",
    "ingest",
    "visits",
    "stock",
    "service_levels",
    "disputes",
    "billing.payments",
    "billing.webhooks",
    "billing.invoicing",
    "console",
]

MIDDLEWARE = [
    "core.metrics.RequestMetricsMiddleware",
    "core.middleware.RequestIdMiddleware",
    "core.middleware.RefuseNulCharactersMiddleware",
    "core.logs.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a sign-in refused while locked into the sign-in page saying why (core/login_throttle.py).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PROJECT_ROOT / "templates"],
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

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'openaisle.sqlite3'}"),
}
if "DATABASE_URL" not in env:
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # embedded mode keeps its database (and uploads) in the project folder
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Write-ahead logging (readers do not wait for the writer) and an fsync per checkpoint rather than per commit:
    # the embedded mode's many small transactions go several times faster; a power cut may lose the last ones,
    # never the file.
    DATABASES["default"].setdefault("OPTIONS", {})["init_command"] = (
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60 if not EMBEDDED else 0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if "DATABASE_REPLICA_URL" in env:
    # A streaming replica the consoles read from (core.replica); tests point it at the test database itself.
    DATABASES["replica"] = env.db("DATABASE_REPLICA_URL") | {
        "CONN_MAX_AGE": DATABASES["default"]["CONN_MAX_AGE"],
        "CONN_HEALTH_CHECKS": True,
        "TEST": {"MIRROR": "default"},
    }
DATABASE_ROUTERS = ["core.replica.ConsoleReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "core.cache.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Sign-in throttling on /admin/ and /ops/ (platform/core/login_throttle.py, django-axes): after LOGIN_FAILURE_LIMIT
# wrong passwords for a username from one address, that username is locked at that address for LOGIN_COOLOFF_MINUTES.
AUTHENTICATION_BACKENDS = ["core.login_throttle.LoginThrottleBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
# A visit whose exit never arrives (a gate that missed the shopper) is closed at its last event after this long with
# no event of its own, on the store's clock, and settled for a person to check (visits.settling). At most a day: a
# visit's events are read within a day of each other (ingest.validation.VISIT_SPAN).
VISIT_EXIT_TIMEOUT_MINUTES = env.int("VISIT_EXIT_TIMEOUT_MINUTES", default=240)
if not 15 <= VISIT_EXIT_TIMEOUT_MINUTES <= 24 * 60:
    raise ImproperlyConfigured("VISIT_EXIT_TIMEOUT_MINUTES must be from 15 to 1440 (a day).")
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "core.login_throttle.lockout_response"
AXES_CLIENT_IP_CALLABLE = "core.login_throttle.client_ip"
AXES_ENABLE_ADMIN = False  # the operators' own page lists the locks (tenants/admin.py)
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "password"]
# Proxies in front of the web processes that append to X-Forwarded-For (the TLS proxy: 1); 0 trusts no header.
LOGIN_PROXY_COUNT = env.int("LOGIN_PROXY_COUNT", default=0)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
FORMAT_MODULE_PATH = ["config.formats"]  # dates and times with their clock named (config/formats/en)
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=PROJECT_ROOT / "staticfiles")
# WhiteNoise serves static files from the web processes: the collected ones (the container image runs
# collectstatic) or, where nothing was collected (a laptop, the demo, the tests), straight from the apps.
WHITENOISE_USE_FINDERS = WHITENOISE_AUTOREFRESH = not Path(STATIC_ROOT).is_dir()
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")
# Object storage for every file kept (event streams, catalog files): with S3_BUCKET an S3-compatible store through
# django-storages, so that web processes and workers on different hosts share no disk; else the local MEDIA_ROOT.
S3_BUCKET = env.str("S3_BUCKET", default="")
S3_SECRET_ACCESS_KEY = env.str("S3_SECRET_ACCESS_KEY", default="")


def s3_storage(
    *, bucket: str, endpoint_url: str | None, region: str | None, key: str | None, secret: str | None
) -> dict:
    """The default storage on S3 (or a compatible store). Objects are bytes to us: no content type or encoding is
    guessed from a name (a `.gz` name would get `Content-Encoding: gzip`, and clients may inflate what they read)."""
    options = {"bucket_name": bucket, "endpoint_url": endpoint_url, "region_name": region, "access_key": key,
               "secret_key": secret, "file_overwrite": False, "default_acl": None,
               "object_parameters": {"ContentType": "application/octet-stream"}}  # fmt: skip
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}


if S3_BUCKET:
    STORAGES = {
        "default": s3_storage(
            bucket=S3_BUCKET,
            endpoint_url=env.str("S3_ENDPOINT_URL", default="") or None,
            region=env.str("S3_REGION", default="") or None,
            key=env.str("S3_ACCESS_KEY_ID", default="") or None,
            secret=S3_SECRET_ACCESS_KEY or None,
        ),
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="OpenAisle <no-reply@openaisle.local>")
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")

# Security: behind TLS in production (HTTPS=true), plain HTTP on a laptop.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
X_FRAME_OPTIONS = "DENY"

# Request bodies: JSON calls are small; uploads stream to storage (see ingest).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)
API_MAX_JSON_BYTES = env.int("API_MAX_JSON_BYTES", default=5 * 1024 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenants.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.authentication.HasActiveTenant"],
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.OrjsonParser"],
    "DEFAULT_RENDERER_CLASSES": ["core.api.renderers.OrjsonRenderer"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.PagePagination",
    "DEFAULT_THROTTLE_CLASSES": ["tenants.authentication.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": env.str("API_RATE_PER_KEY", default="6000/min")},
    "EXCEPTION_HANDLER": "core.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.DocstringSchema",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "OpenAisle licensee API",
    "DESCRIPTION": "The v1 API a licensee's systems use: stores, layouts, catalog, events, visits.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.add_error_responses",
    ],
}

# Celery: real workers when a broker is configured, in-process tasks otherwise.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
if CELERY_TASK_ALWAYS_EAGER:
    CELERY_BROKER_URL = "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=30 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=25 * 60)
CELERY_TASK_DEFAULT_QUEUE = "default"
# Workers on a host shared with the web processes (core/priority.py): "idle" runs them, and the PostgreSQL backends
# of their connections, only on CPU time the web leaves; "normal" keeps the class they were started with.
WORKER_CPU_CLASS = env.str("WORKER_CPU_CLASS", default="idle")
WORKER_DB_BACKEND_PRIORITY = env.bool("WORKER_DB_BACKEND_PRIORITY", default=True)
# An idle worker's cgroup (cpu.idle = 1), joined with its backends: idle against every other group, not only its own.
WORKER_CPU_CGROUP = env.str("WORKER_CPU_CGROUP", default="")
CELERY_TASK_ROUTES = {
    "webhooks.deliver": {"queue": "live"},  # core.tasks.LIVE_QUEUE: a delivery is a short call that people wait on
    "ingest.*": {"queue": "ingest"},
    "visits.*": {"queue": "visits"},
    "payments.*": {"queue": "payments"},
}
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 300}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False


def _every(task: str, seconds: float) -> dict[str, Any]:
    """A sweep every `seconds`, dropped unrun when the workers are more than that behind (the next one does the
    same work): a worker down for an hour otherwise comes back to a queue of the sweeps it missed."""
    return {"task": task, "schedule": seconds, "options": {"expires": seconds}}


CELERY_BEAT_SCHEDULE = {
    "resume-stalled-streams": _every("ingest.resume_stalled_streams", 60.0),
    "mark-silent-devices": _every("ingest.mark_silent_devices", 300.0),
    "settle-due-visits": _every("visits.settle_due", 30.0),
    # Stores with enough new review decisions (or any, a day after they last learnt) learn their calibration again.
    "visits-learn-calibrations": _every("visits.learn_due", 900.0),
    # Licensee billing: usage for the consoles every 10 minutes; the previous month closed on the 1st, at 14:00
    # UTC, once the month has ended in every store's timezone (UTC-12 included) and its last visits have settled.
    "invoicing-refresh-usage": _every("invoicing.refresh_recent_usage", 600.0),
    "invoicing-close-month": {
        "task": "invoicing.close_previous_month",
        "schedule": crontab(minute=0, hour=14, day_of_month=1),
    },
    "payments-due": _every("payments.sweep", 60.0),
    "payments-renew-lapsing-holds": _every("payments.renew_lapsing_holds", 900.0),
    "webhooks-retry-due": _every("webhooks.retry_due", 15.0),
    # Events: the day partitions of the coming week made ahead (hourly: a missed run costs nothing), and raw events
    # older than their tenant's retention exported and removed once a day (ingest.partitions).
    "ingest-ensure-event-partitions": _every("ingest.ensure_event_partitions", 3600.0),
    "ingest-retire-events": {"task": "ingest.retire_events", "schedule": crontab(minute=15, hour=2)},
    # Shoppers' disputes nobody decided by their deadline are refunded.
    "disputes-refund-overdue": _every("disputes.refund_overdue", 300.0),
}

# Payments: each tenant's own Stripe account; the platform's default account serves tenants without one (demo).
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")  # e.g. http://127.0.0.1:8420 for localstripe
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="sk_test_openaisle_platform")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="whsec_openaisle_platform")
# A webhook from Stripe is refused when signed further than this from now, in the past or ahead (a replay).
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env.int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", default=300)
STRIPE_TIMEOUT_SECONDS = env.int("STRIPE_TIMEOUT_SECONDS", default=20)
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="")  # Fernet key; derived from SECRET_KEY if empty
PAYMENTS_LEASE_SECONDS = env.int("PAYMENTS_LEASE_SECONDS", default=60)
# An uncaptured card hold lapses after this long (Stripe: 7 days for most cards); a visit still undecided this long
# before its hold lapses gets a new hold, or has its certain part captured (billing.payments.holds.hold_renew).
PAYMENTS_HOLD_LIFETIME_HOURS = env.int("PAYMENTS_HOLD_LIFETIME_HOURS", default=7 * 24)
PAYMENTS_HOLD_RENEW_BEFORE_HOURS = env.int("PAYMENTS_HOLD_RENEW_BEFORE_HOURS", default=24)
PAYMENTS_RETRY_AFTER_SECONDS = env.list("PAYMENTS_RETRY_AFTER_SECONDS", cast=int, default=[600, 3600, 21600, 86400])

# Webhooks out to licensees (billing/webhooks): in production only https:// endpoints on public addresses.
WEBHOOKS_REQUIRE_HTTPS = env.bool("WEBHOOKS_REQUIRE_HTTPS", default=HTTPS)
WEBHOOKS_ALLOW_PRIVATE_NETWORKS = env.bool("WEBHOOKS_ALLOW_PRIVATE_NETWORKS", default=not HTTPS)

# Event ingestion
INGEST_MAX_UPLOAD_BYTES = env.int("INGEST_MAX_UPLOAD_BYTES", default=2 * 1024**3)
INGEST_CHUNK_BYTES = env.int("INGEST_CHUNK_BYTES", default=1024**2)  # ~7k events: DESIGN's 5-10k per task
INGEST_STALLED_AFTER_SECONDS = env.int("INGEST_STALLED_AFTER_SECONDS", default=300)
# A gzip upload is inflated within bounds (event streams compress about 9:1; a bomb compresses 1,000:1).
INGEST_MAX_UNPACKED_BYTES = env.int("INGEST_MAX_UNPACKED_BYTES", default=8 * 1024**3)
INGEST_MAX_GZIP_RATIO = env.int("INGEST_MAX_GZIP_RATIO", default=100)
INGEST_GZIP_RATIO_AFTER_BYTES = env.int("INGEST_GZIP_RATIO_AFTER_BYTES", default=16 * 1024**2)
# Rejections stored per stream with their line and reason (the rest are counted); a stream whose lines are mostly
# refused is stopped once this many lines have been read.
INGEST_MAX_STORED_REJECTIONS = env.int("INGEST_MAX_STORED_REJECTIONS", default=10_000)
# Events (PostgreSQL): day partitions made this many days ahead; the retention of a tenant on no plan (a plan says its
# own: Plan.event_retention_days).
EVENT_PARTITIONS_AHEAD_DAYS = env.int("EVENT_PARTITIONS_AHEAD_DAYS", default=7)
EVENT_RETENTION_DAYS = env.int("EVENT_RETENTION_DAYS", default=395)
INGEST_STOP_AFTER_LINES = env.int("INGEST_STOP_AFTER_LINES", default=10_000)
INGEST_STOP_REFUSED_SHARE = env.float("INGEST_STOP_REFUSED_SHARE", default=0.9)
# What one tenant may hold at most (tenants/quotas.py); an operator can set other limits per tenant in /ops/.
TENANT_QUOTAS = {
    "api_keys": env.int("QUOTA_API_KEYS", default=25),
    "webhook_endpoints": env.int("QUOTA_WEBHOOK_ENDPOINTS", default=20),
    "stores": env.int("QUOTA_STORES", default=500),
    "shoppers": env.int("QUOTA_SHOPPERS", default=1_000_000),
    "streams_in_flight": env.int("QUOTA_STREAMS_IN_FLIGHT", default=20),
}
DEVICE_SILENT_AFTER_SECONDS = env.int("DEVICE_SILENT_AFTER_SECONDS", default=900)
VISITS_PER_TASK = env.int("VISITS_PER_TASK", default=500)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024**2

# Logs: structlog through the standard library (platform/core/logs.py), with the request id, tenant and task.
# LOG_FORMAT=json (one object per line, for production) or console (readable; the default in embedded mode).
LOG_FORMAT = env.str("LOG_FORMAT", default="console" if DEBUG or EMBEDDED else "json")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
if LOG_FORMAT not in ("json", "console"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or console, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"structured": {"()": "core.logs.formatter", "renderer": LOG_FORMAT}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"level": "INFO"},  # through the root handler (not Django's own), so in the same format
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # failed sign-ins and lockouts; not its every step
        # One line per request with its outcome (at INFO: LOG_LEVEL=WARNING leaves it out, and the web processes
        # write nothing per request); runserver prints its own in console mode.
        "core.requests": {"level": LOG_LEVEL if LOG_FORMAT == "json" else "WARNING"},
        # In embedded mode tasks run inside the command or request that sent them: keep their chatter out.
        "celery.app.trace": {"level": "WARNING" if CELERY_TASK_ALWAYS_EAGER else "INFO"},
    },
}

# Metrics at /metrics (platform/core/metrics.py): readable with `Authorization: Bearer <METRICS_TOKEN>` only, from
# anywhere (loopback too: a proxy on the same host makes every caller local); with no token set they are off (404).
# Under gunicorn set PROMETHEUS_MULTIPROC_DIR (an empty directory) for every process.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

LOGIN_URL = "admin:login"

UNFOLD = {
    "SITE_TITLE": "OpenAisle",
    "SITE_HEADER": "OpenAisle — store admin",
    "SITE_SYMBOL": "storefront",
    "SHOW_HISTORY": True,
    "DASHBOARD_CALLBACK": "console.dashboards.licensee_dashboard",
    "SIDEBAR": {"show_search": True, "show_all_applications": True},
    "SITE_FAVICONS": [{"rel": "icon", "type": "image/svg+xml", "href": "/favicon.ico"}],
}
UNFOLD_OPS = {
    **UNFOLD,
    "SITE_TITLE": "OpenAisle operations",
    "SITE_HEADER": "OpenAisle — operations",
    "SITE_SYMBOL": "hub",
    "DASHBOARD_CALLBACK": "console.dashboards.ops_dashboard",
    # Teal, so that nobody mistakes the operator site for a licensee's store admin.
    "COLORS": {
        "primary": {
            "50": "oklch(98.4% .014 180.72)",
            "100": "oklch(95.3% .051 180.801)",
            "200": "oklch(91% .096 180.426)",
            "300": "oklch(85.5% .138 181.071)",
            "400": "oklch(77.7% .152 181.912)",
            "500": "oklch(70.4% .14 182.503)",
            "600": "oklch(60% .118 184.704)",
            "700": "oklch(51.1% .096 186.391)",
            "800": "oklch(43.7% .078 188.216)",
            "900": "oklch(38.6% .063 188.416)",
            "950": "oklch(27.7% .046 192.524)",
        }
    },
}

# --- Catalog imports (platform/catalog) ----------------------------------------------------------
# Uploads larger than this run in the background (202 + progress); smaller ones answer at once.
CATALOG_IMPORT_BACKGROUND_BYTES = env.int("CATALOG_IMPORT_BACKGROUND_BYTES", default=2 * 1024 * 1024)
# Larger uploads are refused with 413.
CATALOG_IMPORT_MAX_BYTES = env.int("CATALOG_IMPORT_MAX_BYTES", default=100 * 1024 * 1024)
# Names of enums in the OpenAPI document where several apps have a field called "status" (add entries here).
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {
    "CatalogProductStatusEnum": "catalog.models.Product.Status",
    "CatalogImportStatusEnum": "catalog.models.CatalogImport.Status",
    "AuditActionEnum": "tenants.models.AuditAction",
    "ReviewReasonCodeEnum": "visits.reasons.REASON_CHOICES",
}

# --- Licensee billing (billing/invoicing) ---------------------------------------------------------
# The operator as printed on licensee invoices, and the prefixes of invoice and credit-note numbers.
BILLING_ISSUER = {
    "name": env.str("BILLING_ISSUER_NAME", default="OpenAisle Platform Ltd"),
    "address": env.str("BILLING_ISSUER_ADDRESS", default="1 Market Street\nLondon EC1A 1AA\nUnited Kingdom"),
    "email": env.str("BILLING_ISSUER_EMAIL", default="billing@openaisle.example"),
    "tax_id": env.str("BILLING_ISSUER_TAX_ID", default="GB 123 4567 89"),
    "bank": env.str("BILLING_ISSUER_BANK", default="IBAN GB00 OPEN 0000 0000 0000 00"),
}
BILLING_NUMBER_PREFIX = {"INV": env.str("BILLING_INVOICE_PREFIX", default="OA"), "CN": "CN"}
