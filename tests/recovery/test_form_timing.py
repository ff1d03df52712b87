"""The recovery forms take the same time for a known and an unknown identifier (SPEC §7):
the phone lookup, the help form and "did we really send this?"."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from notifications.models import Notification
from notifications.services import notification_reference_new
from tests.factories import UserFactory
from tests.timing import assert_posts_take_the_same_time, lift_rate_limits

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

KNOWN_PHONE = "+4915123456789"


@pytest.fixture
def limits_lifted(settings):
    lift_rate_limits(
        settings,
        "recover_email",
        "recover_sms_country",
        "recover_help",
        "recover_verify_message",
    )


def test_phone_lookup_for_a_registered_number_takes_the_time_of_an_unknown_one(limits_lifted):
    """Both record the request; the worker looks the number up later."""
    UserFactory.create(phone=KNOWN_PHONE)

    assert_posts_take_the_same_time(
        reverse("recover_email"),
        known=lambda n: {"phone": KNOWN_PHONE},
        unknown=lambda n: {"phone": f"+49176200{n:05d}"},
        status=302,
    )


def test_help_request_for_a_registered_number_takes_the_time_of_an_unknown_one(limits_lifted):
    """Matching the account, joining its open case and triage do not show in the time."""
    UserFactory.create(phone=KNOWN_PHONE)

    def help_request(phone: str, number: int) -> dict[str, str]:
        return {
            "contact_email": f"someone{number}@example.net",
            "contact_phone": phone,
            "emails_tried": "",
            "description": "I cannot sign in any more.",
        }

    assert_posts_take_the_same_time(
        reverse("recover_help"),
        known=lambda n: help_request(KNOWN_PHONE, n),
        unknown=lambda n: help_request(f"+49176200{n:05d}", n),
        status=200,
    )


def test_a_genuine_reference_is_checked_in_the_time_of_an_unknown_one(limits_lifted):
    """The answer differs (that is the page's purpose); its time does not."""
    user = UserFactory.create()
    sent = Notification.objects.create(
        channel=Notification.Channel.EMAIL,
        recipient=user.email,
        template_key="support/login_email_hint",
        idempotency_key="timing",
        reference=notification_reference_new(),
        status=Notification.Status.SENT,
        sent_at=timezone.now(),
        account_id=user.pk,
    )

    assert_posts_take_the_same_time(
        reverse("recover_verify_message"),
        known=lambda n: {"reference": sent.reference},
        unknown=lambda n: {"reference": notification_reference_new()},
        status=200,
    )
