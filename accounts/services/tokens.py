"""Secrets sent to customers: one-time codes and single-use links, stored only as hashes."""

from __future__ import annotations

import secrets
from datetime import timedelta
from enum import Enum

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.hashing import HashPurpose, keyed_hash, keyed_hash_candidates, keyed_hash_matches
from accounts.models import NotMeLink, OneTimeCode, SecurityEvent, User


def _code_input(code_id: int, code: str) -> str:
    # The row's id goes into the hash: equal codes of two rows get different hashes.
    return f"{code_id}:{code}"


class LinkNoLongerValid(Exception):
    """A single-use link was used (or expired) while this request held it: refuse cleanly.

    Raised under the row lock, so of two requests with one link exactly one acts.
    """


class CodeCheck(Enum):
    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    NONE = "none"


def one_time_code_issue(
    *, user: User, purpose: OneTimeCode.Purpose, scope: str = ""
) -> tuple[OneTimeCode, str]:
    """Create a fresh code (replacing earlier unused ones for the same purpose and scope).

    Returns the row and the raw code; the caller puts the raw code in an outbox message.
    """
    code = f"{secrets.randbelow(1_000_000):06d}"
    with transaction.atomic():
        OneTimeCode.objects.filter(
            user=user, purpose=purpose, scope=scope, consumed_at__isnull=True
        ).update(expires_at=timezone.now())
        row = OneTimeCode.objects.create(
            user=user,
            purpose=purpose,
            scope=scope,
            code_hash="",
            expires_at=timezone.now() + timedelta(minutes=settings.ONE_TIME_CODE_MINUTES),
        )
        row.code_hash = keyed_hash(_code_input(row.pk, code), purpose=HashPurpose.ONE_TIME_CODE)
        row.save(update_fields=["code_hash"])
    return row, code


def one_time_code_check(
    *, user: User, purpose: OneTimeCode.Purpose, code: str, scope: str = ""
) -> CodeCheck:
    """Check the newest code for this purpose; a right code is consumed, a wrong one counted."""
    with transaction.atomic():
        row = (
            OneTimeCode.objects.select_for_update()
            .filter(user=user, purpose=purpose, scope=scope, consumed_at__isnull=True)
            .order_by("-created_at", "-id")
            .first()
        )
        if row is None:
            return CodeCheck.NONE
        if row.expires_at <= timezone.now():
            return CodeCheck.EXPIRED
        if row.attempts >= settings.ONE_TIME_CODE_ATTEMPTS:
            return CodeCheck.TOO_MANY_ATTEMPTS
        if keyed_hash_matches(
            _code_input(row.pk, code.strip()), row.code_hash, purpose=HashPurpose.ONE_TIME_CODE
        ):
            row.consumed_at = timezone.now()
            row.save(update_fields=["consumed_at"])
            return CodeCheck.OK
        row.attempts += 1
        row.save(update_fields=["attempts"])
        return CodeCheck.WRONG


def not_me_link_issue(*, user: User, security_event: SecurityEvent | None) -> str:
    """Create the "this wasn't me" link for a security notice; returns the raw token."""
    token = secrets.token_urlsafe(32)
    NotMeLink.objects.create(
        token_hash=keyed_hash(token, purpose=HashPurpose.NOT_ME_LINK),
        user=user,
        security_event=security_event,
        expires_at=timezone.now() + timedelta(days=settings.NOT_ME_LINK_DAYS),
    )
    return token


def not_me_link_find(*, token: str) -> NotMeLink | None:
    """The unused, unexpired link for this token, or None (missing, used and expired alike)."""
    link = (
        NotMeLink.objects.select_related("user")
        .filter(
            token_hash__in=keyed_hash_candidates(token, purpose=HashPurpose.NOT_ME_LINK),
            used_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .first()
    )
    return link
