"""Typed access to the request's user: signed in, whether and when the second factor was
given, and the one way a session records giving it."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils import timezone
from django_otp import login as otp_login
from django_otp.models import Device

from accounts.models import User
from accounts.services.audit import AuditContext
from accounts.services.users import sign_in_record


def signed_in_user(request: HttpRequest) -> User:
    """The request's user on a page behind sign-in (`login_required` or the admin ran first)."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied
    return user


def second_factor_passed(user: User | AnonymousUser) -> bool:
    """Whether the user gave their second factor in this session.

    django-otp's OTPMiddleware gives every request's user `is_verified()`; the type stubs
    of the user classes do not know it, so this is the one place that asks.
    """
    return bool(user.is_verified())  # type: ignore[union-attr]


SECOND_FACTOR_AT_SESSION_KEY = "second_factor_at"


def second_factor_mark(request: HttpRequest) -> None:
    """Remember when this session gave its second factor (after django-otp's login)."""
    request.session[SECOND_FACTOR_AT_SESSION_KEY] = timezone.now().timestamp()


def second_factor_recent(request: HttpRequest, *, within: timedelta) -> bool:
    """Whether this session gave its second factor no longer than `within` ago."""
    given = request.session.get(SECOND_FACTOR_AT_SESSION_KEY)
    if not isinstance(given, int | float):
        return False
    return timezone.now().timestamp() - given <= within.total_seconds()


def second_factor_sign_in(request: HttpRequest, device: Device) -> None:
    """The signed-in session gave its second factor with `device`: django-otp's login, the
    time of it (a passkey may be added only soon after) and a completed sign-in in the
    account's history, with this device and network. Every way of giving it ends here."""
    otp_login(request, device)
    second_factor_mark(request)
    sign_in_record(user=signed_in_user(request), context=AuditContext.from_request(request))
