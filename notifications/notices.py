"""The wording of security notices, fixed per event type so no caller can invent an alarm."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.translation import gettext_lazy as _

from accounts.models import SecurityEvent
from accounts.selectors import RestrictionReason

_TEXT = {
    SecurityEvent.Type.TWO_FACTOR_ENABLED: (
        _("Two-factor authentication was set up"),
        _("An authenticator app was set up for two-factor sign-in on your account."),
    ),
    SecurityEvent.Type.BACKUP_CODES_REGENERATED: (
        _("New backup codes were created"),
        _("New backup codes were created for your account. The old codes no longer work."),
    ),
    SecurityEvent.Type.BACKUP_CODE_USED: (
        _("A backup code was used"),
        _("One of your backup codes was used to sign in. Each code works only once."),
    ),
    SecurityEvent.Type.PASSWORD_CHANGED: (
        _("Your password was changed"),
        _("The password of your account was changed."),
    ),
    SecurityEvent.Type.PASSWORD_RESET: (
        _("Your password was reset"),
        _("The password of your account was reset through a reset link."),
    ),
    SecurityEvent.Type.EMAIL_CHANGED: (
        _("Your login email was changed"),
        _("The email address you sign in with was changed."),
    ),
    SecurityEvent.Type.PHONE_CHANGED: (
        _("The phone number of your account was changed"),
        _(
            "The phone number on file for your account, which receives codes and recovery "
            "messages, was changed."
        ),
    ),
    SecurityEvent.Type.SESSIONS_ENDED: (
        _("Other sessions were signed out"),
        _("All sessions of your account except one were signed out."),
    ),
    SecurityEvent.Type.TWO_FACTOR_REENROLLED: (
        _("Two-factor authentication was set up again"),
        _(
            "After a reset, a new authenticator app and new backup codes were set up for your "
            "account. For your protection, withdrawals and security changes are on hold for a "
            "while; your security page shows until when."
        ),
    ),
    SecurityEvent.Type.ACCOUNT_FROZEN: (
        _("Your account is frozen"),
        _(
            "You reported a change you did not make. Your account is frozen and every session "
            "was signed out. Support will contact you; nobody can sign in until then."
        ),
    ),
    SecurityEvent.Type.ACCOUNT_RECOVERED: (
        _("Your account was recovered by our support team"),
        _(
            "After checking your identity, support ended every session and removed your "
            "two-factor devices, and sent a single-use link to set a new password and set up "
            "2FA again. Withdrawals and security changes are on hold for a while."
        ),
    ),
    SecurityEvent.Type.SECURITY_HOLD_LIFTED: (
        _("The security hold on your account was lifted"),
        _(
            "A supervisor of our support team ended the security hold on your account early. "
            "Security changes and withdrawals are possible again."
        ),
    ),
    SecurityEvent.Type.PASSKEY_ADDED: (
        _("A passkey was added to your account"),
        _("A new passkey was registered for two-factor sign-in on your account."),
    ),
    SecurityEvent.Type.PASSKEY_RENAMED: (
        _("A passkey of your account was renamed"),
        _("The name of one of the passkeys of your account was changed."),
    ),
    SecurityEvent.Type.PASSKEY_REMOVED: (
        _("A passkey was removed from your account"),
        _("One of the passkeys of your account was removed; it no longer signs in."),
    ),
}


# A lifted hold reopens withdrawals only when nothing else keeps them closed; the event
# records what did (`accounts.services.holds.security_hold_lift`), most lasting first.
_HOLD_LIFTED_BUT = {
    RestrictionReason.FROZEN: _(
        "A supervisor of our support team ended the security hold on your account early. "
        "Your account stays frozen: nobody can sign in and no withdrawal is possible until "
        "our support team has checked with you who you are."
    ),
    RestrictionReason.TWO_FACTOR_REENROLMENT: _(
        "A supervisor of our support team ended the security hold on your account early. "
        "Withdrawals stay closed until two-factor authentication is set up again on your "
        "account."
    ),
}


# What a revocation campaign asks of the customer depends on whether it removed passkeys
# (`revoke_2fa --factors`): a kept passkey still signs in and needs no new app.
_CAMPAIGN_NEXT_STEP = {
    True: _(
        "Any passkeys on your account were removed as well. Next time you sign in, you "
        "will set up your authenticator app again."
    ),
    False: _(
        "If your account has a passkey, it still works: sign in with it as before. "
        "Otherwise, next time you sign in, you will set up your authenticator app again."
    ),
}


def campaign_notice_text(factors: Iterable[str] | None) -> dict[str, str]:
    """The campaign notice's next step for the factors the campaign removed (all when the
    event does not name them), in the active language."""
    passkeys_removed = factors is None or "passkey" in factors
    return {"next_step": str(_CAMPAIGN_NEXT_STEP[passkeys_removed])}


def security_notice_text(event_type: str, details: dict | None = None) -> dict[str, str]:
    """Headline and explanation of the notice for an event type (KeyError for other types).

    `details` are the stored event's: only a fixed wording of the type is ever chosen by
    them (what still restricts the account after a lifted hold), never their text.
    """
    headline, explanation = _TEXT[SecurityEvent.Type(event_type)]
    if event_type == SecurityEvent.Type.SECURITY_HOLD_LIFTED:
        left = (details or {}).get("restrictions_left") or ()
        explanation = next(
            (text for reason, text in _HOLD_LIFTED_BUT.items() if reason in left), explanation
        )
    return {"headline": str(headline), "explanation": str(explanation)}
