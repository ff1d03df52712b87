"""A customer's messages go out through one "deliver what is due" task per burst, at once."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from kombu.transport import redis as redis_transport

from accounts.models import RevocationCampaign, SecurityEvent
from accounts.services.audit import security_event_record
from config.celery_app import app
from notifications.models import Notification
from notifications.services import (
    DELIVERY_DUE_KEY,
    held_notifications_release,
    notification_queue,
    notification_references_new,
    notifications_deliver_due,
)
from recovery.services import reenrolment_code_send
from tests.factories import UserFactory
from tests.processes import Worker, wait_for
from tests.servers import SmtpServer

FLOOD = 30


def delivery_tasks(log: str) -> Counter[str]:
    """The delivery tasks a worker ran, by name, as its log reports them."""
    return Counter(re.findall(r"Task notifications\.tasks\.(\w+)\[[\w-]+\] succeeded", log))


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_flood_committed_at_once_is_sent_by_far_fewer_tasks_than_rows(
    celery_worker, dev_inbox_dir
):
    """Thirty customers' notices committed together reach the inbox, each once, through a
    handful of tasks the worker really ran, not one task per row."""
    users = UserFactory.create_batch(FLOOD, phone=None)
    with transaction.atomic():
        for user in users:
            security_event_record(user=user, type=SecurityEvent.Type.PASSWORD_CHANGED)
    assert wait_for(
        lambda: Notification.objects.filter(status="sent").count() == FLOOD, timeout=30
    ), celery_worker.log()
    references = {m["reference"] for m in inbox_messages(dev_inbox_dir)}
    assert references == set(Notification.objects.values_list("reference", flat=True))
    tasks = delivery_tasks(celery_worker.log())
    assert 1 <= sum(tasks.values()) <= 3, tasks
    assert tasks["notification_deliver_task"] == 0


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_lone_code_leaves_at_once(celery_worker, dev_inbox_dir):
    """One customer asks for a code: it is sent within a second or two, not after a wait for
    others to join it."""
    customer = UserFactory(reenrolment_required=True)
    asked = time.monotonic()
    code = reenrolment_code_send(user=customer)
    assert code is not None
    assert wait_for(
        lambda: Notification.objects.filter(pk=code.pk, status="sent").exists(), timeout=10
    ), celery_worker.log()
    assert time.monotonic() - asked < 2.5
    assert [m["to"] for m in inbox_messages(dev_inbox_dir)] == [customer.email]


class GatedSmtpServer(SmtpServer):
    """Holds its answer to the first message until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.first_arrived = threading.Event()
        self.gate = threading.Event()

    async def handle_DATA(self, server, session, envelope) -> str:
        first = not self.first_arrived.is_set()
        self.first_arrived.set()
        while first and not self.gate.is_set():
            await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_row_committed_while_the_task_sends_is_sent_without_the_sweep(
    redis_url, tmp_path, settings
):
    """A notice committed while the task that claimed the one before is still sending it
    asks for a task of its own, which sends it while the first is still held up; no sweep
    runs in this test."""
    settings.CACHES = {"default": {"BACKEND": "config.cache.RedisCache", "LOCATION": redis_url}}
    cache.delete(DELIVERY_DUE_KEY)
    smtp = GatedSmtpServer()
    smtp.start()
    worker = Worker(
        broker_url=redis_url,
        inbox_dir=tmp_path / "inbox",
        log_path=tmp_path / "worker.log",
        env=smtp.settings(),
    )
    first, second = UserFactory(phone=None), UserFactory(phone=None)
    app.conf.task_always_eager = False
    try:
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            assert isinstance(channel, redis_transport.Channel), channel
            channel.queue_purge("messages")
        worker.start()
        security_event_record(user=first, type=SecurityEvent.Type.PASSWORD_CHANGED)
        assert smtp.first_arrived.wait(timeout=20), worker.log()
        security_event_record(user=second, type=SecurityEvent.Type.PASSWORD_CHANGED)
        late = Notification.objects.get(recipient=second.email)
        assert wait_for(
            lambda: Notification.objects.filter(pk=late.pk, status="sent").exists(), timeout=15
        ), worker.log()
        assert not smtp.gate.is_set()
        smtp.gate.set()
        assert wait_for(lambda: Notification.objects.filter(status="sent").count() == 2)
    finally:
        app.conf.task_always_eager = True
        smtp.gate.set()
        worker.stop()
        smtp.stop()
    assert sorted(smtp.received.values()) == [1, 1]


@pytest.mark.django_db
def test_the_due_task_takes_only_customers_rows_that_are_due(
    django_capture_on_commit_callbacks, mailoutbox, settings
):
    """Campaign notices waiting for their batches, held notices, notices released from a
    hold (handed to the bulk queue), rows a worker sends itself, and rows already leased stay
    where they are; the customers' due rows are sent, oldest first."""
    settings.BURST_GUARD_THRESHOLD = 2
    campaign = RevocationCampaign.objects.create(reason="drill", operator="tests")
    references = notification_references_new(3)
    campaign_rows = Notification.objects.bulk_create(
        [
            Notification(
                reference=references[i],
                channel=Notification.Channel.EMAIL,
                recipient=f"campaign{i}@example.com",
                account_id=1_000_000 + i,
                template_key="accounts/two_factor_revoked",
                idempotency_key=f"campaign:{campaign.pk}:{i}",
                campaign=campaign,
            )
            for i in range(3)
        ]
    )
    with django_capture_on_commit_callbacks(execute=False):
        customers = [
            notification_queue(
                channel=Notification.Channel.EMAIL,
                recipient=f"customer{i}@example.com",
                template_key="recovery/reenrolment_code",
                idempotency_key=f"due-test:{i}",
                context={"code": "123456", "masked_email": "c***@example.com"},
            )
            for i in range(3)
        ]
        by_caller = notification_queue(
            channel=Notification.Channel.EMAIL,
            recipient="caller@example.com",
            template_key="recovery/reenrolment_code",
            idempotency_key="due-test:caller",
            context={"code": "123456", "masked_email": "c***@example.com"},
            enqueue=False,
        )
        leased = customers[2]
        Notification.objects.filter(pk=leased.pk).update(
            next_attempt_at=timezone.now() + timedelta(minutes=2)
        )
        # Two notices of one type trip the burst guard: both are held, then one type's
        # release hands them to batches on the bulk queue.
        for _ in range(3):
            security_event_record(
                user=UserFactory(phone=None), type=SecurityEvent.Type.PASSWORD_CHANGED
            )
        held = list(Notification.objects.filter(status=Notification.Status.HELD))
    assert len(held) == 3
    with django_capture_on_commit_callbacks(execute=False):
        assert held_notifications_release(template_key=held[0].template_key) == 3
    untouched = [*campaign_rows, by_caller, leased, *held]
    before = {
        row.pk: (row.status, row.next_attempt_at)
        for row in Notification.objects.filter(pk__in=[row.pk for row in untouched])
    }
    assert {status for status, _ in before.values()} == {Notification.Status.PENDING}

    sent = notifications_deliver_due()

    assert sent == 2
    assert [m.to[0] for m in mailoutbox] == ["customer0@example.com", "customer1@example.com"]
    assert before == {
        row.pk: (row.status, row.next_attempt_at)
        for row in Notification.objects.filter(pk__in=[row.pk for row in untouched])
    }


def inbox_messages(directory) -> list[dict]:
    import json

    if not directory.exists():
        return []
    return [json.loads(p.read_text()) for p in directory.glob("*.json")]
