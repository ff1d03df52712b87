"""Sign-up answers a taken email or phone in the same time as a fresh one (SPEC §7).

With the production password hasher: a new account costs a password hash, and so does a
refused one.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import UserFactory
from tests.timing import PRODUCTION_HASHERS, assert_posts_take_the_same_time, lift_rate_limits

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

PASSWORD = "a-long-enough-passphrase-91"


def signup(*, email: str, phone: str) -> dict[str, str]:
    return {"email": email, "phone": phone, "password1": PASSWORD, "password2": PASSWORD}


@pytest.mark.parametrize("taken", ["email", "phone"])
def test_a_taken_identifier_answers_in_the_time_of_a_fresh_one(settings, taken):
    """Medians of 50 alternating known and unknown sign-ups are within 20% of each other."""
    settings.PASSWORD_HASHERS = PRODUCTION_HASHERS
    lift_rate_limits(settings, "signup")
    UserFactory.create(email="holder@example.com", phone="+4915100000001")

    def known(number: int) -> dict[str, str]:
        if taken == "email":
            return signup(email="holder@example.com", phone=f"+49151300{number:05d}")
        return signup(email=f"fresh{number}x@example.com", phone="+4915100000001")

    def unknown(number: int) -> dict[str, str]:
        return signup(email=f"fresh{number}@example.com", phone=f"+49151200{number:05d}")

    assert_posts_take_the_same_time(
        reverse("account_signup"), known=known, unknown=unknown, status=302
    )
