"""Settings for the Celery worker that tests start: the test database, file-based backends."""

from .test import *  # noqa: F403
from .test import env

CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_URL = env("REDIS_URL")
# Shared with the test process, as production's web and workers share theirs: the key that
# asks for a delivery task is added there and cleared here.
CACHES = {"default": {"BACKEND": "config.cache.RedisCache", "LOCATION": env("REDIS_URL")}}
# A test may point the worker at servers it started (an SMTP server, an SMS gateway stub).
EMAIL_BACKEND = env("DJANGO_EMAIL_BACKEND", default="notifications.mail.DevInboxEmailBackend")
SMS_BACKEND = env("DJANGO_SMS_BACKEND", default="notifications.sms.backends.DevInboxBackend")
DEV_INBOX_DIR = env("DJANGO_DEV_INBOX_DIR")
