"""Self-service recovery: the login-email hint, 2FA re-enrolment codes and "this wasn't me"."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.contacts import mask_email
from accounts.models import NotMeLink, OneTimeCode, SecurityEvent, User
from accounts.services.audit import AuditContext, security_event_record
from accounts.services.tokens import LinkNoLongerValid, one_time_code_issue
from accounts.services.users import user_sessions_end_all
from config.celery_app import enqueue_after_commit
from notifications.models import Notification
from notifications.services import notification_queue, notifications_deliver_after_commit
from recovery.models import EmailHintRequest
from recovery.selectors import account_reenrolment_by_email_open
from recovery.self_service import self_service_stop_for_frozen
from recovery.tasks import email_hint_send_task
from support.models import CaseEvent, CasePriority, RecoveryCase, RecoveryLink
from support.services import case_event_add, login_email_hint_send, not_me_case_open
from support.services.actions import email_changes_stop_for_frozen


def email_hint_request(*, phone: str, ip_address: str | None, language: str) -> EmailHintRequest:
    """Record a "which email did I use?" request; a worker looks the number up later.

    The request does the same work for every number, so its answer and its timing are the
    same whether or not the number belongs to an account.
    """
    with transaction.atomic():
        hint_request = EmailHintRequest.objects.create(
            phone=phone, ip_address=ip_address, language=language
        )
        enqueue_after_commit(email_hint_send_task, hint_request.pk)
    return hint_request


def email_hint_send(*, hint_request_id: int) -> bool:
    """Answer one hint request: SMS (masked) and email to the account that holds the number."""
    with transaction.atomic():
        hint_request = (
            EmailHintRequest.objects.select_for_update()
            .filter(pk=hint_request_id, processed_at__isnull=True)
            .first()
        )
        if hint_request is None:
            return False
        hint_request.processed_at = timezone.now()
        hint_request.save(update_fields=["processed_at"])
        user = User.objects.filter(phone=hint_request.phone, is_active=True).first()
        if user is None:
            return False
        notices = login_email_hint_send(
            user=user, idempotency_prefix=f"email-hint:{hint_request.pk}", enqueue=False
        )
        # This runs in a worker: it sends both messages itself, after the commit.
        notifications_deliver_after_commit([n.pk for n in notices])
    return True


def reenrolment_code_send(*, user: User) -> Notification | None:
    """Email a 6-digit code to the account's address: the step after the password, while
    the account's re-enrolment is this flow's (`account_reenrolment_by_email_open`)."""
    if not account_reenrolment_by_email_open(user=user):
        return None
    with transaction.atomic():
        row, code = one_time_code_issue(user=user, purpose=OneTimeCode.Purpose.REENROLMENT)
        return notification_queue(
            channel=Notification.Channel.EMAIL,
            recipient=user.email,
            template_key="recovery/reenrolment_code",
            idempotency_key=f"reenrol-code:{row.pk}",
            language=user.language,
            account_id=user.pk,
            context={
                "code": code,
                "masked_email": mask_email(user.email),
                # A string, as every value of this message, so its rendering stays a fill-in.
                "minutes": str(settings.ONE_TIME_CODE_MINUTES),
            },
        )


def account_freeze(*, link: NotMeLink, context: AuditContext) -> RecoveryCase:
    """ "This wasn't me": freeze the account, end every session and open an urgent case.

    The link is consumed under its row lock: a second confirmation at the same moment gets
    LinkNoLongerValid and changes nothing.
    """
    with transaction.atomic():
        # The link's row only: the account row comes last (`account_freeze_in_transaction`).
        link = (
            NotMeLink.objects.select_for_update(of=("self",)).select_related("user").get(pk=link.pk)
        )
        if link.used_at is not None or link.expires_at <= timezone.now():
            raise LinkNoLongerValid
        user = link.user
        now = timezone.now()
        link.used_at = now
        link.save(update_fields=["used_at"])
        # The case before the account row, as an agent's action takes them.
        opened = not_me_case_open(user=user, priority=CasePriority.URGENT)
        account_freeze_in_transaction(user=user, now=now)
        security_event_record(
            user=user,
            type=SecurityEvent.Type.ACCOUNT_FROZEN,
            context=context,
            details={"reported_event_id": link.security_event_id},
        )
        case_event_add(
            case=opened.case,
            type=CaseEvent.Type.FROZEN,
            details={"security_event_id": link.security_event_id},
        )
    return opened.case


def account_freeze_in_transaction(*, user: User, now: datetime) -> None:
    """Freeze `user`: no sign-in until support clears it, every session ended, and nothing
    pending takes effect then (a recovery link on its way, a login-email change, a
    self-service attempt). The caller's transaction records why.

    The pending rows are locked before the account row, the order in which the paths that
    use them (a recovery's finish, a link's use, a change's application) lock them: a
    freeze at the same instant waits for one of those, or it for the freeze, and neither
    fails on a deadlock.
    """
    # A recovery link on its way (to a swapped SIM, say) would sign a browser in.
    RecoveryLink.objects.filter(user=user, used_at__isnull=True, expires_at__gt=now).update(
        expires_at=now
    )
    email_changes_stop_for_frozen(user=user)
    self_service_stop_for_frozen(user=user)
    user.frozen_at = now
    user.save(update_fields=["frozen_at"])
    user_sessions_end_all(user=user)


def email_hint_sweep() -> int:
    """Enqueue hint requests again that no worker answered (a lost task, a broker outage)."""
    overdue = EmailHintRequest.objects.filter(
        processed_at__isnull=True,
        created_at__lte=timezone.now() - settings.NOTIFICATION_SWEEP_AGE,
    ).values_list("pk", flat=True)[:5000]
    for hint_request_id in overdue:
        enqueue_after_commit(email_hint_send_task, hint_request_id)
    return len(overdue)
