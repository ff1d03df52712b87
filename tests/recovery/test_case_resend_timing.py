""" "Send me my link again" answers a real reference and contact email in the time of an
unknown pair (SPEC §7): the request only queues a task, whatever matched.

The task goes to the Redis broker as in production (no worker runs here), so the timed
request does the very work a production request does. Known and unknown pairs alternate.
"""

from __future__ import annotations

import statistics
import time

import pytest
from django.test import Client
from django.urls import reverse

from support.models import RecoveryCase

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.redis]

SAMPLES = 60


@pytest.fixture
def broker(redis_url):
    """Tasks are queued on Redis, not run in the request."""
    from config.celery_app import app

    app.conf.task_always_eager = False
    app.conf.broker_url = redis_url
    try:
        yield app
    finally:
        app.control.purge()
        app.conf.task_always_eager = True


def timed_resend(client: Client, *, reference: str, email: str) -> float:
    start = time.perf_counter()
    response = client.post(
        reverse("recover_case_resend"), {"reference": reference, "contact_email": email}
    )
    elapsed = time.perf_counter() - start
    assert response.status_code == 200
    return elapsed


def test_a_real_pair_answers_in_the_time_of_an_unknown_one(settings, broker):
    """Medians of 60 alternating real and unknown pairs are within 20% of each other."""
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "recover_case_resend": ""}
    case = RecoveryCase.objects.create(reference="RC-AAAA-BBBB", contact_email="me@example.org")
    client = Client()
    known, unknown = [], []
    for number in range(SAMPLES):
        known.append(timed_resend(client, reference=case.reference, email=case.contact_email))
        unknown.append(
            timed_resend(client, reference=f"RC-ZZZZ-{number:04d}", email="me@example.org")
        )
    ratio = statistics.median(known) / statistics.median(unknown)
    assert 0.8 <= ratio <= 1.2, f"known/unknown median ratio {ratio:.2f}"
