"""Project-level views: health check, the error pages and the home page."""

from __future__ import annotations

import sys

import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.templatetags.static import static

from config.ratelimits import allauth_too_many_response

# Errors that mean PostgreSQL or Redis cannot be reached (or dropped the connection), not
# that the request or the code is wrong: the answer is "try again", 503.
UNAVAILABLE_ERRORS = (
    OperationalError,
    InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


def _redis_ok() -> bool:
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1
        )
        return bool(client.ping())
    except redis.RedisError:
        return False


@transaction.non_atomic_requests
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: each dependency and whether it answers; 503 if any does not.

    Outside the request's transaction: ATOMIC_REQUESTS would open one, and fail, before
    this view could say that the database is down.
    """
    checks = {"database": _database_ok()}
    if settings.REDIS_URL:
        checks["redis"] = _redis_ok()
    healthy = all(checks.values())
    return JsonResponse(
        {
            "status": "ok" if healthy else "unavailable",
            "checks": {k: "ok" if v else "down" for k, v in checks.items()},
        },
        status=200 if healthy else 503,
    )


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: 503 with the localized "try again" page while PostgreSQL or Redis is down.

    Rendered without the request: its context processors would read the session and the
    signed-in user from the database that may be the one that is down. The page's language
    is the request's, which LocaleMiddleware set before the failure.
    """
    error = sys.exc_info()[1]
    if isinstance(error, UNAVAILABLE_ERRORS):
        return HttpResponse(render_to_string("503.html"), status=503)
    return HttpResponse(render_to_string("500.html"), status=500)


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


def too_many_requests(request: HttpRequest) -> HttpResponse:
    """allauth's answer over its own limits (sign-in, sign-up, reset, …): our 429 page."""
    return allauth_too_many_response(request)


def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico, asked for by browsers whatever a page names: the brand mark's icon.

    The static URL is looked up per request: production's manifest exists only after
    collectstatic, so not when the URLs are imported.
    """
    return redirect(static("img/favicon.svg"), permanent=True)
