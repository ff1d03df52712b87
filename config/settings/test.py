"""Test settings: fast hashing, local-memory email and SMS; PostgreSQL always, Redis when given."""

import tempfile
from pathlib import Path

from .base import *  # noqa: F403
from .base import DATABASE_URL, database_settings, env

DEBUG = False
SECRET_KEY = "test-only-secret-key-not-used-anywhere-else-0123456789"  # noqa: S105
AUDIT_KEY = "test-only-audit-key-not-used-anywhere-else-0123456789"
AUDIT_CHECKPOINT_DIR = BASE_DIR / "var" / "test-audit-checkpoints"  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SMS_BACKEND = "notifications.sms.backends.LocmemBackend"
CELERY_TASK_ALWAYS_EAGER = True
# The support-queue tests model requests that reach an agent; the triage tests of the
# self-service paths turn this on (tests/recovery/test_self_service_triage.py).
SELF_SERVICE_TRIAGE = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
DEV_INBOX_DIR = BASE_DIR / "var" / "test-dev-inbox"  # noqa: F405
# Each test process keeps its own rate-limit counters unless a test opts into Redis.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
TEST_REDIS_URL = env("REDIS_URL", default="")

if not DATABASE_URL:
    # A throwaway embedded server per test run, deleted when the run ends.
    from config.postgres import embedded_postgres_url

    DATABASES = {
        "default": database_settings(
            embedded_postgres_url(
                Path(tempfile.mkdtemp(prefix="recoverydesk-pg-")),
                database="recoverydesk",
                throwaway=True,
            )
        )
    }
