""" "Send me my link again" answers a real reference and contact email in the time of an
unknown pair (SPEC §7): the request only queues a task, whatever matched.

The task goes to the Redis broker as in production (no worker runs here), so the timed
request does the very work a production request does. Known and unknown pairs alternate.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from support.models import RecoveryCase
from tests.timing import assert_posts_take_the_same_time, lift_rate_limits

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.redis]

SAMPLES = 60


@pytest.fixture
def broker(redis_url):
    """Tasks are queued on Redis, not run in the request."""
    from config.celery_app import app

    app.conf.task_always_eager = False
    app.conf["broker_url"] = redis_url
    try:
        yield app
    finally:
        app.control.purge()
        app.conf.task_always_eager = True


def test_a_real_pair_answers_in_the_time_of_an_unknown_one(settings, broker):
    """Medians of 60 alternating real and unknown pairs are within 20% of each other."""
    lift_rate_limits(settings, "recover_case_resend")
    case = RecoveryCase.objects.create(reference="RC-AAAA-BBBB", contact_email="me@example.org")

    assert_posts_take_the_same_time(
        reverse("recover_case_resend"),
        known=lambda n: {"reference": case.reference, "contact_email": case.contact_email},
        unknown=lambda n: {"reference": f"RC-ZZZZ-{n:04d}", "contact_email": "me@example.org"},
        status=200,
        samples=SAMPLES,
    )
