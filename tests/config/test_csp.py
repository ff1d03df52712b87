"""The Content-Security-Policy headers, built once from the settings, are django-csp's own."""

from __future__ import annotations

import pytest
from csp.constants import NONCE, SELF
from csp.decorators import csp_exempt, csp_replace, csp_update
from csp.middleware import CSPMiddleware
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from config.middleware import SettingsPolicyCachedCSPMiddleware

HEADERS = ("Content-Security-Policy", "Content-Security-Policy-Report-Only")


def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse("page")


def with_nonce(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"<script nonce='{request.csp_nonce}'></script>")  # type: ignore[attr-defined]


def not_found(request: HttpRequest) -> HttpResponse:
    return HttpResponse("missing", status=404)


VIEWS = {
    "plain": plain,
    "nonce": with_nonce,
    "not_found": not_found,
    "exempt": csp_exempt()(plain),
    "update": csp_update({"img-src": ["https://images.example"]})(plain),
    "replace": csp_replace({"script-src": ["https://scripts.example"]})(plain),
    "update_report_only": csp_update({"img-src": ["https://ro.example"]}, REPORT_ONLY=True)(plain),
}


def headers(middleware_class: type[CSPMiddleware], view, path: str = "/recover/help/"):
    request = RequestFactory().get(path)
    response = middleware_class(view)(request)
    found = {name: response.get(name) for name in HEADERS}
    nonce = getattr(request, "_csp_nonce", None)
    if nonce:  # each request draws its own: compare where it stands, not its value
        found = {name: value and value.replace(nonce, "NONCE") for name, value in found.items()}
    return found


def assert_alike(view, path: str = "/recover/help/") -> None:
    ours = headers(SettingsPolicyCachedCSPMiddleware, view, path)
    assert ours == headers(CSPMiddleware, view, path)
    # A second response of the process gets the same as the first.
    assert headers(SettingsPolicyCachedCSPMiddleware, view, path) == ours


@pytest.mark.parametrize("view", VIEWS.values(), ids=VIEWS.keys())
def test_the_projects_policy_is_django_csps_own(view):
    """Every kind of response (plain, with a nonce, exempt, with a policy of its own) gets
    the header django-csp's middleware would give it."""
    assert_alike(view)
    assert headers(SettingsPolicyCachedCSPMiddleware, plain)[HEADERS[0]]


@pytest.mark.parametrize("view", VIEWS.values(), ids=VIEWS.keys())
def test_a_changed_policy_setting_is_honoured_at_once(settings, view):
    """A policy changed while the process runs (a report-only policy added, a directive
    with a nonce, a path excluded, DEBUG's error pages) is what the next response carries."""
    assert_alike(view)
    settings.CONTENT_SECURITY_POLICY = {
        "DIRECTIVES": {"default-src": [SELF], "script-src": [SELF, NONCE]}
    }
    assert_alike(view)
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {
        "EXCLUDE_URL_PREFIXES": ["/static/"],
        "DIRECTIVES": {"default-src": [SELF], "report-uri": "/csp-report/"},
    }
    assert_alike(view)
    assert_alike(view, "/static/site.css")
    settings.DEBUG = True
    assert_alike(view)
    settings.CONTENT_SECURITY_POLICY = None
    assert_alike(view)
