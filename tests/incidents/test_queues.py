"""Queues: a customer's code goes out while a campaign of 10,000 notices waits its turn.

The workers are real and laid out as in the Procfile: one for the `messages` queue, one
for `bulk`, each with the queues the settings route the tasks to.
"""

from __future__ import annotations

import time

import pytest

from accounts.models import RevocationCampaign
from accounts.services.revocation import CAMPAIGN_TEMPLATE
from notifications.models import Notification
from notifications.services import notification_references_new, notifications_enqueue_batches
from recovery.services import reenrolment_code_send
from tests.factories import UserFactory
from tests.incidents.helpers import Worker, inbox_count, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.slow]

CAMPAIGN_SIZE = 10_000


def campaign_notices(count: int) -> list[int]:
    campaign = RevocationCampaign.objects.create(reason="queue drill", operator="tests")
    references = notification_references_new(count)
    rows = Notification.objects.bulk_create(
        [
            Notification(
                reference=references[i],
                channel=Notification.Channel.EMAIL,
                recipient=f"campaign{i}@example.com",
                account_id=1_000_000 + i,
                template_key=CAMPAIGN_TEMPLATE,
                idempotency_key=f"campaign:{campaign.pk}:{i}",
                campaign=campaign,
            )
            for i in range(count)
        ],
        batch_size=2000,
    )
    return [row.pk for row in rows]


@pytest.mark.django_db(transaction=True)
def test_a_customers_code_is_sent_while_a_campaign_of_10000_waits(broker, tmp_path):
    """The campaign's batches fill the bulk queue; the code a customer asks for in the
    middle of it is sent by the messages worker within seconds, not after the campaign."""
    inbox = tmp_path / "inbox"
    messages = Worker(
        broker_url=broker.url,
        inbox_dir=inbox,
        log_path=tmp_path / "m.log",
        queues="messages",
        name="messages",
    )
    bulk = Worker(
        broker_url=broker.url,
        inbox_dir=inbox,
        log_path=tmp_path / "b.log",
        queues="bulk",
        name="bulk",
        concurrency=1,
    )
    ids = campaign_notices(CAMPAIGN_SIZE)
    customer = UserFactory(reenrolment_required=True)
    try:
        messages.start()
        bulk.start()
        notifications_enqueue_batches(ids)
        assert wait_for(lambda: inbox_count(inbox) >= 200, timeout=60), bulk.log()

        asked = time.monotonic()
        code = reenrolment_code_send(user=customer)
        assert code is not None
        assert wait_for(
            lambda: Notification.objects.filter(pk=code.pk, status="sent").exists(), timeout=30
        ), messages.log()
        latency = time.monotonic() - asked
        waiting = Notification.objects.filter(
            campaign__isnull=False, status=Notification.Status.PENDING
        ).count()
    finally:
        messages.stop()
        bulk.stop()
    print(
        f"\ncode sent {latency:.2f} s after it was asked for; {waiting:,} campaign notices waiting"
    )
    assert waiting > CAMPAIGN_SIZE // 2, "the code went out while most of the campaign waited"
    assert latency < 5
