"""Keyed hashes of stored secrets: made with SECRET_KEY, checked against its fallbacks too."""

from __future__ import annotations

from enum import StrEnum

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac


class HashPurpose(StrEnum):
    """The `key_salt` of each kind of stored secret.

    A separate salt per purpose derives a separate key from SECRET_KEY, so a hash made
    for one purpose (a case link) never matches a lookup made for another (a recovery
    link), even for the same input.
    """

    BACKUP_CODE = "recovery_desk.backup_code"
    ONE_TIME_CODE = "recovery_desk.one_time_code"
    NOT_ME_LINK = "recovery_desk.not_me_link"
    CASE_LINK = "recovery_desk.case_link"
    RECOVERY_LINK = "recovery_desk.recovery_link"
    EMAIL_CHANGE_CANCEL = "recovery_desk.email_change_cancel"
    SELF_SERVICE_CANCEL = "recovery_desk.self_service_cancel"
    SELF_SERVICE_SESSION = "recovery_desk.self_service_session"
    SERVICE_TOKEN = "recovery_desk.service_token"  # noqa: S105 - a salt's name, not a secret
    ACCOUNT_STATE = "recovery_desk.account_state"


def _secrets() -> list[str]:
    # Read at call time, as Django's PasswordResetTokenGenerator does, so a settings
    # override (or a rotation picked up by a restart) applies to the next hash.
    return [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]


def keyed_hash(value: str, *, purpose: HashPurpose) -> str:
    """HMAC-SHA256 of `value` under the current SECRET_KEY, as 64 hex digits, for storing.

    Keyed because a stored value alone must be useless: six-digit codes would otherwise
    fall to a table of a million entries, and a leaked table of backup codes or link
    hashes could be checked against guesses without the server's secret.
    """
    return salted_hmac(purpose, value, algorithm="sha256").hexdigest()


def keyed_hash_candidates(value: str, *, purpose: HashPurpose) -> list[str]:
    """The hash of `value` under the current key, then under each key in SECRET_KEY_FALLBACKS.

    For lookups by hash (`WHERE token_hash IN (...)`): a row stored before the key was
    rotated still matches while its old key is listed as a fallback.
    """
    return [
        salted_hmac(purpose, value, secret=secret, algorithm="sha256").hexdigest()
        for secret in _secrets()
    ]


def keyed_hash_matches(value: str, stored: str, *, purpose: HashPurpose) -> bool:
    """True if `stored` is the hash of `value` under the current key or a fallback key.

    Every candidate is compared in constant time, as `PasswordResetTokenGenerator.check_token`
    does for its fallbacks.
    """
    return any(
        constant_time_compare(stored, candidate)
        for candidate in keyed_hash_candidates(value, purpose=purpose)
    )
