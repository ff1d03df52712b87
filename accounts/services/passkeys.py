"""Passkeys (WebAuthn credentials of django-otp-webauthn): register, name and remove.

A passkey is a second factor like the authenticator app: every change is a security event
notified to every contact on file, refused during a security hold, and the last second
factor of an account is never removed by its owner.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import SecurityEvent, User
from accounts.policy import Action, Decision, Method, Proof, policy_check
from accounts.services.audit import AuditContext, security_event_record
from accounts.services.holds import security_changes_check

PASSKEY_NAME_MAX_LENGTH = 64


class PasskeyChangeRefused(ValidationError):
    """A passkey change that does not fit the account (in words the customer can read)."""


def passkey_register(
    *, user: User, create: Callable[[User], WebAuthnCredential], context: AuditContext
) -> WebAuthnCredential:
    """Save the passkey `create` verifies and builds, with its event, in one transaction.

    `create` is the WebAuthn ceremony's last step (it checks the signed response against
    the challenge, origin and relying party and saves the credential); it runs after the
    account is locked and the hold checked, so a passkey never appears during a hold or
    without its event and notice.
    """
    with transaction.atomic():
        account = User.objects.select_for_update().get(pk=user.pk)
        security_changes_check(user=account)
        if account.reenrolment_required:
            raise PasskeyChangeRefused(
                _("Set up two-factor authentication again before you add a passkey.")
            )
        passkey = create(account)
        passkey.name = _("Passkey %(number)d") % {
            "number": WebAuthnCredential.objects.filter(user=account).count()
        }
        passkey.save(update_fields=["name"])
        security_event_record(
            user=account,
            type=SecurityEvent.Type.PASSKEY_ADDED,
            context=context,
            details={"passkey_id": passkey.pk},
        )
    return passkey


def passkey_rename(*, user: User, passkey_id: int, name: str, context: AuditContext) -> None:
    """Give one of the user's passkeys a name of their choice (refused during a hold)."""
    with transaction.atomic():
        account = User.objects.select_for_update().get(pk=user.pk)
        security_changes_check(user=account)
        passkey = _passkey_of(account, passkey_id)
        passkey.name = name.strip()[:PASSKEY_NAME_MAX_LENGTH]
        passkey.save(update_fields=["name"])
        security_event_record(
            user=account,
            type=SecurityEvent.Type.PASSKEY_RENAMED,
            context=context,
            details={"passkey_id": passkey.pk},
        )


def passkey_remove(*, user: User, passkey_id: int, context: AuditContext) -> None:
    """Remove one of the user's passkeys, unless it is their last second factor.

    Backup codes do not count as a second factor left: they are the fallback of one, and
    an account with only them could not sign in twice.
    """
    with transaction.atomic():
        account = User.objects.select_for_update().get(pk=user.pk)
        security_changes_check(user=account)
        passkey = _passkey_of(account, passkey_id)
        others = (
            WebAuthnCredential.objects.filter(user=account, confirmed=True)
            .exclude(pk=passkey.pk)
            .exists()
            or TOTPDevice.objects.filter(user=account, confirmed=True).exists()
        )
        if not others:
            raise PasskeyChangeRefused(
                _(
                    "This passkey is your last second factor. Set up the authenticator app "
                    "or add another passkey before you remove it."
                )
            )
        passkey.delete()
        security_event_record(
            user=account,
            type=SecurityEvent.Type.PASSKEY_REMOVED,
            context=context,
            details={"passkey_id": passkey_id},
        )


def _passkey_of(account: User, passkey_id: int) -> WebAuthnCredential:
    """The account's own passkey; another account's or a missing one answer alike."""
    passkey = (
        WebAuthnCredential.objects.select_for_update().filter(pk=passkey_id, user=account).first()
    )
    if passkey is None:
        raise PasskeyChangeRefused(_("This passkey does not exist any more."))
    return passkey


def passkey_proof(*, user: User, passkey_id: int | None) -> Proof | None:
    """The `authenticator` proof a passkey gives, if it is still bound to the account.

    The proof is as old as the passkey's last use (django-otp-webauthn stamps it on every
    verified assertion), so a passkey used long ago proves nothing about the requester now.
    """
    if passkey_id is None:
        return None
    used_at = (
        WebAuthnCredential.objects.filter(pk=passkey_id, user=user, confirmed=True)
        .values_list("last_used_at", flat=True)
        .first()
    )
    if used_at is None:
        return None
    return Proof(method=Method.AUTHENTICATOR, at=used_at)


def app_replace_with_passkey_decision(*, user: User, passkey_id: int | None) -> Decision:
    """Whether this sign-in (password, then the passkey `passkey_id`) may replace a lost
    authenticator app at once (`Action.SELF_SERVICE_APP_WITH_PASSKEY`)."""
    proofs = [] if user.last_login is None else [Proof(method=Method.PASSWORD, at=user.last_login)]
    proof = passkey_proof(user=user, passkey_id=passkey_id)
    if proof is not None:
        proofs.append(proof)
    return policy_check(Action.SELF_SERVICE_APP_WITH_PASSKEY, proofs, now=timezone.now())
