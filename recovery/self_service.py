"""Self-service recovery without an agent: /recover/lost-2fa/ and /recover/new-email/.

Both paths follow one shape. The customer names the account and proves the first method
(`self_service_start`); codes to contacts on file (and, for a new login email, to the new
address) add further proofs; once the policy row of the path (`accounts.policy`) is met, a
risk-scaled wait starts, announced to every contact on file with a link that stops it
(`self_service_cancel`: the attempt ends and an agent gets a case). When the wait is over,
a lost factor is replaced by the customer in the session that asked (`lost_factor_reset`,
then the TOTP setup of /recover/2fa/), and a new login email takes effect by itself
(`new_email_apply`, from the beat sweep or the customer's next visit). Either ends on the
policy's security hold.

Every state change locks the attempt row, so two confirmations at the same moment give
one success; every step records a security event.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.contacts import mask_email, mask_phone
from accounts.hashing import HashPurpose, keyed_hash, keyed_hash_candidates, keyed_hash_matches
from accounts.models import (
    BackupCode,
    BackupCodeDevice,
    OneTimeCode,
    RevocationCampaign,
    SecurityEvent,
    User,
    backup_code_hash_candidates,
)
from accounts.policy import POLICY, SMS_SECRET_LIFETIME, Action, Method, Proof, policy_check
from accounts.services.audit import AuditContext, security_event_record
from accounts.services.holds import SecurityHoldActive, security_hold_extend
from accounts.services.tokens import CodeCheck, one_time_code_check, one_time_code_issue
from accounts.services.users import (
    sign_in_wrong_code_record,
    user_email_change,
    user_sessions_end_all,
)
from notifications.models import Notification
from notifications.services import notification_queue
from recovery.models import SelfServiceCancelLink, SelfServiceRecovery
from recovery.selectors import account_password_reset_by_email

Kind = SelfServiceRecovery.Kind
Status = SelfServiceRecovery.Status

ACTIONS = {
    Kind.LOST_FACTOR: Action.SELF_SERVICE_LOST_FACTOR,
    Kind.NEW_EMAIL: Action.SELF_SERVICE_NEW_EMAIL,
}


class Channel:
    """Where a code goes: the phone or email on file, or the new address."""

    PHONE = "phone"
    EMAIL = "email"
    NEW_EMAIL = "new_email"


CHANNEL_METHODS = {
    Channel.PHONE: Method.PHONE_CODE,
    Channel.EMAIL: Method.EMAIL_CODE,
    Channel.NEW_EMAIL: Method.NEW_EMAIL_CODE,
}
CHANNEL_PURPOSES = {
    Channel.PHONE: OneTimeCode.Purpose.PROVE_PHONE,
    Channel.EMAIL: OneTimeCode.Purpose.PROVE_EMAIL,
    Channel.NEW_EMAIL: OneTimeCode.Purpose.PROVE_NEW_EMAIL,
}
# The codes each path may send: a lost factor proves a contact on file; a new login email
# proves the phone on file and the new address (the old inbox is what was lost).
PATH_CHANNELS = {
    Kind.LOST_FACTOR: (Channel.PHONE, Channel.EMAIL),
    Kind.NEW_EMAIL: (Channel.PHONE, Channel.NEW_EMAIL),
}


# `cancelled_via` of an attempt whose new login email another account uses.
CANCELLED_ADDRESS_TAKEN = "conflict"
# `cancelled_via` of an attempt whose proven password or contact changed after the proof.
CANCELLED_PROOF_OUTDATED = "outdated"
# The changes that make a proof of each method no longer a proof of the account as it is:
# the notice of a started attempt tells the owner to change the password, and that must
# stop the attempt of whoever entered the old one; new backup codes stop one started with
# an old code alike.
OUTDATING_CHANGES = {
    Method.PASSWORD: (SecurityEvent.Type.PASSWORD_CHANGED, SecurityEvent.Type.PASSWORD_RESET),
    Method.PHONE_CODE: (SecurityEvent.Type.PHONE_CHANGED,),
    Method.EMAIL_CODE: (SecurityEvent.Type.EMAIL_CHANGED,),
    Method.BACKUP_CODE: (SecurityEvent.Type.BACKUP_CODES_REGENERATED,),
}


class Risk:
    """What makes a wait longer (SPEC §4a), as far as the account's data can tell."""

    RECENT_CHANGE = "recent_change"
    NEW_DEVICE = "new_device"
    NEW_NETWORK = "new_network"
    INCIDENT = "incident"


RECENT_CHANGE_TYPES = (
    SecurityEvent.Type.EMAIL_CHANGED,
    SecurityEvent.Type.PHONE_CHANGED,
    SecurityEvent.Type.PASSWORD_CHANGED,
    SecurityEvent.Type.PASSWORD_RESET,
)


