"""The Celery application, configured from Django settings prefixed CELERY_."""

import logging
import os

from celery import Celery

logger = logging.getLogger(__name__)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("recovery_desk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def enqueue_after_commit(task, *args) -> None:
    """Hand a task to the broker once the current transaction commits.

    A broker that is down must not turn an already committed change into an error: the
    failure is logged, the row the task would work on stays in the database, and the
    periodic sweep of its kind enqueues it again.
    """
    from django.db import transaction

    def send() -> None:
        try:
            task.delay(*args)
        except Exception:
            logger.warning("Could not enqueue %s%r; the sweep will retry", task.name, args)

    transaction.on_commit(send)
