"""The operators' cleanup commands, also run by Celery beat: `release_stale_claims` returns
claims whose lease ran out, `expire_tokens` deletes codes and links nobody can use any more."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from celery.schedules import crontab
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from accounts.models import NotMeLink, OneTimeCode, User
from support.models import CaseEvent, CaseStatus, RecoveryLink
from support.services.queue import case_claim_next
from tests.factories import UserFactory
from tests.support.conftest import waiting_case

pytestmark = pytest.mark.django_db


def command(name: str) -> str:
    out = StringIO()
    call_command(name, stdout=out)
    return out.getvalue().strip()


def beat_schedule_of(task: str) -> crontab:
    (entry,) = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == task]
    schedule = entry["schedule"]
    assert isinstance(schedule, crontab)
    return schedule


def test_release_stale_claims_returns_a_claim_whose_lease_ran_out(agent, other_agent):
    """Twenty-one minutes after a claim with no action the command returns the case to the
    queue, says how many it returned, and another agent takes it; beat runs it every minute."""
    case = waiting_case()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        assert case_claim_next(agent=agent) == case
    with time_machine.travel(start + timedelta(minutes=19), tick=False):
        assert command("release_stale_claims") == "Returned 0 expired claim(s) to the queue."
    with time_machine.travel(start + timedelta(minutes=21), tick=False):
        assert command("release_stale_claims") == "Returned 1 expired claim(s) to the queue."
        case.refresh_from_db()
        assert case.status == CaseStatus.WAITING and case.claimed_by is None
        assert case.events.filter(type=CaseEvent.Type.LEASE_EXPIRED).count() == 1
        assert case_claim_next(agent=other_agent) == case
    assert beat_schedule_of("support.tasks.case_claims_release_stale_task") == crontab(minute="*")


def _code(user: User, *, expires_in: timedelta, consumed_ago: timedelta | None) -> OneTimeCode:
    now = timezone.now()
    return OneTimeCode.objects.create(
        user=user,
        purpose=OneTimeCode.Purpose.choices[0][0],
        code_hash=f"hash-{OneTimeCode.objects.count()}",
        expires_at=now + expires_in,
        consumed_at=None if consumed_ago is None else now - consumed_ago,
    )


def _not_me_link(user: User, *, expires_in: timedelta, used_ago: timedelta | None) -> NotMeLink:
    now = timezone.now()
    return NotMeLink.objects.create(
        user=user,
        token_hash=f"not-me-{NotMeLink.objects.count()}",
        expires_at=now + expires_in,
        used_at=None if used_ago is None else now - used_ago,
    )


def _recovery_link(user: User, *, expires_in: timedelta, used_ago: timedelta | None):
    now = timezone.now()
    return RecoveryLink.objects.create(
        case=waiting_case(),
        user=user,
        token_hash=f"recovery-{RecoveryLink.objects.count()}",
        expires_at=now + expires_in,
        used_at=None if used_ago is None else now - used_ago,
    )


def test_expire_tokens_deletes_expired_and_long_used_codes_and_links_and_keeps_the_rest():
    """Expired rows and rows used more than a day ago go; a live row, and one used within
    the day (kept so support can see what happened), stay; beat runs it hourly."""
    user = UserFactory.create()
    hour, day = timedelta(hours=1), timedelta(days=1)
    kept = []
    for make in (_code, _not_me_link, _recovery_link):
        used = "consumed_ago" if make is _code else "used_ago"
        make(user, expires_in=-hour, **{used: None})
        make(user, expires_in=hour, **{used: day + hour})
        kept.append(make(user, expires_in=hour, **{used: None}))
        kept.append(make(user, expires_in=hour, **{used: hour}))

    out = command("expire_tokens")

    for label in ("one_time_codes: 2", "not_me_links: 2", "recovery_links: 2"):
        assert label in out
    assert set(OneTimeCode.objects.all()) == set(kept[0:2])
    assert set(NotMeLink.objects.all()) == set(kept[2:4])
    assert set(RecoveryLink.objects.all()) == set(kept[4:6])
    assert command("expire_tokens").count(": 0") == 5, "a second run finds nothing"
    assert beat_schedule_of("support.tasks.tokens_expire_task") == crontab(minute=7)
