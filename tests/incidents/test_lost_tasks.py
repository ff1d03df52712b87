"""Work whose task the broker lost is picked up by the periodic sweeps."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from recovery.models import EmailHintRequest
from recovery.services import email_hint_request, email_hint_sweep
from support.models import CaseStatus, RecoveryCase
from support.services.cases import case_open, case_triage_sweep
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_hint_request_whose_task_was_lost_is_answered_by_the_sweep(
    sms_outbox, django_capture_on_commit_callbacks
):
    """The request is stored; its task never ran; a minute later the sweep answers it."""
    user = UserFactory()
    assert user.phone is not None
    email_hint_request(phone=user.phone, ip_address=None, language="en")  # task lost
    assert email_hint_sweep() == 0, "fresh requests are left to their own task"
    EmailHintRequest.objects.update(created_at=timezone.now() - timedelta(minutes=2))
    with django_capture_on_commit_callbacks(execute=True):
        assert email_hint_sweep() == 1
    assert EmailHintRequest.objects.get().processed_at is not None
    assert [m.to for m in sms_outbox] == [user.phone]


def test_a_case_whose_triage_was_lost_is_triaged_by_the_sweep(django_capture_on_commit_callbacks):
    case = case_open(contact_email="someone@example.org", description="help").case  # task lost
    assert case.status == CaseStatus.NEW
    RecoveryCase.objects.update(created_at=timezone.now() - timedelta(minutes=2))
    with django_capture_on_commit_callbacks(execute=True):
        assert case_triage_sweep() == 1
    case.refresh_from_db()
    assert case.status == CaseStatus.WAITING
