"""The stranger who uses the help form to flood the victim's phone with texts.

The stranger knows the victim's phone number. Every help request that names it with some
other email address is the wrong-email case: triage texts the login-email hint to that
phone. /recover/email/ sends the same hint at most 3 times an hour per number, but the
help form counted only requests per IP address, so a stranger with a few addresses (or a
botnet paying per SMS) sent the victim as many texts as they liked. The help form counts
the number too, the same for every number, so its answers still tell nothing.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.support.conftest import ACCOUNT_PHONE

pytestmark = pytest.mark.django_db

NOBODYS_PHONE = "+4915100000042"


def _ask(capture, *, ip: str, phone: str):
    client = Client(REMOTE_ADDR=ip)
    with capture():
        return client.post(
            reverse("recover_help"),
            {
                "contact_email": f"someone.{ip.rsplit('.', 1)[1]}@example.net",
                "contact_phone": phone,
                "emails_tried": "",
                "description": "I cannot sign in any more.",
            },
        )


def test_the_victims_phone_gets_at_most_three_hints_an_hour_from_the_help_form(
    account, capture, sms_outbox
):
    """Six requests from six addresses: the first three are answered (and text the
    victim), the others get the 429 page; a number nobody has is counted the same way."""
    answers = [_ask(capture, ip=f"203.0.113.{n}", phone=ACCOUNT_PHONE) for n in range(1, 7)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429, 429]
    assert "Retry-After" in answers[-1]
    assert len([m for m in sms_outbox if m.to == ACCOUNT_PHONE]) == 3

    unknown = [_ask(capture, ip=f"198.51.100.{n}", phone=NOBODYS_PHONE) for n in range(1, 7)]
    assert [a.status_code for a in unknown] == [200, 200, 200, 429, 429, 429]


def test_a_request_without_a_phone_is_not_counted_by_number(account, capture):
    """Requests that name no phone are limited per address only, as before."""
    answers = [_ask(capture, ip=f"192.0.2.{n}", phone="") for n in range(1, 6)]
    assert all(a.status_code == 200 for a in answers)
