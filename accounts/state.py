"""Fingerprints of an account's security state, so a notice can be checked against its event.

A security event that reports a change records the account's state before and after it:
the factor set, the login email, the phone and the password, each as a short keyed hash
(never the raw value). At delivery, the notice's account must still differ from "before"
in what the event reports; if it does not, the event claims a change that did not happen
(the false alarm of SPEC §1) and the notice is held as suspect.

"Before" is the state before the current database transaction: the "after" of the last
recorded fingerprint of the account, or, when an earlier event of the same transaction
already read it, what that event found. The password's part hashes the stored password
hash, which changes with every new password.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from django.db import connection
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.hashing import HashPurpose, keyed_hash
from accounts.models import BackupCode, SecurityEvent, User

FACTORS, EMAIL, PHONE, PASSWORD = "factors", "email", "phone", "password"

# What each event type reports as changed. Types not listed report nothing the fingerprint
# holds (sessions ended, a freeze, a hold lifted) and are not checked.
EVENT_CLAIMS: dict[str, tuple[str, ...]] = {
    SecurityEvent.Type.TWO_FACTOR_ENABLED: (FACTORS,),
    SecurityEvent.Type.TWO_FACTOR_REENROLLED: (FACTORS,),
    SecurityEvent.Type.BACKUP_CODES_REGENERATED: (FACTORS,),
    SecurityEvent.Type.BACKUP_CODE_USED: (FACTORS,),
    SecurityEvent.Type.PASSWORD_CHANGED: (PASSWORD,),
    SecurityEvent.Type.PASSWORD_RESET: (PASSWORD,),
    SecurityEvent.Type.EMAIL_CHANGED: (EMAIL,),
    SecurityEvent.Type.PHONE_CHANGED: (PHONE,),
}
# Event types that record the state: those that report a change, and sign-up, which gives
# every new account its first "before".
STATE_RECORDED = frozenset(EVENT_CLAIMS) | {SecurityEvent.Type.SIGNED_UP}

_HASH_LENGTH = 32
_lock = threading.Lock()
# (transaction id, account id) -> the account's state before that transaction. Transaction
# ids never repeat, so an entry of a finished transaction is never read again.
_before_in_transaction: dict[tuple[int, int], dict[str, str] | None] = {}
_REMEMBERED = 10_000


def _part(value: str) -> str:
    return keyed_hash(value, purpose=HashPurpose.ACCOUNT_STATE)[:_HASH_LENGTH]


def account_states(account_ids: Iterable[int]) -> dict[int, dict[str, str]]:
    """The current fingerprint of each account, in three queries whatever their number."""
    ids = list(set(account_ids))
    factors: dict[int, list[str]] = {pk: [] for pk in ids}
    for user_id, pk in TOTPDevice.objects.filter(user_id__in=ids, confirmed=True).values_list(
        "user_id", "pk"
    ):
        factors[user_id].append(f"totp:{pk}")
    for user_id, pk in BackupCode.objects.filter(device__user_id__in=ids).values_list(
        "device__user_id", "pk"
    ):
        factors[user_id].append(f"backup:{pk}")
    return {
        pk: {
            FACTORS: _part(",".join(sorted(factors[pk]))),
            EMAIL: _part(email),
            PHONE: _part(phone or ""),
            PASSWORD: _part(password),
        }
        for pk, email, phone, password in User.objects.filter(pk__in=ids).values_list(
            "pk", "email", "phone", "password"
        )
    }


def _recorded_after(account_id: int) -> dict[str, str] | None:
    latest = (
        SecurityEvent.objects.filter(account_id=account_id, details__has_key="state")
        .order_by("-seq")
        .values_list("details", flat=True)
        .first()
    )
    return latest["state"].get("after") if latest else None


def account_state_transition(*, account_id: int) -> dict[str, Any]:
    """`{"before": …, "after": …}` for an event recorded now, inside the change's transaction.

    `before` is None for an account with no recorded fingerprint yet: its notices cannot
    be checked and are sent as before.
    """
    after = account_states([account_id]).get(account_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT txid_current()")
        (txid,) = cursor.fetchone()
    key = (txid, account_id)
    with _lock:
        known = key in _before_in_transaction
        before = _before_in_transaction.get(key)
    if not known:
        before = _recorded_after(account_id)
        with _lock:
            if len(_before_in_transaction) >= _REMEMBERED:
                _before_in_transaction.clear()
            _before_in_transaction[key] = before
    return {"before": before, "after": after}


def event_borne_out(event: SecurityEvent, current: dict[str, str] | None) -> bool:
    """False when the account's state `current` does not show the change `event` reports.

    True for events that report nothing the fingerprint holds, and for events without a
    recorded "before" (nothing to compare with).
    """
    claims = EVENT_CLAIMS.get(event.type)
    state = (event.details or {}).get("state") or {}
    before = state.get("before")
    if not claims or not before:
        return True
    if current is None:
        return False  # the account is gone: nothing to tell it
    return any(current.get(part) != before.get(part) for part in claims)
