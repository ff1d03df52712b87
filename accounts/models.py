"""Accounts data: users, hashed backup codes, one-time codes, the security audit and revocation."""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device, ThrottlingMixin, TimestampMixin

from accounts.contacts import mask_email
from accounts.hashing import HashPurpose, keyed_hash, keyed_hash_candidates


class EmailUserManager(UserManager["User"]):
    """Manager for users who sign in with their email address instead of a username."""

    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra_fields: Any) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(  # type: ignore[override]
        self, email: str, password: str | None = None, **extra_fields: Any
    ) -> User:
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(  # type: ignore[override]
        self, email: str, password: str | None = None, **extra_fields: Any
    ) -> User:
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)

    def get_by_natural_key(self, username: str | None) -> User:
        # Emails are stored lower case, so an exact match on the lowered login uses the index.
        return self.get(email=(username or "").lower())


class User(AbstractUser):  # type: ignore[django-manager-missing] # django-otp has no types
    """A customer or staff member; the email address is the login."""

    # No username and no names: the email is the login. (Django's stubs type these as str.)
    username = None  # type: ignore[assignment]
    first_name = None  # type: ignore[assignment]
    last_name = None  # type: ignore[assignment]
    email = models.EmailField(_("email address"), unique=True)
    # NULL, not "", for "no phone": the unique constraint must allow many accounts without one.
    phone = models.CharField(_("phone number"), max_length=20, null=True, blank=True)  # noqa: DJ001
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="en"
    )
    reenrolment_required = models.BooleanField(
        _("2FA re-enrolment required"),
        default=False,
        help_text=_("Set when the user's 2FA was revoked; cleared when they set it up again."),
    )
    security_hold_until = models.DateTimeField(_("security hold until"), null=True, blank=True)
    frozen_at = models.DateTimeField(
        _("frozen at"),
        null=True,
        blank=True,
        help_text=_('Set by "this wasn\'t me": no sign-in until support clears it.'),
    )

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects: ClassVar[EmailUserManager] = EmailUserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
            models.UniqueConstraint(fields=["phone"], name="accounts_user_phone_unique"),
        ]

    def __str__(self) -> str:
        """A customer's address masked, a staff member's in full.

        Every staff page that names an account (admin titles, breadcrumbs, related fields,
        the admin's history) prints this, so a customer's contact data stays masked there;
        the reveal with a reason on the case page is the one way to read it in full.
        """
        if self.is_staff:
            return self.email
        return mask_email(self.email)

    def save(self, *args, **kwargs) -> None:
        self.email = self.email.lower()
        if not self.phone:
            self.phone = None
        super().save(*args, **kwargs)

    def get_full_name(self) -> str:
        return self.email

    def get_short_name(self) -> str:
        return self.email

    @property
    def on_security_hold(self) -> bool:
        return self.security_hold_until is not None and self.security_hold_until > timezone.now()


# Crockford's base32: no I, L, O or U, so nothing in a code reads as another of its
# characters. A typed O counts as 0, and I or L as 1.
BACKUP_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_BACKUP_CODE_SEPARATORS = dict.fromkeys(map(ord, " -\u2010\u2011\u2012\u2013\u2014_.\t"))
_TO_CROCKFORD = str.maketrans("OIL", "011")
# Codes made before the Crockford alphabet are RFC 4648 base32 (A-Z, 2-7): there a typed
# 0 can only be an O, a 1 an I and an 8 a B.
_TO_RFC4648 = str.maketrans("018", "OIB")


def backup_code_compact(code: str) -> str:
    """A typed code without spaces, dashes or dots, in capitals."""
    return code.translate(_BACKUP_CODE_SEPARATORS).upper()


def _backup_code_forms(code: str) -> list[str]:
    """What a typed code can stand for: a current code, and a code of the old alphabet."""
    compact = backup_code_compact(code)
    return list(dict.fromkeys([compact.translate(_TO_CROCKFORD), compact.translate(_TO_RFC4648)]))


def backup_code_hash(code: str) -> str:
    """Hash a backup code for storage (see `accounts.hashing`).

    Codes carry 80 random bits, so a keyed SHA-256 is enough: there is nothing to brute-force,
    and the key keeps a leaked table useless without the server's secret.
    """
    return keyed_hash(
        backup_code_compact(code).translate(_TO_CROCKFORD), purpose=HashPurpose.BACKUP_CODE
    )


