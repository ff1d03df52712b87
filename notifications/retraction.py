"""Retraction: tell exactly the recipients of an erroneous batch that it was sent in error.

Services and reads of `manage.py notifications retract`. A batch is a notice type within a
time window, or a campaign. Each message of the batch that was sent gets one "sent in error
— nothing changed" message by the same channel, in its recipient's language, quoting the
original's reference; what was not sent yet is discarded, so it never goes out. The
`Retraction` rows (one per original, by constraint) make a second run send nobody a second
message, and let the message check page answer "sent in error" for the originals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from accounts.models import SecurityEvent
from accounts.services.audit import security_events_append_many
from notifications.models import Notification, Retraction
from notifications.services import (
    context_removed,
    notification_references_new,
    notifications_enqueue_batches,
)

logger = logging.getLogger(__name__)

RETRACTION_TEMPLATE = "notifications/retraction"


@dataclass(frozen=True)
class RetractionPlan:
    """What a retraction of a batch would do: messages to retract, already retracted, unsent."""

    to_retract: int
    already_retracted: int
    unsent: int

    def as_dict(self) -> dict[str, int]:
        return {
            "to_retract": self.to_retract,
            "already_retracted": self.already_retracted,
            "unsent": self.unsent,
        }


def retraction_batch_select(
    *,
    template_key: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    campaign_id: int | None = None,
) -> QuerySet[Notification]:
    """The messages of an erroneous batch: a campaign's, or one type's within [since, until).

    Retractions themselves are never part of a batch.
    """
    rows = Notification.objects.exclude(template_key=RETRACTION_TEMPLATE)
    if campaign_id is not None:
        return rows.filter(campaign_id=campaign_id)
    if not template_key or since is None or until is None:
        raise ValueError("Give a campaign, or a type with a time window.")
    if since >= until:
        raise ValueError("The window must end after it starts.")
    return rows.filter(template_key=template_key, created_at__gte=since, created_at__lt=until)


def _not_retracted(rows: QuerySet[Notification]) -> QuerySet[Notification]:
    return rows.filter(~Exists(Retraction.objects.filter(original=OuterRef("pk"))))


def retraction_plan(*, batch: QuerySet[Notification]) -> RetractionPlan:
    sent = batch.filter(status=Notification.Status.SENT)
    to_retract = _not_retracted(sent).count()
    return RetractionPlan(
        to_retract=to_retract,
        already_retracted=sent.count() - to_retract,
        unsent=batch.filter(
            status__in=[Notification.Status.PENDING, Notification.Status.HELD]
        ).count(),
    )


@dataclass(frozen=True)
class RetractionResult:
    retracted: int
    discarded: int


def notifications_retract(
    *,
    batch: QuerySet[Notification],
    selection: dict[str, Any],
    operator: str,
    batch_size: int = 1000,
) -> RetractionResult:
    """Retract a batch: discard what is still unsent, and send each sent original a retraction.

    Works in transactions of `batch_size` originals; each locks its originals (skipping rows
    a parallel run holds) and writes, per original, the retraction message, the
    `Retraction` row and a security event on the account. A rerun, or a parallel one, finds
    those originals retracted and sends nothing more.
    """
    discarded = batch.filter(
        status__in=[Notification.Status.PENDING, Notification.Status.HELD]
    ).update(status=Notification.Status.DISCARDED, context=context_removed())
    retracted = 0
    while True:
        done = _retract_next(batch=batch, selection=selection, operator=operator, size=batch_size)
        if not done:
            break
        retracted += done
    return RetractionResult(retracted=retracted, discarded=discarded)


def _retract_next(
    *, batch: QuerySet[Notification], selection: dict[str, Any], operator: str, size: int
) -> int:
    with transaction.atomic():
        originals = list(
            _not_retracted(batch.filter(status=Notification.Status.SENT))
            .select_for_update(of=("self",), skip_locked=True)
            .order_by("pk")
            .only("pk", "channel", "recipient", "account_id", "language", "reference", "sent_at")[
                :size
            ]
        )
        if not originals:
            return 0
        now = timezone.now()
        references = notification_references_new(len(originals))
        notices = Notification.objects.bulk_create(
            [
                Notification(
                    reference=reference,
                    channel=original.channel,
                    recipient=original.recipient,
                    account_id=original.account_id,
                    template_key=RETRACTION_TEMPLATE,
                    language=original.language,
                    context={
                        "original_reference": original.reference,
                        # Written out, not a date object: the outbox context is JSON.
                        "original_sent": f"{(original.sent_at or now):%Y-%m-%d %H:%M} UTC",
                    },
                    idempotency_key=f"retraction:{original.pk}",
                    created_at=now,
                    next_attempt_at=now,
                )
                for original, reference in zip(originals, references, strict=True)
            ]
        )
        Retraction.objects.bulk_create(
            [
                Retraction(
                    original=original,
                    notice=notice,
                    batch=selection,
                    operator=operator,
                    retracted_at=now,
                )
                for original, notice in zip(originals, notices, strict=True)
            ]
        )
        security_events_append_many(
            account_ids=[o.account_id for o in originals if o.account_id is not None],
            type=SecurityEvent.Type.NOTICE_RETRACTED,
            details={"retraction": selection},
        )
        for original, notice in zip(originals, notices, strict=True):
            logger.info(
                "Message %s retracted as sent in error by %s (retraction %s)",
                original.reference,
                operator,
                notice.reference,
            )
        ids = [notice.pk for notice in notices]
        transaction.on_commit(lambda: notifications_enqueue_batches(ids))
    return len(originals)
