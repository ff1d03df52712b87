"""PostgreSQL enforces the audit: security events can be added, never changed or removed."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, transaction

from accounts.models import SecurityEvent
from accounts.services.audit import security_event_record
from tests.factories import UserFactory


@pytest.fixture
def event(db):
    return security_event_record(
        user=UserFactory.create(), type=SecurityEvent.Type.SIGNED_UP, notify=False
    )


def test_update_is_rejected(event):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        SecurityEvent.objects.filter(pk=event.pk).update(type="password_changed")
    event.refresh_from_db()
    assert event.type == "signed_up"


def test_delete_is_rejected(event):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        SecurityEvent.objects.filter(pk=event.pk).delete()
    assert SecurityEvent.objects.filter(pk=event.pk).exists()


def test_erasing_the_account_keeps_its_audit(event):
    from accounts.models import User

    User.objects.filter(pk=event.account_id).delete()
    assert SecurityEvent.objects.filter(account_id=event.account_id).count() == 1
