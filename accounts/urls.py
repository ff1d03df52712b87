"""URLs of the accounts app, under /accounts/2fa/, /account/ and over three allauth pages."""

from django.urls import path

from accounts import views

two_factor_urlpatterns = [
    path("", views.two_factor_verify_view, name="two_factor_verify"),
    path("setup/", views.two_factor_setup_view, name="two_factor_setup"),
]

allauth_overrides = [
    path("email/", views.email_management_closed, name="account_email"),
    path("password/change/", views.password_change, name="account_change_password"),
    path("password/set/", views.password_set, name="account_set_password"),
]

account_urlpatterns = [
    path("security/", views.security, name="account_security"),
    path(
        "security/backup-codes/", views.backup_codes_regenerate_view, name="backup_codes_regenerate"
    ),
    path("security/sessions/end-others/", views.sessions_end_others, name="sessions_end_others"),
]
