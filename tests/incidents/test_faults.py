"""Faults: a worker killed mid-delivery, Redis restarted mid-delivery, Redis unreachable.

The worker and Redis are real processes; Redis is a private `redis-server` of each test, so
stopping it never disturbs anything else on the machine.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from accounts.models import SecurityEvent, User
from accounts.services.audit import security_event_record
from accounts.services.revocation import revocation_campaign_run, revocation_campaign_start
from notifications.models import Notification
from recovery.models import EmailHintRequest
from tests.conftest import free_port
from tests.incidents.helpers import (
    Worker,
    bulk_customers,
    deliver_everything,
    inbox_count,
    inbox_files,
    pending,
    wait_for,
)

pytestmark = pytest.mark.redis

PENDING, SENT = Notification.Status.PENDING, Notification.Status.SENT
SENT_EMAIL = re.compile(r"X-Recovery-Desk-Reference: ([0-9A-Z-]+)")
SENT_SMS = re.compile(r"SMS to \S+ \[([0-9A-Z-]+)\]")


def with_phones(users: list[User]) -> list[User]:
    for number, user in enumerate(users):
        user.phone = f"+4915190{number:06d}"
    User.objects.bulk_update(users, ["phone"])
    return users


def campaign(users_qs, *, batch_size: int = 100) -> int:
    """Revoke through the service, as `revoke_2fa` does: each batch enqueues after commit."""
    started = revocation_campaign_start(
        reason="fault drill", operator="tests", users=users_qs, selection={}
    )
    return revocation_campaign_run(campaign=started, batch_size=batch_size)


def sends_in(*logs: str) -> Counter:
    """How often each reference was handed to a backend, from the workers' console output."""
    text = "\n".join(logs)
    return Counter(SENT_EMAIL.findall(text) + SENT_SMS.findall(text))


def assert_each_notice_sent_once(inbox: Path) -> list[dict]:
    notices = {n.reference: n for n in Notification.objects.all()}
    assert set(Notification.objects.values_list("status", flat=True)) == {SENT}
    messages = inbox_files(inbox)
    references = [m["reference"] for m in messages]
    assert len(messages) == len(notices), "one message at the backend per notice"
    assert len(set(references)) == len(references)
    assert set(references) == set(notices)
    for message in messages:
        notice = notices[message["reference"]]
        assert (message["kind"], message["to"]) == (notice.channel, notice.recipient)
    return messages


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_delivery_loses_nothing_and_sends_nothing_twice(
    db, broker, dev_inbox_dir, tmp_path
):
    """SIGKILL to a worker (main process and pool) while it delivers 2,030 notices: after a new
    worker starts and the sweep runs, every notice reached the backend exactly once."""
    customers = bulk_customers(2000)
    # Ten customers also get a security notice (email and SMS, one task each).
    for user in with_phones(customers[:10]):
        security_event_record(user=user, type=SecurityEvent.Type.PASSWORD_CHANGED)
    first = Worker(broker_url=broker.url, inbox_dir=dev_inbox_dir, log_path=tmp_path / "w1.log")
    second = Worker(broker_url=broker.url, inbox_dir=dev_inbox_dir, log_path=tmp_path / "w2.log")
    try:
        first.start()
        assert campaign(User.objects.filter(is_staff=False)) == 2000
        total = Notification.objects.count()
        assert total == 2030  # and the campaign texts the ten customers with a phone
        assert wait_for(lambda: inbox_count(dev_inbox_dir) >= 300, timeout=60), first.log()
        first.kill()
        sent_before_restart = Notification.objects.filter(status=SENT).count()
        print(f"\nworker killed after {sent_before_restart} of {total} notices were sent")
        assert 0 < sent_before_restart < total, "the kill should land mid-delivery"

        second.start()
        sweeps = deliver_everything(broker.url)
        print(f"all delivered after {sweeps} sweep(s) for the killed worker's lost tasks")
        time.sleep(1)  # anything still running would show up as a second send now
        assert_each_notice_sent_once(dev_inbox_dir)
    finally:
        first.kill()
        second.stop()
    # At most the message each of the two pool processes was in the middle of at the instant
    # of the kill went out twice (sent, then killed before its row was marked sent); the
    # gateway (here the dev inbox) keeps one copy per reference, so the customer gets one.
    sends = sends_in(first.log(), second.log())
    assert len([ref for ref, count in sends.items() if count > 1]) <= 2
    assert max(sends.values()) <= 2


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_redis_stopped_and_started_during_delivery_loses_nothing(
    db, broker, dev_inbox_dir, tmp_path
):
    """Redis dies while a worker delivers and while more notices are queued; the committed
    changes stand, their rows wait in PostgreSQL, and after Redis is back the sweep delivers
    every notice exactly once."""
    first_wave = bulk_customers(600, prefix="first")
    second_wave = bulk_customers(150, prefix="second")
    worker = Worker(broker_url=broker.url, inbox_dir=dev_inbox_dir, log_path=tmp_path / "w.log")
    try:
        worker.start()
        assert campaign(User.objects.filter(email__startswith="first")) == len(first_wave)
        assert wait_for(lambda: inbox_count(dev_inbox_dir) >= 50, timeout=60), worker.log()
        broker.kill()
        assert pending() > 0, "Redis should die mid-delivery"

        # With Redis down, changes still commit; their notices wait as pending rows.
        started = time.monotonic()
        second = User.objects.filter(email__startswith="second")
        assert campaign(second, batch_size=len(second_wave)) == len(second_wave)
        [phoned] = with_phones(second_wave[:1])
        security_event_record(user=phoned, type=SecurityEvent.Type.PASSWORD_CHANGED)
        print(f"\nqueueing with Redis down took {time.monotonic() - started:.1f} s")
        second_ids = [u.pk for u in second_wave]
        assert SecurityEvent.objects.filter(account_id__in=second_ids).count() == (
            len(second_wave) + 1
        )
        waiting = Notification.objects.filter(account_id__in=second_ids)
        assert waiting.count() == len(second_wave) + 2  # campaign, then the email and SMS
        assert set(waiting.values_list("status", flat=True)) == {PENDING}

        broker.start()
        assert deliver_everything(broker.url) >= 1, "the tasks queued in Redis were lost"
        time.sleep(1)
        messages = assert_each_notice_sent_once(dev_inbox_dir)
        assert len(messages) == len(first_wave) + len(second_wave) + 2
    finally:
        worker.stop()
    sends = sends_in(worker.log())
    assert max(sends.values()) == 1, "no process was killed mid-send: nothing went out twice"


@pytest.mark.django_db(transaction=True)
def test_with_redis_unreachable_pages_render_and_forms_fail_closed(db, settings, client):
    """/healthz says 503 with redis "down"; pages needing no shared state still render; a form
    that must be rate-limited answers 503 with the friendly page and writes nothing."""
    closed = f"redis://127.0.0.1:{free_port()}/0"
    settings.REDIS_URL = closed
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": closed}
    }
    assert isinstance(caches["default"], RedisCache)

    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.json()["checks"] == {"database": "ok", "redis": "down"}
    for path in ("/", "/recover/", "/recover/email/"):
        assert client.get(path).status_code == 200, path

    response = client.post("/recover/email/", {"phone": "+4915112000001"})
    assert response.status_code == 503
    assert "We can't do this right now" in response.content.decode()
    assert "nothing was changed" in response.content.decode()
    assert not EmailHintRequest.objects.exists()
    assert not Notification.objects.exists()