def backup_code_hash_candidates(code: str) -> list[str]:
    """The hashes a typed code may be stored under: each reading of it (`_backup_code_forms`)
    under the current and every fallback secret key, for the lookup."""
    return [
        candidate
        for form in _backup_code_forms(code)
        for candidate in keyed_hash_candidates(form, purpose=HashPurpose.BACKUP_CODE)
    ]


class BackupCodeDevice(TimestampMixin, ThrottlingMixin, Device):
    """A django-otp device holding single-use backup codes, stored only as hashes."""

    class Meta:
        verbose_name = _("backup code device")

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_BACKUP_CODE_THROTTLE_FACTOR", 1)

    def verify_token(self, token) -> bool:
        allowed, _details = self.verify_is_allowed()
        if not allowed:
            return False
        deleted, _rows = self.codes.filter(
            code_hash__in=backup_code_hash_candidates(str(token))
        ).delete()
        if deleted:
            self.throttle_reset(commit=False)
            self.set_last_used_timestamp(commit=False)
            self.save()
            return True
        self.throttle_increment()
        return False


class BackupCode(models.Model):
    """One unused backup code of a `BackupCodeDevice`; deleted when used."""

    device = models.ForeignKey(BackupCodeDevice, related_name="codes", on_delete=models.CASCADE)
    code_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "code_hash"], name="backup_code_unique")
        ]

    def __str__(self) -> str:
        return f"backup code #{self.pk}"


class SecurityEvent(models.Model):
    """Append-only audit record of a security-relevant change to an account.

    `account_id` is the user's id kept as a plain number, not a foreign key: erasing an
    account must not delete or rewrite its audit trail, and PostgreSQL rejects both.
    """

    class Type(models.TextChoices):
        SIGNED_UP = "signed_up", _("Account created")
        TWO_FACTOR_ENABLED = "two_factor_enabled", _("Two-factor authentication set up")
        BACKUP_CODES_REGENERATED = "backup_codes_regenerated", _("Backup codes regenerated")
        BACKUP_CODE_USED = "backup_code_used", _("Backup code used")
        PASSWORD_CHANGED = "password_changed", _("Password changed")
        PASSWORD_RESET = "password_reset", _("Password reset")
        EMAIL_CHANGED = "email_changed", _("Login email changed")
        SESSIONS_ENDED = "sessions_ended", _("Other sessions signed out")
        TWO_FACTOR_REENROLLED = "two_factor_reenrolled", _("Two-factor authentication set up again")
        ACCOUNT_FROZEN = "account_frozen", _("Account frozen by its owner")
        ACCOUNT_RECOVERED = "account_recovered", _("Account recovered by support")
        TWO_FACTOR_REVOKED = "two_factor_revoked", _("Two-factor authentication reset")
        EMAIL_CHANGE_SCHEDULED = "email_change_scheduled", _("Login email change scheduled")
        EMAIL_CHANGE_CANCELLED = "email_change_cancelled", _("Login email change stopped by owner")
        PHONE_CHANGED = "phone_changed", _("Phone number changed")
        PERMISSIONS_CHANGED = "permissions_changed", _("Sign-in or staff permissions changed")
        SECURITY_HOLD_LIFTED = "security_hold_lifted", _("Security hold lifted by a supervisor")
        STAFF_RECHECK_FAILED = (
            "staff_recheck_failed",
            _("Authenticator re-check failed before a sensitive staff action"),
        )
        NOTICE_RETRACTED = "notice_retracted", _("Message sent in error retracted")
        SELF_SERVICE_REQUESTED = "self_service_requested", _("Self-service recovery requested")
        SELF_SERVICE_CODE_SENT = (
            "self_service_code_sent",
            _("Self-service recovery: a code was sent"),
        )
        SELF_SERVICE_PROOF_ADDED = (
            "self_service_proof_added",
            _("Self-service recovery: a code or a passkey was confirmed"),
        )
        SELF_SERVICE_WAIT_STARTED = (
            "self_service_wait_started",
            _("Self-service recovery: waiting period started"),
        )
        SELF_SERVICE_CANCELLED = (
            "self_service_cancelled",
            _("Self-service recovery stopped from a contact on file"),
        )
        PASSKEY_ADDED = "passkey_added", _("Passkey added")
        PASSKEY_RENAMED = "passkey_renamed", _("Passkey renamed")
        PASSKEY_REMOVED = "passkey_removed", _("Passkey removed")

    account_id = models.BigIntegerField(db_index=True)
    type = models.CharField(max_length=40, choices=Type.choices)
    actor_id = models.BigIntegerField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The audit chain (see accounts.services.audit): position, and hashes linking each event
    # to the one before it, so an edited or deleted row breaks the chain.
    seq = models.PositiveBigIntegerField(unique=True, null=True, editable=False)
    prev_hash = models.CharField(max_length=64, blank=True, editable=False)
    hash = models.CharField(max_length=64, blank=True, editable=False)
    # Which audit key made `hash` (an HMAC): a short id derived from the key, so that
    # verification after a rotation picks the right one. Empty for the legacy events written
    # before the chain was keyed, whose hash is a plain SHA-256.
    key_id = models.CharField(max_length=8, blank=True, default="", db_default="", editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account_id", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_type_display()} (account {self.account_id})"


class OneTimeCode(models.Model):
    """A 6-digit code sent to a contact on file; stored hashed, short-lived, few attempts.

    `scope` ties the code to what it proves (for example a recovery case), so a code sent
    for one purpose never passes another.
    """

    class Purpose(models.TextChoices):
        REENROLMENT = "reenrolment", _("2FA re-enrolment")
        PROVE_PHONE = "prove_phone", _("Prove the phone on file")
        PROVE_EMAIL = "prove_email", _("Prove the email on file")
        PROVE_NEW_EMAIL = "prove_new_email", _("Prove a new email address")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    scope = models.CharField(max_length=60, blank=True)
    code_hash = models.CharField(max_length=64)
    attempts = models.PositiveSmallIntegerField(default=0)
    expires_at = models.DateTimeField()
    consumed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["user", "purpose", "scope", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.purpose} code for user {self.user_id}"


class NotMeLink(models.Model):
    """The "this wasn't me" link of one security event: single use, expiring, stored hashed."""

    token_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    security_event = models.ForeignKey(
        SecurityEvent, null=True, on_delete=models.PROTECT, related_name="+"
    )
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"not-me link for user {self.user_id}"


class AuditChainHead(models.Model):
    """The newest link of the security-event hash chain; locked while an event is added."""

    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, blank=True)
    # The last event allowed to carry an unkeyed (legacy) hash: those written before the chain
    # was keyed. Every later event must carry an HMAC; signed checkpoints repeat this value, so
    # raising it to pass off rewritten events as legacy ones is detected against them.
    legacy_until = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"audit chain at {self.seq}"


