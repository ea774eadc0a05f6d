"""Settings, driven only by environment variables.

With no environment set the project runs embedded: SQLite, LocMemCache and Celery tasks run inline.
Production sets DATABASE_URL (PostgreSQL), REDIS_URL (Redis through django-redis) and runs Celery workers.
Every variable is listed with its default in .env.example and docs/operations.md.
"""

import os
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


TESTING = "pytest" in sys.modules or (len(sys.argv) > 1 and sys.argv[1] == "test")

# --- Core -------------------------------------------------------------------------------------------------
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG and not TESTING:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY in the environment, or DEBUG=1 for local development."
        )
    SECRET_KEY = "insecure-development-key-only-for-debug-and-tests"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
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
    "rag_agent",
    "api_gateway",
]

MIDDLEWARE = [
    "core.middleware.RequestIdMiddleware",
    "core.middleware_metrics.HttpDurationMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "core.urls"
WSGI_APPLICATION = "core.wsgi.application"
ASGI_APPLICATION = "core.asgi.application"

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

# --- Database ---------------------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
_db = dj_database_url.parse(DATABASE_URL)
if _db["ENGINE"] == "django.db.backends.postgresql":
    # psycopg 3 with Django's own connection pool (Django >= 5.1); CONN_MAX_AGE must stay 0 with a pool.
    _db["CONN_MAX_AGE"] = 0
    _db.setdefault("OPTIONS", {})
    _db["OPTIONS"]["pool"] = {
        "min_size": env_int("DB_POOL_MIN_SIZE", 1),
        "max_size": env_int("DB_POOL_MAX_SIZE", 10),
        "timeout": env_float("DB_POOL_TIMEOUT_SECONDS", 5.0),
    }
    _db["OPTIONS"]["connect_timeout"] = env_int("DB_CONNECT_TIMEOUT_SECONDS", 3)
elif _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the inline server and a management command share the file.
    _db.setdefault("OPTIONS", {})
    _db["OPTIONS"].update({"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"})
DATABASES = {"default": _db}
IS_POSTGRES = _db["ENGINE"] == "django.db.backends.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Caches -----------------------------------------------------------------------------------------------
# "default" holds sessions, clinic data and idempotency results: its errors are logged and swallowed, so a
# Redis outage degrades to the database. "strict" holds locks, dedupe keys and the token counter: its errors
# raise, so the caller must decide (an outage must never look like "already seen").
REDIS_URL = env_str("REDIS_URL")
CACHE_KEY_PREFIX = env_str("CACHE_KEY_PREFIX", "clinicbot")
CACHE_TTL_HOURS = env_int("CACHE_TTL_HOURS", 24)
REDIS_SOCKET_TIMEOUT_SECONDS = env_float("REDIS_SOCKET_TIMEOUT_SECONDS", 0.5)
# After two Redis calls in a row time out, calls to that server fail fast in this process for this long (0: never).
REDIS_BREAKER_SECONDS = env_float("REDIS_BREAKER_SECONDS", 5.0)


def _redis_cache(ignore_exceptions: bool) -> dict:
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": CACHE_KEY_PREFIX,
        "TIMEOUT": 3600,
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "CONNECTION_FACTORY": "core.redis_breaker.BreakerConnectionFactory",
            "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT_SECONDS,
            "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT_SECONDS,
            "IGNORE_EXCEPTIONS": ignore_exceptions,
            "CONNECTION_POOL_KWARGS": {"retry_on_timeout": False, "health_check_interval": 30},
        },
    }


if REDIS_URL:
    CACHES = {"default": _redis_cache(ignore_exceptions=True), "strict": _redis_cache(ignore_exceptions=False)}
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
    DJANGO_REDIS_LOGGER = "core.cache"
