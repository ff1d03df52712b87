"""Root URL configuration (paths are part of the product's contract, see SPEC section 3)."""

from django.contrib import admin
from django.urls import include, path

from accounts import urls as accounts_urls
from accounts.forms import StaffOTPLoginForm
from config import language, views
from config.admin_site import StaffAdminSite
from notifications import views as notifications_views

# Staff reach the admin only after a verified second factor.
admin.site.__class__ = StaffAdminSite
admin.site.login_form = StaffOTPLoginForm
admin.site.site_header = "Recovery Desk"
admin.site.site_title = "Recovery Desk"

handler500 = "config.views.server_error"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    # Browsers and crawlers ask for /favicon.ico whatever the page names.
    path("favicon.ico", views.favicon, name="favicon"),
    path("accounts/2fa/", include(accounts_urls.two_factor_urlpatterns)),
    path("accounts/2fa/passkey/", include(accounts_urls.passkey_ceremony_urlpatterns)),
    # allauth pages that would change the login email or the password outside the policy
    # and the security hold are answered by ours (accounts/views.py), and the sign-in
    # answers its failed-attempts limit with our 429.
    path("accounts/", include(accounts_urls.allauth_overrides)),
    path("accounts/", include("allauth.urls")),
    path("account/", include(accounts_urls.account_urlpatterns)),
    path("recover/", include("recovery.urls")),
    path("api/v1/", include("api.urls")),
    path("language/<str:language>/", language.language_switch, name="language_switch"),
    path("admin/", admin.site.urls),
    path("dev/inbox/", notifications_views.dev_inbox, name="dev_inbox"),
]

handler429 = "config.views.too_many_requests"
