"""Reads for the accounts pages, admin and commands."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from allauth.account.models import EmailAddress
from allauth.usersessions.models import UserSession
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.contacts import InvalidPhoneNumber, phone_country_code, phone_to_e164
from accounts.models import BackupCode, SecurityEvent, SignIn, User
from accounts.policy import Action, Method, Proof, policy_check
from notifications.sms.budget import sms_budget_left


@dataclass(frozen=True)
class TwoFactorStatus:
    enabled: bool
    backup_codes_left: int
    reenrolment_required: bool
    passkeys: int = 0


# The backend `staff_by_password` signs in with; a session keeps its path.
STAFF_SIGN_IN_BACKEND = "django.contrib.auth.backends.ModelBackend"


def staff_by_password(*, email: str, password: str) -> User | None:
    """The active user whose login email and password these are, after exactly one password
    hash whatever the answer.

    `django.contrib.auth.authenticate` asks every configured backend in turn: a right password
    stops at the first one, a wrong password or an unknown email goes on to allauth's backend
    and costs a second hash. On the staff sign-in, where the code is checked only after a
    right password, that second hash told an attacker the password was right. Django's
    ModelBackend alone hashes once for a known and once for an unknown email.
    """
    user = ModelBackend().authenticate(None, username=email, password=password)
    if not isinstance(user, User):
        return None
    user.backend = STAFF_SIGN_IN_BACKEND
    return user


def user_list_by_contact(queryset: QuerySet[User], *, term: str) -> QuerySet[User]:
    """The accounts of `queryset` whose login email or phone is exactly `term` (all when blank).

    Staff find an account by the whole address or number a customer gives them, the email
    in any letter case and the number as typed; a part of either matches nothing. A search
    that matched parts would confirm a guessed address one character at a time and so read
    a masked contact in full without the reason and the log of the case page's reveal.
    """
    term = term.strip()
    if not term:
        return queryset
    match = Q(email__iexact=term)
    with suppress(InvalidPhoneNumber):
        match |= Q(phone=phone_to_e164(term))
    return queryset.filter(match)


def two_factor_status(*, user: User) -> TwoFactorStatus:
    return TwoFactorStatus(
        enabled=TOTPDevice.objects.filter(user=user, confirmed=True).exists(),
        backup_codes_left=BackupCode.objects.filter(device__user=user).count(),
        reenrolment_required=user.reenrolment_required,
        passkeys=WebAuthnCredential.objects.filter(user=user, confirmed=True).count(),
    )


def user_has_authenticator(*, user: User) -> bool:
    """Whether the user has a second factor to sign in with: the app or a passkey."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists() or user_has_passkey(
        user=user
    )


