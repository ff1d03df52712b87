"""Celery entry points of the support queue."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def case_triage_task(case_id: int) -> str:
    from support.services import case_triage

    return case_triage(case_id=case_id)
