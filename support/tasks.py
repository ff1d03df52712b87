"""Celery entry points of the support queue."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def case_triage_task(
    case_id: int | None = None, notification_ids: list[int] | None = None
) -> str | dict[str, int]:
    """Triage every case waiting for it, in batches; or the one case named (a task queued
    before triage went by batch)."""
    from support.services.cases import case_triage, cases_triage_due

    if case_id is None:
        return cases_triage_due()
    return case_triage(case_id=case_id, also_send=notification_ids or ())


@shared_task
def case_link_resend_task(reference: str, contact_email: str) -> bool:
    from support.services.cases import case_link_resend

    return case_link_resend(reference=reference, contact_email=contact_email)


@shared_task
def case_triage_sweep_task() -> int:
    from support.services.cases import case_triage_sweep

    return case_triage_sweep()


@shared_task
def case_claims_release_stale_task() -> int:
    from support.services.queue import case_claims_release_stale

    return case_claims_release_stale()


@shared_task
def email_changes_apply_due_task() -> int:
    from support.services.actions import email_changes_apply_due

    return email_changes_apply_due()


@shared_task
def tokens_expire_task() -> dict:
    from support.services.cleanup import tokens_expire

    return tokens_expire()


@shared_task
def cases_awaiting_customer_follow_up_task() -> dict:
    from support.services.reminders import cases_awaiting_customer_follow_up

    return cases_awaiting_customer_follow_up()