def user_has_totp(*, user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def user_has_passkey(*, user: User) -> bool:
    return WebAuthnCredential.objects.filter(user=user, confirmed=True).exists()


def passkey_list(*, user: User) -> QuerySet[WebAuthnCredential]:
    """The user's passkeys, oldest first, as the passkeys page lists them."""
    return WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("created_at", "pk")


def totp_device_unconfirmed(*, user: User, device_id: int | None) -> TOTPDevice | None:
    """The authenticator this user's setup page started and has not confirmed yet."""
    if device_id is None:
        return None
    return TOTPDevice.objects.filter(pk=device_id, user=user, confirmed=False).first()


def security_event_list_recent(*, user: User, limit: int = 20) -> QuerySet[SecurityEvent]:
    return SecurityEvent.objects.filter(account_id=user.pk).order_by("-created_at", "-id")[:limit]


def sign_in_list_recent(*, user: User, limit: int = 10) -> QuerySet[SignIn]:
    """The account's newest sign-ins, completed and refused, newest first."""
    return SignIn.objects.filter(user=user).order_by("-created_at", "-id")[:limit]


def user_session_list(*, user: User) -> list[UserSession]:
    """The user's live sessions, most recently active first (stale rows are purged)."""
    sessions = UserSession.objects.purge_and_list(user)
    return sorted(sessions, key=lambda s: s.last_seen_at, reverse=True)


class RestrictionReason:
    """Why the exchange should restrict an account (codes of the restrictions API)."""

    FROZEN = "account_frozen"
    INACTIVE = "account_inactive"
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
    withdrawals nor security changes until it ends. An account whose sign-in right staff
    removed allows nothing until it is given back.
    """
    now = now or timezone.now()
    reasons: list[str] = []
    open_ended = False
    if not user.is_active:
        reasons.append(RestrictionReason.INACTIVE)
        open_ended = True
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
        security_changes_allowed=not (on_hold or user.frozen_at is not None or not user.is_active),
        until=hold_until if on_hold and not open_ended else None,
        reasons=tuple(reasons),
    )


# The second factors a revocation can remove (`revoke_2fa --factors`), all by default.
REVOCABLE_FACTORS = ("totp", "backup", "passkey")


@dataclass(frozen=True)
class RevocationForecast:
    """What a revocation of `selected` customers will cost: self-service, agents, SMS.

    `factors` are the second factors the revocation removes: backup codes and passkeys
    count toward self-service only when the revocation keeps them.
    """

    selected: int
    with_phone: int
    with_verified_email: int
    with_backup_codes: int
    with_passkey: int
    factors: tuple[str, ...]
    self_service: int
    agent_cases: int
    cases_per_agent_hour: float
    handling_rate_source: str
    handling_rate_cases: int
    agent_hours: float
    texts_over_budget: int

    @property
    def self_service_share(self) -> float:
        return round(self.self_service / self.selected, 4) if self.selected else 0.0

    @property
    def backup_codes_kept(self) -> bool:
        return "backup" not in self.factors

    @property
    def passkeys_kept(self) -> bool:
        return "passkey" not in self.factors

    def as_dict(self) -> dict:
        return {
            "selected": self.selected,
            "factors_removed": list(self.factors),
            "with_phone": self.with_phone,
            "with_verified_email": self.with_verified_email,
            "with_backup_codes": self.with_backup_codes,
            "backup_codes_kept": self.backup_codes_kept,
            "with_passkey": self.with_passkey,
            "passkeys_kept": self.passkeys_kept,
            "self_service": self.self_service,
            "self_service_share": self.self_service_share,
            "agent_cases": self.agent_cases,
            "cases_per_agent_hour": self.cases_per_agent_hour,
            "handling_rate_source": self.handling_rate_source,
            "handling_rate_cases": self.handling_rate_cases,
            "agent_hours": self.agent_hours,
            "texts_over_budget": self.texts_over_budget,
        }


SELF_SERVICE_ACTIONS = (
    Action.SELF_SERVICE_LOST_FACTOR,
    Action.SELF_SERVICE_NEW_EMAIL,
    Action.SELF_SERVICE_APP_WITH_PASSKEY,
)


def revocation_forecast(
    *,
    users: QuerySet[User],
    factors: tuple[str, ...] = REVOCABLE_FACTORS,
    now: datetime | None = None,
) -> RevocationForecast:
    """The load a revocation of `users` puts on self-service and on the agents.

    A customer can recover alone when the methods they still hold after the revocation
    fill a self-service rule of the policy table (accounts.policy): the password, a code to
    the phone on file, a code to a verified email, and the backup codes and passkeys that
    the revocation's `factors` leave in place (it removes the authenticator app always).
    Those who had backup codes or a passkey are counted either way; only kept ones count
    toward self-service. Everyone else becomes an agent case, worked at the agents'
    handling rate (support.selectors.agent_handling_rate).
    """
    # The queue belongs to support, which builds on accounts: read it at call time.
    from support.selectors import agent_handling_rate

    now = now or timezone.now()
    combos = (
        users.order_by()
        .annotate(
            has_phone=Q(phone__isnull=False),
            has_verified_email=Exists(
                EmailAddress.objects.filter(
                    user=OuterRef("pk"), email__iexact=OuterRef("email"), verified=True
                )
            ),
            has_backup_codes=Exists(BackupCode.objects.filter(device__user=OuterRef("pk"))),
            has_passkey=Exists(
                WebAuthnCredential.objects.filter(user=OuterRef("pk"), confirmed=True)
            ),
            has_password=~Q(password__startswith=UNUSABLE_PASSWORD_PREFIX) & ~Q(password=""),
        )
        .values(
            "has_phone", "has_verified_email", "has_backup_codes", "has_passkey", "has_password"
        )
        .annotate(n=Count("id"))
    )
    selected = with_phone = with_email = with_codes = with_passkey = self_service = 0
    for combo in combos:
        count = combo["n"]
        selected += count
        with_phone += count * combo["has_phone"]
        with_email += count * combo["has_verified_email"]
        with_codes += count * combo["has_backup_codes"]
        with_passkey += count * combo["has_passkey"]
        held = {
            Method.PASSWORD: combo["has_password"],
            Method.PHONE_CODE: combo["has_phone"],
            Method.EMAIL_CODE: combo["has_verified_email"],
            Method.BACKUP_CODE: combo["has_backup_codes"] and "backup" not in factors,
            Method.AUTHENTICATOR: combo["has_passkey"] and "passkey" not in factors,
            # A new address is the requester's own: anyone can prove one.
            Method.NEW_EMAIL_CODE: True,
        }
        proofs = [Proof(method=method, at=now) for method, has in held.items() if has]
        if any(policy_check(action, proofs, now=now) for action in SELF_SERVICE_ACTIONS):
            self_service += count
    texts_by_country: dict[int, int] = {}
    for phone in (
        users.filter(phone__isnull=False).values_list("phone", flat=True).iterator(chunk_size=5000)
    ):
        try:
            country = phone_country_code(phone or "")
        except InvalidPhoneNumber:
            continue
        texts_by_country[country] = texts_by_country.get(country, 0) + 1
    over_budget = 0
    for country, texts in texts_by_country.items():
        left = sms_budget_left(country_code=country)
        if left is not None:
            over_budget += max(texts - left, 0)
    rate = agent_handling_rate(now=now)
    agent_cases = selected - self_service
    return RevocationForecast(
        selected=selected,
        with_phone=with_phone,
        with_verified_email=with_email,
        with_backup_codes=with_codes,
        with_passkey=with_passkey,
        factors=tuple(factors),
        self_service=self_service,
        agent_cases=agent_cases,
        cases_per_agent_hour=rate.cases_per_hour,
        handling_rate_source=rate.source,
        handling_rate_cases=rate.measured_cases,
        agent_hours=round(agent_cases / rate.cases_per_hour, 1) if rate.cases_per_hour else 0.0,
        texts_over_budget=over_budget,
    )
