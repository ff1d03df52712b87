"""Sign-up answers a taken email or phone in the same time as a fresh one (SPEC §7).

With the production password hasher: a new account costs a password hash, and so does a
refused one. Known and unknown attempts alternate, so machine noise hits both alike.
"""

from __future__ import annotations

import statistics
import time

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

SAMPLES = 50
PASSWORD = "a-long-enough-passphrase-91"


def timed_signup(client: Client, *, email: str, phone: str) -> float:
    data = {"email": email, "phone": phone, "password1": PASSWORD, "password2": PASSWORD}
    start = time.perf_counter()
    response = client.post(reverse("account_signup"), data)
    elapsed = time.perf_counter() - start
    assert response.status_code == 302
    return elapsed


@pytest.mark.parametrize("taken", ["email", "phone"])
def test_a_taken_identifier_answers_in_the_time_of_a_fresh_one(settings, taken):
    """Medians of 50 alternating known and unknown sign-ups are within 20% of each other."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "signup": False}
    UserFactory(email="holder@example.com", phone="+4915100000001")
    client = Client()
    known, unknown = [], []
    for number in range(SAMPLES):
        fresh_email, fresh_phone = f"fresh{number}@example.com", f"+49151200{number:05d}"
        known.append(
            timed_signup(
                client,
                email="holder@example.com" if taken == "email" else fresh_email.replace("@", "x@"),
                phone="+4915100000001" if taken == "phone" else fresh_phone.replace("200", "300"),
            )
        )
        unknown.append(timed_signup(client, email=fresh_email, phone=fresh_phone))
    ratio = statistics.median(known) / statistics.median(unknown)
    assert 0.8 <= ratio <= 1.2, f"known/unknown median ratio {ratio:.2f}"
