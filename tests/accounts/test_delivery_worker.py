"""Delivery through a real Celery worker process on Redis, against PostgreSQL."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from accounts.models import Notification, SecurityEvent
from accounts.services.audit import security_event_record
from tests.factories import UserFactory

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


def inbox(directory: Path) -> list[dict]:
    if not directory.exists():
        return []
    return [json.loads(p.read_text()) for p in directory.glob("*.json")]


def wait_for(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.django_db(transaction=True)
def test_worker_delivers_committed_notices_once(celery_worker, dev_inbox_dir):
    """Notices queued in a committed transaction reach the backends exactly once each."""
    users = UserFactory.create_batch(5)
    for user in users:
        security_event_record(user=user, type=SecurityEvent.Type.PASSWORD_CHANGED)
    assert wait_for(lambda: len(inbox(dev_inbox_dir)) == 10)
    time.sleep(1)
    messages = inbox(dev_inbox_dir)
    assert len(messages) == 10
    assert sorted(m["to"] for m in messages if m["kind"] == "email") == sorted(
        u.email for u in users
    )
    assert sorted(m["to"] for m in messages if m["kind"] == "sms") == sorted(u.phone for u in users)
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}
    assert len({m["reference"] for m in messages}) == 10


@pytest.mark.django_db(transaction=True)
def test_redelivered_task_does_not_send_again(celery_worker, dev_inbox_dir):
    from accounts.tasks import notification_deliver_task

    user = UserFactory(phone=None)
    security_event_record(user=user, type=SecurityEvent.Type.PASSWORD_RESET)
    assert wait_for(lambda: len(inbox(dev_inbox_dir)) == 1)
    notification = Notification.objects.get()
    for _ in range(3):
        notification_deliver_task.delay(notification.pk)
    time.sleep(2)
    assert len(inbox(dev_inbox_dir)) == 1
