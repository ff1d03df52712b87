"""Mass 2FA revocation: a declared campaign, worked in set-based, resumable batches.

Each batch is one transaction that removes the devices, flags the users, ends their
sessions, writes one security event and queues one campaign notice per user, and marks
its targets done. A run killed half way leaves whole batches done and the rest untouched;
resuming picks up the targets not yet done, so nobody is revoked or notified twice (the
database also refuses a second notice per campaign and account).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from allauth.usersessions.models import UserSession
from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import (
    BackupCode,
    BackupCodeDevice,
    CampaignTarget,
    Notification,
    RevocationCampaign,
    SecurityEvent,
    User,
)
from accounts.services.audit import security_events_chain_and_save
from accounts.services.notifications import (
    notification_reference_new,
    notifications_enqueue_batches,
)


def revocation_selection(
    *,
    all_users: bool = False,
    identifiers: Iterable[str] | None = None,
    joined_before: datetime | None = None,
    last_login_before: datetime | None = None,
) -> QuerySet[User]:
    """The customers a campaign covers: everyone, a list of ids/emails, or filters."""
    users = User.objects.filter(is_staff=False)
    if identifiers is not None:
        ids, emails = [], []
        for raw in identifiers:
            value = raw.strip()
            if value:
                (ids if value.isdigit() else emails).append(value)
        users = users.filter(
            Q(pk__in=[int(i) for i in ids]) | Q(email__in=[e.lower() for e in emails])
        )
    elif not (all_users or joined_before or last_login_before):
        raise ValueError("Choose --all, --users FILE or a filter.")
    if joined_before:
        users = users.filter(date_joined__lt=joined_before)
    if last_login_before:
        users = users.filter(Q(last_login__lt=last_login_before) | Q(last_login__isnull=True))
    return users


def revocation_campaign_start(
    *, reason: str, operator: str, users: QuerySet[User], selection: dict
) -> RevocationCampaign:
    """Record the campaign and freeze whom it covers (one INSERT … SELECT)."""
    if not reason.strip():
        raise ValueError("A reason is required.")
    with transaction.atomic():
        campaign = RevocationCampaign.objects.create(
            reason=reason, operator=operator, selection=selection
        )
        select_sql, params = users.values_list("id", flat=True).query.sql_with_params()
        # The SELECT is compiled by the ORM and every value is a bound parameter.
        insert = (
            f"INSERT INTO {CampaignTarget._meta.db_table} (campaign_id, user_id) "  # noqa: S608 # nosec B608
            f"SELECT %s, pk_source.id FROM ({select_sql}) AS pk_source"
        )
        with connection.cursor() as cursor:
            cursor.execute(insert, [campaign.pk, *params])
            total = cursor.rowcount
        campaign.total = total
        campaign.save(update_fields=["total"])
    return campaign


def revocation_batch_run(*, campaign: RevocationCampaign, batch_size: int) -> int:
    """Revoke the next batch of not-yet-done targets; returns how many (0 when finished)."""
    with transaction.atomic():
        targets = list(
            CampaignTarget.objects.select_for_update(skip_locked=True)
            .filter(campaign=campaign, done_at__isnull=True)
            .order_by("user_id")
            .values_list("pk", "user_id")[:batch_size]
        )
        if not targets:
            return 0
        target_ids = [pk for pk, _user in targets]
        user_ids = [user_id for _pk, user_id in targets]
        users = list(User.objects.filter(pk__in=user_ids).values_list("pk", "email", "language"))

        TOTPDevice.objects.filter(user_id__in=user_ids).delete()
        BackupCode.objects.filter(device__user_id__in=user_ids).delete()
        BackupCodeDevice.objects.filter(user_id__in=user_ids).delete()
        User.objects.filter(pk__in=user_ids).update(reenrolment_required=True)
        session_keys = UserSession.objects.filter(user_id__in=user_ids).values("session_key")
        Session.objects.filter(session_key__in=session_keys).delete()
        UserSession.objects.filter(user_id__in=user_ids).delete()

        events = security_events_chain_and_save(
            [
                SecurityEvent(
                    account_id=pk,
                    type=SecurityEvent.Type.TWO_FACTOR_REVOKED,
                    details={"campaign": campaign.pk},
                )
                for pk, _email, _language in users
            ]
        )
        notices = Notification.objects.bulk_create(
            [
                Notification(
                    reference=notification_reference_new(),
                    channel=Notification.Channel.EMAIL,
                    recipient=email,
                    account_id=pk,
                    template_key="accounts/campaign_revocation",
                    language=language,
                    idempotency_key=f"campaign:{campaign.pk}:{pk}",
                    campaign=campaign,
                    security_event=event,
                )
                for (pk, email, language), event in zip(users, events, strict=True)
            ]
        )
        CampaignTarget.objects.filter(pk__in=target_ids).update(done_at=timezone.now())
        notice_ids = [notice.pk for notice in notices]
        transaction.on_commit(lambda: notifications_enqueue_batches(notice_ids))
    return len(targets)


def revocation_campaign_run(
    *,
    campaign: RevocationCampaign,
    batch_size: int,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Work all remaining batches; returns how many users this run revoked."""
    revoked = 0
    while True:
        done = revocation_batch_run(campaign=campaign, batch_size=batch_size)
        if not done:
            break
        revoked += done
        if progress:
            progress(done)
    campaign.status = RevocationCampaign.Status.FINISHED
    campaign.finished_at = timezone.now()
    campaign.save(update_fields=["status", "finished_at"])
    return revoked


def revocation_campaign_remaining(*, campaign: RevocationCampaign) -> int:
    return CampaignTarget.objects.filter(campaign=campaign, done_at__isnull=True).count()