else:
    # Both aliases share one LocMem store (same LOCATION), so every key lives in one place per process.
    _locmem = {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "clinicbot",
        "KEY_PREFIX": CACHE_KEY_PREFIX,
        "TIMEOUT": 3600,
        "OPTIONS": {"MAX_ENTRIES": 50000},
    }
    CACHES = {"default": dict(_locmem), "strict": dict(_locmem)}
CACHE_BACKEND_NAME = "redis" if REDIS_URL else "locmem"

# --- Celery -----------------------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not (REDIS_URL or env_str("CELERY_BROKER_URL")))
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "America/Sao_Paulo"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Workers log through LOGGING below (request ids, masking of personal data, LOG_FORMAT), not Celery's own handlers.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT_SECONDS", 600)}
SWEEP_AFTER_MINUTES = env_int("SWEEP_AFTER_MINUTES", 5)
SWEEP_MAX_ATTEMPTS = env_int("SWEEP_MAX_ATTEMPTS", 5)
CELERY_BEAT_SCHEDULE = {
    "sweep-stuck-messages": {"task": "api_gateway.tasks.sweep_stuck", "schedule": 60.0},
    "appointment-reminders": {"task": "api_gateway.tasks.send_reminders", "schedule": 600.0},
}

# --- Gemini -----------------------------------------------------------------------------------------------
GEMINI_API_KEY = env_str("GEMINI_API_KEY")
GEMINI_MODEL = env_str("GEMINI_MODEL", "gemini-3.5-flash-lite")
GEMINI_ECONOMY_MODEL = env_str("GEMINI_ECONOMY_MODEL", "gemini-3.5-flash-lite")
GEMINI_API_BASE_URL = env_str("GEMINI_API_BASE_URL", "https://generativelanguage.googleapis.com")
GEMINI_TIMEOUT_SECONDS = env_float("GEMINI_TIMEOUT_SECONDS", 8.0)
GEMINI_MAX_ATTEMPTS = env_int("GEMINI_MAX_ATTEMPTS", 2)
GEMINI_MAX_OUTPUT_TOKENS = env_int("GEMINI_MAX_OUTPUT_TOKENS", 300)
GEMINI_DAILY_TOKEN_LIMIT = env_int("GEMINI_DAILY_TOKEN_LIMIT", 1_500_000)
GEMINI_ECONOMY_THRESHOLD = env_float("GEMINI_ECONOMY_THRESHOLD", 0.8)
# US dollars per million tokens, for the cost estimate in `tokens` and /metrics.
GEMINI_PRICE_INPUT_PER_MTOK = env_float("GEMINI_PRICE_INPUT_PER_MTOK", 0.10)
GEMINI_PRICE_OUTPUT_PER_MTOK = env_float("GEMINI_PRICE_OUTPUT_PER_MTOK", 0.40)
# Voice notes (docs/operations.md "Voice notes"): transcribed by Gemini when a key is set and this is on; longer
# ones (bytes as WhatsApp stores them; ~1 MB is 5-8 minutes of a voice note) are not fetched.
VOICE_TRANSCRIPTION = env_bool("VOICE_TRANSCRIPTION", True)
VOICE_NOTE_MAX_BYTES = env_int("VOICE_NOTE_MAX_BYTES", 1_000_000)
VOICE_TRANSCRIPTION_TIMEOUT_SECONDS = env_float("VOICE_TRANSCRIPTION_TIMEOUT_SECONDS", 15.0)

