"""Celery entry points of the accounts app."""

from __future__ import annotations

from celery import shared_task


@shared_task
def audit_checkpoint_task() -> str:
    from accounts.services.audit_checkpoint import audit_checkpoint_write

    path, _checkpoint = audit_checkpoint_write()
    return str(path)
