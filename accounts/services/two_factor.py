"""Two-factor authentication: TOTP enrolment, backup codes and verification through django-otp."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from django.conf import settings
from django.db import transaction
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import (
    BACKUP_CODE_ALPHABET,
    BackupCode,
    BackupCodeDevice,
    SecurityEvent,
    User,
    backup_code_compact,
    backup_code_hash,
)
from accounts.services.audit import AuditContext, security_event_record
from accounts.services.holds import security_changes_check, security_hold_extend

# Wrong codes in a row after which the page says there were too many: a single wrong code
# already delays the next try by a second, which is no reason to say "too many".
TOO_MANY_WRONG_CODES = 3


@dataclass(frozen=True)
class VerifyResult:
    """The device that accepted the code, or why none did: `locked_until` is when the
    throttle lets a code be tried again, `failures` the wrong codes in a row behind it."""

    device: Device | None
    locked_until: datetime | None = None
    failures: int = 0

    @property
    def too_many(self) -> bool:
        return self.locked_until is not None and self.failures >= TOO_MANY_WRONG_CODES


def backup_code_new() -> str:
    """80 random bits as four groups of Crockford base32, e.g. `K3QF-7ZAB-M2XD-9PWC`."""
    raw = "".join(secrets.choice(BACKUP_CODE_ALPHABET) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def _backup_codes_replace(*, user: User) -> list[str]:
    device, _created = BackupCodeDevice.objects.get_or_create(
        user=user, defaults={"name": "Backup codes", "confirmed": True}
    )
    device.codes.all().delete()
    codes = [backup_code_new() for _ in range(settings.BACKUP_CODE_COUNT)]
    BackupCode.objects.bulk_create(
        BackupCode(device=device, code_hash=backup_code_hash(code)) for code in codes
    )
    device.throttle_reset()
    return codes


def totp_device_start(*, user: User) -> TOTPDevice:
    """Create a fresh unconfirmed authenticator for the setup page, dropping earlier attempts."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


class TotpSetupRefused(Exception):
    """The setup does not fit the account: a re-enrolment it does not need, or a first
    setup for an account whose 2FA was revoked (that one needs the re-enrolment flow)."""


def totp_device_confirm(
    *, user: User, device_id: int, code: str, context: AuditContext, reenrolment: bool = False
) -> list[str] | None:
    """Confirm a new authenticator with a code from it; returns the new backup codes, or
    None when the code does not match.

    Any earlier authenticator of the user is removed in the same transaction, so a user
    has exactly one. A first setup records that 2FA is on. A re-enrolment (`reenrolment`,
    after a revocation) clears the re-enrolment flag, records a re-enrolment (notified to
    every contact on file) and puts the account on hold (never shortening a longer hold,
    such as an agent's recovery). The flow must match the account's
    flag, read under lock, or `TotpSetupRefused` is raised: a password alone never replaces
    a revoked authenticator. Outside a re-enrolment, replacing a working authenticator or
    adding an app to an account with a passkey is refused during a security hold
    (SecurityHoldActive).
    """
    with transaction.atomic():
        account = User.objects.select_for_update().get(pk=user.pk)
        if account.reenrolment_required != reenrolment:
            raise TotpSetupRefused
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(pk=device_id, user=account, confirmed=False)
            .first()
        )
        replaces = TOTPDevice.objects.filter(user=account, confirmed=True).exclude(pk=device_id)
        if not reenrolment and (
            replaces.exists()
            or WebAuthnCredential.objects.filter(user=account, confirmed=True).exists()
        ):
            # Replacing a working authenticator, or adding an app beside a passkey, is a
            # factor change; a first one after a recovery removed the devices is the
            # recovery itself.
            security_changes_check(user=account)
        if device is None or not device.verify_token(code):
            return None
        TOTPDevice.objects.filter(user=account).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = _backup_codes_replace(user=account)
        event_type = SecurityEvent.Type.TWO_FACTOR_ENABLED
        if reenrolment:
            event_type = SecurityEvent.Type.TWO_FACTOR_REENROLLED
            account.reenrolment_required = False
            account.save(update_fields=["reenrolment_required"])
            security_hold_extend(user=account, hours=settings.SECURITY_HOLD_HOURS_REENROLMENT)
        security_event_record(user=account, type=event_type, context=context)
    return codes


