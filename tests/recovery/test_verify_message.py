"""/recover/verify-message/: "Did we really send this?" answered by the message reference."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from notifications.models import Notification
from notifications.services import notification_reference_new
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PHISHING = "We did not send a message with this reference"


def check(client, reference, **extra):
    return client.post(reverse("recover_verify_message"), {"reference": reference}, **extra)


@pytest.fixture
def sent_hint(client, mailoutbox, sms_outbox, django_capture_on_commit_callbacks):
    """A real login-email hint: one email and one text, each carrying its reference."""
    UserFactory.create(email="john@gmail.com", phone="+4915123456789")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("recover_email"), {"phone": "+4915123456789"})
    email = Notification.objects.get(channel="email")
    sms = Notification.objects.get(channel="sms")
    assert email.status == sms.status == Notification.Status.SENT
    assert email.reference in mailoutbox[0].body
    assert sms.reference in sms_outbox[0].body
    return email, sms


def test_reference_of_a_sent_email_is_genuine_with_masked_recipient(client, sent_hint):
    """The reference printed in an email we sent is confirmed, with the address masked."""
    email, _sms = sent_hint
    response = check(client, email.reference)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Genuine: we sent this Email to j***n@g***.com" in html
    assert "john@gmail.com" not in html
    assert PHISHING not in html


def test_reference_of_a_sent_text_is_genuine_and_may_be_typed_loosely(client, sent_hint):
    """Lower case, spaces and a missing dash are accepted; the phone number is masked."""
    _email, sms = sent_hint
    loose = " " + sms.reference.lower().replace("-", " ") + " "
    response = check(client, loose)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Genuine: we sent this SMS to +49 ••• ••• 89" in html
    assert "+4915123456789" not in html


def test_unknown_reference_gets_the_phishing_warning(client, sent_hint):
    """A well-formed reference we never used is reported as a likely phishing attempt."""
    email, _sms = sent_hint
    unknown = notification_reference_new()
    assert unknown != email.reference
    response = check(client, unknown)
    assert response.status_code == 200
    html = response.content.decode()
    assert PHISHING in html
    assert "Genuine" not in html


def test_older_eight_character_reference_is_still_checked(client):
    """Messages sent before references grew to 12 characters (`7K2M-9QXA`) still verify."""
    Notification.objects.create(
        reference="7K2M-9QXA",
        channel="email",
        recipient="old.customer@example.com",
        template_key="support/case_link",
        idempotency_key="test-legacy",
        status=Notification.Status.SENT,
        sent_at=timezone.now(),
    )
    response = check(client, "7k2m9qxa")
    assert response.status_code == 200
    assert "Genuine: we sent this Email to o***r@e***.com" in response.content.decode()


def test_message_not_yet_sent_is_not_confirmed(client):
    """Only messages really sent count: a pending outbox row is not "genuine" yet."""
    pending = Notification.objects.create(
        reference=notification_reference_new(),
        channel="email",
        recipient="someone@example.com",
        template_key="support/case_link",
        idempotency_key="test-pending",
    )
    html = check(client, pending.reference).content.decode()
    assert PHISHING in html


@pytest.mark.parametrize(
    "reference", ["", "ABC", "ABCD-EFGH-IJ", "ABCD-EFGH-IJKL-M", "ABCD-EFG!", "<script>x"]
)
def test_malformed_reference_is_a_400_with_a_clear_error(client, reference):
    """Anything not shaped like a reference is refused with a form error."""
    response = check(client, reference)
    assert response.status_code == 400
    html = response.content.decode()
    assert "This field is required" in html or "A reference has" in html
    assert "Genuine" not in html
    assert PHISHING not in html


def test_checks_are_rate_limited_per_address(client):
    """Thirty checks per address and hour, then the friendly 429 page."""
    for _ in range(30):
        assert check(client, notification_reference_new()).status_code == 200
    refused = check(client, notification_reference_new())
    assert refused.status_code == 429
    assert "Too many attempts" in refused.content.decode()
    assert check(client, notification_reference_new(), REMOTE_ADDR="203.0.113.9").status_code == 200
