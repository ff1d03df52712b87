"""Removing expired secrets: codes and links past their life are deleted, not kept around."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import NotMeLink, OneTimeCode
from recovery.models import SelfServiceCancelLink
from support.models import CaseLink, RecoveryLink

# Used rows stay a day so support can see what happened, then go too.
USED_ROWS_KEPT = timedelta(days=1)


def tokens_expire() -> dict[str, int]:
    """Delete expired and used one-time codes and links; returns counts per kind.

    A status link is not single use: it opens its request's page on any device for the
    request's whole life, so it goes when it expires or when its request closed longer ago
    than `CASE_LINK_DAYS_AFTER_CLOSE`, the moment the page stops accepting it, never
    because it was opened.
    """
    now = timezone.now()
    counts = {}
    with transaction.atomic():
        for label, model, used_field in (
            ("one_time_codes", OneTimeCode, "consumed_at"),
            ("not_me_links", NotMeLink, "used_at"),
            ("recovery_links", RecoveryLink, "used_at"),
            ("self_service_cancel_links", SelfServiceCancelLink, "used_at"),
        ):
            expired = model.objects.filter(expires_at__lt=now).delete()[0]
            used = model.objects.filter(**{f"{used_field}__lt": now - USED_ROWS_KEPT}).delete()[0]
            counts[label] = expired + used
        closed_before = now - timedelta(days=settings.CASE_LINK_DAYS_AFTER_CLOSE)
        counts["case_links"] = CaseLink.objects.filter(
            Q(expires_at__lt=now) | Q(case__closed_at__lt=closed_before)
        ).delete()[0]
    return counts
