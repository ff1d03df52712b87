"""allauth adapter: signup fields, holds on passwords, no email management, mail via the outbox."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.contrib.sites.shortcuts import get_current_site
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import translation

from accounts.models import User
from accounts.services.audit import AuditContext
from accounts.services.holds import hold_end_in_words, hold_running_until
from accounts.services.users import (
    reauthentication_wrong_password_record,
    sign_in_wrong_password_record,
    user_password_set,
)
from notifications.services import notification_reference_new, prerendered_email_queue

# Where the request keeps its client IP once worked out (see AccountAdapter.get_client_ip).
_CLIENT_IP_ATTRIBUTE = "_recoverydesk_client_ip"


class AccountAdapter(DefaultAccountAdapter):
    def get_client_ip(self, request) -> str:
        """allauth's client IP, worked out once per request: every limit counted per IP
        asks for it, and a request's headers do not change while it is served."""
        ip = getattr(request, _CLIENT_IP_ATTRIBUTE, None)
        if ip is None:
            ip = super().get_client_ip(request)
            setattr(request, _CLIENT_IP_ATTRIBUTE, ip)
        return ip

    def save_user(self, request, user, form, commit=True):
        user.phone = form.cleaned_data.get("phone") or None
        user.language = translation.get_language() or "en"
        return super().save_user(request, user, form, commit=commit)

    def reauthenticate(self, user, password) -> bool:
        """allauth's "confirm it's you" password check, which runs through `authenticate`
        as a sign-in does; the session's own account is marked so that a wrong password
        here is not recorded as a failed sign-in."""
        self._reauthenticating = user
        try:
            return super().reauthenticate(user, password)
        finally:
            self._reauthenticating = None

    def authentication_failed(self, request, **credentials) -> None:
        """A refused password goes into that account's sign-in history (never the password);
        an email with no account leaves nothing, at the same cost. On "confirm it's you"
        it is recorded as that, for the signed-in account."""
        context = AuditContext.from_request(request)
        reauthenticating = getattr(self, "_reauthenticating", None)
        if reauthenticating is not None:
            reauthentication_wrong_password_record(user=reauthenticating, context=context)
            return
        sign_in_wrong_password_record(email=str(credentials.get("email") or ""), context=context)

    def login_attempts_key(self, request, login: str) -> str:
        """The key allauth counts failed sign-ins under (`login_failed`) for a typed email."""
        return self._get_login_attempts_cache_key(request, email=login)

    def pre_login(self, request, user, **kwargs):
        """A frozen account ("this wasn't me") cannot sign in until support clears it."""
        if user.frozen_at is not None:
            return HttpResponseRedirect(reverse("recover_frozen"))
        return super().pre_login(request, user, **kwargs)

    def set_password(self, user, password) -> None:
        """Every allauth path to a new password (change, set, reset link): once per link or
        current password, never during a hold (`user_password_set`).

        The recovery's own password (the recovery link) does not come through here.
        """
        user_password_set(user=user, password=password)

    def can_delete_email(self, email_address) -> bool:
        """The login email is never removed through allauth: only the policy's change moves it."""
        return False

    def confirm_email(self, request, email_address) -> bool:
        """Confirm only the account's own login email (the sign-up verification).

        A confirmed second address would sign in and could be made primary: a new login
        email outside the policy.
        """
        if email_address.email.lower() != email_address.user.email.lower():
            return False
        return super().confirm_email(request, email_address)

    def send_account_already_exists_mail(self, email: str) -> None:
        """Only an address that has an account hears that it has one.

        A signup whose phone number is taken reaches here with a new address; the holder
        of the number is told by SMS instead, and the new address gets nothing.
        """
        if User.objects.filter(email=email.lower()).exists():
            super().send_account_already_exists_mail(email)

    def send_password_reset_mail(self, user, email: str, context: dict[str, Any]) -> None:
        """allauth's reset link, or, while the account is on hold, no link but the hold's end.

        A link the hold would refuse is not a true message, and the inbox may be the
        attacker's. The reset page answers the same either way.
        """
        # allauth loaded `user` in this very request; reading the hold off it spares the
        # known address a query the unknown one does not make (SPEC §7: same time).
        until = hold_running_until(user.security_hold_until)
        if until is None:
            super().send_password_reset_mail(user, email, context)
            return
        on_hold = {key: value for key, value in context.items() if key != "password_reset_url"}
        on_hold["hold_end"] = hold_end_in_words(until)
        self.send_mail("account/email/password_reset_on_hold", email, on_hold)

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        """Render allauth's email with a message reference and queue it in the outbox."""
        reference = notification_reference_new()
        request = context.get("request") or getattr(self, "request", None)
        ctx: dict[str, Any] = {"email": email, "reference": reference, "site_name": "Recovery Desk"}
        if request is not None:
            ctx.update(request=request, current_site=get_current_site(request))
        ctx.update(context)
        message = self.render_mail(template_prefix, email, ctx)
        html = next(
            (c for c, mime in getattr(message, "alternatives", []) if mime == "text/html"), None
        )
        account = User.objects.filter(email=email.lower()).only("pk").first()
        prerendered_email_queue(
            recipient=email,
            template_prefix=template_prefix.rsplit("/", 1)[-1],
            subject=message.subject,
            text=message.body,
            html=html,
            reference=reference,
            language=translation.get_language() or "en",
            account_id=account.pk if account else None,
        )
