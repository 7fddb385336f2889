"""Kiln settings: one module, every value from the environment.

Nothing here needs a server: with no variables set, Kiln runs on SQLite under
``var/``, Celery's filesystem broker, local media and the sandbox providers.
"""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from project.env import (
    envbool,
    envdatabase,
    envfernetkey,
    envint,
    envlist,
    envmediastorage,
    envsecret,
    envstr,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("KILN_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = envbool("DEBUG", False)
SECRET_KEY = envsecret("SECRET_KEY", VAR_DIR / "secret_key")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")

# Where Kiln is reachable from the internet (https), for provider webhooks and
# signed input URLs. Empty: neither is offered.
KILN_PUBLIC_URL = envstr("KILN_PUBLIC_URL").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "ninja",
    "axes",
    "accounts",
    "generations",
    "project.runtime",
]

MIDDLEWARE = [
    # /healthz for load balancers: answered before the HTTPS redirect, host validation and sessions.
    "project.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "accounts.middleware.CurrentTeamMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.current_team",
            ],
            # Template tags live in the room they serve, not in a templatetags/ folder per app.
            "libraries": {
                "credits_tags": "accounts.credits.templatetags",
                "gallery_tags": "generations.gallery.templatetags",
            },
        },
    },
]

DATABASES = {"default": envdatabase("DATABASE_URL", VAR_DIR / "kiln.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "generations:studio"
LOGOUT_REDIRECT_URL = "accounts:login"

# Invitations (accounts.invitations): how long an e-mailed link stays valid.
KILN_INVITATION_DAYS = envint("KILN_INVITATION_DAYS", 7, minimum=1)
# A password-reset link works once and for this long (seconds; Django's own default is 3 days).
PASSWORD_RESET_TIMEOUT = envint("PASSWORD_RESET_TIMEOUT", 60 * 60, minimum=60)
# Password-reset requests per hour, per address asked for and per client address.
KILN_PASSWORD_RESETS_PER_HOUR = envint("KILN_PASSWORD_RESETS_PER_HOUR", 5, minimum=1)

# E-mail (invitations, password resets) through Django's mailers. With EMAIL_HOST unset
# (`make run`), each message is printed in the terminal instead, labelled as such.
_email_host = envstr("EMAIL_HOST")
_email_tls, _email_ssl = envbool("EMAIL_USE_TLS", False), envbool("EMAIL_USE_SSL", False)
if _email_tls and _email_ssl:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are exclusive: set one of them")
MAILERS = {"default": {
    "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    "OPTIONS": {
        "host": _email_host,
        "port": envint("EMAIL_PORT", 465 if _email_ssl else 587 if _email_tls else 25, minimum=1),
        "username": envstr("EMAIL_HOST_USER"),
        "password": envstr("EMAIL_HOST_PASSWORD"),
        "use_tls": _email_tls,
        "use_ssl": _email_ssl,
        "timeout": envint("EMAIL_TIMEOUT", 20, minimum=1),
    },
} if _email_host else {"BACKEND": "accounts.mail.TerminalEmailBackend"}}
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "Kiln <kiln@localhost>")

