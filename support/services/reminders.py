"""Cases waiting for the customer: reminders after `SUPPORT_REMINDER_DAYS`, then closing.

A case waits for its customer from the agent's last question. The customer hears by email
(through the outbox, with a fresh status link) after each reminder day; after
`SUPPORT_AUTO_CLOSE_DAYS` the case closes as `no_answer`, and a reply on the status page
opens it again (`cases.case_customer_reply`).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from notifications.models import Notification
from notifications.services import notification_queue
from support.models import CaseEvent, CaseStatus, RecoveryCase
from support.services.cases import case_event_add, case_link_issue


def _tell(case: RecoveryCase, *, template_key: str, key: str) -> None:
    token, _notice = case_link_issue(case=case)
    notification_queue(
        channel=Notification.Channel.EMAIL,
        recipient=case.contact_email,
        template_key=template_key,
        idempotency_key=f"case:{case.pk}:{key}",
        language=case.language,
        context={
            "case_reference": case.reference,
            "link_token": token,
            "close_days": settings.SUPPORT_AUTO_CLOSE_DAYS,
            # A closed case's link opens its page only this long (`_case_link_usable`).
            "reply_days": settings.CASE_LINK_DAYS_AFTER_CLOSE,
        },
    )


def cases_awaiting_customer_follow_up() -> dict[str, int]:
    """Send the reminders that are due and close the cases that waited too long.

    Idempotent: each reminder is counted on the case and keyed in the outbox by the
    question it reminds of, so a second run (or two beat workers) sends nothing twice.
    """
    now = timezone.now()
    days = sorted(settings.SUPPORT_REMINDER_DAYS)
    reminded = closed = 0
    waiting = RecoveryCase.objects.filter(
        status=CaseStatus.AWAITING_CUSTOMER, merged_into__isnull=True
    ).values_list("pk", flat=True)
    for case_id in list(waiting):
        with transaction.atomic():
            case = (
                RecoveryCase.objects.select_for_update(skip_locked=True)
                .filter(pk=case_id, status=CaseStatus.AWAITING_CUSTOMER)
                .first()
            )
            if case is None:
                continue
            question = (
                case.events.filter(type=CaseEvent.Type.AGENT_MESSAGE)
                .order_by("-created_at", "-id")
                .first()
            )
            if question is None:
                continue
            waited = now - question.created_at
            if waited >= timedelta(days=settings.SUPPORT_AUTO_CLOSE_DAYS):
                case.status = CaseStatus.CANCELLED
                case.resolution = RecoveryCase.Resolution.NO_ANSWER
                case.closed_at = now
                case.save(update_fields=["status", "resolution", "closed_at", "updated_at"])
                case_event_add(case=case, type=CaseEvent.Type.AUTO_CLOSED, visible_to_customer=True)
                _tell(
                    case, template_key="support/case_closed_no_answer", key=f"closed:{question.pk}"
                )
                closed += 1
            elif case.reminders_sent < len(days) and waited >= timedelta(
                days=days[case.reminders_sent]
            ):
                case.reminders_sent += 1
                case.save(update_fields=["reminders_sent", "updated_at"])
                case_event_add(
                    case=case,
                    type=CaseEvent.Type.REMINDER_SENT,
                    visible_to_customer=True,
                    details={"reminder": case.reminders_sent, "channel": "email"},
                )
                _tell(
                    case,
                    template_key="support/case_reminder",
                    key=f"reminder:{question.pk}:{case.reminders_sent}",
                )
                reminded += 1
    return {"reminded": reminded, "closed": closed}
