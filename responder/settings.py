"""Settings for Responder, driven by environment variables (see the README's table)."""

import os
from datetime import timedelta
from ipaddress import ip_network
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DEV_SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production"


def envstr(name: str, default: str) -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: str) -> bool:
    value = os.environ.get(name, default).strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")
    return value in ("true", "1", "yes", "on")


def envint(name: str, default: str, *, least: int = 0, most: int | None = None) -> int:
    """A whole number in [least, most]: a timeout or a count of 0 (or below) would reach
    Redis or a thread pool as nonsense and fail a request; it fails the start instead."""
    value = os.environ.get(name, default)
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None
    if number < least or (most is not None and number > most):
        bounds = f"of at least {least}" if most is None else f"from {least} to {most}"
        raise ImproperlyConfigured(f"{name} must be a whole number {bounds}, not {value!r}")
    return number


def vapid_key_check(private_key: str, public_key: str) -> None:
    """A key push services would refuse fails the start, not every push (nor the PWA's
    request for the public key, which derives it)."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from py_vapid import Vapid02
    from py_vapid.utils import b64urlencode

    try:
        key = Vapid02.from_string(private_key)
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            "VAPID_PRIVATE_KEY is not a P-256 private key (base64url of the raw key, or DER)."
        ) from None
    point = key.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    if public_key and public_key != b64urlencode(point):
        raise ImproperlyConfigured(
            "VAPID_PUBLIC_KEY is not VAPID_PRIVATE_KEY's public key (leave it empty: it is derived)."
        )


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# Off unless asked for: a deployment that forgets DEBUG runs as production, and so
# refuses to start on the development key published here (make demo and make test set it).
DEBUG = envbool("DEBUG", "false")
SECRET_KEY = envstr("SECRET_KEY", DEV_SECRET_KEY if DEBUG else "")
SECRET_KEY_FALLBACKS = envlist("SECRET_KEY_FALLBACKS", "")
if not DEBUG and (
    SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5
):
    raise ImproperlyConfigured("Set SECRET_KEY to a random value of 50 or more characters.")
if not DEBUG and DEV_SECRET_KEY in SECRET_KEY_FALLBACKS:
    raise ImproperlyConfigured("SECRET_KEY_FALLBACKS must not hold the development key.")
# Salt for the key that encrypts camera credentials and webhook secrets at rest
# (encrypted_fields). The key itself derives from SECRET_KEY (and its fallbacks), which
# production never takes from the repo; a salt is not a secret.
SALT_KEY = envstr("CREDENTIALS_SALT", "responder-camera-credentials")

# Proxies (addresses or networks) whose X-Forwarded-For is believed; none by default.
TRUSTED_PROXIES = tuple(envlist("TRUSTED_PROXIES", ""))
for _proxy in TRUSTED_PROXIES:
    try:
        ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"TRUSTED_PROXIES: {_proxy!r} is no address or network"
        ) from None

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")
# The demo and a fresh checkout serve on PORT (daphne -p $PORT), so their links do too.
SITE_URL = envstr("SITE_URL", f"http://127.0.0.1:{os.environ.get('PORT') or 8000}")
# seed_demo's cameras stream from here (the camera simulator); empty: RTSP on 10.x addresses.
DEMO_CAMERA_BASE_URL = envstr("DEMO_CAMERA_BASE_URL", "http://127.0.0.1:8554")

INSTALLED_APPS = [
    "daphne",
    "responder.core.apps.ResponderAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "responder.core.apps.TOTPConfig",
    "responder.core.apps.StaticCodesConfig",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "channels",
    "responder.core",
    "maps",
    "cameras",
    "accesslog",
    "responder.alarms",
    "responder.incidents",
    "responder.push",
    "responder.recording",
    "responder.evidence",
    "responder.demo",
    "drf_spectacular_sidecar",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "responder.core.middleware.SessionFreeMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before OTPMiddleware: loading the user here leaves the device check to the lifetime
    # middleware, which must see the session's device before OTPMiddleware forgets it.
    "responder.core.outage.DatabaseOutageMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "responder.core.middleware.SessionLifetimeMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "responder.urls"
ASGI_APPLICATION = "responder.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "responder" / "templates"],
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
    "default": dj_database_url.parse(
        envstr("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=envint("DB_CONN_MAX_AGE", "0"),
    )
}
if DATABASES["default"]["ENGINE"].endswith("postgresql") and envint("DB_POOL_SIZE", "0"):
    # Under daphne every request runs in a thread of its own, so CONN_MAX_AGE keeps one
    # connection per thread (and ran PostgreSQL out of them); a pool shares a few instead
    # of connecting per request. Needs psycopg's pool extra (psycopg[pool]).
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "pool": {"min_size": 1, "max_size": envint("DB_POOL_SIZE", "0"), "timeout": 10}
    }
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several processes (daphne, workers, tests' live servers) share one file.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    # A file, not memory: the tests start servers that share it. Named after the database.
    DATABASES["default"]["TEST"] = {"NAME": f"{DATABASES['default']['NAME']}.test"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = envstr("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "responder",
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        # redis-py 8 times reads out at 5 s by default; see shared/notes/fanout-baselines.md.
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}]},
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = "default"
# First match wins. Probes run on the default queue: video slots are for live sessions.
CELERY_TASK_ROUTES = {
    "cameras.tasks.health_probe*": {"queue": "default"},
    "cameras.tasks.*": {"queue": "video"},
    # Pushes wait on outside services: their own queue and worker, never a video slot.
    "responder.tasks.push_*": {"queue": "push"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE: dict = {
    "camera-health": {
        "task": "cameras.tasks.health_probe_all",
        "schedule": envint("CAMERA_PROBE_SECONDS", "300", least=1),
    },
    "live-clean-up": {"task": "cameras.tasks.live_clean_up", "schedule": 60},
    "incident-grants-expire": {"task": "responder.tasks.incident_grants_expire", "schedule": 60},
    # Pushes ingest could not queue while the broker was down.
    "push-pending": {
        "task": "responder.tasks.push_pending_send",
        "schedule": envint("PUSH_PENDING_SECONDS", "15", least=1),
    },
    # Counts kept for names no user has (they are counted like real ones) go once run out.
    "signin-states-prune": {"task": "responder.tasks.signin_states_prune", "schedule": 3600},
    # Recorded video (docs/RECORDING.md, "Keeping and deleting").
    "recording-disk-guard": {
        "task": "responder.recording.tasks.recording_disk_guard",
        "schedule": 60,
    },
    "recording-buffer-sweep": {
        "task": "responder.recording.tasks.recording_buffer_sweep",
        "schedule": 30,
    },
    "recording-retention": {
        "task": "responder.recording.tasks.recording_retention_sweep",
        "schedule": 600,
    },
    # Evidence builds whose worker died (kill -9) end failed within a minute.
    "evidence-stale-sweep": {"task": "responder.tasks.evidence_stale_sweep", "schedule": 15},
    # Orphans come only from a crash between a delete's commit and its unlink: rare.
    "recording-orphans": {
        "task": "responder.recording.tasks.recording_orphans_sweep",
        "schedule": 86400,
    },
}

# Recorded video (responder/recording): segments and their index; every recorder, web
# process and video worker must share it.
RECORDINGS_ROOT = Path(envstr("RECORDINGS_ROOT", str(BASE_DIR / "recordings")))
RECORDINGS_MIN_FREE_PERCENT = envint("RECORDINGS_MIN_FREE_PERCENT", "10", most=100)
# e.g. "/_recordings/": nginx serves recorded byte ranges after Django checks the token.
RECORDINGS_ACCEL_REDIRECT = envstr("RECORDINGS_ACCEL_REDIRECT", "")

# Evidence exports (responder/evidence, docs/EVIDENCE.md): the zips, on storage every web
# process and default-queue worker shares.
EVIDENCE_ROOT = Path(envstr("EVIDENCE_ROOT", str(BASE_DIR / "evidence")))
EXPORT_MAX_MINUTES = envint("EXPORT_MAX_MINUTES", "240", least=1)
# The district's Ed25519 key: a PEM file's path or the PEM itself. Development generates
# one under EVIDENCE_DEV_KEY_DIR on first use; production refuses to start without it.
EVIDENCE_SIGNING_KEY = envstr("EVIDENCE_SIGNING_KEY", "")
EVIDENCE_DEV_KEY_DIR = Path(envstr("EVIDENCE_DEV_KEY_DIR", str(BASE_DIR / "var")))
EVIDENCE_DEV_KEY = DEBUG and not EVIDENCE_SIGNING_KEY  # read here: tests run with DEBUG off
# After a rotation: the old public keys (paths or PEM texts, comma-separated), so that
# evidence_verify still accepts exports signed before it.
EVIDENCE_OLD_PUBLIC_KEYS = envlist("EVIDENCE_OLD_PUBLIC_KEYS", "")
if not DEBUG and not EVIDENCE_SIGNING_KEY:
    raise ImproperlyConfigured(
        "Set EVIDENCE_SIGNING_KEY to the district's Ed25519 private key (a PEM path or text)."
    )
# C2PA Content Credentials in each export's MP4s (docs/C2PA.md): the certificate chain (a
# PEM path or text, leaf first) of EVIDENCE_SIGNING_KEY, from a CA that C2PA readers trust.
# Development signs its own certificate. Production without one embeds nothing and the
# manifest says so ("content_credentials": null): a self-signed credential would show
# investigators an unknown signer, and refusing to start would hold the whole deployment
# up for a certificate that is not what makes an export verifiable (the signed manifest is).
EVIDENCE_C2PA_CERT = envstr("EVIDENCE_C2PA_CERT", "")
EVIDENCE_C2PA_DEV_CERT = DEBUG and not EVIDENCE_C2PA_CERT  # read here, as EVIDENCE_DEV_KEY
# An RFC 3161 timestamp authority (optional): the credentials outlive the certificate.
EVIDENCE_C2PA_TSA_URL = envstr("EVIDENCE_C2PA_TSA_URL", "")
# c2pa-rs holds about twice the MP4 in memory while it signs: a camera's MP4 above this many
# MiB goes into the export without credentials (the manifest says which), so that a long
# export cannot run its worker out of memory. The signed manifest still covers it.
EVIDENCE_C2PA_MAX_MB = envint("EVIDENCE_C2PA_MAX_MB", "2048")
# Share links for police: attempts per client address (django-ratelimit's syntax).
EVIDENCE_SHARE_RATE = envstr("EVIDENCE_SHARE_RATE", "60/m")

# Live video (cameras/live.py): every daphne and video worker must share LIVE_ROOT.
LIVE_ROOT = Path(envstr("LIVE_ROOT", str(BASE_DIR / "live")))
LIVE_IDLE_SECONDS = envint("LIVE_IDLE_SECONDS", "30", least=1)
LIVE_SEGMENT_SECONDS = envint("LIVE_SEGMENT_SECONDS", "1", least=1)
LIVE_LIST_SIZE = envint("LIVE_LIST_SIZE", "6", least=1)
LIVE_MAX_SESSIONS = envint("LIVE_MAX_SESSIONS", "12")
LIVE_START_TIMEOUT = envint("LIVE_START_TIMEOUT", "15", least=1)
# A door alarm starts the low sessions of the door's nearest cameras before anyone asks.
LIVE_WARM_ON_ALARM = envbool("LIVE_WARM_ON_ALARM", "true")
LIVE_TOKEN_SECONDS = min(envint("LIVE_TOKEN_SECONDS", "300", least=1), 300)
# e.g. "/_live/": nginx serves segments from LIVE_ROOT after Django checks the token.
LIVE_ACCEL_REDIRECT = envstr("LIVE_ACCEL_REDIRECT", "")
CAMERA_TIMEOUT = envint("CAMERA_TIMEOUT", "5", least=1)
SNAPSHOT_CACHE_SECONDS = envint("SNAPSHOT_CACHE_SECONDS", "5")
# After a webhook secret is rotated, the old one still verifies this long.
WEBHOOK_SECRET_OVERLAP = timedelta(hours=envint("WEBHOOK_SECRET_OVERLAP_HOURS", "24"))
# (camera, profile) live views one user may hold at once, then 429.
LIVE_MAX_SESSIONS_PER_USER = envint("LIVE_MAX_SESSIONS_PER_USER", "4", least=1)

# Web push (responder/push/services.py). With DEBUG and no key, a dev key derives from SECRET_KEY;
# in production push is on when a key is set, and PUSH_ENABLED=true without one fails.
VAPID_PRIVATE_KEY = envstr("VAPID_PRIVATE_KEY", "")  # base64url raw P-256 key, or DER
PUSH_ENABLED = envbool("PUSH_ENABLED", str(DEBUG or bool(VAPID_PRIVATE_KEY)))
VAPID_PUBLIC_KEY = envstr("VAPID_PUBLIC_KEY", "")  # optional: derived from the private key
VAPID_SUBJECT = envstr("VAPID_SUBJECT", "mailto:it@district.example")
PUSH_WINDOW_SECONDS = envint("PUSH_WINDOW_SECONDS", "60", least=1)
# Access-control events older than this at arrival are stored marked late, never rung.
ALARM_MAX_AGE_SECONDS = envint("ALARM_MAX_AGE_SECONDS", "300", least=1)
# A connector that hears nothing this long from a controller that answers pings warns IT.
CONNECTOR_SILENCE_SECONDS = envint("CONNECTOR_SILENCE_SECONDS", "120", least=1)
# A connector's first start reads this much history (0: it begins at "now").
CONNECTOR_BACKFILL_MINUTES = envint("CONNECTOR_BACKFILL_MINUTES", "0")
if PUSH_ENABLED and not DEBUG and not VAPID_PRIVATE_KEY:
    raise ImproperlyConfigured("Set VAPID_PRIVATE_KEY, or PUSH_ENABLED=false.")
if VAPID_PRIVATE_KEY:
    vapid_key_check(VAPID_PRIVATE_KEY, VAPID_PUBLIC_KEY)
# Endpoints go only to these push services ("*." covers subdomains), over https, and never
# to a private or loopback address after resolution (responder/push/services.py).
PUSH_ALLOWED_HOSTS = envlist(
    "PUSH_ALLOWED_HOSTS",
    "fcm.googleapis.com,*.push.services.mozilla.com,*.notify.windows.com,*.push.apple.com",
)
PUSH_MAX_DEVICES_PER_USER = envint("PUSH_MAX_DEVICES_PER_USER", "10")
PUSH_CONNECT_TIMEOUT = envint("PUSH_CONNECT_TIMEOUT", "3", least=1)
PUSH_READ_TIMEOUT = envint("PUSH_READ_TIMEOUT", "5", least=1)
PUSH_SEND_THREADS = envint("PUSH_SEND_THREADS", "32", least=1)
# The test suite's stand-in push services listen on 127.0.0.1 over plain http. Never in
# production: refused unless DEBUG.
PUSH_UNSAFE_LOOPBACK_FOR_TESTS = envbool("PUSH_UNSAFE_LOOPBACK_FOR_TESTS", "false")
if PUSH_UNSAFE_LOOPBACK_FOR_TESTS and not DEBUG:
    raise ImproperlyConfigured(
        "PUSH_UNSAFE_LOOPBACK_FOR_TESTS is for tests, never with DEBUG=false."
    )

# The longest an incident's emergency access runs before someone extends it with a reason;
# an extension also reaches at most this far ahead (responder/incidents/services.py).
INCIDENT_MAX_HOURS = envint("INCIDENT_MAX_HOURS", "12", least=1)
if INCIDENT_MAX_HOURS < 1:
    raise ImproperlyConfigured("INCIDENT_MAX_HOURS must be at least 1.")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = ["responder.backends.LockoutModelBackend"]
LOGIN_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", "5", least=1)
LOGIN_FAILURE_WINDOW = timedelta(minutes=envint("LOGIN_FAILURE_WINDOW_MINUTES", "15", least=1))
# A lock lifts itself after this long (IT can lift it sooner): a stranger typing wrong
# passwords must not keep an officer out for the length of an incident.
LOGIN_LOCK = timedelta(minutes=envint("LOGIN_LOCK_MINUTES", "15", least=1))
# Attempts per client address (sign-in and enrolment alike), django-ratelimit's syntax.
LOGIN_THROTTLE_RATE = envstr("LOGIN_THROTTLE_RATE", "30/m")
RATELIMIT_CACHE_PREFIX = "throttle:"
ENROLMENT_CODE_HOURS = envint("ENROLMENT_CODE_HOURS", "72", least=1)
# The "new device" e-mail is sent inside the sign-in request: a mail server that hangs must not.
EMAIL_TIMEOUT = 10
# No TOTP key, QR code or backup code is readable in the admin.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
OTP_TOTP_ISSUER = envstr("OTP_TOTP_ISSUER", "Responder")
# The account lockout above counts wrong codes; django-otp's per-device delays on top
# would only refuse a right code typed within seconds of a wrong one.
OTP_TOTP_THROTTLE_FACTOR = 0
OTP_STATIC_THROTTLE_FACTOR = 0

# Idle expiry: the cookie's age, renewed by every request. Absolute expiry: the middleware.
SESSION_COOKIE_AGE = envint("SESSION_IDLE_MINUTES", "30", least=1) * 60
SESSION_SAVE_EVERY_REQUEST = True
SESSION_MAX_AGE = envint("SESSION_MAX_HOURS", "12", least=1) * 3600
# Open sockets are re-checked this often for what no signal announces (a deleted session).
SOCKET_RECHECK_SECONDS = envint("SOCKET_RECHECK_SECONDS", "60", least=1)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

SECURE = not DEBUG
SESSION_COOKIE_SECURE = SECURE
CSRF_COOKIE_SECURE = SECURE
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", str(SECURE))
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", "31536000" if SECURE else "0")
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE
SECURE_HSTS_PRELOAD = SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LANGUAGE_CODE = "en-us"
TIME_ZONE = envstr("TIME_ZONE", "America/Chicago")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(envstr("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "frontend" / "dist"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(envstr("MEDIA_ROOT", str(BASE_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["responder.core.permissions.IsVerified"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": None,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Responder API",
    "DESCRIPTION": "Cameras, campus maps and door alarms for first responders.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # The schema maps the whole API: for signed-in, verified users only. Swagger UI comes
    # from our own static files (the sidecar package), never from a CDN.
    "SERVE_PERMISSIONS": ["responder.core.permissions.IsVerified"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Two models have a `status`: each its own enum in the schema.
    "ENUM_NAME_OVERRIDES": {
        "ExportStatusEnum": "responder.evidence.models.ExportStatus",
        "StatusEnum": "responder.core.models.IncidentStatus",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "responder.api_docs.refusals_documented",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
}
