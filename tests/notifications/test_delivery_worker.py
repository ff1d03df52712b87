"""Delivery through a real Celery worker process on Redis, against PostgreSQL."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path

import pytest

from accounts.models import SecurityEvent
from accounts.services.audit import security_event_record
from notifications.models import Notification
from tests.factories import UserFactory

pytestmark = pytest.mark.redis


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
    assert sorted(m["to"] for m in messages if m["kind"] == "sms") == sorted(
        str(u.phone) for u in users
    )
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}
    assert len({m["reference"] for m in messages}) == 10


@pytest.mark.django_db(transaction=True)
def test_redelivered_task_does_not_send_again(celery_worker, dev_inbox_dir):
    from notifications.tasks import notification_deliver_task

    user = UserFactory.create(phone=None)
    security_event_record(user=user, type=SecurityEvent.Type.PASSWORD_RESET)
    assert wait_for(lambda: len(inbox(dev_inbox_dir)) == 1)
    notification = Notification.objects.get()
    for _ in range(3):
        notification_deliver_task.delay(notification.pk)
    time.sleep(2)
    assert len(inbox(dev_inbox_dir)) == 1


@pytest.fixture
def delivery_batches_of_seven(monkeypatch):
    """The worker started after this fixture splits hand-overs into batches of 7."""
    monkeypatch.setenv("DJANGO_NOTIFICATION_BATCH_SIZE", "7")


@pytest.mark.django_db(transaction=True)
def test_campaign_notices_are_split_into_batches_by_a_worker(
    delivery_batches_of_seven, celery_worker, dev_inbox_dir
):
    """A revocation batch hands its notices over in one message; the worker splits them into
    delivery batches and every customer gets exactly one email."""
    from django.core.management import call_command

    from tests.incidents.helpers import bulk_customers

    users = bulk_customers(60)
    call_command(
        "revoke_2fa", "--all", "--reason", "Seed leak", "--confirm", "60", "--batch-size", "25"
    )
    assert wait_for(lambda: len(inbox(dev_inbox_dir)) >= 60)
    time.sleep(1)
    messages = inbox(dev_inbox_dir)
    assert sorted(m["to"] for m in messages) == sorted(u.email for u in users)
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}
    succeeded = Counter(
        re.findall(r"Task notifications\.tasks\.(\w+)\[[\w-]+\] succeeded", celery_worker.log())
    )
    # One hand-over per revocation batch of 25, 25 and 10 notices, split into batches of 7.
    assert succeeded["notifications_enqueue_task"] == 3
    assert succeeded["deliver_email_batch_task"] == 4 + 4 + 2


@pytest.mark.django_db(transaction=True)
def test_worker_keeps_its_database_connection_between_tasks(celery_worker, dev_inbox_dir):
    """Tasks reuse the worker's PostgreSQL connection (CONN_MAX_AGE) instead of opening one
    each: a connection opened before the second round of tasks serves them."""
    from django.db import connection

    def deliver_round(count: int, expected_total: int) -> None:
        for user in UserFactory.create_batch(count, phone=None):
            security_event_record(user=user, type=SecurityEvent.Type.PASSWORD_CHANGED)
        assert wait_for(lambda: len(inbox(dev_inbox_dir)) == expected_total)

    deliver_round(3, 3)
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        (second_round_at,) = cursor.fetchone()
    deliver_round(3, 6)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_start < %s AND query_start > %s",
            [second_round_at, second_round_at],
        )
        (kept,) = cursor.fetchone()
    assert kept >= 1