class SelfServiceRefused(Exception):
    """The account cannot take this path now; `reason` names why for the page.

    Raised only after the customer proved the first method, so the reason tells nothing
    to someone who does not know the password or a backup code.
    """

    FROZEN = "frozen"
    NO_PHONE = "no_phone"
    NO_CONTACT = "no_contact"
    EMAIL_UNUSABLE = "email_unusable"
    ALREADY_WAITING = "already_waiting"
    # The password proven was reset through the login inbox: a code to it is no second proof.
    SAME_INBOX = "same_inbox"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class PhoneTextLimitReached(Exception):
    """The phone on file had all the texts its limits allow (`accounts.contacts.
    texting_limits`, as on every form that texts a number): no code went out."""

    def __init__(self, phone: str) -> None:
        self.phone = phone
        super().__init__("texting limit reached")


@dataclass(frozen=True)
class Started:
    """A new attempt and the secret that binds it to the browser session that started it."""

    attempt: SelfServiceRecovery
    session_token: str


def _hours(setting: str) -> int:
    return int(getattr(settings, setting))


def _account_for(identifier: str) -> User | None:
    """The account named by a login email or by the phone on file (E.164)."""
    field = "email" if "@" in identifier else "phone"
    return User.objects.filter(**{field: identifier.strip().lower()}, is_active=True).first()


def _backup_code_use(user: User | None, code: str) -> bool:
    """Use up one backup code of `user`; the same statement runs for an unknown account.

    The device's throttle is left alone: this page has limits of its own (per account and
    per address), and a stranger's wrong guesses here must not lock the owner's codes at
    the sign-in's second step. Of two uses of one code at once, the second deletes nothing.
    """
    # No account has the id 0: an unknown one runs the very statement, matching nothing.
    deleted, _rows = BackupCode.objects.filter(
        device__user_id=user.pk if user is not None else 0,
        device__confirmed=True,
        code_hash__in=backup_code_hash_candidates(code),
    ).delete()
    return deleted > 0


def _first_proof(*, user: User | None, password: str, backup_code: str) -> Method | None:
    """Check the password or the backup code; an unknown account costs a password hash too."""
    if password:
        if user is None or not user.has_usable_password():
            make_password(password)
            return None
        return Method.PASSWORD if user.check_password(password) else None
    if backup_code and _backup_code_use(user, backup_code):
        return Method.BACKUP_CODE
    return None


def _proof(method: Method) -> dict[str, str]:
    return {"method": str(method), "at": timezone.now().isoformat()}


def attempt_proofs(attempt: SelfServiceRecovery) -> list[Proof]:
    return [
        Proof(method=Method(p["method"]), at=datetime.fromisoformat(p["at"]))
        for p in attempt.proofs
    ]


def _event(
    attempt: SelfServiceRecovery,
    type: SecurityEvent.Type,
    context: AuditContext | None,
    **details: object,
) -> SecurityEvent:
    return security_event_record(
        user=attempt.user,
        type=type,
        context=context,
        notify=False,
        details={"attempt": attempt.pk, "kind": attempt.kind, **details},
    )


def _contacts(user: User) -> list[tuple[Notification.Channel, str]]:
    contacts = [(Notification.Channel.EMAIL, user.email)]
    if user.phone:
        contacts.append((Notification.Channel.SMS, user.phone))
    return contacts


def _notify_contacts(
    attempt: SelfServiceRecovery,
    *,
    step: str,
    event: SecurityEvent,
    cancel: bool = False,
    factor_removed: bool = False,
) -> None:
    """Tell every contact on file what this step did, with a cancel link when `cancel`;
    `factor_removed` says a stopped attempt had already removed the authenticator."""
    user = attempt.user
    # Each notice names only the proofs this account can still give, so it is true as sent.
    has_passkey = (
        attempt.kind == Kind.LOST_FACTOR
        and WebAuthnCredential.objects.filter(user=user, confirmed=True).exists()
    )
    for channel, recipient in _contacts(user):
        context: dict[str, object] = {
            "step": step,
            "kind": attempt.kind,
            "has_passkey": has_passkey,
            "factor_removed": factor_removed,
            # The two proofs of a lost factor's wait, so its notice names what the asker holds.
            "proven": "+".join(proof["method"] for proof in attempt.proofs[:2]),
            "masked_email": mask_email(user.email),
            "masked_new_email": mask_email(attempt.new_email),
            "wait_ends_at": f"{attempt.wait_ends_at:%Y-%m-%d %H:%M}"
            if attempt.wait_ends_at
            else "",
        }
        if cancel:
            context["cancel_token"] = _cancel_link_issue(attempt, channel=channel)
        notification_queue(
            channel=channel,
            recipient=recipient,
            template_key="recovery/self_service_notice",
            idempotency_key=f"self-service:{attempt.pk}:{step}:{channel}",
            language=user.language,
            account_id=user.pk,
            security_event=event,
            context=context,
        )


