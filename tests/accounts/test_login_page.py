"""The sign-in page: recovery links and typo suggestions that reveal nothing."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from accounts.contacts import email_domain_suggestion
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')


@pytest.mark.parametrize(
    ("typed", "suggested"),
    [
        ("john@gmail.con", "john@gmail.com"),
        ("john@gmial.com", "john@gmail.com"),
        ("john@hotmial.com", "john@hotmail.com"),
        ("anna@web.dr", "anna@web.de"),
        ("john@gmail.com", None),
        ("john@company-mail.example", None),
        ("not an email", None),
    ],
)
def test_domain_suggestion(typed, suggested):
    assert email_domain_suggestion(typed) == suggested


def test_login_page_links_to_the_email_hint(client):
    html = client.get(reverse("account_login")).content.decode()
    assert f'href="{reverse("recover_email")}"' in html
    assert "Not sure which email you used?" in html


def test_failed_sign_in_suggests_the_domain_whether_or_not_the_account_exists(client):
    """Same page for an existing and a missing account: the hint comes from the typed text."""
    UserFactory.create(email="john@gmail.con")
    existing = client.post(
        reverse("account_login"), {"login": "john@gmail.con", "password": "wrong-password"}
    )
    missing = client.post(
        reverse("account_login"), {"login": "mary@gmail.con", "password": "wrong-password"}
    )
    assert existing.status_code == missing.status_code == 200
    assert "Did you mean <strong>john@gmail.com</strong>?" in existing.content.decode()
    assert "Did you mean <strong>mary@gmail.com</strong>?" in missing.content.decode()
    normalise = lambda r: CSRF.sub(b"", r.content).replace(b"john", b"X").replace(b"mary", b"X")  # noqa: E731
    assert normalise(existing) == normalise(missing)


def test_the_suggestion_is_a_button_that_fills_in_the_email(client):
    """Pressing the suggestion opens the sign-in page with the corrected address typed in."""
    html = client.post(
        reverse("account_login"), {"login": "mary@gmail.con", "password": "wrong-password"}
    ).content.decode()
    assert 'id="use-suggestion"' in html
    assert 'name="login" value="mary@gmail.com"' in html
    again = client.get(reverse("account_login"), {"login": "mary@gmail.com"}).content.decode()
    assert re.search(r'<input[^>]*name="login"[^>]*value="mary@gmail.com"', again)
