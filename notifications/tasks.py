"""Celery entry points for the outbox: hand over, deliver and sweep notifications."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings


# One row by id: tasks queued before the customers' rows went through the task that sends
# what is due.
@shared_task(acks_late=True)
def notification_deliver_task(notification_id: int) -> int:
    from notifications.services import notifications_deliver

    return notifications_deliver(notification_ids=[notification_id])


@shared_task(acks_late=True)
def notifications_deliver_due_task() -> int:
    from notifications.services import notifications_deliver_due

    return notifications_deliver_due()


@shared_task
def notification_sweep_task() -> int:
    from notifications.services import notification_sweep

    return notification_sweep()


@shared_task(acks_late=True)
def notifications_enqueue_task(notification_ids: list[int], channel: str) -> None:
    from notifications.models import Notification
    from notifications.services import notifications_enqueue_batches

    notifications_enqueue_batches(notification_ids, channel=Notification.Channel(channel))


# Per-channel send rates: each task is one batch, Celery spaces the batches per worker.
@shared_task(acks_late=True, rate_limit=settings.NOTIFICATION_BATCH_RATE_EMAIL)
def deliver_email_batch_task(notification_ids: list[int]) -> int:
    from notifications.services import notifications_deliver

    return notifications_deliver(notification_ids=notification_ids)


@shared_task(acks_late=True, rate_limit=settings.NOTIFICATION_BATCH_RATE_SMS)
def deliver_sms_batch_task(notification_ids: list[int]) -> int:
    from notifications.services import notifications_deliver

    return notifications_deliver(notification_ids=notification_ids)
