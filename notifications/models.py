"""The notification outbox and the burst guard's delivery holds."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import RevocationCampaign, SecurityEvent


class Notification(models.Model):
    """Outbox row: one email or SMS, written with the change it reports, delivered after commit."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("Email")
        SMS = "sms", _("SMS")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        HELD = "held", _("Held by the burst guard")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        DISCARDED = "discarded", _("Discarded by an operator")

    reference = models.CharField(max_length=16, unique=True)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    recipient = models.CharField(max_length=254)
    account_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    template_key = models.CharField(max_length=80)
    language = models.CharField(max_length=8, default="en")
    context = models.JSONField(default=dict, blank=True)
    security_event = models.ForeignKey(
        SecurityEvent, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    idempotency_key = models.CharField(max_length=200, unique=True)
    campaign = models.ForeignKey(
        RevocationCampaign, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="notification_pending_idx",
            ),
            # The burst guard counts recent notices of one type outside campaigns.
            models.Index(
                fields=["template_key", "created_at"],
                condition=models.Q(campaign__isnull=True),
                name="notification_burst_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "account_id"],
                condition=models.Q(campaign__isnull=False),
                name="one_notice_per_campaign_and_account",
            ),
            # A security notice exists only because a security event does (no false alarms).
            models.CheckConstraint(
                condition=~models.Q(template_key__startswith="security/")
                | models.Q(security_event__isnull=False),
                name="security_notice_needs_event",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.channel} {self.template_key}"


class DeliveryHold(models.Model):
    """The burst guard's state for one notice type; in the database, so every worker obeys.

    Held while `released_at` is empty. After an operator's release or discard, only
    notices queued since then count towards the next burst.
    """

    template_key = models.CharField(max_length=80, unique=True)
    held_at = models.DateTimeField(default=timezone.now)
    queued_in_window = models.PositiveIntegerField(default=0)
    released_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"hold on {self.template_key}"
