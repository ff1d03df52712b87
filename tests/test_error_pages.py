"""Our own 404, 403, CSRF, 429 and 500 pages, in the customer's language; a 429 says when
to retry (`Retry-After`) and keeps what was typed."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import translation
from django.views.defaults import server_error

pytestmark = pytest.mark.django_db

PAGES = {
    "en": {
        404: "We can't find this page",
        403: "You can't open this page",
        "csrf": "This form has expired",
        500: "Something went wrong on our side",
    },
    "de": {
        404: "Diese Seite finden wir nicht",
        403: "Diese Seite können Sie nicht öffnen",
        "csrf": "Dieses Formular ist abgelaufen",
        500: "Bei uns ist etwas schiefgegangen",
    },
}


@pytest.mark.parametrize("language", ["en", "de"])
def test_not_found_is_our_page_in_the_language(language):
    response = Client(HTTP_ACCEPT_LANGUAGE=language).get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert PAGES[language][404] in html
    assert f'<html lang="{language}">' in html


@pytest.mark.parametrize("language", ["en", "de"])
def test_forbidden_is_our_page_in_the_language(language):
    """The frozen-account notice is one 403; an unknown 403 is ours too (via the handler)."""
    from django.views.defaults import permission_denied

    request = RequestFactory(HTTP_ACCEPT_LANGUAGE=language).get("/")
    with translation.override(language):
        response = permission_denied(request, exception=PermissionDenied())
    assert response.status_code == 403
    assert PAGES[language][403] in response.content.decode()


@pytest.mark.parametrize("language", ["en", "de"])
def test_csrf_failure_is_our_page_in_the_language(language):
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE=language)
    response = client.post(reverse("recover_email"), {"phone": "+4915123456789"})
    assert response.status_code == 403
    assert PAGES[language]["csrf"] in response.content.decode()


@pytest.mark.parametrize("language", ["en", "de"])
def test_server_error_is_our_page_in_the_language(language):
    request = RequestFactory().get("/")
    with translation.override(language):
        response = server_error(request)
    assert response.status_code == 500
    html = response.content.decode()
    assert PAGES[language][500] in html
    assert f'<html lang="{language}">' in html


@pytest.mark.parametrize(
    ("language", "words"), [("en", "Please try again in"), ("de", "Bitte versuchen Sie es in")]
)
def test_too_many_keeps_the_phone_and_says_when(client, settings, language, words):
    """The phone lookup over its limit: 429, Retry-After in seconds, the number still typed."""
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "recover_email": "1/h/ip"}
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.post(reverse("recover_email"), {"phone": "+4915123456789"})
    refused = client.post(reverse("recover_email"), {"phone": "+4915199999999"})
    assert refused.status_code == 429
    assert 3590 <= int(refused["Retry-After"]) <= 3600
    html = refused.content.decode()
    assert 'value="+4915199999999"' in html
    assert words in html


def test_too_many_on_the_help_form_keeps_the_text(client, settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "recover_help": "0/h/ip"}
    refused = client.post(
        reverse("recover_help"),
        {"contact_email": "me@example.org", "description": "My phone was stolen yesterday."},
    )
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    html = refused.content.decode()
    assert "My phone was stolen yesterday." in html
    assert 'value="me@example.org"' in html


def test_favicon_is_served_without_a_404(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("img/favicon.svg")
