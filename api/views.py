"""Service API views: JSON over a bearer service token, each call recorded whatever its answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from allauth.core.internal import ratelimit
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from accounts import selectors as account_selectors
from accounts.services.audit import request_ip
from api.models import Scope, ServiceToken
from api.openapi import openapi_bytes
from api.selectors import account_id_parse, customer_account_find, service_token_find
from api.services import service_call_record, service_token_mark_used

# Rate-limit actions of ACCOUNT_RATE_LIMITS: calls per token, and failed authentication per IP.
RATE_ACTION = "api_restrictions"
AUTH_FAILED_RATE_ACTION = "api_auth_failed"


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JsonResponse:
    response = JsonResponse(body, status=status)
    # Answers are about one account at one moment: no cache may keep or replay them.
    response["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _unauthorized() -> JsonResponse:
    return _json(401, {"error": "unauthorized"}, {"WWW-Authenticate": "Bearer"})


def _forbidden(scope: str) -> JsonResponse:
    return _json(
        403,
        {"error": "forbidden"},
        {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
    )


def _not_found() -> JsonResponse:
    return _json(404, {"error": "not_found"})


def _too_many(action: str) -> JsonResponse:
    rates = ratelimit.get_rates(app="allauth.account", action=action)
    # The longest window of the action: by then the caller is certainly let through again.
    retry_after = max((int(rate.duration) for rate in rates), default=60)
    return _json(429, {"error": "rate_limited"}, {"Retry-After": str(retry_after)})


def _within_rate(
    request: HttpRequest, *, action: str, key: str | None = None, dry_run: bool = False
) -> bool:
    # allauth.core.ratelimit.consume leaves GET requests uncounted, and this API is all GET:
    # the same counters, through the call allauth's own GET endpoints use.
    usage = ratelimit.consume(
        request,
        app="allauth.account",
        action=action,
        key=key,
        dry_run=dry_run,
        limit_get=True,
    )
    return usage is not None


def _bearer_token(request: HttpRequest) -> str:
    """The credentials of an `Authorization: Bearer …` header, or "" if there are none."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


def _utc_timestamp(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.microsecond:
        # Rounded up, so the exchange never lifts a restriction before it ends.
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _restrictions_body(
    *, account_id: int, restrictions: account_selectors.AccountRestrictions
) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "withdrawals_allowed": restrictions.withdrawals_allowed,
        "security_changes_allowed": restrictions.security_changes_allowed,
        "until": _utc_timestamp(restrictions.until),
        "reasons": list(restrictions.reasons),
    }


def _authenticated_answer(
    request: HttpRequest, *, service_token: ServiceToken | None, account_id: int | None
) -> JsonResponse:
    # A revoked token is refused exactly like an unknown one.
    if service_token is None or not service_token.is_active:
        _within_rate(request, action=AUTH_FAILED_RATE_ACTION)
        return _unauthorized()
    service_token_mark_used(service_token=service_token)
    if not _within_rate(request, action=RATE_ACTION, key=f"service-token:{service_token.pk}"):
        return _too_many(RATE_ACTION)
    # Decided before the account is looked up, so the answer is the same for every id.
    if not service_token.has_scope(Scope.RESTRICTIONS_READ):
        return _forbidden(Scope.RESTRICTIONS_READ)
    user = customer_account_find(account_id=account_id) if account_id is not None else None
    if user is None:
        return _not_found()
    return _json(
        200,
        _restrictions_body(
            account_id=user.pk, restrictions=account_selectors.account_restrictions(user=user)
        ),
    )


@csrf_exempt
@transaction.non_atomic_requests
def restrictions(request: HttpRequest, account_id: str) -> JsonResponse:
    """GET /api/v1/accounts/<id>/restrictions: what the exchange must not let the account do.

    No session and no cookie count here, only the bearer token, so CSRF does not apply.
    The request runs outside ATOMIC_REQUESTS: the record of the call commits on its own,
    for refusals as much as for answers.
    """
    asked = account_id_parse(account_id)
    service_token: ServiceToken | None = None
    try:
        if request.method != "GET":
            response = _json(405, {"error": "method_not_allowed"}, {"Allow": "GET"})
        elif not _within_rate(request, action=AUTH_FAILED_RATE_ACTION, dry_run=True):
            response = _too_many(AUTH_FAILED_RATE_ACTION)
        else:
            service_token = service_token_find(token=_bearer_token(request))
            response = _authenticated_answer(request, service_token=service_token, account_id=asked)
    except (RedisConnectionError, RedisTimeoutError):
        # Without the shared counters nothing can be rate-limited: refuse, and say so.
        response = _json(503, {"error": "unavailable"})
    service_call_record(
        service_token=service_token,
        account_id=asked,
        status_code=response.status_code,
        # REMOTE_ADDR, as the security events record it; the request's user is never consulted.
        ip_address=request_ip(request),
    )
    return response


@require_safe
def openapi_schema(request: HttpRequest) -> HttpResponse:
    """The OpenAPI 3.1 schema of this API; public, as it holds nothing secret."""
    return HttpResponse(openapi_bytes(), content_type="application/json")


@csrf_exempt
def not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any other path under /api/: a JSON 404 rather than the site's HTML page."""
    return _not_found()
