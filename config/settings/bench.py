"""Settings for the benchmarks: production-like, on the local PostgreSQL and Redis."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import ACCOUNT_RATE_LIMITS, DATABASE_URL, env

DEBUG = False
if not DATABASE_URL:
    raise ImproperlyConfigured("The benchmarks run on the database DATABASE_URL names.")
SECRET_KEY = env("DJANGO_SECRET_KEY", default="benchmark-only-secret-key-not-used-anywhere-else-0")
AUDIT_KEY = env("DJANGO_AUDIT_KEY", default="benchmark-only-audit-key-not-used-anywhere-else")
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
# The project's URLs and the crisis benchmark's floor page (bench/urls.py).
ROOT_URLCONF = "bench.urls"
# Fast unless a benchmark measures what a password hash costs (the timing section).
PASSWORD_HASHERS = env.list(
    "DJANGO_PASSWORD_HASHERS", default=["django.contrib.auth.hashers.MD5PasswordHasher"]
)
EMAIL_BACKEND = env("DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.locmem.EmailBackend")
SMS_BACKEND = env("DJANGO_SMS_BACKEND", default="notifications.sms.backends.LocmemBackend")
# The lockout benchmark lives through days of self-service waits in seconds (base.py).
SELF_SERVICE_WAIT_COMPRESSION = env.float("DJANGO_BENCH_SELF_SERVICE_WAIT_COMPRESSION", default=1.0)
if SELF_SERVICE_WAIT_COMPRESSION < 1:
    raise ImproperlyConfigured("DJANGO_BENCH_SELF_SERVICE_WAIT_COMPRESSION must be at least 1.")
# The benchmarks lift allauth's password-reset limit the way base.py lets them lift the
# recovery limits (the env variable holds the whole rule, e.g. "1000000/m/ip,1000000/m/key").
ACCOUNT_RATE_LIMITS = {
    **ACCOUNT_RATE_LIMITS,
    "reset_password": env(
        "DJANGO_RATE_LIMIT_RESET_PASSWORD", default=ACCOUNT_RATE_LIMITS["reset_password"]
    ),
    "signup": env("DJANGO_RATE_LIMIT_SIGNUP", default=ACCOUNT_RATE_LIMITS["signup"]),
    "login_failed": env(
        "DJANGO_RATE_LIMIT_LOGIN_FAILED", default=ACCOUNT_RATE_LIMITS["login_failed"]
    ),
}
