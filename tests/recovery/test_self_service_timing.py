"""The self-service first step answers an unknown account in the time of a wrong password.

With the production password hasher: a known account's check and an unknown one's dummy
hash cost the same. Known and unknown attempts alternate, so machine noise hits both alike.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.recovery.self_service_helpers import ACCOUNT_EMAIL, customer_account
from tests.timing import PRODUCTION_HASHERS, assert_posts_take_the_same_time, lift_rate_limits

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

# Each request hashes a password with the production hasher: fewer samples than other
# forms, but enough that a noisy stretch of the shared machine does not move the median.
SAMPLES = 20


def start(identifier: str) -> dict[str, str]:
    return {
        "action": "start",
        "identifier": identifier,
        "password": "not-the-password-7",
        "new_email": "fresh.inbox@example.net",
    }


@pytest.mark.parametrize("url_name", ["recover_lost_2fa", "recover_new_email"])
def test_an_unknown_account_answers_in_the_time_of_a_known_one(settings, url_name):
    """Medians of 20 alternating known and unknown attempts are within 20% of each other."""
    settings.PASSWORD_HASHERS = PRODUCTION_HASHERS
    lift_rate_limits(settings, "recover_self_service")
    customer_account()

    assert_posts_take_the_same_time(
        reverse(url_name),
        known=lambda n: start(ACCOUNT_EMAIL),
        unknown=lambda n: start(f"nobody{n}@example.org"),
        status=400,
        samples=SAMPLES,
    )


def test_a_backup_code_for_an_unknown_account_answers_in_the_time_of_a_known_one(settings):
    """The backup-code first step of /recover/lost-2fa/: a known account with backup codes
    and an unknown one run the same statement; medians of 50 alternating tries agree."""
    lift_rate_limits(settings, "recover_self_service")
    customer_account()

    def guess(identifier: str, number: int) -> dict[str, str]:
        return {
            "action": "start",
            "identifier": identifier,
            "backup_code": f"AAAA-BBBB-CCCC-{number:04d}".replace("0", "D"),
        }

    assert_posts_take_the_same_time(
        reverse("recover_lost_2fa"),
        known=lambda n: guess(ACCOUNT_EMAIL, n),
        unknown=lambda n: guess(f"nobody{n}@example.org", n),
        status=400,
    )
