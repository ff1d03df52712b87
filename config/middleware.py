"""Project-wide request guards that must run before any view reads the request."""

from __future__ import annotations

import codecs
import functools
import http.client
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware, PolicyParts
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.http.response import HttpResponseBase
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _


class UndecodableRequestMiddleware:
    """Answer 400 to a body in a character set Python does not know.

    Django would raise LookupError when a form first reads `request.POST` (and again while
    rendering the error page): a 500 from one header. Known charsets that fail to decode
    already end in Django's own 400.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        charset = request.content_params.get("charset") if request.content_params else None
        if charset:
            try:
                codecs.lookup(charset)
            except LookupError:
                return HttpResponseBadRequest(
                    _("The request could not be read."), content_type="text/plain; charset=utf-8"
                )
        return self.get_response(request)


ALREADY_EXPIRED = "Thu, 01 Jan 1970 00:00:00 GMT"


class PrivatePagesNoStoreMiddleware:
    """Tell browsers and proxies to keep no copy of account, recovery and staff pages.

    These pages show authenticator keys, backup codes, case details and contact data; a
    shared computer's back button or a caching proxy must not bring them back.
    """

    # The service API sets its own documented `no-store`.
    PRIVATE_PREFIXES = ("/accounts/", "/account/", "/recover/", "/admin/", "/dev/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(self.PRIVATE_PREFIXES):
            add_never_cache_headers(response)
            # Django's Expires is the current second: two answers a second apart would
            # differ in a header, which the same-answer comparisons must not see.
            response["Expires"] = ALREADY_EXPIRED
        return response


# Django's debug pages, which django-csp leaves without a policy when DEBUG is on.
_DEBUG_PAGE_CODES = (http.client.INTERNAL_SERVER_ERROR, http.client.NOT_FOUND)


@functools.cache
def _settings_policy(report_only: bool) -> str:
    # What django-csp builds from CONTENT_SECURITY_POLICY(_REPORT_ONLY) alone.
    return build_policy(report_only=report_only)


@receiver(setting_changed)
def _settings_policy_forget(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _settings_policy.cache_clear()


class SettingsPolicyCachedCSPMiddleware(CSPMiddleware):
    """django-csp's middleware, building the policy from the settings once, not per response.

    A response with a policy of its own (django-csp's decorators) or a page that used a
    nonce gets its header built as django-csp builds it; every other response carries the
    same string, kept until a CONTENT_SECURITY_POLICY setting changes.
    """

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        # django-csp 4.0's process_response, with `_policy` in place of its `build_policy`
        # (tests/config/test_csp.py holds the headers of the two alike).
        if settings.DEBUG and response.status_code in _DEBUG_PAGE_CODES:
            return response
        for report_only, header, exempt, setting in (
            (False, HEADER, "_csp_exempt", "CONTENT_SECURITY_POLICY"),
            (True, HEADER_REPORT_ONLY, "_csp_exempt_ro", "CONTENT_SECURITY_POLICY_REPORT_ONLY"),
        ):
            parts = self.get_policy_parts(
                request=request, response=response, report_only=report_only
            )
            policy = self._policy(parts, report_only=report_only)
            if not policy or header in response or getattr(response, exempt, False) is not False:
                continue
            prefixes = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES")
            if not request.path_info.startswith(tuple(prefixes or ())):
                response[header] = policy
        if getattr(request, "_csp_nonce", None) is None:
            request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]
        return response

    @staticmethod
    def _policy(parts: PolicyParts, *, report_only: bool) -> str:
        if parts.config is parts.update is parts.replace is parts.nonce is None:
            return _settings_policy(report_only)
        return build_policy(**asdict(parts), report_only=report_only)
