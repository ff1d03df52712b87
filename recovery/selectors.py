"""Reads of self-service recovery: what an account's data lets its owner prove, and where."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from allauth.account.models import EmailAddress
from django.db.models import F
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import BackupCode, SecurityEvent, User
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
    return accounts_provable_methods(users=[user])[user.pk]


def accounts_provable_methods(
    *, users: Sequence[User], passkey_holders: set[int] | None = None
) -> dict[int, list[Method]]:
    """`account_provable_methods` for many accounts at once, in four queries whatever
    their number (three when the caller has `accounts_with_passkey` already): triage asks
    it of a whole batch of requests."""
    ids = {user.pk for user in users}
    if not ids:
        return {}
    if passkey_holders is None:
        passkey_holders = accounts_with_passkey(user_ids=ids)
    # The login email itself, verified (compared as PostgreSQL compares `iexact`).
    email_verified = set(
        EmailAddress.objects.filter(
            user_id__in=ids, verified=True, email__iexact=F("user__email")
        ).values_list("user_id", flat=True)
    )
    with_backup_codes = set(
        BackupCode.objects.filter(device__user_id__in=ids).values_list("device__user_id", flat=True)
    )
    with_authenticator = set(
        TOTPDevice.objects.filter(user_id__in=ids, confirmed=True).values_list("user_id", flat=True)
    ) | (passkey_holders & ids)
    methods: dict[int, list[Method]] = {}
    for user in users:
        found = []
        if user.has_usable_password():
            found.append(Method.PASSWORD)
        if user.phone:
            found.append(Method.PHONE_CODE)
        if user.pk in email_verified:
            found.append(Method.EMAIL_CODE)
        if user.pk in with_backup_codes:
            found.append(Method.BACKUP_CODE)
        if user.pk in with_authenticator:
            found.append(Method.AUTHENTICATOR)
        methods[user.pk] = found
    return methods


def accounts_with_passkey(*, user_ids: Iterable[int]) -> set[int]:
    """Which of these accounts hold a confirmed passkey."""
    return set(
        WebAuthnCredential.objects.filter(user_id__in=list(user_ids), confirmed=True).values_list(
            "user_id", flat=True
        )
    )


def account_self_service_paths(
    *, user: User, methods: list[Method] | None = None, has_passkey: bool | None = None
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
    if Method.AUTHENTICATOR in methods and not (
        bool(accounts_with_passkey(user_ids=[user.pk])) if has_passkey is None else has_passkey
    ):
        methods = [method for method in methods if method != Method.AUTHENTICATOR]
    paths = []
    for kind, action in SELF_SERVICE_ACTIONS.items():
        brought = [Method.NEW_EMAIL_CODE] if kind == SelfServiceRecovery.Kind.NEW_EMAIL else []
        proofs = [Proof(method=method, at=now) for method in [*methods, *brought]]
        if policy_check(action, proofs, now=now):
            paths.append(kind)
    return paths


class ReenrolmentByEmailClosed:
    """Why /recover/2fa/ does not re-enrol an account whose 2FA was revoked."""

    # A self-service recovery removed the app: the browser that waited sets up the new one.
    SELF_SERVICE_READY = "self_service_ready"
    # The password was reset through the login inbox: with a code to that very inbox it
    # would be one proof, not two.
    PASSWORD_RESET_BY_EMAIL = "password_reset_by_email"  # noqa: S105 - a reason, not a secret


def account_reenrolment_by_email_closed(*, user: User) -> str | None:
    """Why /recover/2fa/ (the password, then a code to the login email) may not set up the
    account's 2FA again now (`ReenrolmentByEmailClosed`), or None when it may."""
    if SelfServiceRecovery.objects.filter(
        user=user,
        kind=SelfServiceRecovery.Kind.LOST_FACTOR,
        status=SelfServiceRecovery.Status.READY,
    ).exists():
        return ReenrolmentByEmailClosed.SELF_SERVICE_READY
    if account_password_reset_by_email(user=user):
        return ReenrolmentByEmailClosed.PASSWORD_RESET_BY_EMAIL
    return None


def account_password_reset_by_email(*, user: User) -> bool:
    """Whether the account's current password was set through a reset link to its login
    inbox: then that password and a code to that inbox are one proof, not two, however long
    ago the reset was. A password changed since (with the old one, while signed in) ends it."""
    latest = (
        SecurityEvent.objects.filter(
            account_id=user.pk,
            type__in=[SecurityEvent.Type.PASSWORD_CHANGED, SecurityEvent.Type.PASSWORD_RESET],
        )
        .order_by("-pk")
        .values_list("type", "details")
        .first()
    )
    if latest is None:
        return False
    kind, details = latest
    # A support recovery's link sets a password too ("case" in its event): it went to a
    # channel an agent proved, and is no reset by the inbox.
    return kind == SecurityEvent.Type.PASSWORD_RESET and "case" not in (details or {})


def account_reenrolment_by_email_open(*, user: User) -> bool:
    """Whether /recover/2fa/ may set up the account's 2FA again: it was revoked, and
    nothing closes that way now (`account_reenrolment_by_email_closed`)."""
    return user.reenrolment_required and account_reenrolment_by_email_closed(user=user) is None
