"""Delivery under faults, counted at a real SMTP server and an HTTP SMS gateway stub.

2,000 notices (half email, half SMS) go out through real Celery workers to servers the test
starts. A pool process or a whole worker is killed with SIGKILL mid-delivery, or the
workers' database connections are cut: nothing is lost, and at most the one message each
struck process was in the middle of reaches the receiving side twice. Every chunk of
messages uses one SMTP session and one HTTP connection.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

import pytest
from django.conf import settings
from django.db import connection

from notifications.models import Notification
from notifications.services import notification_references_new, notifications_enqueue_batches
from tests.incidents.helpers import Worker, deliver_everything, wait_for
from tests.processes import database_execute
from tests.servers import SmsGateway, SmtpServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]

COUNT = 2000


@pytest.fixture
def receivers():
    smtp, gateway = SmtpServer(), SmsGateway()
    smtp.start()
    gateway.start()
    try:
        yield smtp, gateway
    finally:
        smtp.stop()
        gateway.stop()


def worker(broker, receivers, tmp_path, name: str) -> Worker:
    smtp, gateway = receivers
    return Worker(
        broker_url=broker.url,
        inbox_dir=tmp_path / "inbox",
        log_path=tmp_path / f"{name}.log",
        env={**smtp.settings(), **gateway.settings()},
        name=name,
    )


def seed(count: int = COUNT) -> list[int]:
    """`count` pending notices: even ones the login-email hint by email, odd ones an SMS."""
    references = notification_references_new(count)
    rows = Notification.objects.bulk_create(
        [
            Notification(
                reference=references[i],
                channel=Notification.Channel.EMAIL if i % 2 == 0 else Notification.Channel.SMS,
                recipient=f"drill{i}@example.com" if i % 2 == 0 else f"+49151{i:08d}",
                template_key="support/login_email_hint"
                if i % 2 == 0
                else "accounts/account_exists",
                context=(
                    {"login_email": f"drill{i}@example.com"}
                    if i % 2 == 0
                    else {"masked_email": "d***l@e***.com"}
                ),
                idempotency_key=f"fault-drill:{i}",
                language="de" if i % 5 == 0 else "en",
            )
            for i in range(count)
        ],
        batch_size=1000,
    )
    return [row.pk for row in rows]


def received(receivers) -> Counter:
    smtp, gateway = receivers
    return smtp.received + gateway.received


def duplicates_after_all_delivered(receivers) -> int:
    """Every notice is marked sent and reached its server; returns how many arrived twice."""
    arrived = received(receivers)
    references = set(Notification.objects.values_list("reference", flat=True))
    assert set(Notification.objects.values_list("status", flat=True)) == {Notification.Status.SENT}
    assert set(arrived) == references, "0 lost: every notice reached its server"
    assert max(arrived.values()) <= 2
    return len([reference for reference, times in arrived.items() if times > 1])


def mid_delivery(receivers, at: int = 400) -> None:
    assert wait_for(lambda: sum(received(receivers).values()) >= at, timeout=60)


@pytest.mark.django_db(transaction=True)
def test_a_killed_pool_process_sends_at_most_one_message_twice(broker, receivers, tmp_path):
    """SIGKILL to one pool process mid-delivery: its task goes back to the queue, every
    notice arrives, and at most the one message it was sending arrives twice."""
    ids = seed()
    running = worker(broker, receivers, tmp_path, "pool-kill")
    try:
        running.start()
        notifications_enqueue_batches(ids)
        mid_delivery(receivers)
        victim = running.pool_pids()[0]
        os.kill(victim, signal.SIGKILL)
        sent_at_kill = Notification.objects.filter(status=Notification.Status.SENT).count()
        assert sent_at_kill < COUNT, "the kill should land mid-delivery"
        deliver_everything(broker.url)
    finally:
        running.stop()
    duplicates = duplicates_after_all_delivered(receivers)
    print(f"\npool process killed after {sent_at_kill} of {COUNT} sent: {duplicates} duplicate(s)")
    assert duplicates <= 1


@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_sends_at_most_one_message_twice_per_pool_process(
    broker, receivers, tmp_path
):
    """SIGKILL to a whole worker (main process and its two pool processes) mid-delivery; a
    new worker and the sweep deliver the rest: every notice arrives, at most two twice."""
    ids = seed()
    first = worker(broker, receivers, tmp_path, "killed")
    second = worker(broker, receivers, tmp_path, "successor")
    try:
        first.start()
        notifications_enqueue_batches(ids)
        mid_delivery(receivers)
        first.kill()
        sent_at_kill = Notification.objects.filter(status=Notification.Status.SENT).count()
        assert sent_at_kill < COUNT, "the kill should land mid-delivery"
        second.start()
        sweeps = deliver_everything(broker.url)
    finally:
        first.kill()
        second.stop()
    duplicates = duplicates_after_all_delivered(receivers)
    print(
        f"\nworker killed after {sent_at_kill} of {COUNT} sent, {sweeps} sweep(s): "
        f"{duplicates} duplicate(s)"
    )
    assert duplicates <= 2


@pytest.mark.django_db(transaction=True)
def test_lost_database_connections_send_at_most_one_message_twice_per_process(
    broker, receivers, tmp_path
):
    """The database drops every worker connection mid-delivery (as when PostgreSQL
    restarts): the unmarked rows are sent by the sweep, at most one per process twice."""
    ids = seed()
    running = worker(broker, receivers, tmp_path, "db-lost")
    try:
        running.start()
        notifications_enqueue_batches(ids)
        mid_delivery(receivers)
        test_database, own_pid = (
            connection.settings_dict["NAME"],
            connection.connection.info.backend_pid,
        )
        database_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"  # noqa: S608 # the run's own names
            f" WHERE datname = '{test_database}' AND pid <> {own_pid}"
        )
        sent_at_cut = Notification.objects.filter(status=Notification.Status.SENT).count()
        assert sent_at_cut < COUNT, "the cut should land mid-delivery"
        deliver_everything(broker.url)
    finally:
        running.stop()
    duplicates = duplicates_after_all_delivered(receivers)
    print(f"\nconnections cut after {sent_at_cut} of {COUNT} sent: {duplicates} duplicate(s)")
    assert duplicates <= 2


@pytest.mark.django_db(transaction=True)
def test_each_chunk_uses_one_smtp_session_and_one_http_connection(broker, receivers, tmp_path):
    """The SMTP server counts one session per chunk of emails, the gateway one connection
    per chunk of SMS, not one per message."""
    ids = seed(400)
    running = worker(broker, receivers, tmp_path, "sessions")
    try:
        running.start()
        notifications_enqueue_batches(ids)
        deliver_everything(broker.url)
    finally:
        running.stop()
    assert duplicates_after_all_delivered(receivers) == 0
    smtp, gateway = receivers
    chunks_per_channel = -(-200 // settings.NOTIFICATION_DELIVERY_CHUNK)
    print(f"\n{smtp.sessions} SMTP session(s) and {gateway.connections} HTTP connection(s)")
    assert smtp.sessions == chunks_per_channel
    assert gateway.connections == chunks_per_channel
