"""Writes of the service API: issuing and revoking service tokens, recording every call."""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.hashing import HashPurpose, keyed_hash
from api.models import Scope, ServiceCall, ServiceToken

# Neither is secret: the prefix makes a leaked token recognisable to secret scanners, and the
# salt only separates this hash from the SECRET_KEY's other uses.
TOKEN_PREFIX = "rdsk_"  # noqa: S105


def service_token_create(
    *, name: str, scopes: Iterable[str] = (Scope.RESTRICTIONS_READ,)
) -> tuple[ServiceToken, str]:
    """Issue a token for the calling system `name`; returns the row and the raw token.

    The raw token exists only in the return value: the caller shows it once.
    """
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    service_token = ServiceToken(
        name=name.strip(),
        token_hash=keyed_hash(token, purpose=HashPurpose.SERVICE_TOKEN),
        scopes=sorted(set(scopes)),
    )
    service_token.full_clean()
    try:
        with transaction.atomic():
            service_token.save()
    except IntegrityError as exc:
        # Two operators creating the same name at once: the unique index decides.
        raise ValidationError({"name": "A service token with this name already exists."}) from exc
    return service_token, token


def service_token_revoke(*, name: str) -> ServiceToken:
    """Revoke the token called `name` at once; it answers 401 from the next call on.

    Raises ServiceToken.DoesNotExist for an unknown name and ValidationError if the token
    was already revoked.
    """
    with transaction.atomic():
        service_token = ServiceToken.objects.select_for_update().get(name=name)
        if service_token.revoked_at is not None:
            raise ValidationError(
                f"The service token {name} was already revoked at "
                f"{service_token.revoked_at:%Y-%m-%d %H:%M} UTC."
            )
        service_token.revoked_at = timezone.now()
        service_token.save(update_fields=["revoked_at"])
    return service_token


def service_token_mark_used(*, service_token: ServiceToken) -> None:
    """Note that a live token authenticated a call (shown to operators as "last used")."""
    now = timezone.now()
    with transaction.atomic():
        ServiceToken.objects.filter(pk=service_token.pk).update(last_used_at=now)
    service_token.last_used_at = now


def service_call_record(
    *,
    service_token: ServiceToken | None,
    account_id: int | None,
    status_code: int,
    ip_address: str | None,
) -> ServiceCall:
    """Append the record of one API call, whatever its answer was."""
    with transaction.atomic():
        return ServiceCall.objects.create(
            token=service_token,
            account_id=account_id,
            status_code=status_code,
            ip_address=ip_address,
        )
