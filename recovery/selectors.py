"""Reads of self-service recovery: what an account's data lets its owner prove, and where."""

from __future__ import annotations

from allauth.account.models import EmailAddress
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import BackupCode, User
from accounts.policy import Action, Method, Proof, policy_check
from recovery.models import SelfServiceRecovery

SELF_SERVICE_ACTIONS = {
    SelfServiceRecovery.Kind.LOST_FACTOR: Action.SELF_SERVICE_LOST_FACTOR,
    SelfServiceRecovery.Kind.NEW_EMAIL: Action.SELF_SERVICE_NEW_EMAIL,
}


def account_provable_methods(*, user: User) -> list[Method]:
    """The methods the account's data allows someone to prove: a usable password, a phone
    on file, a verified login email, unused backup codes, a confirmed authenticator app or
    passkey."""
    methods = []
    if user.has_usable_password():
        methods.append(Method.PASSWORD)
    if user.phone:
        methods.append(Method.PHONE_CODE)
    if EmailAddress.objects.filter(user=user, email__iexact=user.email, verified=True).exists():
        methods.append(Method.EMAIL_CODE)
    if BackupCode.objects.filter(device__user=user).exists():
        methods.append(Method.BACKUP_CODE)
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists() or _has_passkey(user):
        methods.append(Method.AUTHENTICATOR)
    return methods


def _has_passkey(user: User) -> bool:
    return WebAuthnCredential.objects.filter(user=user, confirmed=True).exists()


def account_self_service_paths(
    *, user: User, methods: list[Method] | None = None
) -> list[SelfServiceRecovery.Kind]:
    """The self-service paths whose policy row the account's data can satisfy.

    Asked of the policy table itself, with every method on file proven now (and, for a new
    login email, the new address, which the requester brings). A frozen account has none.
    """
    if user.frozen_at is not None:
        return []
    now = timezone.now()
    methods = account_provable_methods(user=user) if methods is None else methods
    # Self-service takes a passkey as the authenticator, never the app the customer lost.
    if Method.AUTHENTICATOR in methods and not _has_passkey(user):
        methods = [method for method in methods if method != Method.AUTHENTICATOR]
    paths = []
    for kind, action in SELF_SERVICE_ACTIONS.items():
        brought = [Method.NEW_EMAIL_CODE] if kind == SelfServiceRecovery.Kind.NEW_EMAIL else []
        proofs = [Proof(method=method, at=now) for method in [*methods, *brought]]
        if policy_check(action, proofs, now=now):
            paths.append(kind)
    return paths
