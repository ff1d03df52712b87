"""Hostile input on the public forms: a clear 4xx or the form again, never a 500 or a write."""

from __future__ import annotations

import pytest

from accounts.models import User
from notifications.models import Notification
from support.models import RecoveryCase

pytestmark = pytest.mark.django_db

PUBLIC_FORMS = [
    "/accounts/login/",
    "/accounts/signup/",
    "/accounts/password/reset/",
    "/recover/email/",
    "/recover/help/",
    "/recover/verify-message/",
]
LONG_EMAIL = "a" * 250 + "@example.com"


@pytest.mark.parametrize("path", PUBLIC_FORMS)
@pytest.mark.parametrize("charset", ["x-unknown-charset", "utf-99"])
def test_a_body_in_an_unknown_charset_is_a_bad_request(client, path, charset):
    """An unknown charset in the Content-Type answers 400 instead of raising in the view."""
    # `generic`, as the client's `post` would itself fail to encode the body.
    response = client.generic(
        "POST",
        path,
        b"email=a%40b.example&phone=%2B4915112345678",
        content_type=f"application/x-www-form-urlencoded; charset={charset}",
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/accounts/password/reset/", {"email": LONG_EMAIL}),
        (
            "/accounts/signup/",
            {
                "email": LONG_EMAIL,
                "phone": "+4915112345678",
                "password1": "a-long-pass-phrase-7",
                "password2": "a-long-pass-phrase-7",
            },
        ),
        (
            "/recover/help/",
            {
                "contact_email": LONG_EMAIL,
                "contact_phone": "+4915112345678",
                "description": "Locked out.",
            },
        ),
        (
            "/recover/help/",
            {
                "contact_email": "me@example.com",
                "emails_tried": LONG_EMAIL,
                "description": "Locked out.",
            },
        ),
    ],
    ids=["reset", "signup", "help contact", "help emails tried"],
)
def test_an_email_longer_than_the_column_is_refused_on_the_form(client, path, data):
    """A 262-character address is a form error, never a database error or a cut address."""
    response = client.post(path, data)
    assert response.status_code in (200, 400)
    assert response.context["form"].errors
    assert not User.objects.exists()
    assert not Notification.objects.exists()
    assert not RecoveryCase.objects.exists()