class RevocationCampaign(models.Model):
    """A mass 2FA revocation: who ran it, why, whom it covers, and how far it got."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        FINISHED = "finished", _("Finished")

    reason = models.TextField()
    operator = models.CharField(max_length=150)
    selection = models.JSONField(default=dict)
    total = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"campaign {self.pk}: {self.reason[:40]}"


class CampaignTarget(models.Model):
    """An account a campaign has still to revoke: the batch that revokes it deletes the row.

    The campaign's record of whom it revoked is its notices (one per account, by
    constraint) and the accounts' security events; the targets are only its work queue.
    """

    # The unique constraint's index starts with the campaign: no separate one is needed.
    campaign = models.ForeignKey(
        RevocationCampaign, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    user_id = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "user_id"], name="campaign_target_unique")
        ]

    def __str__(self) -> str:
        return f"campaign {self.campaign_id} user {self.user_id}"


class SignIn(models.Model):
    """A sign-in to the account, completed or refused, for the customer's own history.

    Not part of the audit chain and no security event: it records no change, only where
    the account was used or tried. Never what was typed (password or code). Only the
    newest of each account are kept, completed and refused apart (`SIGN_IN_HISTORY_KEPT`),
    so a stranger's failures cannot push the customer's own sign-ins out of the history.
    """

    class Outcome(models.TextChoices):
        SIGNED_IN = "signed_in", _("Signed in")
        WRONG_PASSWORD = "wrong_password", _("Failed: wrong password")
        WRONG_SECOND_FACTOR = (
            "wrong_second_factor",
            _("Failed: right password, wrong two-factor code"),
        )
        # Not a sign-in: a session already signed in failed allauth's "confirm it's you"
        # step before a sensitive action, the sign of a session its owner may not hold.
        WRONG_PASSWORD_REAUTHENTICATION = (
            "reauth_wrong_password",
            _("Failed: wrong password when confirming it's you"),
        )

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    outcome = models.CharField(max_length=32, choices=Outcome.choices, default=Outcome.SIGNED_IN)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="sign_in_user_recent_idx")]

    def __str__(self) -> str:
        return f"sign-in #{self.pk}"
