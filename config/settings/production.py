"""Production settings: secrets from the environment, HTTPS everywhere, PostgreSQL and Redis."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DATABASE_URL, REDIS_URL, SELF_SERVICE_WAIT_COMPRESSION, env

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
if len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set to at least 50 random characters.")
AUDIT_KEY = env("DJANGO_AUDIT_KEY", default="")
if len(AUDIT_KEY) < 32:
    raise ImproperlyConfigured(
        "DJANGO_AUDIT_KEY must be set to at least 32 random characters (kept outside the database)."
    )
if not DATABASE_URL:
    raise ImproperlyConfigured("DATABASE_URL must be set (postgres://user:password@host/name).")
# Without Redis every task would run inside the web request, each process would count the
# rate limits on its own, and /healthz would have no broker to ask.
if not REDIS_URL:
    raise ImproperlyConfigured("REDIS_URL must be set (redis://host:6379/0): broker and cache.")
# Compressed self-service waits are for benchmarks only: a production that shortened the
# wait every contact on file has to stop an account takeover must not start at all.
if env("DJANGO_BENCH_SELF_SERVICE_WAIT_COMPRESSION", default="") or (
    SELF_SERVICE_WAIT_COMPRESSION != 1
):
    raise ImproperlyConfigured(
        "DJANGO_BENCH_SELF_SERVICE_WAIT_COMPRESSION is for benchmark builds only: production "
        "never shortens a self-service wait. Unset it."
    )

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
# Off only for `make serve` on plain http://127.0.0.1; behind the TLS proxy they stay on.
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
SMS_BACKEND = env("DJANGO_SMS_BACKEND", default="notifications.sms.backends.HttpGatewayBackend")
