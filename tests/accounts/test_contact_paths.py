"""Every URL of the project is classified by whether it can change the login email, the
phone, the password or a factor, and a signed-in session alone changes none of them.

The walk over `get_resolver().url_patterns` fails when a URL appears that nobody has
classified here, so a new page that could move the login email is looked at before it
ships. Then every URL (admin pages included) is opened and posted to, with a form made to
move the contacts, by a customer's signed-in, 2FA-verified session: nothing moves.
"""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.models import SecurityEvent, User
from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from tests.factories import UserFactory, contacts_and_factors
from tests.support.conftest import customer_client

pytestmark = pytest.mark.django_db

# Pages that could change the login email, the phone, the password or a factor, and why a
# session alone cannot.
CONTACT_PATHS = {
    "account_email": "closed: allauth's email management answered by our page, POST 403",
    "account_confirm_email": "confirms only the login email itself (sign-up verification)",
    "account_email_verification_sent": "a notice page, changes nothing",
    "account_change_password": "allauth asks for the current password; refused on hold",
    "account_set_password": "closed: a password without one is set through a reset link",
    "account_reset_password": "sends a link to the login email only",
    "account_reset_password_from_key": "needs the emailed key; refused on hold",
    "account_reset_password_from_key_done": "a notice page, changes nothing",
    "account_reset_password_done": "a notice page, changes nothing",
    "account_signup": "creates a new account, never changes one",
    "two_factor_setup": "only for an account without an authenticator; replacing is refused",
    "backup_codes_regenerate": "needs a current authenticator code; refused on hold",
    "recover_2fa": "re-enrolment: password + code to the login email, only when flagged",
    "recover_2fa_setup": "re-enrolment: only after the emailed code, only when flagged",
    "recover_reset": "recovery link password: the recovery itself (support's policy)",
    "recover_reset_link": "recovery link: single use, from support's policy",
    "recover_email_change_cancel": "cancels a scheduled change, never makes one",
    "recover_email_change_cancel_link": "cancels a scheduled change, never makes one",
    "recover_lost_2fa": "self-service policy row: two proofs, a wait every contact can stop",
    "recover_lost_2fa_setup": "re-enrolment setup, only for the session whose wait ended",
    "recover_lost_2fa_passkey_complete": "a proof step of this browser's attempt, own passkeys",
    "recover_new_email": "self-service policy row: password, phone code, new-address code, wait",
    "recover_self_service_cancel": "stops a self-service attempt, never makes a change",
    "recover_self_service_cancel_link": "stops a self-service attempt, never makes a change",
    "admin:accounts_user_change": "no email or phone input: language, sign-in right, roles",
    "admin:accounts_user_add": "staff with OTP only; creates an account, changes none",
    "admin:auth_user_password_change": "refused for everyone (403)",
    "admin:accounts_user_lift_hold": "supervisors only, with a reason, audited and notified",
    "admin:password_change": "the staff member's own password, behind OTP",
    "otp_webauthn:credential-registration-begin": "adds no passkey; after 2FA, refused on hold",
    "otp_webauthn:credential-registration-complete": "a passkey after 2FA; refused on hold",
    "account_passkey_rename": "renames the user's own passkey; refused on hold",
    "account_passkey_remove": "never the last second factor; refused on hold",
    "account_app_replace_with_passkey": "password + passkey of this sign-in; refused on hold",
}
# Pages that change none of those, by name.
OTHER_PATHS = {
    "home": "landing page",
    "healthz": "liveness",
    "favicon": "redirect to the icon",
    "two_factor_verify": "checks a code, changes nothing",
    "otp_webauthn:credential-authentication-begin": "a challenge for the signed-in user",
    "otp_webauthn:credential-authentication-complete": "checks a passkey, changes nothing",
    "otp_webauthn:js-i18n-catalog": "the passkey script's translations",
    "account_passkeys": "lists the user's passkeys",
    "recover_lost_2fa_passkey_begin": "a challenge for this browser's lost-2fa attempt",
    "account_login": "sign-in",
    "account_logout": "sign-out",
    "account_inactive": "notice page",
    "account_reauthenticate": "asks for the password again, changes nothing",
    "account_request_reauthentication_code": "sends a code to the login email",
    "account_confirm_reauthentication_code": "checks that code",
    "account_confirm_login_code": "sign-in by code",
    "usersessions_list": "lists and ends sessions",
    "account_security": "read-only security page",
    "sessions_end_others": "ends other sessions",
    "recover_hub": "links",
    "recover_email": "tells the login email, masked, to the phone on file",
    "recover_email_sent": "notice page",
    "recover_help": "opens a case",
    "recover_case": "a requester's status page (support's policy)",
    "recover_case_link": "status link",
    "recover_case_resend": "emails a new status link to the contact email on file",
    "recover_not_me": "freezes the account (never a change of contacts)",
    "recover_not_me_link": "not-me link",
    "recover_verify_message": "checks a message reference",
    "recover_frozen": "notice page",
    "api_restrictions": "bearer-token read of the restrictions",
    "api_openapi": "schema",
    "language_switch": "page language cookie, nothing else",
    "dev_inbox": "DEBUG only, read-only",
    "admin:index": "admin home",
    "admin:login": "staff sign-in",
    "admin:logout": "staff sign-out",
    "admin:password_change_done": "notice page",
    "admin:autocomplete": "read-only lookups",
    "admin:jsi18n": "translations",
    "admin:view_on_site": "redirect",
    "admin:app_list": "index of an app",
    "admin:support_queue": "agent's queue",
    "admin:support_take_next": "claims a case",
    "admin:support_approvals": "supervisor approvals (support's policy)",
    "admin:support_dashboard": "read-only",
    "admin:support_case_work": "the agent's case page (support's policy)",
    "admin:support_case_renew": "renews the lease of the case the agent holds",
    "admin:support_evidence": "serves an uploaded file",
}
# Admin models: every one but the account itself is read-only for everyone.
ADMIN_MODELS = {
    "accounts.User": "edits through user_update: hold, events, notices; contacts write-only",
    "auth.Group": "staff roles, no customer data",
    "accounts.SecurityEvent": "read-only",
    "otp_totp.TOTPDevice": "read-only: no device added or removed in the admin",
    "django_otp_webauthn.WebAuthnCredential": "read-only: passkeys change only by their owner",
    "usersessions.UserSession": "read-only",
    "notifications.Notification": "read-only",
    "support.RecoveryCase": "read-only; the case page acts through the policy",
    "support.CaseEvent": "read-only",
    "support.CaseApproval": "read-only",
    "support.EmailChange": "read-only",
    "api.ServiceToken": "read-only",
    "api.ServiceCall": "read-only",
}
WRITABLE_ADMIN_MODELS = {"accounts.User", "auth.Group"}
ADMIN_MODEL_URL = re.compile(r"^admin:(\w+)_(\w+)_(changelist|add|change|delete|history)$")


