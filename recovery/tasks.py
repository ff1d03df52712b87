"""Celery entry points of self-service recovery."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def email_hint_send_task(hint_request_id: int) -> bool:
    from recovery.services import email_hint_send

    return email_hint_send(hint_request_id=hint_request_id)


@shared_task
def email_hint_sweep_task() -> int:
    from recovery.services import email_hint_sweep

    return email_hint_sweep()


@shared_task
def self_service_apply_due_task() -> int:
    from recovery.self_service import self_service_apply_due

    return self_service_apply_due()
