"""Reads for the accounts pages, admin and commands."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from allauth.usersessions.models import UserSession
from django.db.models import QuerySet
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import BackupCode, SecurityEvent, User


@dataclass(frozen=True)
class TwoFactorStatus:
    enabled: bool
    backup_codes_left: int
    reenrolment_required: bool


def two_factor_status(*, user: User) -> TwoFactorStatus:
    return TwoFactorStatus(
        enabled=TOTPDevice.objects.filter(user=user, confirmed=True).exists(),
        backup_codes_left=BackupCode.objects.filter(device__user=user).count(),
        reenrolment_required=user.reenrolment_required,
    )


def user_has_authenticator(*, user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def totp_device_unconfirmed(*, user: User, device_id: int | None) -> TOTPDevice | None:
    """The authenticator this user's setup page started and has not confirmed yet."""
    if device_id is None:
        return None
    return TOTPDevice.objects.filter(pk=device_id, user=user, confirmed=False).first()


def security_event_list_recent(*, user: User, limit: int = 20) -> QuerySet[SecurityEvent]:
    return SecurityEvent.objects.filter(account_id=user.pk).order_by("-created_at", "-id")[:limit]


def user_session_list(*, user: User) -> list[UserSession]:
    """The user's live sessions, most recently active first (stale rows are purged)."""
    sessions = UserSession.objects.purge_and_list(user)
    return sorted(sessions, key=lambda s: s.last_seen_at, reverse=True)


class RestrictionReason:
    """Why the exchange should restrict an account (codes of the restrictions API)."""

    FROZEN = "account_frozen"
    SECURITY_HOLD = "security_hold"
    TWO_FACTOR_REENROLMENT = "two_factor_reenrolment_required"


@dataclass(frozen=True)
class AccountRestrictions:
    """What the exchange may let the account do now, and until when (None: until cleared)."""

    withdrawals_allowed: bool
    security_changes_allowed: bool
    until: datetime | None
    reasons: tuple[str, ...]


def account_restrictions(*, user: User, now: datetime | None = None) -> AccountRestrictions:
    """The account's restrictions as the exchange must enforce them.

    A frozen account ("this wasn't me") and one whose 2FA was revoked allow no withdrawal
    until support or the customer clears it (no end time); a security hold allows neither
    withdrawals nor security changes until it ends.
    """
    now = now or timezone.now()
    reasons: list[str] = []
    open_ended = False
    if user.frozen_at is not None:
        reasons.append(RestrictionReason.FROZEN)
        open_ended = True
    if user.reenrolment_required:
        reasons.append(RestrictionReason.TWO_FACTOR_REENROLMENT)
        open_ended = True
    hold_until = user.security_hold_until
    on_hold = hold_until is not None and hold_until > now
    if on_hold:
        reasons.append(RestrictionReason.SECURITY_HOLD)
    return AccountRestrictions(
        withdrawals_allowed=not reasons,
        security_changes_allowed=not (on_hold or user.frozen_at is not None),
        until=hold_until if on_hold and not open_ended else None,
        reasons=tuple(reasons),
    )
