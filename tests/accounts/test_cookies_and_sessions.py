"""Cookie and client-address settings: a hardened language cookie, proxy-aware rate limits."""

from __future__ import annotations

import pytest
from allauth.core.internal.httpkit import get_client_ip
from django.test import RequestFactory

pytestmark = pytest.mark.django_db


def test_the_language_cookie_is_http_only_and_same_site(client):
    """Choosing a language sets a cookie scripts cannot read and other sites cannot send."""
    response = client.get("/language/de/", {"next": "/"})
    cookie = response.cookies["django_language"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"


def test_behind_a_trusted_proxy_the_rate_limits_see_the_client_address(settings):
    """With one trusted proxy, the client is the address the proxy appended, not the proxy."""
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7, 203.0.113.5"
    )
    assert get_client_ip(request) == "10.0.0.2"
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    assert get_client_ip(request) == "203.0.113.5"