def _cancel_link_issue(attempt: SelfServiceRecovery, *, channel: str) -> str:
    """A cancel link for one contact: 256 random bits, stored as a keyed hash.

    It lives until a week after the wait ends: it can only stop a recovery, never grant
    access, so it need not die with the short life of an SMS code.
    """
    token = secrets.token_urlsafe(32)
    assert attempt.wait_ends_at is not None
    SelfServiceCancelLink.objects.create(
        attempt=attempt,
        channel=channel,
        token_hash=keyed_hash(token, purpose=HashPurpose.SELF_SERVICE_CANCEL),
        expires_at=attempt.wait_ends_at + timedelta(days=settings.NOT_ME_LINK_DAYS),
    )
    return token


def self_service_start(
    *,
    kind: str,
    identifier: str,
    password: str = "",
    backup_code: str = "",
    new_email: str = "",
    context: AuditContext,
    texting_allowed: Callable[[str], bool] | None = None,
) -> Started | None:
    """The first step: the account's login email or phone, and the password (or, for a lost
    factor, a backup code). None for an unknown account and a wrong secret alike, after the
    same work (a password hash either way).

    A right secret on an account that cannot take the path raises `SelfServiceRefused`;
    nothing is written then. The codes a new login email sends at once count against the
    phone's limits (`texting_allowed`): over them the phone's code waits for "send a code".
    """
    kind = Kind(kind)
    if kind == Kind.NEW_EMAIL:
        backup_code = ""
    with transaction.atomic():
        user = _account_for(identifier)
        method = _first_proof(user=user, password=password, backup_code=backup_code)
        if user is None or method is None:
            return None
        user = User.objects.select_for_update().get(pk=user.pk)
        if user.frozen_at is not None:
            raise SelfServiceRefused(SelfServiceRefused.FROZEN)
        if user.on_security_hold:
            assert user.security_hold_until is not None
            raise SecurityHoldActive(user.security_hold_until)
        new_email = new_email.strip().lower()
        if kind == Kind.NEW_EMAIL:
            if not user.phone:
                raise SelfServiceRefused(SelfServiceRefused.NO_PHONE)
            # An address of another account is refused only once its code is proven
            # (`self_service_code_verify`): here it would tell anyone with an account of
            # their own which addresses have one.
            if new_email == user.email:
                raise SelfServiceRefused(SelfServiceRefused.EMAIL_UNUSABLE)
        _refuse_if_waiting_elsewhere(user)
        session_token = secrets.token_urlsafe(32)
        attempt = SelfServiceRecovery.objects.create(
            user=user,
            kind=kind,
            session_token_hash=keyed_hash(session_token, purpose=HashPurpose.SELF_SERVICE_SESSION),
            proofs=[_proof(method)],
            new_email=new_email if kind == Kind.NEW_EMAIL else "",
            risk_factors=_risks_of_request(user, context),
            ip_address=context.ip_address,
            user_agent=context.user_agent,
        )
        event = _event(attempt, SecurityEvent.Type.SELF_SERVICE_REQUESTED, context, proof=method)
        _notify_contacts(attempt, step=f"requested_{method}", event=event)
        if kind == Kind.NEW_EMAIL:
            for channel in PATH_CHANNELS[kind]:
                try:
                    _code_send(
                        attempt, channel=channel, context=context, texting_allowed=texting_allowed
                    )
                except PhoneTextLimitReached:
                    continue
    return Started(attempt=attempt, session_token=session_token)


def _new_email_taken(attempt: SelfServiceRecovery) -> bool:
    """Whether another account uses the address the attempt would move the account to."""
    return User.objects.filter(email=attempt.new_email).exclude(pk=attempt.user_id).exists()


def _proofs_outdated(attempt: SelfServiceRecovery) -> bool:
    """Whether the password or a contact the attempt proved changed after its proof."""
    changed = Q()
    for proof in attempt.proofs:
        types = OUTDATING_CHANGES.get(Method(proof["method"]))
        if types:
            changed |= Q(type__in=types, created_at__gt=datetime.fromisoformat(proof["at"]))
    return bool(changed) and (
        SecurityEvent.objects.filter(account_id=attempt.user_id).filter(changed).exists()
    )


def _end_if_outdated(attempt: SelfServiceRecovery, context: AuditContext | None) -> bool:
    """End the (locked) attempt when a proof of it is outdated (`_proofs_outdated`); True
    when it ended. Nothing on the account changes; contacts told of its wait hear it ended."""
    if not _proofs_outdated(attempt):
        return False
    # A wait was announced to every contact on file: they now hear that it will not end in
    # the change it announced.
    announced = attempt.status in (Status.WAITING, Status.READY)
    attempt.status = Status.CANCELLED
    attempt.cancelled_via = CANCELLED_PROOF_OUTDATED
    attempt.save(update_fields=["status", "cancelled_via", "updated_at"])
    event = _event(
        attempt, SecurityEvent.Type.SELF_SERVICE_CANCELLED, context, via=CANCELLED_PROOF_OUTDATED
    )
    if announced:
        _notify_contacts(attempt, step="ended", event=event)
    return True


