"""Recovery data: requests for the login-email hint, recorded before they are answered."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


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
