"""Development settings: PostgreSQL (embedded unless DATABASE_URL is set), eager Celery."""

from pathlib import Path

from .base import *  # noqa: F403
from .base import BASE_DIR, DATABASE_URL, database_settings, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-development-key-only-for-make-run")
AUDIT_KEY = env("DJANGO_AUDIT_KEY", default="insecure-development-audit-key-only-for-make-run")
EMAIL_BACKEND = env("DJANGO_EMAIL_BACKEND", default="notifications.mail.DevInboxEmailBackend")
SMS_BACKEND = env("DJANGO_SMS_BACKEND", default="notifications.sms.backends.DevInboxBackend")
# Links in messages point at the port `make run PORT=…` serves on.
SITE_URL = env("DJANGO_SITE_URL", default=f"http://127.0.0.1:{env('PORT', default='8000')}")

if not DATABASE_URL:
    from config.postgres import embedded_postgres_url

    DATABASES = {
        "default": database_settings(
            embedded_postgres_url(
                Path(
                    env("DJANGO_EMBEDDED_POSTGRES_DIR", default=str(BASE_DIR / "var" / "postgres"))
                ),
                database="recoverydesk",
            )
        )
    }
