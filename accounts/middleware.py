"""Middleware: mandatory second factor for every signed-in page, and the user's language."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

import redis
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import translation

from accounts.requests import second_factor_passed

# Paths an authenticated but not yet OTP-verified user may open.
UNVERIFIED_ALLOWED_PREFIXES = (
    "/accounts/2fa/",
    "/accounts/logout/",
    "/accounts/confirm-email/",
    "/accounts/password/reset/",
    "/admin/",
    "/recover/",
    "/static/",
    "/language/",
    "/healthz",
    "/dev/inbox/",
)
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
# Paths that authenticate by bearer token alone: a browser session sent along changes nothing.
SESSIONLESS_PREFIXES = ("/api/",)


class MandatoryTwoFactorMiddleware:
    """Send a signed-in user who has not passed the second factor to `/accounts/2fa/`.

    The admin is left to django-otp's `OTPAdminSite`, which asks for the code itself.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(SESSIONLESS_PREFIXES):
            return self.get_response(request)
        user = request.user
        if (
            user.is_authenticated
            and not second_factor_passed(user)
            and not request.path.startswith(UNVERIFIED_ALLOWED_PREFIXES)
        ):
            target = reverse("two_factor_verify")
            if request.method == "GET":
                target += "?" + urlencode({"next": request.get_full_path()})
            return HttpResponseRedirect(target)
        return self.get_response(request)


class UserLanguageMiddleware:
    """Remember a signed-in user's current page language for the messages we send them."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(SESSIONLESS_PREFIXES):
            return self.get_response(request)
        user = request.user
        language = translation.get_language()
        if user.is_authenticated and language and user.language != language:
            user.language = language
            user.save(update_fields=["language"])
        return self.get_response(request)


class SecurityHoldMiddleware:
    """Answer a security change refused by a hold with the hold page (HTTP 403).

    Services raise `SecurityHoldActive` whoever calls them; on a customer's page that
    becomes one clear answer saying until when, in the page's language. The request's
    transaction has already been rolled back: nothing of the change remains.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        from django.shortcuts import render

        from accounts.services.holds import SecurityHoldActive, hold_end_in_words

        if isinstance(exception, SecurityHoldActive):
            return render(
                request,
                "accounts/security_hold.html",
                {"hold_end": hold_end_in_words(exception.until)},
                status=403,
            )
        return None


class DependencyUnavailableMiddleware:
    """Fail closed: while Redis (rate limits, queue) is down, refuse every write with a 503.

    Pages that need no shared state still render. A form that changes something (sign-in
    and sign-up included: their attempt limits live in Redis) cannot be rate-limited or
    counted without Redis, so before its view runs, and before the request's transaction
    opens, Redis is asked once; if it does not answer, the friendly 503 page says that
    nothing was changed. Signing out writes nothing that needs a limit and stays open;
    choosing the language is a link (GET) and is never refused. The service API limits its
    callers in Redis itself, and so do views marked `fails_closed_itself`.
    """

    UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
    OPEN_WITHOUT_REDIS = ("/accounts/logout/", "/api/", "/healthz")

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        if (
            request.method not in self.UNSAFE_METHODS
            or request.path.startswith(self.OPEN_WITHOUT_REDIS)
            or getattr(view_func, "fails_closed_itself", False)
        ):
            return None
        from django.core.cache import cache

        try:
            cache.has_key("dependency-check")
        except REDIS_DOWN:
            return _unavailable(request)
        return None

    def process_exception(self, request: HttpRequest, exception: Exception):
        if isinstance(exception, REDIS_DOWN):
            return _unavailable(request)
        return None


def fails_closed_itself(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Mark a view that asks Redis (its rate limits) before it writes anything.

    Redis down raises there; the request's transaction rolls back and `process_exception`
    answers with the same 503, so `DependencyUnavailableMiddleware` need not spend a round
    trip asking Redis first.
    """
    view.fails_closed_itself = True  # type: ignore[attr-defined]
    return view


def _unavailable(request: HttpRequest) -> HttpResponse:
    from django.shortcuts import render

    return render(request, "503.html", status=503)
