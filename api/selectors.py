"""Reads of the service API: the token behind a bearer value, the account asked about."""

from __future__ import annotations

import re

from django.db.models import QuerySet

from accounts.hashing import HashPurpose, keyed_hash_candidates, keyed_hash_matches
from accounts.models import User
from api.models import ServiceToken
from api.services import TOKEN_PREFIX

# What service_token_create issues: the prefix and 32 random bytes in URL-safe base64.
TOKEN_PATTERN = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_-]{43}")
# Account ids as the path carries them: ASCII digits only, within PostgreSQL's bigint.
ACCOUNT_ID_PATTERN = re.compile(r"[1-9][0-9]{0,18}")
ACCOUNT_ID_MAX = 2**63 - 1


def service_token_find(*, token: str) -> ServiceToken | None:
    """The token row for a presented bearer value, revoked ones included; None if unknown.

    Anything that is not shaped like an issued token is refused before the database; a
    token issued before a key rotation is still found while its key is a fallback.
    """
    if not TOKEN_PATTERN.fullmatch(token):
        return None
    candidates = keyed_hash_candidates(token, purpose=HashPurpose.SERVICE_TOKEN)
    service_token = ServiceToken.objects.filter(token_hash__in=candidates).first()
    if service_token is None or not keyed_hash_matches(
        token, service_token.token_hash, purpose=HashPurpose.SERVICE_TOKEN
    ):
        return None
    return service_token


def service_token_list() -> QuerySet[ServiceToken]:
    return ServiceToken.objects.order_by("name")


def account_id_parse(raw: str) -> int | None:
    """The account id in a path segment, or None for anything that cannot be one."""
    if not ACCOUNT_ID_PATTERN.fullmatch(raw):
        return None
    account_id = int(raw)
    return account_id if account_id <= ACCOUNT_ID_MAX else None


def customer_account_find(*, account_id: int) -> User | None:
    """The customer account with this id; None for a missing account and a staff account alike.

    Staff accounts are not the exchange's customers, and saying they exist would tell a
    token holder which ids belong to staff.
    """
    return (
        User.objects.filter(pk=account_id, is_staff=False, is_superuser=False)
        .only("id", "frozen_at", "reenrolment_required", "security_hold_until")
        .first()
    )
