"""A triage task waits a moment before it starts: the requests of that while share its batch."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache

from support.models import CaseStatus, RecoveryCase
from support.services.cases import TRIAGE_DUE_KEY, case_open
from tests.factories import UserFactory
from tests.processes import wait_for

pytestmark = pytest.mark.redis


@pytest.mark.django_db(transaction=True)
def test_requests_within_the_gather_window_are_triaged_in_one_batch(celery_worker, settings):
    """Three wrong-email requests half a second apart, within a 2-second window: one task,
    asked for by the first, triages all three together, and only after the window."""
    settings.CASE_TRIAGE_GATHER_SECONDS = 2.0
    cache.delete(TRIAGE_DUE_KEY)
    users = [UserFactory(phone=f"+4915177{i:06d}") for i in range(3)]
    first_asked = time.time()
    cases = []
    for i, user in enumerate(users):
        if i:
            time.sleep(0.5)  # the requests come in one after another, as in a flood
        assert user.phone is not None
        cases.append(
            case_open(
                contact_email=f"typed{i}@example.net",
                contact_phone=user.phone,
                description="I cannot sign in.",
            ).case
        )

    def resolved() -> list[RecoveryCase]:
        return list(
            RecoveryCase.objects.filter(
                pk__in=[case.pk for case in cases], status=CaseStatus.RESOLVED
            )
        )

    assert wait_for(lambda: len(resolved()) == 3, timeout=30), celery_worker.log()
    closed = {case.closed_at for case in resolved()}
    assert len(closed) == 1, "one batch closed them all"
    (closed_at,) = closed
    assert closed_at is not None
    assert closed_at.timestamp() >= first_asked + 2.0, "the task waited for the window"
