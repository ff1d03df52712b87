"""The stranger who uses the sign-up form to flood the victim's phone with texts.

The stranger knows the victim's phone number. Sign-up refuses a number another account
holds without saying so on screen, and texts its holder that an account already exists
(with the masked login email). The form was limited only per IP address (allauth's 20 a
minute), so each sign-up naming the victim's number, with any new email, was one more
text: a stranger with a few addresses sent the victim hundreds an hour, outside the
number's own limit and the country's SMS budget that /recover/email/ and the help form
keep. The texts now count against the number like those of /recover/email/, for every
number alike, and the page answers as for any sign-up whatever the count.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

VICTIMS_PHONE = "+4915123456789"
CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')


def _sign_up(capture, *, n: int, phone: str) -> tuple[int, str, bytes]:
    client = Client(REMOTE_ADDR=f"203.0.113.{n}")
    email = f"stranger.{n}@example.net"
    with capture():
        response = client.post(
            reverse("account_signup"),
            {
                "email": email,
                "phone": phone,
                "password1": "a-long-enough-passphrase",
                "password2": "a-long-enough-passphrase",
            },
        )
    page = client.get(response["Location"]) if response.status_code == 302 else response
    body = CSRF.sub(b"", page.content).replace(email.encode(), b"E")
    return response.status_code, response.get("Location", ""), body


def test_sign_ups_naming_the_victims_number_text_it_at_most_three_times_an_hour(
    capture, sms_outbox
):
    """Six sign-ups from six addresses with the victim's number: three texts reach the
    victim; every sign-up answers as one with a number nobody has."""
    UserFactory.create(email="john@gmail.com", phone=VICTIMS_PHONE)

    taken = [_sign_up(capture, n=n, phone=VICTIMS_PHONE) for n in range(1, 7)]
    # Numbers nobody has, one each (a sign-up with one makes it taken).
    fresh = [_sign_up(capture, n=n, phone=f"+49151000000{n}") for n in range(11, 17)]

    assert len([m for m in sms_outbox if m.to == VICTIMS_PHONE]) == 3
    assert taken == fresh
    assert {status for status, _location, _body in taken} == {302}
