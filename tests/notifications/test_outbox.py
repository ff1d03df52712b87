"""The notification outbox: no false alarms, sends once, sweeps, the HTTP SMS gateway."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from collections import Counter
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import SecurityEvent
from accounts.services.audit import security_event_record
from notifications.models import Notification
from notifications.services import (
    REFERENCE_ALPHABET,
    NoticeRefused,
    notification_queue,
    notification_reference_new,
    notification_references_new,
    notification_sweep,
    notifications_deliver,
    security_notice_queue,
)
from notifications.sms import SmsMessage
from notifications.sms.backends import GatewayError, HttpGatewayBackend
from notifications.tasks import notification_deliver_task
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_references_are_readable_distinct_and_use_the_whole_alphabet():
    pattern = re.compile(
        rf"[{REFERENCE_ALPHABET}]{{4}}-[{REFERENCE_ALPHABET}]{{4}}-[{REFERENCE_ALPHABET}]{{4}}"
    )
    many = notification_references_new(5001)
    assert len(many) == 5001 and len(set(many)) == 5001
    assert all(pattern.fullmatch(reference) for reference in [*many, notification_reference_new()])
    letters = Counter("".join(many).replace("-", ""))
    assert set(letters) == set(REFERENCE_ALPHABET)
    # 60,012 uniform draws over 32 letters: about 1,875 each; a stuck bit would halve some.
    assert min(letters.values()) > 1_600 and max(letters.values()) < 2_150


def test_security_notice_needs_a_stored_event_of_a_notifiable_type():
    user = UserFactory.create()
    with pytest.raises(NoticeRefused):
        security_notice_queue(event_id=999_999)
    signup = security_event_record(user=user, type=SecurityEvent.Type.SIGNED_UP, notify=False)
    with pytest.raises(NoticeRefused):
        security_notice_queue(event_id=signup.pk)
    assert not Notification.objects.exists()


def test_notice_goes_to_every_contact_and_takes_its_text_from_the_event_type(
    mailoutbox, sms_outbox, django_capture_on_commit_callbacks
):
    user = UserFactory.create()
    with django_capture_on_commit_callbacks(execute=True):
        security_event_record(user=user, type=SecurityEvent.Type.PASSWORD_CHANGED)
    assert [m.to for m in mailoutbox] == [[user.email]]
    assert mailoutbox[0].subject == "[Recovery Desk] Your password was changed"
    html = mailoutbox[0].alternatives[0][0]
    assert "The password of your account was changed." in html
    reference = Notification.objects.get(channel="email").reference
    assert reference in mailoutbox[0].body
    assert mailoutbox[0].extra_headers["X-Recovery-Desk-Reference"] == reference
    assert [s.to for s in sms_outbox] == [user.phone]
    assert "Your password was changed" in sms_outbox[0].body


def test_database_refuses_a_security_notice_without_event():
    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.create(
            reference="AAAA-BBBB",
            channel="email",
            recipient="x@example.com",
            template_key="security/two_factor_enabled",
            idempotency_key="forged",
        )


def test_delivering_twice_sends_once(mailoutbox):
    user = UserFactory.create()
    event = security_event_record(user=user, type=SecurityEvent.Type.PASSWORD_RESET, notify=False)
    [email, _sms] = security_notice_queue(event_id=event.pk)
    assert notification_deliver_task.apply(args=(email.pk,)).get() == 1
    assert notification_deliver_task.apply(args=(email.pk,)).get() == 0
    assert len(mailoutbox) == 1
    email.refresh_from_db()
    assert email.status == Notification.Status.SENT and email.attempts == 1


def test_a_batch_goes_out_chunk_by_chunk_and_a_failure_stays_with_its_row(
    settings, mailoutbox, sms_outbox
):
    settings.NOTIFICATION_DELIVERY_CHUNK = 4
    settings.SMS_BACKEND = "notifications.sms.backends.HttpGatewayBackend"
    settings.SMS_GATEWAY_URL = ""  # every SMS fails; the emails around it must not
    queued = [
        notification_queue(
            channel=Notification.Channel.SMS if i == 5 else Notification.Channel.EMAIL,
            recipient="+4915100000001" if i == 5 else f"c{i}@example.com",
            template_key="support/login_email_hint",
            idempotency_key=f"batch:{i}",
            context={"login_email": f"c{i}@example.com", "masked_email": "c***@e***.com"},
            enqueue=False,
        )
        for i in range(10)
    ]
    ids = [n.pk for n in queued]
    assert notifications_deliver(notification_ids=ids) == 9
    assert sorted(m.to[0] for m in mailoutbox) == sorted(
        f"c{i}@example.com" for i in range(10) if i != 5
    )
    rows = {n.pk: n for n in Notification.objects.filter(pk__in=ids)}
    failed = rows.pop(ids[5])
    assert (failed.status, failed.attempts) == (Notification.Status.PENDING, 1)
    assert "SMS_GATEWAY_URL" in failed.last_error
    assert {(n.status, n.attempts, str(n.context)) for n in rows.values()} == {
        (Notification.Status.SENT, 1, "{'login_email': '[removed]', 'masked_email': '[removed]'}")
    }
    assert notifications_deliver(notification_ids=ids) == 0, "sent rows stay sent"
    assert len(mailoutbox) == 9 and sms_outbox == []


def test_queue_is_idempotent_per_key():
    first = notification_queue(
        channel=Notification.Channel.SMS,
        recipient="+4915100000001",
        template_key="x",
        idempotency_key="same",
    )
    second = notification_queue(
        channel=Notification.Channel.SMS,
        recipient="+4915100000001",
        template_key="x",
        idempotency_key="same",
    )
    assert first.pk == second.pk and Notification.objects.count() == 1


def test_sweep_resends_a_row_whose_task_was_lost(mailoutbox):
    """A row committed while the broker lost its task is delivered by the periodic sweep."""
    user = UserFactory.create()
    event = security_event_record(user=user, type=SecurityEvent.Type.PASSWORD_RESET, notify=False)
    security_notice_queue(event_id=event.pk)  # on_commit never fires here: the task is lost
    assert notification_sweep() == 0, "fresh rows are left to their own task"
    Notification.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=2))
    assert notification_sweep() == 2
    assert len(mailoutbox) == 1
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}
    assert notification_sweep() == 0


def test_failed_delivery_is_retried_later(settings):
    settings.SMS_BACKEND = "notifications.sms.backends.HttpGatewayBackend"
    settings.SMS_GATEWAY_URL = ""
    notification = notification_queue(
        channel=Notification.Channel.SMS,
        recipient="+4915100000001",
        template_key="accounts/account_exists",
        idempotency_key="k",
        context={"masked_email": "a***b@c***.com"},
    )
    assert notifications_deliver(notification_ids=[notification.pk]) == 0
    notification.refresh_from_db()
    assert notification.status == "pending" and notification.attempts == 1
    assert notification.next_attempt_at > timezone.now()
    assert "SMS_GATEWAY_URL" in notification.last_error


def test_retries_back_off_doubling_and_stop_failed_after_the_last_attempt(settings):
    """Each failed attempt waits twice as long as the one before (30 s, 1 min, 2 min, …);
    after NOTIFICATION_MAX_ATTEMPTS the row is failed, and neither a delivery nor the
    sweep touches it again."""
    settings.SMS_BACKEND = "notifications.sms.backends.HttpGatewayBackend"
    settings.SMS_GATEWAY_URL = ""
    settings.NOTIFICATION_MAX_ATTEMPTS = 5
    notification = notification_queue(
        channel=Notification.Channel.SMS,
        recipient="+4915100000001",
        template_key="accounts/account_exists",
        idempotency_key="backoff",
        context={"masked_email": "a***b@c***.com"},
    )
    delays = []
    for attempt in range(1, 6):
        notification.refresh_from_db()
        with time_machine.travel(notification.next_attempt_at, tick=False):
            assert notifications_deliver(notification_ids=[notification.pk]) == 0
            notification.refresh_from_db()
            assert notification.attempts == attempt
            if attempt < 5:
                delays.append((notification.next_attempt_at - timezone.now()).total_seconds())
    assert delays == [30, 60, 120, 240]
    assert notification.status == Notification.Status.FAILED

    with time_machine.travel(timezone.now() + timedelta(days=1), tick=False):
        assert notification_sweep() == 0
        assert notifications_deliver(notification_ids=[notification.pk]) == 0
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (Notification.Status.FAILED, 5)


class Gateway(BaseHTTPRequestHandler):
    """A local SMS gateway: fails the first `failures` requests with 503, then accepts."""

    failures = 0
    received: list = []
    secret = b"gateway-secret"

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        expected = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        signed = hmac.compare_digest(expected, self.headers.get("X-Signature-SHA256", ""))
        type(self).received.append((json.loads(body), signed, self.headers["Idempotency-Key"]))
        if not signed:
            self.send_response(401)
        elif type(self).failures > 0:
            type(self).failures -= 1
            self.send_response(503)
        else:
            self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def gateway(settings):
    Gateway.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.SMS_GATEWAY_URL = f"http://127.0.0.1:{server.server_address[1]}/send"
    settings.SMS_GATEWAY_SECRET = Gateway.secret.decode()
    yield Gateway
    server.shutdown()


def test_http_gateway_signs_the_body_and_retries_on_503(gateway):
    gateway.failures = 2
    HttpGatewayBackend().send(SmsMessage(to="+4915100000001", body="Hallo", reference="AB12-CD34"))
    assert len(gateway.received) == 3
    payload, signed, idempotency_key = gateway.received[-1]
    assert signed and idempotency_key == "AB12-CD34"
    assert payload == {
        "to": "+4915100000001",
        "from": "RecoveryDsk",
        "text": "Hallo",
        "reference": "AB12-CD34",
    }


def test_http_gateway_gives_up_after_its_retries(gateway, settings):
    gateway.failures = 100
    settings.SMS_GATEWAY_RETRIES = 2
    with pytest.raises(GatewayError):
        HttpGatewayBackend().send(SmsMessage(to="+4915100000001", body="x", reference="R"))
    assert len(gateway.received) == 3


def test_http_gateway_rejects_a_wrong_secret(gateway, settings):
    settings.SMS_GATEWAY_SECRET = "not-the-gateway-secret"
    with pytest.raises(GatewayError, match="401"):
        HttpGatewayBackend().send(SmsMessage(to="+4915100000001", body="x", reference="R"))
