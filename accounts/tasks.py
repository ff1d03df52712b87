"""Celery entry points for the outbox: deliver one notification, sweep overdue ones."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def notification_deliver_task(notification_id: int) -> bool:
    from accounts.services.notifications import notification_deliver

    return notification_deliver(notification_id=notification_id)


@shared_task
def notification_sweep_task() -> int:
    from accounts.services.notifications import notification_sweep

    return notification_sweep()
