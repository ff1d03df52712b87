"""Recovery data: login-email hint requests and self-service recovery attempts."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class EmailHintRequest(models.Model):
    """One "which email did I use?" request: stored at once, answered by a worker.

    The page answers before anyone looks the number up, so neither its content nor its
    timing can tell whether the number belongs to an account.
    """

    phone = models.CharField(max_length=20)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    language = models.CharField(max_length=8, default="en")
    created_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["phone", "-created_at"])]

    def __str__(self) -> str:
        return f"email hint request #{self.pk}"


class SelfServiceRecovery(models.Model):
    """One customer's self-service recovery attempt: its proofs, its wait, and its end.

    `lost_factor` (/recover/lost-2fa/) ends with a new authenticator; `new_email`
    (/recover/new-email/) with a new login email. The attempt belongs to the browser session
    that started it (`session_token_hash`): nobody else can go on with it. The wait starts
    only once the policy is met, and every contact on file can cancel it meanwhile.
    """

    class Kind(models.TextChoices):
        LOST_FACTOR = "lost_factor", _("Lost second factor")
        NEW_EMAIL = "new_email", _("New login email")

    class Status(models.TextChoices):
        PROVING = "proving", _("Proving who it is")
        WAITING = "waiting", _("Waiting period")
        READY = "ready", _("Setting up the new authenticator")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Stopped from a contact on file")
        ABANDONED = "abandoned", _("Replaced by a newer attempt")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PROVING)
    session_token_hash = models.CharField(max_length=64)
    # Each proof as {"method": <accounts.policy.Method>, "at": <ISO time>}.
    proofs = models.JSONField(default=list, blank=True)
    new_email = models.EmailField(blank=True)
    risk_factors = models.JSONField(default=list, blank=True)
    wait_hours = models.PositiveIntegerField(null=True, blank=True)
    wait_ends_at = models.DateTimeField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    cancelled_via = models.CharField(max_length=8, blank=True)
    case = models.ForeignKey(
        "support.RecoveryCase", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One waiting attempt per account: a second one could race the first to the end.
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(status__in=["waiting", "ready"]),
                name="one_waiting_self_service_per_account",
            )
        ]
        indexes = [models.Index(fields=["status", "wait_ends_at"])]

    def __str__(self) -> str:
        return f"{self.kind} attempt #{self.pk}"

    @property
    def wait_over(self) -> bool:
        return self.wait_ends_at is not None and self.wait_ends_at <= timezone.now()


class SelfServiceCancelLink(models.Model):
    """The cancel link of one attempt sent to one contact on file: hashed, single use, expiring."""

    attempt = models.ForeignKey(
        SelfServiceRecovery, on_delete=models.CASCADE, related_name="cancel_links"
    )
    channel = models.CharField(max_length=8)
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"cancel link of {self.attempt}"
