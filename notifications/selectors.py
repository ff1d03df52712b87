"""Reads of the outbox for the message check page, the admin banner and the operators' command."""

from __future__ import annotations

from django.db.models import Count

from notifications.models import DeliveryHold, Notification


def notification_find_sent(*, reference: str) -> Notification | None:
    """A message we really sent, by the reference printed in it."""
    return Notification.objects.filter(reference=reference, status=Notification.Status.SENT).first()


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
    return {"by_status": by_status, "holds": holds}


def delivery_holds_active() -> list[str]:
    return list(
        DeliveryHold.objects.filter(released_at__isnull=True).values_list("template_key", flat=True)
    )
