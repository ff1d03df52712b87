"""Attack tests: a reader of the database finds no live link or code in the outbox.

The attacker reads `notifications_notification` (a backup, an analyst's copy, an SQL
injection elsewhere) after the messages went out, failed for good or were discarded, and
looks for the links and codes they carried. The customer's own message still works.
"""

from __future__ import annotations

import importlib
import re

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import NotMeLink, SecurityEvent
from accounts.services.audit import security_event_record
from notifications.models import CONTEXT_REMOVED, Notification
from notifications.services import notification_queue, notifications_deliver
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

RESET_LINK = re.compile(r"http://testserver(/accounts/password/reset/key/[^\s]+/)")
NOT_ME_LINK = re.compile(r"/recover/not-me/([^/\s]+)/")
CODE = "482913"
LINK_TOKEN = "case-status-link-token-0123456789abcdefghijk"


def outbox_as_read_by_the_attacker() -> str:
    """Every column of every outbox row, as text, the way a dump or `SELECT *` shows it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(n)::text FROM notifications_notification n")
        return "\n".join(row for (row,) in cursor.fetchall())


def proof_code_sms(key: str) -> Notification:
    return notification_queue(
        channel=Notification.Channel.SMS,
        recipient="+4915100000001",
        template_key="support/proof_code",
        idempotency_key=key,
        context={"code": CODE, "case_reference": "C-TEST", "minutes": 10},
        enqueue=False,
    )


def test_a_mailed_password_reset_link_is_gone_from_the_outbox_and_still_works(capture, mailoutbox):
    UserFactory(email="reset.me@example.org")
    with capture():
        Client().post(reverse("account_reset_password"), {"email": "reset.me@example.org"})
    found = RESET_LINK.search(mailoutbox[-1].body)
    assert found is not None
    link = found.group(1)
    key = link.rstrip("/").rsplit("/", 1)[-1]
    assert Notification.objects.get().status == Notification.Status.SENT

    outbox = outbox_as_read_by_the_attacker()

    assert key not in outbox and "password/reset/key" not in outbox
    form = Client().get(link, follow=True)
    assert form.status_code == 200 and b"password1" in form.content


def test_a_mailed_not_me_link_is_gone_from_the_outbox_and_still_works(capture, mailoutbox):
    user = UserFactory(email="notme@example.org")
    with capture():
        security_event_record(user=user, type=SecurityEvent.Type.PASSWORD_CHANGED)
    found = NOT_ME_LINK.search(mailoutbox[-1].body)
    assert found is not None
    token = found.group(1)

    outbox = outbox_as_read_by_the_attacker()

    assert token not in outbox
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}
    assert {n.context["not_me_token"] for n in Notification.objects.all()} == {CONTEXT_REMOVED}
    assert NotMeLink.objects.filter(used_at__isnull=True).exists()
    page = Client().get(f"/recover/not-me/{token}/", follow=True)
    assert page.status_code == 200


def test_a_code_whose_delivery_failed_for_good_is_gone_from_the_outbox(settings):
    settings.SMS_BACKEND = "notifications.sms.backends.HttpGatewayBackend"
    settings.SMS_GATEWAY_URL = ""  # every attempt fails
    settings.NOTIFICATION_MAX_ATTEMPTS = 2
    row = proof_code_sms("failing-code")
    notifications_deliver(notification_ids=[row.pk])
    row.refresh_from_db()
    assert row.status == Notification.Status.PENDING
    assert CODE in outbox_as_read_by_the_attacker(), "the retry needs its code"

    with time_machine.travel(row.next_attempt_at, tick=False):
        assert notifications_deliver(notification_ids=[row.pk]) == 0

    row.refresh_from_db()
    assert row.status == Notification.Status.FAILED
    assert CODE not in outbox_as_read_by_the_attacker()
    assert "SMS_GATEWAY_URL" in row.last_error


def test_a_retried_delivery_still_sends_its_code_and_only_then_removes_it(settings, sms_outbox):
    settings.SMS_BACKEND = "notifications.sms.backends.HttpGatewayBackend"
    settings.SMS_GATEWAY_URL = ""  # the gateway is down for the first attempt
    row = proof_code_sms("retried-code")
    assert notifications_deliver(notification_ids=[row.pk]) == 0
    row.refresh_from_db()

    settings.SMS_BACKEND = "notifications.sms.backends.LocmemBackend"
    with time_machine.travel(row.next_attempt_at, tick=False):
        assert notifications_deliver(notification_ids=[row.pk]) == 1
        assert notifications_deliver(notification_ids=[row.pk]) == 0, "no second send"

    assert len(sms_outbox) == 1 and CODE in sms_outbox[0].body
    assert CODE not in outbox_as_read_by_the_attacker()


def test_the_migration_removes_links_rows_finished_earlier_still_hold():
    """Rows sent, failed or discarded before finishing removed their content lose it in
    migration 0004; a row still waiting keeps what it must send."""
    for status in ("sent", "failed", "discarded", "pending"):
        Notification.objects.create(
            reference=f"R-{status}",
            channel=Notification.Channel.EMAIL,
            recipient="old@example.org",
            template_key="support/case_link",
            idempotency_key=f"old:{status}",
            status=status,
            context={"case_reference": "C-OLD", "link_token": f"{LINK_TOKEN}-{status}"},
            sent_at=timezone.now() if status == "sent" else None,
        )
    migration = importlib.import_module(
        "notifications.migrations.0004_finished_rows_keep_no_content"
    )

    with connection.cursor() as cursor:
        cursor.execute(migration.FINISHED_ROWS_CONTENT_REMOVE)
        assert cursor.rowcount == 3
        cursor.execute(migration.FINISHED_ROWS_CONTENT_REMOVE)
        assert cursor.rowcount == 0, "a second run finds nothing"

    outbox = outbox_as_read_by_the_attacker()
    assert f"{LINK_TOKEN}-pending" in outbox
    assert all(f"{LINK_TOKEN}-{s}" not in outbox for s in ("sent", "failed", "discarded"))
    sent = Notification.objects.get(reference="R-sent")
    assert sent.context == {"case_reference": CONTEXT_REMOVED, "link_token": CONTEXT_REMOVED}
