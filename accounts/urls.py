"""URLs of the accounts app, under /accounts/2fa/ and /account/."""

from django.urls import path

from accounts import views

two_factor_urlpatterns = [
    path("", views.two_factor_verify_view, name="two_factor_verify"),
    path("setup/", views.two_factor_setup_view, name="two_factor_setup"),
]

account_urlpatterns = [
    path("security/", views.security, name="account_security"),
    path(
        "security/backup-codes/", views.backup_codes_regenerate_view, name="backup_codes_regenerate"
    ),
    path("security/sessions/end-others/", views.sessions_end_others, name="sessions_end_others"),
]
