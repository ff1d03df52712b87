"""Reads of the outbox for the message check page, the admin banner and the operators' command."""

from __future__ import annotations

from django.db.models import Count, OuterRef, Q, Subquery

from notifications.models import SUSPECT_PREFIX, DeliveryHold, Notification, Retraction


def notification_find_sent(*, reference: str) -> Notification | None:
    """A message we really sent, by the reference printed in it.

    Its `retracted_at` is set when an operator later told its recipient it was sent in error.
    """
    notification = (
        Notification.objects.filter(reference=reference, status=Notification.Status.SENT)
        .annotate(
            retracted_at=Subquery(
                Retraction.objects.filter(original=OuterRef("pk")).values("retracted_at")[:1]
            )
        )
        .first()
    )
    return notification


def notification_status_summary() -> dict:
    """Outbox counts by status and the burst guard's holds (for operators and supervisors)."""
    by_status = dict(
        Notification.objects.values("status").annotate(n=Count("id")).values_list("status", "n")
    )
    holds = [
        {
            "template_key": hold.template_key,
            "held_at": hold.held_at,
            "held": Notification.objects.filter(
                template_key=hold.template_key, status=Notification.Status.HELD
            ).count(),
        }
        for hold in DeliveryHold.objects.filter(released_at__isnull=True).order_by("held_at")
    ]
    suspect = dict(
        Notification.objects.filter(
            status=Notification.Status.HELD, last_error__startswith=SUSPECT_PREFIX
        )
        .values("template_key")
        .annotate(n=Count("id"))
        .values_list("template_key", "n")
    )
    from accounts.services.revocation import SMS_OVER_BUDGET

    over_budget = Notification.objects.filter(
        status=Notification.Status.HELD, last_error=SMS_OVER_BUDGET
    ).count()
    return {
        "by_status": by_status,
        "holds": holds,
        "suspect": suspect,
        "texts_over_budget": over_budget,
    }


def notification_held_counts() -> dict[str, int]:
    """Notices kept from delivery right now, by type: held by the burst guard, as suspect
    by the send-time check, or as campaign texts over the SMS budget (the dashboard's
    "held notifications")."""
    return dict(
        Notification.objects.filter(status=Notification.Status.HELD)
        .values("template_key")
        .annotate(n=Count("id"))
        .order_by("template_key")
        .values_list("template_key", "n")
    )


def notification_held_types() -> list[str]:
    """The notice types an operator can release or discard: the security notices, and the
    campaign notices whose texts wait over the SMS budget."""
    from accounts.services.revocation import CAMPAIGN_TEMPLATE
    from notifications.services import SECURITY_NOTICE_TYPES

    return sorted({f"security/{t}" for t in SECURITY_NOTICE_TYPES} | {CAMPAIGN_TEMPLATE})


def delivery_holds_active() -> list[str]:
    """The types the supervisors are alerted to: held by the burst guard, or holding notices
    whose event the account's state does not bear out (the send-time check)."""
    held = set(
        DeliveryHold.objects.filter(released_at__isnull=True).values_list("template_key", flat=True)
    )
    held |= set(
        Notification.objects.filter(
            status=Notification.Status.HELD, last_error__startswith=SUSPECT_PREFIX
        )
        .values_list("template_key", flat=True)
        .distinct()
    )
    return sorted(held)


def notification_last_id() -> int:
    """The id of the newest outbox row (0 for none): a mark to find what an action sends."""
    return Notification.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def notification_list_after(
    *, after_id: int, account_id: int | None, recipients: list[str]
) -> list[Notification]:
    """Outbox rows written after `after_id` for one account or to the given addresses."""
    about = Q(recipient__in=recipients)
    if account_id is not None:
        about |= Q(account_id=account_id)
    return list(Notification.objects.filter(about, pk__gt=after_id).order_by("pk"))