# --- WhatsApp Cloud API -----------------------------------------------------------------------------------
WHATSAPP_VERIFY_TOKEN = env_str("WHATSAPP_VERIFY_TOKEN")
WHATSAPP_APP_SECRET = env_str("WHATSAPP_APP_SECRET")
WHATSAPP_ACCESS_TOKEN = env_str("WHATSAPP_ACCESS_TOKEN")
WHATSAPP_PHONE_NUMBER_ID = env_str("WHATSAPP_PHONE_NUMBER_ID")
WHATSAPP_BUSINESS_NUMBER = env_str("WHATSAPP_BUSINESS_NUMBER")
WHATSAPP_API_BASE_URL = env_str("WHATSAPP_API_BASE_URL", "https://graph.facebook.com")
WHATSAPP_API_VERSION = env_str("WHATSAPP_API_VERSION", "v23.0")
WHATSAPP_TIMEOUT_SECONDS = env_float("WHATSAPP_TIMEOUT_SECONDS", 10.0)
WHATSAPP_RETRY_BASE_SECONDS = env_float("WHATSAPP_RETRY_BASE_SECONDS", 0.5)
WHATSAPP_MAX_MESSAGE_AGE_HOURS = env_int("WHATSAPP_MAX_MESSAGE_AGE_HOURS", 24)
# Appointment reminders (docs/operations.md): the name of the approved message template; blank = no reminders.
WHATSAPP_REMINDER_TEMPLATE = env_str("WHATSAPP_REMINDER_TEMPLATE")
WHATSAPP_TEMPLATE_LANGUAGE = env_str("WHATSAPP_TEMPLATE_LANGUAGE", "pt_BR")
# The approved template that tells a patient the clinic cancelled their appointment; blank = no such message.
WHATSAPP_CANCELLATION_TEMPLATE = env_str("WHATSAPP_CANCELLATION_TEMPLATE")
# The approved template the staff send from the reply page after the 24-hour window closed, asking the patient to
# write back (api_gateway.services.staff.staff_followup_send); blank = the page only says to call.
WHATSAPP_FOLLOWUP_TEMPLATE = env_str("WHATSAPP_FOLLOWUP_TEMPLATE")
# The approved template that tells a patient an agenda block (the doctor's holidays, the clinic's recess) took their
# appointment's time, with "Remarcar" / "Cancelar consulta" buttons; blank = no such message (the staff call them).
WHATSAPP_RESCHEDULE_TEMPLATE = env_str("WHATSAPP_RESCHEDULE_TEMPLATE")
# The approved template that tells a patient on a doctor's waitlist that a time opened, with a "Ver horários"
# button; blank = the bot offers no waitlist (a full agenda gets "choose another doctor or talk to a person").
WHATSAPP_WAITLIST_TEMPLATE = env_str("WHATSAPP_WAITLIST_TEMPLATE")
# How long a patient stays on a waitlist without getting a time.
WAITLIST_DAYS = env_int("WAITLIST_DAYS", 30)
REMINDER_HOURS_BEFORE = env_int("REMINDER_HOURS_BEFORE", 24)
WHATSAPP_MAX_BODY_BYTES = env_int("WHATSAPP_MAX_BODY_BYTES", 3 * 1024 * 1024)
if not DEBUG and not TESTING and not WHATSAPP_APP_SECRET:
    raise ImproperlyConfigured(
        "WHATSAPP_APP_SECRET is not set. The webhook cannot verify Meta's signatures without it; "
        "set it (Meta App Dashboard > App settings > Basic > App secret), or DEBUG=1 for local development."
    )

# --- E-mail (SMTP when EMAIL_HOST is set; printed to the console otherwise) -------------------------------
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT_SECONDS", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "webmaster@localhost")

