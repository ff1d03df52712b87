"""URLs of customer self-service recovery (paths are part of the product's contract)."""

from django.urls import path

from recovery import passkeys, views

urlpatterns = [
    path("", views.hub, name="recover_hub"),
    path("email/", views.email_hint, name="recover_email"),
    path("email/sent/", views.email_hint_sent, name="recover_email_sent"),
    path("2fa/", views.reenrol, name="recover_2fa"),
    path("2fa/setup/", views.reenrol_setup, name="recover_2fa_setup"),
    path("lost-2fa/", views.lost_2fa, name="recover_lost_2fa"),
    path("lost-2fa/setup/", views.lost_2fa_setup, name="recover_lost_2fa_setup"),
    path(
        "lost-2fa/passkey/begin/",
        passkeys.lost_2fa_passkey_begin,
        name="recover_lost_2fa_passkey_begin",
    ),
    path(
        "lost-2fa/passkey/complete/",
        passkeys.lost_2fa_passkey_complete,
        name="recover_lost_2fa_passkey_complete",
    ),
    path("new-email/", views.new_email, name="recover_new_email"),
    path("stop/", views.self_service_cancel_view, name="recover_self_service_cancel"),
    path(
        "stop/<str:token>/", views.self_service_cancel_link, name="recover_self_service_cancel_link"
    ),
    path("help/", views.help_request, name="recover_help"),
    path("case/", views.case_status, name="recover_case"),
    path("case/resend/", views.case_link_resend_view, name="recover_case_resend"),
    path("case/<str:token>/", views.case_link, name="recover_case_link"),
    path("not-me/", views.not_me, name="recover_not_me"),
    path("not-me/<str:token>/", views.not_me_link, name="recover_not_me_link"),
    path("verify-message/", views.verify_message, name="recover_verify_message"),
    path("frozen/", views.frozen, name="recover_frozen"),
    path("reset/", views.recovery_reset, name="recover_reset"),
    path("reset/<str:token>/", views.recovery_link, name="recover_reset_link"),
    path(
        "cancel-email-change/", views.email_change_cancel_view, name="recover_email_change_cancel"
    ),
    path(
        "cancel-email-change/<str:token>/",
        views.email_change_cancel_link,
        name="recover_email_change_cancel_link",
    ),
]
