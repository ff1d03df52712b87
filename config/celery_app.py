"""The Celery application, configured from Django settings prefixed CELERY_."""

import logging
import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

logger = logging.getLogger(__name__)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("recovery_desk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(task=None, **kwargs) -> None:
    """Give each task the connection handling Django gives each request.

    Celery's fixup would otherwise open a PostgreSQL connection per task (a server process
    forked and authenticated each time), which costs more than a short task itself. A
    connection past CONN_MAX_AGE, or one an error may have broken, is closed here; a kept
    one is health-checked before its first query (CONN_HEALTH_CHECKS). No task has a time
    limit that could interrupt a query and leave its connection unusable unnoticed.
    Eager tasks run inside the caller's transaction and leave its connection alone.
    """
    if task is not None and not getattr(task.request, "is_eager", False):
        from django.db import close_old_connections

        close_old_connections()


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