def _refuse_if_one_inbox(attempt: SelfServiceRecovery, channel: str) -> None:
    """Refuse a code to the login email as the second proof of a password that was reset
    through that very inbox: whoever reads it would hold both (SPEC §4a, two proofs)."""
    if (
        channel == Channel.EMAIL
        and any(p["method"] == Method.PASSWORD for p in attempt.proofs)
        and account_password_reset_by_email(user=attempt.user)
    ):
        raise SelfServiceRefused(SelfServiceRefused.SAME_INBOX)


def _refuse_if_frozen(attempt: SelfServiceRecovery) -> None:
    """A frozen account (its owner said "not me") sends no code and takes no proof."""
    if User.objects.filter(pk=attempt.user_id, frozen_at__isnull=False).exists():
        raise SelfServiceRefused(SelfServiceRefused.FROZEN)


def _waiting_elsewhere(user: User) -> QuerySet[SelfServiceRecovery]:
    """The account's attempts whose wait is still running: they keep any other out."""
    return SelfServiceRecovery.objects.filter(
        user=user, status__in=[Status.WAITING, Status.READY], wait_ends_at__gt=timezone.now()
    )


def _refuse_if_waiting_elsewhere(user: User) -> None:
    """One recovery waits at a time: while one does, no other attempt proves or signs in
    (every contact was told about the waiting one and can stop it)."""
    if _waiting_elsewhere(user).exists():
        raise SelfServiceRefused(SelfServiceRefused.ALREADY_WAITING)


def self_service_attempt_find(*, attempt_id: Any, session_token: str) -> SelfServiceRecovery | None:
    """The attempt this browser session started, or None (none, or another session's)."""
    if not attempt_id or not session_token:
        return None
    attempt = SelfServiceRecovery.objects.select_related("user").filter(pk=attempt_id).first()
    if attempt is None or not keyed_hash_matches(
        session_token, attempt.session_token_hash, purpose=HashPurpose.SELF_SERVICE_SESSION
    ):
        return None
    return attempt


def _destination(attempt: SelfServiceRecovery, channel: str) -> str:
    user = attempt.user
    return {
        Channel.PHONE: user.phone or "",
        Channel.EMAIL: user.email,
        Channel.NEW_EMAIL: attempt.new_email,
    }[channel]


def _masked_destination(channel: str, destination: str) -> str:
    return mask_phone(destination) if channel == Channel.PHONE else mask_email(destination)


def code_lifetime(channel: str) -> timedelta:
    """How long a code sent to `channel` works: the setting's life, and at most
    `SMS_SECRET_LIFETIME` by text message (NIST SP 800-63B-4)."""
    lifetime = timedelta(minutes=settings.ONE_TIME_CODE_MINUTES)
    if channel == Channel.PHONE:
        return min(lifetime, SMS_SECRET_LIFETIME)
    return lifetime


