"""/recover/email/: the login-email hint by phone number, enumeration-safe and rate limited."""

from __future__ import annotations

import re

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from recovery.models import EmailHintRequest
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')
KNOWN_PHONE = "+4915123456789"
UNKNOWN_PHONE = "+4915199999999"


def ask(client, phone, **extra):
    return client.post(reverse("recover_email"), {"phone": phone}, **extra)


@pytest.fixture
def john():
    return UserFactory.create(email="john@gmail.com", phone=KNOWN_PHONE)


def test_known_number_gets_masked_sms_and_full_email(
    client, john, mailoutbox, sms_outbox, django_capture_on_commit_callbacks
):
    """The number's owner is texted the masked address and emailed the full one."""
    with django_capture_on_commit_callbacks(execute=True):
        response = ask(client, "0151 23456789")
    assert response.status_code == 302
    assert response["Location"] == reverse("recover_email_sent")

    assert [m.to for m in sms_outbox] == [KNOWN_PHONE]
    assert "j***n@g***.com" in sms_outbox[0].body
    assert "john@gmail.com" not in sms_outbox[0].body

    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["john@gmail.com"]
    assert "john@gmail.com" in mailoutbox[0].body
    hint = EmailHintRequest.objects.get()
    assert hint.phone == KNOWN_PHONE
    assert hint.processed_at is not None


def test_unknown_number_sends_nothing(
    client, john, mailoutbox, sms_outbox, django_capture_on_commit_callbacks
):
    """A number without an account gets no message at all, yet the request is recorded."""
    with django_capture_on_commit_callbacks(execute=True):
        response = ask(client, UNKNOWN_PHONE)
    assert response.status_code == 302
    assert mailoutbox == []
    assert sms_outbox == []
    assert EmailHintRequest.objects.filter(phone=UNKNOWN_PHONE).count() == 1


def test_known_and_unknown_numbers_get_identical_answers(
    john, mailoutbox, sms_outbox, django_capture_on_commit_callbacks
):
    """Status, redirect, cookies and the page followed to are the same bytes; the same row is
    written in the request for both numbers (the lookup happens later, after the answer)."""
    answers = []
    for phone in (KNOWN_PHONE, UNKNOWN_PHONE):
        client = Client()
        client.get(reverse("recover_email"))
        # The callbacks are captured but not run: only the request's own work is compared.
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = ask(client, phone)
        rows = list(EmailHintRequest.objects.filter(phone=phone).values("processed_at"))
        page = client.get(response["Location"])
        answers.append(
            {
                "status": response.status_code,
                "location": response["Location"],
                "headers": dict(response.headers),
                "cookies": sorted(response.cookies),
                "page_status": page.status_code,
                "page_headers": dict(page.headers),
                "page": CSRF.sub(b"", page.content),
                "rows": rows,
                "callbacks": len(callbacks),
            }
        )
    known, unknown = answers
    assert known["status"] == 302
    assert known["rows"] == [{"processed_at": None}]
    assert known == unknown
    assert mailoutbox == [] and sms_outbox == [], "nothing is sent before commit"


def test_invalid_phone_is_a_400_with_a_clear_error(client, mailoutbox, sms_outbox):
    """Garbage input is answered with a form error, and nothing is recorded or sent."""
    response = ask(client, "12-not-a-phone")
    assert response.status_code == 400
    assert "Enter a valid phone number" in response.content.decode()
    assert not EmailHintRequest.objects.exists()
    assert mailoutbox == [] and sms_outbox == []


def test_fourth_request_for_one_number_within_an_hour_is_refused(
    client, john, sms_outbox, django_capture_on_commit_callbacks
):
    """Three requests per number and hour, even from different addresses; then 429."""
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            assert ask(client, KNOWN_PHONE, REMOTE_ADDR=f"198.51.100.{n + 1}").status_code == 302
        refused = ask(client, KNOWN_PHONE, REMOTE_ADDR="198.51.100.99")
    assert refused.status_code == 429
    assert "Too many attempts" in refused.content.decode()
    assert EmailHintRequest.objects.count() == 3
    assert len(sms_outbox) == 3

    # Another number from the same address is still fine: the limit is per number.
    assert ask(client, UNKNOWN_PHONE, REMOTE_ADDR="198.51.100.99").status_code == 302


def test_eleventh_request_from_one_address_is_refused(client):
    """Ten requests per address and hour, whatever the numbers."""
    for n in range(10):
        assert ask(client, f"+4915112{n:06d}").status_code == 302
    refused = ask(client, "+4915112999999")
    assert refused.status_code == 429
    assert "Too many attempts" in refused.content.decode()
    assert EmailHintRequest.objects.count() == 10
    assert ask(client, "+4915112999999", REMOTE_ADDR="203.0.113.7").status_code == 302


def test_daily_sms_budget_per_country_code(
    client, settings, sms_outbox, django_capture_on_commit_callbacks
):
    """Against SMS pumping: once a country's daily budget is spent its numbers get 429,
    other countries still pass, and the budget is back the next day."""
    # allauth reads ACCOUNT_RATE_LIMITS at call time, so the settings fixture works; the dict
    # is replaced (never mutated), so the override ends with the test.
    settings.ACCOUNT_RATE_LIMITS = {
        **settings.ACCOUNT_RATE_LIMITS,
        "recover_sms_country": "2/d/key",
    }
    german_owner = UserFactory.create(phone="+4917612345678")
    with time_machine.travel("2026-03-02 09:00:00", tick=False) as clock:
        with django_capture_on_commit_callbacks(execute=True):
            assert ask(client, "+4915112000001", REMOTE_ADDR="192.0.2.1").status_code == 302
            assert ask(client, "+4915112000002", REMOTE_ADDR="192.0.2.2").status_code == 302
            refused = ask(client, german_owner.phone, REMOTE_ADDR="192.0.2.3")
            french = ask(client, "+33612345678", REMOTE_ADDR="192.0.2.4")
        assert refused.status_code == 429
        assert "Too many attempts" in refused.content.decode()
        assert french.status_code == 302
        assert sms_outbox == [], "the refused owner got no text"
        assert not EmailHintRequest.objects.filter(phone=german_owner.phone).exists()

        clock.shift(24 * 3600 + 60)
        with django_capture_on_commit_callbacks(execute=True):
            again = ask(client, german_owner.phone, REMOTE_ADDR="192.0.2.5")
        assert again.status_code == 302
        assert [m.to for m in sms_outbox] == [german_owner.phone]
