"""The notification outbox and the burst guard's delivery holds."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import RevocationCampaign, SecurityEvent

# `last_error` of a security notice the send-time check held: its event is not borne out by
# the account's state.
SUSPECT_PREFIX = "suspect:"

# What each value of a row's `context` becomes once the row is sent, failed for good or
# discarded: the values may be one-time links, codes or a whole rendered email, and a reader
# of the database (a backup, an analyst) must not find a live one. The names stay, so the
# outbox page still tells that the message carried a link.
CONTEXT_REMOVED = "[removed]"


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

    class Delivery(models.TextChoices):
        # A customer's own message: the one task that sends whatever is due takes it.
        DUE = "due", _("By the task that sends what is due")
        # Campaign and retraction batches, released holds, rows a worker sends itself.
        HANDED = "handed", _("By whoever it was handed to")

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
    # Also the database's default: a campaign's rows are inserted by a statement of its own.
    delivery = models.CharField(
        max_length=8,
        choices=Delivery.choices,
        default=Delivery.HANDED,
        db_default=Delivery.HANDED,
    )
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
            # The task that sends what is due takes the customers' rows oldest first.
            models.Index(
                fields=["id"],
                condition=models.Q(status="pending", delivery="due"),
                name="notification_due_idx",
            ),
            # The burst guard counts recent notices of one type outside campaigns.
            models.Index(
                fields=["template_key", "created_at"],
                condition=models.Q(campaign__isnull=True),
                name="notification_burst_idx",
            ),
            # Held rows are few: the operators' status and the supervisors' alert read them.
            models.Index(
                fields=["template_key"],
                condition=models.Q(status="held"),
                name="notification_held_idx",
            ),
        ]
        constraints = [
            # A campaign tells each account once by email and once by SMS, never twice.
            models.UniqueConstraint(
                fields=["campaign", "account_id", "channel"],
                condition=models.Q(campaign__isnull=False),
                name="one_notice_per_campaign_account_channel",
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


class Retraction(models.Model):
    """A "sent in error — nothing changed" message for one message we sent by mistake.

    One per original, by constraint: retracting a batch again sends nobody a second one.
    """

    original = models.OneToOneField(
        Notification, on_delete=models.PROTECT, related_name="retraction"
    )
    notice = models.OneToOneField(Notification, on_delete=models.PROTECT, related_name="+")
    batch = models.JSONField(default=dict, help_text=_("The selection the operator retracted."))
    operator = models.CharField(max_length=150)
    retracted_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"retraction of notification {self.original_id}"


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
