"""Development settings: SQLite, eager Celery, console + dev-inbox email and SMS."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-development-key-only-for-make-run")
EMAIL_BACKEND = env("DJANGO_EMAIL_BACKEND", default="accounts.mail.DevInboxEmailBackend")
SMS_BACKEND = env("DJANGO_SMS_BACKEND", default="accounts.sms.backends.DevInboxBackend")
