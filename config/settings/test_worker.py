"""Settings for the Celery worker that tests start: the test database, file-based backends."""

from .test import *  # noqa: F403
from .test import env

CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_URL = env("REDIS_URL")
EMAIL_BACKEND = "notifications.mail.DevInboxEmailBackend"
SMS_BACKEND = "notifications.sms.backends.DevInboxBackend"
DEV_INBOX_DIR = env("DJANGO_DEV_INBOX_DIR")