# Login throttling: lock a username+IP pair after repeated failures.
AXES_ENABLED = envbool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = envint("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
AXES_RESET_ON_SUCCESS = True
# Reverse proxies in front of Kiln that append to X-Forwarded-For (0: none, REMOTE_ADDR is the client).
KILN_TRUSTED_PROXY_COUNT = envint("KILN_TRUSTED_PROXY_COUNT", 0, minimum=0)
AXES_CLIENT_IP_CALLABLE = "project.client_ip.client_ip"

LANGUAGE_CODE = "en"
TIME_ZONE = envstr("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(envstr("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(envstr("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = None  # media is never served from a public directory: see generations.serving

STORAGES = {
    # filesystem (MEDIA_ROOT) or s3 (KILN_S3_*; pip install 'kiln[s3]'); see docs/deploy.md.
    "default": envmediastorage("KILN_MEDIA_STORAGE"),
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG and envbool("KILN_MANIFEST_STATIC", True)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Provider API keys are encrypted with these (comma-separated Fernet keys, newest
# first). Independent of SECRET_KEY; generated once into var/ for local use.
FIELD_ENCRYPTION_KEYS = envlist("FIELD_ENCRYPTION_KEYS") or [envfernetkey(VAR_DIR / "field_encryption_key")]

# Security headers (production values come with DEBUG off and HTTPS on).
KILN_HTTPS = envbool("KILN_HTTPS", False)
SECURE_SSL_REDIRECT = KILN_HTTPS and envbool("SECURE_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if KILN_HTTPS else None
SESSION_COOKIE_SECURE = KILN_HTTPS
CSRF_COOKIE_SECURE = KILN_HTTPS
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000 if KILN_HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = KILN_HTTPS
SECURE_HSTS_PRELOAD = KILN_HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = envint("SESSION_COOKIE_AGE", 60 * 60 * 24 * 14, minimum=300)
X_FRAME_OPTIONS = "DENY"
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:", "blob:"],
    "media-src": [CSP.SELF, "blob:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}

# Celery: the broker only carries wake-ups; the database is the source of truth.
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", f"filesystem://{VAR_DIR / 'broker'}")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The embedded broker: kombu's filesystem transport made safe between processes. Importing
    # project.runtime.broker makes it the transport of every filesystem:// URL in Kiln's processes.
    from project.runtime import broker as _broker

    CELERY_BROKER_TRANSPORT_OPTIONS = _broker.transport_options(Path(CELERY_BROKER_URL.removeprefix("filesystem://")))
    CELERY_BROKER_URL = "filesystem://"
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One message per process on Redis (a long task never sits on messages another process could
# run). The filesystem broker has no event loop: Celery's blocking loop acks finished tasks only
# between waits of up to 2 s, so with one message per process a worker took about one message
# a second, fewer than the beat's tick sends, and new jobs queued behind a growing backlog.
CELERY_WORKER_PREFETCH_MULTIPLIER = 8 if CELERY_BROKER_URL == "filesystem://" else 1
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "generations.tasks.submit_generation": {"queue": "poll"},
    "generations.tasks.poll_due": {"queue": "poll"},
    "generations.tasks.poll_generation": {"queue": "poll"},
    "generations.tasks.download_generation": {"queue": "download"},
    # Teams' webhook receivers are other people's servers: slow ones must never hold the
    # workers that submit and poll every team's jobs (make run: the downloads worker's threads).
    "generations.tasks.deliver_webhook": {"queue": "webhooks"},
    "generations.tasks.deliver_due_webhooks": {"queue": "webhooks"},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
KILN_POLL_TICK_SECONDS = float(envstr("KILN_POLL_TICK_SECONDS", "1.0"))
KILN_POLL_CONCURRENCY = envint("KILN_POLL_CONCURRENCY", 32, minimum=1)
KILN_POLL_BATCH = envint("KILN_POLL_BATCH", 200, minimum=1)
# A job claimed for sending but never saved with a provider job id (its worker
# died mid-send) is given up after this long: expired for review, never re-sent.
KILN_SUBMIT_LEASE_SECONDS = envint("KILN_SUBMIT_LEASE_SECONDS", 600, minimum=30)
# How often the beat sends the webhook deliveries that fell due (retries, lost wake-ups); a new
# event is sent at once, when its transaction commits (generations/team_webhooks).
KILN_WEBHOOK_TICK_SECONDS = max(0.5, float(envstr("KILN_WEBHOOK_TICK_SECONDS", "5.0")))  # 0 would spin the beat

# Downloads of provider output.
KILN_MAX_IMAGE_BYTES = envint("KILN_MAX_IMAGE_BYTES", 50 * 1024 * 1024, minimum=1)
KILN_MAX_VIDEO_BYTES = envint("KILN_MAX_VIDEO_BYTES", 2 * 1024 * 1024 * 1024, minimum=1)
KILN_DOWNLOAD_DEADLINE_SECONDS = envint("KILN_DOWNLOAD_DEADLINE_SECONDS", 900, minimum=1)
KILN_MAX_UPLOAD_BYTES = envint("KILN_MAX_UPLOAD_BYTES", 20 * 1024 * 1024, minimum=1)
# Studio submissions per member per minute (a double-click loop or a script cannot drain a wallet).
KILN_GENERATE_PER_MINUTE = envint("KILN_GENERATE_PER_MINUTE", 30, minimum=1)
# Requests a minute each API token may make (generations/api/auth.py).
KILN_API_REQUESTS_PER_MINUTE = envint("KILN_API_REQUESTS_PER_MINUTE", 600, minimum=1)
# Output URLs on loopback/private addresses are refused (SSRF) unless this is on:
# only for the local sandbox providers; production leaves it off.
KILN_ALLOW_PRIVATE_URLS = envbool("KILN_ALLOW_PRIVATE_URLS", False)
# "host:port" pairs on a private network that provider calls and downloads may reach while
# KILN_ALLOW_PRIVATE_URLS is off: a gateway on your own network, say. Only the operator sets
# these; a team's key may name such a host only when it is listed here.
KILN_ALLOWED_PRIVATE_HOSTS = [item.lower() for item in envlist("KILN_ALLOWED_PRIVATE_HOSTS")]
# The sandbox providers' base URL when `make run` starts them.
KILN_SANDBOX_URL = envstr("KILN_SANDBOX_URL", "http://127.0.0.1:8765")

DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# The cache holds rate-limit counters and webhook wake-ups (project.ratelimit). Local
# memory, per process, by default; set KILN_CACHE_URL=redis://... so every web process shares them.
KILN_CACHE_URL = envstr("KILN_CACHE_URL")
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": KILN_CACHE_URL}
          if KILN_CACHE_URL else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Logs go to stderr, one line per record: "plain" (time level logger message) or "json" (one
# object per line, for Loki/ELK: project/logformat.py). Celery and gunicorn follow the same choice.
KILN_LOG_FORMAT = envstr("KILN_LOG_FORMAT", "plain")
if KILN_LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"KILN_LOG_FORMAT must be plain or json, got {KILN_LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
                   "json": {"()": "project.logformat.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": KILN_LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "filters": {"forbidden_on_one_line": {"()": "project.logfilters.ForbiddenOnOneLine"}},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}, "axes": {"level": "WARNING"},
                # A 403 (PermissionDenied) is one line, not a traceback.
                "django.request": {"filters": ["forbidden_on_one_line"]}},
}