def code_minutes(channel: str) -> int:
    """`code_lifetime` in whole minutes, as messages and pages tell it."""
    return int(code_lifetime(channel).total_seconds() // 60)


def _code_send(
    attempt: SelfServiceRecovery,
    *,
    channel: str,
    context: AuditContext,
    texting_allowed: Callable[[str], bool] | None = None,
) -> bool:
    """Issue a code for `channel`, queue it, and record the sending (masked target, no code).

    Only an attempt, which exists after a right first proof on a known account, sends: an
    unknown account never reaches this, so the event reveals and delays nothing to it. A
    text counts against the phone's limits (`texting_allowed`); over them
    `PhoneTextLimitReached` is raised and nothing is sent.
    """
    destination = _destination(attempt, channel)
    if channel not in PATH_CHANNELS[Kind(attempt.kind)] or not destination:
        return False
    if (
        channel == Channel.PHONE
        and texting_allowed is not None
        and not texting_allowed(destination)
    ):
        raise PhoneTextLimitReached(destination)
    row, code = one_time_code_issue(
        user=attempt.user, purpose=CHANNEL_PURPOSES[channel], scope=f"self-service:{attempt.pk}"
    )
    lifetime = code_lifetime(channel)
    if row.expires_at > row.created_at + lifetime:
        row.expires_at = row.created_at + lifetime
        row.save(update_fields=["expires_at"])
    notification_queue(
        channel=Notification.Channel.SMS
        if channel == Channel.PHONE
        else Notification.Channel.EMAIL,
        recipient=destination,
        template_key="recovery/self_service_code",
        idempotency_key=f"self-service-code:{row.pk}",
        language=attempt.user.language,
        account_id=attempt.user_id,
        context={
            "code": code,
            "kind": attempt.kind,
            "minutes": code_minutes(channel),
        },
    )
    _event(
        attempt,
        SecurityEvent.Type.SELF_SERVICE_CODE_SENT,
        context,
        channel=channel,
        to=_masked_destination(channel, destination),
    )
    return True


def self_service_code_send(
    *,
    attempt: SelfServiceRecovery,
    channel: str,
    context: AuditContext,
    texting_allowed: Callable[[str], bool] | None = None,
) -> bool:
    """Send a code for a proof the attempt still needs; only to the contact on file (or,
    for a new login email, the new address), never to one typed on the page. A text
    counts against the phone's limits (`texting_allowed`, `PhoneTextLimitReached`): the
    password alone must not flood the owner's phone."""
    with transaction.atomic():
        attempt = SelfServiceRecovery.objects.select_for_update().get(pk=attempt.pk)
        if attempt.status != Status.PROVING:
            return False
        _refuse_if_frozen(attempt)
        if _end_if_outdated(attempt, context):
            return False
        _refuse_if_one_inbox(attempt, channel)
        return _code_send(
            attempt, channel=channel, context=context, texting_allowed=texting_allowed
        )


def self_service_code_verify(
    *, attempt: SelfServiceRecovery, channel: str, code: str, context: AuditContext
) -> CodeCheck:
    """Check a code; a right one is a proof, and a met policy starts the wait.

    The attempt row is locked first: two confirmations at the same moment are taken one
    after the other, and only one of them starts the wait.
    """
    with transaction.atomic():
        attempt = (
            SelfServiceRecovery.objects.select_for_update()
            .select_related("user")
            .get(pk=attempt.pk)
        )
        if attempt.status != Status.PROVING or channel not in PATH_CHANNELS[Kind(attempt.kind)]:
            return CodeCheck.NONE
        _refuse_if_frozen(attempt)
        if _end_if_outdated(attempt, context):
            return CodeCheck.NONE
        _refuse_if_one_inbox(attempt, channel)
        result = one_time_code_check(
            user=attempt.user,
            purpose=CHANNEL_PURPOSES[channel],
            code=code,
            scope=f"self-service:{attempt.pk}",
        )
        if result != CodeCheck.OK:
            return result
        method = CHANNEL_METHODS[channel]
        attempt.proofs = [p for p in attempt.proofs if p["method"] != method] + [_proof(method)]
        if channel == Channel.NEW_EMAIL and _new_email_taken(attempt):
            # Whoever reads that inbox may learn that the address has an account (its
            # password reset tells them too); the attempt ends, nothing changed.
            attempt.status = Status.CANCELLED
            attempt.cancelled_via = CANCELLED_ADDRESS_TAKEN
            attempt.save(update_fields=["proofs", "status", "cancelled_via", "updated_at"])
            _event(
                attempt,
                SecurityEvent.Type.SELF_SERVICE_PROOF_ADDED,
                context,
                proof=method,
                ended=CANCELLED_ADDRESS_TAKEN,
            )
            return result
        attempt.save(update_fields=["proofs", "updated_at"])
        _event(attempt, SecurityEvent.Type.SELF_SERVICE_PROOF_ADDED, context, proof=method)
        if policy_check(ACTIONS[Kind(attempt.kind)], attempt_proofs(attempt), now=timezone.now()):
            _wait_start(attempt, context)
    return result


class PasskeyOutcome:
    """What a passkey proof led to in /recover/lost-2fa/."""

    REFUSED = "refused"
    PROVEN = "proven"
    SIGNED_IN = "signed_in"


def self_service_passkey_prove(
    *, attempt: SelfServiceRecovery, passkey_id: int, context: AuditContext
) -> str:
    """A passkey of the account, verified by a WebAuthn assertion in the session of this
    attempt, is the `authenticator` proof (`accounts.services.passkeys.passkey_proof`).

    With the password it is what a sign-in is: the policy's `self_service_app_with_passkey`
    lets the customer replace the app at once (SIGNED_IN; the caller signs the session in
    with that passkey). With a backup code it fills the lost-factor rule, and the wait
    starts as after a code. The attempt row is locked, as for codes.
    """
    from accounts.services.passkeys import passkey_proof

    with transaction.atomic():
        attempt = (
            SelfServiceRecovery.objects.select_for_update()
            .select_related("user")
            .get(pk=attempt.pk)
        )
        if attempt.kind != Kind.LOST_FACTOR or attempt.status != Status.PROVING:
            return PasskeyOutcome.REFUSED
        _refuse_if_frozen(attempt)
        if _end_if_outdated(attempt, context):
            return PasskeyOutcome.REFUSED
        # Locked as `_wait_start` locks it: a wait starting elsewhere at the same moment
        # comes first or finds this proof done, never both.
        _refuse_if_waiting_elsewhere(User.objects.select_for_update().get(pk=attempt.user_id))
        proof = passkey_proof(user=attempt.user, passkey_id=passkey_id)
        if proof is None:
            return PasskeyOutcome.REFUSED
        method = Method.AUTHENTICATOR
        attempt.proofs = [p for p in attempt.proofs if p["method"] != method] + [
            {"method": str(method), "at": proof.at.isoformat()}
        ]
        attempt.save(update_fields=["proofs", "updated_at"])
        _event(
            attempt,
            SecurityEvent.Type.SELF_SERVICE_PROOF_ADDED,
            context,
            proof=method,
            passkey_id=passkey_id,
        )
        now = timezone.now()
        proofs = attempt_proofs(attempt)
        if policy_check(Action.SELF_SERVICE_APP_WITH_PASSKEY, proofs, now=now):
            attempt.status = Status.COMPLETED
            attempt.completed_at = now
            attempt.save(update_fields=["status", "completed_at", "updated_at"])
            return PasskeyOutcome.SIGNED_IN
        if policy_check(ACTIONS[Kind.LOST_FACTOR], proofs, now=now):
            _wait_start(attempt, context)
    return PasskeyOutcome.PROVEN


def self_service_passkey_check(*, attempt: SelfServiceRecovery) -> None:
    """Refuse (`SelfServiceRefused`) a passkey ceremony the attempt could not finish now,
    before the passkey is asked: the account is frozen, or another recovery waits."""
    _refuse_if_frozen(attempt)
    _refuse_if_waiting_elsewhere(attempt.user)


def self_service_passkey_failed(*, attempt: SelfServiceRecovery, context: AuditContext) -> None:
    """A passkey assertion of the attempt failed its checks. After the password that is a
    sign-in refused at its second factor, and the account's history shows it so; after a
    backup code nobody tried to sign in, and nothing is written."""
    if any(p["method"] == Method.PASSWORD for p in attempt.proofs):
        sign_in_wrong_code_record(user=attempt.user, context=context)


def self_service_passkey_offered(*, attempt: SelfServiceRecovery) -> bool:
    """Whether the attempt can still be proven with a passkey: a lost factor, still proving,
    on an account with a passkey."""
    return (
        attempt.kind == Kind.LOST_FACTOR
        and attempt.status == Status.PROVING
        and WebAuthnCredential.objects.filter(user=attempt.user_id, confirmed=True).exists()
    )


def self_service_missing(*, attempt: SelfServiceRecovery) -> tuple:
    """What the policy still needs from this attempt, in words: an authenticator only when
    the account has a passkey (the lost app is never one this path can take)."""
    unavailable = (
        frozenset()
        if self_service_passkey_offered(attempt=attempt)
        else frozenset({Method.AUTHENTICATOR})
    )
    return policy_check(
        ACTIONS[Kind(attempt.kind)],
        attempt_proofs(attempt),
        now=timezone.now(),
        unavailable=unavailable,
    ).missing


def _network(ip: str | None) -> str | None:
    """The network an address belongs to (/24 for IPv4, /48 for IPv6)."""
    if not ip:
        return None
    address = ipaddress.ip_address(ip)
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def _risks_of_request(user: User, context: AuditContext) -> list[str]:
    """The risks the starting request shows: a device or a network the account never used.

    Known devices and networks are those of the account's sessions and security events.
    Without a geolocation database the country is not known; a never-seen network is the
    closer (stricter) test.
    """
    from allauth.usersessions.models import UserSession

    seen = list(
        SecurityEvent.objects.filter(account_id=user.pk).values_list("ip_address", "user_agent")
    ) + list(UserSession.objects.filter(user=user).values_list("ip", "user_agent"))
    risks = []
    if context.user_agent not in {agent for _ip, agent in seen if agent}:
        risks.append(Risk.NEW_DEVICE)
    if _network(context.ip_address) not in {_network(ip) for ip, _agent in seen if ip}:
        risks.append(Risk.NEW_NETWORK)
    return risks


def _risks_of_account(user: User, *, now: datetime) -> list[str]:
    """The risks of the account: a recent contact or password change, a declared incident."""
    since = now - timedelta(days=settings.SELF_SERVICE_RISK_LOOKBACK_DAYS)
    risks = []
    if SecurityEvent.objects.filter(
        account_id=user.pk, type__in=RECENT_CHANGE_TYPES, created_at__gte=since
    ).exists():
        risks.append(Risk.RECENT_CHANGE)
    if RevocationCampaign.objects.filter(created_at__gte=since).exists() or (
        RevocationCampaign.objects.filter(status=RevocationCampaign.Status.RUNNING).exists()
    ):
        risks.append(Risk.INCIDENT)
    return risks


def self_service_wait_hours(*, kind: str, risks: list[str]) -> int:
    """The policy's wait for the path, longer by `SELF_SERVICE_RISK_EXTRA_HOURS` per risk."""
    base = _hours(POLICY[ACTIONS[Kind(kind)]].wait_setting)
    return base + settings.SELF_SERVICE_RISK_EXTRA_HOURS * len(risks)


def _wait_start(attempt: SelfServiceRecovery, context: AuditContext) -> None:
    """Both proofs given: the wait starts, and every contact on file gets a cancel link."""
    user = User.objects.select_for_update().get(pk=attempt.user_id)
    _refuse_if_waiting_elsewhere(user)
    # An attempt whose wait is over but which nobody finished (a lost browser session) gives
    # way to this one, which waits its own full time again.
    SelfServiceRecovery.objects.filter(
        user=user, status__in=[Status.WAITING, Status.READY], wait_ends_at__lte=timezone.now()
    ).update(status=Status.ABANDONED, updated_at=timezone.now())
    now = timezone.now()
    risks = [*attempt.risk_factors, *_risks_of_account(user, now=now)]
    attempt.risk_factors = risks
    attempt.wait_hours = self_service_wait_hours(kind=attempt.kind, risks=risks)
    # The hours announced stay the policy's; only a benchmark build lives through them faster.
    attempt.wait_ends_at = now + timedelta(hours=attempt.wait_hours) / float(
        settings.SELF_SERVICE_WAIT_COMPRESSION
    )
    attempt.status = Status.WAITING
    attempt.save(
        update_fields=["risk_factors", "wait_hours", "wait_ends_at", "status", "updated_at"]
    )
    event = _event(
        attempt,
        SecurityEvent.Type.SELF_SERVICE_WAIT_STARTED,
        context,
        wait_hours=attempt.wait_hours,
        risks=risks,
        new_email=mask_email(attempt.new_email),
    )
    _notify_contacts(attempt, step="waiting", event=event, cancel=True)


def self_service_cancel_link_find(*, token: str) -> SelfServiceCancelLink | None:
    """The unused, unexpired cancel link of an attempt that can still be stopped."""
    return (
        SelfServiceCancelLink.objects.select_related("attempt__user")
        .filter(
            token_hash__in=keyed_hash_candidates(token, purpose=HashPurpose.SELF_SERVICE_CANCEL),
            used_at__isnull=True,
            expires_at__gt=timezone.now(),
            attempt__status__in=[Status.WAITING, Status.READY],
        )
        .first()
    )


def self_service_cancel(*, token: str, context: AuditContext) -> SelfServiceRecovery | None:
    """A contact on file stops the attempt: it ends, the account goes on hold, and agents get
    a case about it (joining the account's open case if there is one). Stopped after the
    reset, the account is frozen as well, until an agent recovers it.

    Link and attempt are locked: of two cancels at once, one acts and the other gets None.
    """
    from recovery.services import account_freeze_in_transaction
    from support.models import CaseEvent, CasePriority
    from support.services import case_event_add, not_me_case_open

    with transaction.atomic():
        link = (
            SelfServiceCancelLink.objects.select_for_update()
            .filter(
                token_hash__in=keyed_hash_candidates(
                    token, purpose=HashPurpose.SELF_SERVICE_CANCEL
                ),
                used_at__isnull=True,
                expires_at__gt=timezone.now(),
            )
            .first()
        )
        if link is None:
            return None
        attempt = (
            SelfServiceRecovery.objects.select_for_update(of=("self",))
            .select_related("user")
            .get(pk=link.attempt_id)
        )
        if attempt.status not in (Status.WAITING, Status.READY):
            return None
        # Ready: the authenticator is gone and the browser that asked is signed in to set
        # up its own. Whoever asked proved what the re-enrolment of /recover/2fa/ asks
        # (the password and a code to the login email, say): the account is frozen, every
        # session ends, and nobody sets up a factor until an agent has checked who asks.
        factor_removed = attempt.status == Status.READY
        link.used_at = timezone.now()
        link.save(update_fields=["used_at"])
        attempt.status = Status.CANCELLED
        attempt.cancelled_via = link.channel
        user = attempt.user
        # The case, then what the freeze stops, then the account row: the order of an
        # agent's action and of a recovery's finish (see `account_freeze_in_transaction`).
        opened = not_me_case_open(
            user=user, priority=CasePriority.URGENT if factor_removed else CasePriority.HIGH
        )
        if factor_removed:
            account_freeze_in_transaction(user=user, now=timezone.now())
        security_hold_extend(
            user=user, hours=_hours(POLICY[ACTIONS[Kind(attempt.kind)]].hold_setting)
        )
        event = _event(
            attempt,
            SecurityEvent.Type.SELF_SERVICE_CANCELLED,
            context,
            via=link.channel,
            factor_removed=factor_removed,
            frozen=factor_removed,
        )
        case_event_add(
            case=opened.case,
            type=CaseEvent.Type.SELF_SERVICE_STOPPED,
            details={
                "attempt": attempt.pk,
                "kind": attempt.kind,
                "via": link.channel,
                "security_event_id": event.pk,
            },
        )
        attempt.case = opened.case
        attempt.save(update_fields=["status", "cancelled_via", "case", "updated_at"])
        _notify_contacts(attempt, step="cancelled", event=event, factor_removed=factor_removed)
    return attempt


def self_service_stop_for_frozen(*, user: User) -> int:
    """The owner froze the account: every self-service attempt not yet finished ends, so
    none takes effect once support clears the freeze. Call inside the freeze's
    transaction (which ends every session, the asking browser's included)."""
    return SelfServiceRecovery.objects.filter(
        user=user, status__in=[Status.PROVING, Status.WAITING, Status.READY]
    ).update(status=Status.CANCELLED, cancelled_via="frozen", updated_at=timezone.now())


def lost_factor_reset(*, attempt: SelfServiceRecovery, context: AuditContext) -> User | None:
    """The wait is over: remove the lost authenticator and backup codes, end every session,
    flag the account for re-enrolment, start the hold and tell every contact on file (with
    a stop link); the session that asked then sets
    up the new authenticator (the /recover/2fa/ setup). None when the attempt cannot go on.

    Refused (SecurityHoldActive) while another hold runs: the attempt waits for its end.
    """
    with transaction.atomic():
        attempt = (
            SelfServiceRecovery.objects.select_for_update()
            .select_related("user")
            .get(pk=attempt.pk)
        )
        if (
            attempt.kind != Kind.LOST_FACTOR
            or attempt.status != Status.WAITING
            or not attempt.wait_over
        ):
            return None
        user = User.objects.select_for_update().get(pk=attempt.user_id)
        if user.frozen_at is not None or _end_if_outdated(attempt, context):
            return None
        if user.on_security_hold:
            assert user.security_hold_until is not None
            raise SecurityHoldActive(user.security_hold_until)
        TOTPDevice.objects.filter(user=user).delete()
        BackupCodeDevice.objects.filter(user=user).delete()
        user.reenrolment_required = True
        user.save(update_fields=["reenrolment_required"])
        user_sessions_end_all(user=user)
        security_hold_extend(
            user=user, hours=_hours(POLICY[Action.SELF_SERVICE_LOST_FACTOR].hold_setting)
        )
        event = _event(attempt, SecurityEvent.Type.TWO_FACTOR_REVOKED, context)
        attempt.status = Status.READY
        attempt.save(update_fields=["status", "updated_at"])
        # A sign-in factor changed: every contact hears it now, with a link that still
        # stops the recovery (the asking browser has not set up its app yet).
        _notify_contacts(attempt, step="reset", event=event, cancel=True)
    return user


def lost_factor_finish(*, attempt: SelfServiceRecovery) -> None:
    """The new authenticator is confirmed (its service recorded it and the hold)."""
    SelfServiceRecovery.objects.filter(pk=attempt.pk, status=Status.READY).update(
        status=Status.COMPLETED, completed_at=timezone.now()
    )


def new_email_apply(*, attempt_id: int) -> bool:
    """Make the new login email active once the wait is over (allauth's address in step),
    notify the old and new address and the phone, and put the account on hold.

    An account frozen or on another hold meanwhile is left waiting; an address taken
    meanwhile ends the attempt.
    """
    with transaction.atomic():
        attempt = (
            SelfServiceRecovery.objects.select_for_update()
            .select_related("user")
            .filter(pk=attempt_id, kind=Kind.NEW_EMAIL, status=Status.WAITING)
            .first()
        )
        if attempt is None or not attempt.wait_over:
            return False
        user = User.objects.select_for_update().get(pk=attempt.user_id)
        if user.frozen_at is not None or _end_if_outdated(attempt, None):
            return False
        if user.on_security_hold:
            return False
        if _new_email_taken(attempt):
            attempt.status = Status.CANCELLED
            attempt.cancelled_via = CANCELLED_ADDRESS_TAKEN
            attempt.save(update_fields=["status", "cancelled_via", "updated_at"])
            return False
        user_email_change(
            user=user,
            new_email=attempt.new_email,
            context=AuditContext(ip_address=attempt.ip_address, user_agent=attempt.user_agent),
        )
        security_hold_extend(
            user=user, hours=_hours(POLICY[Action.SELF_SERVICE_NEW_EMAIL].hold_setting)
        )
        attempt.status = Status.COMPLETED
        attempt.completed_at = timezone.now()
        attempt.save(update_fields=["status", "completed_at", "updated_at"])
    return True


def self_service_apply_due() -> int:
    """Apply every new login email whose wait is over (the beat sweep); returns how many."""
    due = SelfServiceRecovery.objects.filter(
        kind=Kind.NEW_EMAIL, status=Status.WAITING, wait_ends_at__lte=timezone.now()
    ).values_list("pk", flat=True)
    return sum(new_email_apply(attempt_id=pk) for pk in list(due))


def masked_contacts(attempt: SelfServiceRecovery) -> dict[str, str]:
    """The contacts the attempt's codes go to, masked, for its page."""
    user = attempt.user
    return {
        Channel.PHONE: mask_phone(user.phone),
        Channel.EMAIL: mask_email(user.email),
        Channel.NEW_EMAIL: mask_email(attempt.new_email),
    }