# --- Conversation and abuse limits ------------------------------------------------------------------------
PATIENT_MAX_MESSAGES_PER_MINUTE = env_int("PATIENT_MAX_MESSAGES_PER_MINUTE", 20)
PATIENT_MAX_OPEN_APPOINTMENTS = env_int("PATIENT_MAX_OPEN_APPOINTMENTS", 3)
# How long a turn may hold its phone's lock before Redis frees it (recovery time after a crashed worker).
SESSION_LOCK_TIMEOUT_SECONDS = env_int("SESSION_LOCK_TIMEOUT_SECONDS", 60)
HANDOFF_AFTER_FAILURES = env_int("HANDOFF_AFTER_FAILURES", 3)
# A conversation handed to the staff returns to the bot when the patient writes after this many silent hours.
HANDOFF_IDLE_HOURS = env_int("HANDOFF_IDLE_HOURS", 12)
# Who is told by e-mail that a patient waits for a person (comma-separated; blank: nobody, the admin shows them).
HANDOFF_NOTIFY_EMAILS = env_list("HANDOFF_NOTIFY_EMAILS")
# The admin's public address, for links in those e-mails ("https://clinica.example.com"; blank: a bare path).
ADMIN_BASE_URL = env_str("ADMIN_BASE_URL").rstrip("/")
if HANDOFF_NOTIFY_EMAILS and not EMAIL_HOST and not DEBUG and not TESTING:
    raise ImproperlyConfigured(
        "HANDOFF_NOTIFY_EMAILS is set but EMAIL_HOST is not: the e-mails would only be printed to the log. "
        "Set EMAIL_HOST (and EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, DEFAULT_FROM_EMAIL), or clear "
        "HANDOFF_NOTIFY_EMAILS."
    )
SLOT_SEARCH_DAYS = env_int("SLOT_SEARCH_DAYS", 30)
# How soon a slot may be booked: one that starts in 9 minutes cannot be reached (nor prepared for by the desk).
BOOKING_MIN_NOTICE_MINUTES = env_int("BOOKING_MIN_NOTICE_MINUTES", 60)
# How far ahead an appointment may be booked (the agenda is not open for ever).
BOOKING_HORIZON_DAYS = env_int("BOOKING_HORIZON_DAYS", 180)
# Public holidays the clinic is closed on (rag_agent/closures.py): a country ("BR"), a country and a state
# ("BR-SP"), or "" for a clinic that opens on holidays.
CLINIC_HOLIDAYS = env_str("CLINIC_HOLIDAYS", "BR").strip().upper()
if CLINIC_HOLIDAYS:
    import holidays

    _country, _, _subdivision = CLINIC_HOLIDAYS.partition("-")
    try:
        holidays.country_holidays(_country, subdiv=_subdivision or None)
    except NotImplementedError as exc:
        raise ImproperlyConfigured(
            f"CLINIC_HOLIDAYS={CLINIC_HOLIDAYS!r} is not a known calendar ({exc}). Use a country code such as BR, "
            "a country and a state such as BR-SP, or an empty value for a clinic that opens on holidays."
        ) from exc
API_MAX_TEXT_LENGTH = env_int("API_MAX_TEXT_LENGTH", 4096)
# Keys of the REST API's clients (comma-separated), sent as "Authorization: Bearer <key>". Empty: the REST API
# refuses every call, unless DEBUG is on (local development).
API_KEYS = env_list("API_KEYS", "")

# --- HTTP, REST API ---------------------------------------------------------------------------------------
DATA_UPLOAD_MAX_MEMORY_SIZE = WHATSAPP_MAX_BODY_BYTES + 1024
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "core.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Clinic WhatsApp front desk API",
    "DESCRIPTION": "Synchronous conversation turns for other channels, with idempotency keys.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Admin login protection (django-axes) -----------------------------------------------------------------
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_float("AXES_COOLOFF_HOURS", 0.5)
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_ENABLED = env_bool("AXES_ENABLED", True)

# --- Security (production) --------------------------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^metrics$"]
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if TESTING:
    SECURE_SSL_REDIRECT = False

# --- Passwords --------------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Locale -----------------------------------------------------------------------------------------------
LANGUAGE_CODE = "pt-br"
TIME_ZONE = "America/Sao_Paulo"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- Logging ----------------------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOG_FORMAT = env_str("LOG_FORMAT", "text")  # "text" or "json"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "core.logging.RequestIdFilter"},
        "mask_personal_data": {"()": "core.logging.MaskPersonalDataFilter"},
    },
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "core.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT if LOG_FORMAT in {"text", "json"} else "text",
            "filters": ["request_id", "mask_personal_data"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
