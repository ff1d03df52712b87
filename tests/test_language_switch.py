"""The language switch: a plain link per other language (no form, no button, no JavaScript)
that sets a hardened language cookie, changes nothing else, and returns the customer to the
page they were reading on this site, never to another."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from tests.factories import UserFactory, customer_sign_in

pytestmark = pytest.mark.django_db


def footer_of(html: str) -> str:
    footer = re.search(r'<footer class="footer">(.*?)</footer>', html, re.S)
    assert footer, html
    return footer.group(1)


def switch_link(html: str, language: str) -> str:
    """The href of the footer's link to `language`, as a browser would follow it."""
    footer = footer_of(html)
    match = re.search(rf'<a href="([^"]+)" hreflang="{language}" lang="{language}"[^>]*>', footer)
    assert match, footer
    return match.group(1).replace("&amp;", "&")


@pytest.mark.parametrize(
    ("start", "other", "shown", "other_name"),
    [("en", "de", "English", "Deutsch"), ("de", "en", "Deutsch", "English")],
)
def test_one_link_switches_the_language_and_stays_on_the_page(start, other, shown, other_name):
    """The footer names the current language and links the other; following that link shows
    the same page in the other language."""
    client = Client(HTTP_ACCEPT_LANGUAGE=start)
    page = reverse("recover_help")
    html = client.get(page).content.decode()
    footer = footer_of(html)
    assert "<form" not in footer and "<button" not in footer
    assert f'lang="{start}" aria-current="true">{shown}<' in footer
    href = switch_link(html, other)
    assert urlsplit(href).path == reverse("language_switch", args=[other])
    assert parse_qs(urlsplit(href).query) == {"next": [page]}
    assert f">{other_name}</a>" in footer

    response = client.get(href)
    assert response.status_code == 302
    assert response["Location"] == page
    switched = client.get(response["Location"]).content.decode()
    assert f'<html lang="{other}">' in switched
    assert f'lang="{other}" aria-current="true">{other_name}<' in footer_of(switched)


def test_the_query_string_of_the_page_comes_back_too():
    """A page with a query (a prefilled sign-in) is the page the switch returns to."""
    client = Client()
    page = reverse("account_login") + "?next=/account/security/"
    href = switch_link(client.get(page).content.decode(), "de")
    assert client.get(href)["Location"] == page


@pytest.mark.parametrize(
    "unsafe",
    [
        "https://evil.example/login/",
        "//evil.example/login/",
        "/\\evil.example/",
        "\\\\evil.example",
        "http:evil.example",
        "javascript:alert(1)",
        "https://testserver.evil.example/",
        " //evil.example",
    ],
)
def test_a_next_on_another_site_is_refused(unsafe):
    """The switch is no open redirect: a next that leaves this site goes to the start page,
    while the language is still set."""
    client = Client()
    response = client.get(reverse("language_switch", args=["de"]), {"next": unsafe})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert response.cookies["django_language"].value == "de"


def test_an_unknown_language_is_not_found_and_sets_nothing():
    response = Client().get("/language/xx/", {"next": "/recover/"})
    assert response.status_code == 404
    assert "django_language" not in response.cookies


def test_the_switch_answers_only_get_and_head():
    client = Client()
    url = reverse("language_switch", args=["de"])
    assert client.head(url).status_code == 302
    assert client.post(url, {"next": "/"}).status_code == 405


def test_the_cookie_is_http_only_same_site_and_not_cached():
    """Scripts cannot read the cookie, other sites' requests do not carry it, and no shared
    cache keeps the answer that sets it."""
    response = Client().get(reverse("language_switch", args=["de"]), {"next": "/"})
    cookie = response.cookies["django_language"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert not cookie["secure"]
    assert "no-store" in response["Cache-Control"]


def test_in_production_the_cookie_is_secure(settings):
    """Production sets LANGUAGE_COOKIE_SECURE with the session cookie's flag; the switch uses it."""
    settings.LANGUAGE_COOKIE_SECURE = True
    response = Client().get(reverse("language_switch", args=["de"]), {"next": "/"}, secure=True)
    assert response.cookies["django_language"]["secure"]


def test_following_a_switch_link_changes_nothing_but_the_cookie(nothing_written):
    """A link from another site can at most change the language a page is shown in: for a
    signed-in customer the switch writes no row, sets no other cookie and keeps the session."""
    user = UserFactory()
    device, _codes = two_factor_provision(user=user, context=AuditContext(), notify=False)
    client = customer_sign_in(Client(), user, device)
    client.get(reverse("account_security"))
    session_before = dict(client.session.items())
    with nothing_written():
        response = client.get(
            reverse("language_switch", args=["de"]), {"next": reverse("account_security")}
        )
    assert response.status_code == 302
    assert set(response.cookies) == {"django_language"}
    assert dict(client.session.items()) == session_before
