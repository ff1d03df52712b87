"""URLs of the accounts app, under /accounts/2fa/, /account/ and over five allauth pages."""

from django.urls import path, re_path
from django.views.i18n import JavaScriptCatalog

from accounts import passkeys, views

two_factor_urlpatterns = [
    path("", views.two_factor_verify_view, name="two_factor_verify"),
    path("setup/", views.two_factor_setup_view, name="two_factor_setup"),
]

# The WebAuthn endpoints under the names django-otp-webauthn's script tags look up; they sit
# under /accounts/2fa/ because the second step of sign-in uses them before it is passed.
passkey_ceremony_urlpatterns = (
    [
        path(
            "registration/begin/",
            passkeys.PasskeyRegistrationBegin.as_view(),
            name="credential-registration-begin",
        ),
        path(
            "registration/complete/",
            passkeys.PasskeyRegistrationComplete.as_view(),
            name="credential-registration-complete",
        ),
        path(
            "authentication/begin/",
            passkeys.PasskeyAuthenticationBegin.as_view(),
            name="credential-authentication-begin",
        ),
        path(
            "authentication/complete/",
            passkeys.PasskeyAuthenticationComplete.as_view(),
            name="credential-authentication-complete",
        ),
        path(
            "jsi18n/",
            JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]),
            name="js-i18n-catalog",
        ),
    ],
    "otp_webauthn",
)

allauth_overrides = [
    path("login/", views.login, name="account_login"),
    path("email/", views.email_management_closed, name="account_email"),
    path("password/change/", views.password_change, name="account_change_password"),
    path("password/set/", views.password_set, name="account_set_password"),
    re_path(
        r"^password/reset/key/(?P<uidb36>[0-9A-Za-z]+)-(?P<key>.+)/$",
        views.password_reset_from_key,
        name="account_reset_password_from_key",
    ),
]

account_urlpatterns = [
    path("security/", views.security, name="account_security"),
    path(
        "security/backup-codes/", views.backup_codes_regenerate_view, name="backup_codes_regenerate"
    ),
    path("security/sessions/end-others/", views.sessions_end_others, name="sessions_end_others"),
    path("security/passkeys/", passkeys.passkeys, name="account_passkeys"),
    path(
        "security/passkeys/replace-app/",
        passkeys.app_replace_with_passkey,
        name="account_app_replace_with_passkey",
    ),
    path(
        "security/passkeys/rename/",
        passkeys.passkey_change,
        {"action": "rename"},
        name="account_passkey_rename",
    ),
    path(
        "security/passkeys/remove/",
        passkeys.passkey_change,
        {"action": "remove"},
        name="account_passkey_remove",
    ),
]