def url_patterns() -> list[tuple[str, str | None]]:
    """(path template, namespaced name) of every URL pattern of the project."""
    found: list[tuple[str, str | None]] = []

    def walk(patterns, prefix: str, namespace: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
            elif isinstance(pattern, URLPattern):
                name = f"{namespace}{pattern.name}" if pattern.name else None
                found.append((prefix + str(pattern.pattern), name))

    walk(get_resolver().url_patterns, "", "")
    return found


def classification(route: str, name: str | None) -> str | None:
    if name is None:
        # Catch-alls and the admin's "<id>/" redirect to the change page.
        return "unnamed redirect or catch-all" if re.search(r"\.\*|object_id>/$", route) else None
    if name in CONTACT_PATHS:
        return CONTACT_PATHS[name]
    if name in OTHER_PATHS:
        return OTHER_PATHS[name]
    match = ADMIN_MODEL_URL.match(name)
    if match:
        for label in ADMIN_MODELS:
            app, model = label.split(".")
            if match.group(1) == app.lower() and match.group(2) == model.lower():
                return ADMIN_MODELS[label]
    if name.startswith("admin:otp_totp_totpdevice_"):
        return None  # django-otp's config and QR pages would show the secret
    return None


def test_every_url_is_classified():
    """A URL nobody classified fails here: decide whether it can move a contact first."""
    unclassified = [
        (route, name) for route, name in url_patterns() if not classification(route, name)
    ]
    assert unclassified == []


def test_every_admin_model_is_classified_and_only_accounts_and_groups_are_writable(rf):
    """A newly registered admin model fails here, and so does one that allows edits."""
    registered = {model._meta.label for model in admin.site._registry}
    assert registered == set(ADMIN_MODELS)
    root = UserFactory.build(is_staff=True, is_superuser=True, is_active=True)
    request = rf.get("/admin/")
    request.user = root
    for model, model_admin in admin.site._registry.items():
        if model._meta.label in WRITABLE_ADMIN_MODELS:
            continue
        assert not model_admin.has_add_permission(request), model._meta.label
        assert not model_admin.has_change_permission(request), model._meta.label
        assert not model_admin.has_delete_permission(request), model._meta.label


SAMPLE = {
    "int": "1",
    "str": "x" * 43,
    "path": "1",
}
MOVE_CONTACTS_FORM = {
    "email": "drainer@evil.example",
    "new_email": "drainer@evil.example",
    "login": "drainer@evil.example",
    "phone": "+4915199999999",
    "new_phone": "+4915199999999",
    "action_add": "",
    "action_primary": "",
    "action_remove": "",
    "oldpassword": "not-the-password",
    "password": "thief-owns-it-99",
    "password1": "thief-owns-it-99",
    "password2": "thief-owns-it-99",
    "code": "123456",
    "_save": "Save",
}


def concrete_path(route: str, user: User) -> str:
    """A path for a route template, with sample values for its parameters."""
    route = re.sub(r"<int:\w+>|<path:object_id>|<id>", str(user.pk), route)
    route = re.sub(r"<(\w+):\w+>", lambda m: SAMPLE.get(m.group(1), "x"), route)
    route = re.sub(r"\(\?P<\w+>[^)]*\)", "x1-x", route)
    return "/" + route.replace("^", "").replace("$", "")


def test_a_signed_in_session_alone_moves_no_contact_through_any_url():
    """GET and POST every URL with a form made to move the contacts, as a customer's
    signed-in, 2FA-verified session: the login email, the phone, the password and the
    factors stay, and no change is recorded."""
    user = UserFactory.create(email="victim@example.com", phone="+4915123456789")
    two_factor_provision(user=user, context=AuditContext(), notify=False)
    client = customer_client(user)
    before = contacts_and_factors(user)
    routes = sorted(url_patterns(), key=lambda item: item[1] in ("account_logout",))

    for route, name in routes:
        path = concrete_path(route, user)
        client.get(path)
        client.post(path, MOVE_CONTACTS_FORM)
        assert contacts_and_factors(user) == before, (route, name)

    assert not SecurityEvent.objects.filter(
        account_id=user.pk,
        type__in=[
            SecurityEvent.Type.EMAIL_CHANGED,
            SecurityEvent.Type.PHONE_CHANGED,
            SecurityEvent.Type.PASSWORD_CHANGED,
            SecurityEvent.Type.PASSWORD_RESET,
            SecurityEvent.Type.BACKUP_CODES_REGENERATED,
        ],
    ).exists()
