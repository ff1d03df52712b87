"""The self-service first step answers an unknown account in the time of a wrong password.

With the production password hasher: a known account's check and an unknown one's dummy
hash cost the same. Known and unknown attempts alternate, so machine noise hits both alike.
"""

from __future__ import annotations

import statistics
import time

import pytest
from django.test import Client
from django.urls import reverse

from tests.recovery.self_service_helpers import ACCOUNT_EMAIL, customer_account

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

SAMPLES = 12


def timed_start(client: Client, url: str, identifier: str) -> float:
    data = {
        "action": "start",
        "identifier": identifier,
        "password": "not-the-password-7",
        "new_email": "fresh.inbox@example.net",
    }
    start = time.perf_counter()
    response = client.post(url, data)
    elapsed = time.perf_counter() - start
    assert response.status_code == 400
    return elapsed


@pytest.mark.parametrize("url_name", ["recover_lost_2fa", "recover_new_email"])
def test_an_unknown_account_answers_in_the_time_of_a_known_one(settings, url_name):
    """Medians of 12 alternating known and unknown attempts are within 20% of each other."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "recover_self_service": False}
    customer_account()
    client = Client()
    url = reverse(url_name)
    known, unknown = [], []
    for number in range(SAMPLES):
        known.append(timed_start(client, url, ACCOUNT_EMAIL))
        unknown.append(timed_start(client, url, f"nobody{number}@example.org"))
    ratio = statistics.median(known) / statistics.median(unknown)
    assert 0.8 <= ratio <= 1.2, f"known/unknown median ratio {ratio:.2f}"