def two_factor_verify(*, user: User, code: str, context: AuditContext) -> VerifyResult:
    """Check a TOTP code, then a backup code; a used backup code is recorded and notified.

    Replayed TOTP codes are refused by django-otp (it keeps the last accepted time step),
    and every device throttles failures with an exponential delay.
    """
    code = code.strip()
    locked_until = None
    failures = 0
    with transaction.atomic():
        devices: list[Device] = [
            *TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True),
            *BackupCodeDevice.objects.select_for_update().filter(user=user, confirmed=True),
        ]
        for device in devices:
            allowed, details = device.verify_is_allowed()
            if not allowed:
                locked_until = (details or {}).get("locked_until") or locked_until
                failures = max(failures, (details or {}).get("failure_count") or 0)
                continue
            is_backup = isinstance(device, BackupCodeDevice)
            # A backup code is 16 characters and a TOTP code 6 digits: try only the kind that fits.
            if is_backup != (len(backup_code_compact(code)) == 16):
                continue
            if device.verify_token(code):
                if is_backup:
                    security_event_record(
                        user=user,
                        type=SecurityEvent.Type.BACKUP_CODE_USED,
                        context=context,
                        details={"codes_left": device.codes.count()},
                    )
                return VerifyResult(device=device)
    return VerifyResult(device=None, locked_until=locked_until, failures=failures)


def backup_codes_regenerate(*, user: User, code: str, context: AuditContext) -> list[str] | None:
    """Replace all backup codes after a current authenticator code; returns the new codes.

    New codes are a new factor: refused during a security hold (SecurityHoldActive),
    before the authenticator code is looked at.
    """
    security_changes_check(user=user)
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
        if device is None or not device.verify_token(code.strip()):
            return None
        codes = _backup_codes_replace(user=user)
        security_event_record(
            user=user, type=SecurityEvent.Type.BACKUP_CODES_REGENERATED, context=context
        )
    return codes


def two_factor_provision(
    *, user: User, context: AuditContext, key: str | None = None, notify: bool = True
) -> tuple[TOTPDevice, list[str]]:
    """Give a user a confirmed authenticator and fresh backup codes (operator commands).

    `key` (hex) lets the demo seed keep the same authenticator across runs.
    """
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        fields = {"key": key} if key else {}
        device = TOTPDevice.objects.create(
            user=user, name="Authenticator app", confirmed=True, **fields
        )
        codes = _backup_codes_replace(user=user)
        security_event_record(
            user=user, type=SecurityEvent.Type.TWO_FACTOR_ENABLED, context=context, notify=notify
        )
    return device, codes


class Recheck(Enum):
    """The answer to a staff member's fresh authenticator code for one sensitive action."""

    OK = "ok"
    MISSING = "missing"
    WRONG = "wrong"
    THROTTLED = "throttled"
    NO_AUTHENTICATOR = "no_authenticator"


def staff_otp_recheck(*, user: User, code: str, action: str, context: AuditContext) -> Recheck:
    """Check a fresh code from the staff member's own authenticator before `action`.

    A session alone (a stolen cookie, a browser left open) cannot take a sensitive
    supervisor step: each one needs a code from the device in the supervisor's hand. The
    device rows are locked as `django_otp.verify_token` locks them; django-otp refuses a
    code of a time step already used (the sign-in's included, so a code is good for one
    action only) and throttles failures with a growing delay. Only an authenticator app
    counts: a backup code is for a lost phone, and using one here would also burn it.

    A failure of any kind writes a security event on the staff member's own account
    (`staff_recheck_failed`, naming `action` and why); it commits even though the action
    does not happen.
    """
    code = code.strip()
    with transaction.atomic():
        devices = list(TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True))
        if not devices:
            result = Recheck.NO_AUTHENTICATOR
        elif not code:
            result = Recheck.MISSING
        else:
            result = Recheck.THROTTLED
            for device in devices:
                allowed, _details = device.verify_is_allowed()
                if not allowed:
                    continue
                if device.verify_token(code):
                    return Recheck.OK
                result = Recheck.WRONG
        security_event_record(
            user=user,
            type=SecurityEvent.Type.STAFF_RECHECK_FAILED,
            context=context,
            notify=False,
            details={"action": action, "reason": result.value},
        )
    return result
