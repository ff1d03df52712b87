"""Sign-in and password reset take the same time for a known and an unknown email (SPEC §7)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import UserFactory
from tests.timing import PRODUCTION_HASHERS, assert_posts_take_the_same_time, lift_rate_limits

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

KNOWN_EMAIL = "holder@example.com"


@pytest.fixture
def limits_lifted(settings):
    lift_rate_limits(settings, "login", "login_failed", "reset_password")


def test_sign_in_with_a_known_email_takes_the_time_of_an_unknown_one(settings, limits_lifted):
    """A wrong password for an account costs a password hash, and so does any password for
    an email nobody has: the refusal does not tell which emails have an account. (The 2FA
    re-enrolment at /recover/2fa/ starts from this sign-in: it takes no identifier itself.)"""
    settings.PASSWORD_HASHERS = PRODUCTION_HASHERS
    UserFactory.create(email=KNOWN_EMAIL)
    password = "not-the-password-77"

    assert_posts_take_the_same_time(
        reverse("account_login"),
        known=lambda n: {"login": KNOWN_EMAIL, "password": password},
        unknown=lambda n: {"login": f"nobody{n}@example.com", "password": password},
        status=200,
    )


def test_password_reset_for_a_known_email_takes_the_time_of_an_unknown_one(limits_lifted):
    """Both answers queue one email (a reset link, or "no account uses this address")."""
    UserFactory.create(email=KNOWN_EMAIL)

    assert_posts_take_the_same_time(
        reverse("account_reset_password"),
        known=lambda n: {"email": KNOWN_EMAIL},
        unknown=lambda n: {"email": f"nobody{n}@example.com"},
        status=302,
    )
