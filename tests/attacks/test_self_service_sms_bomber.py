"""The holder of a leaked password who uses the self-service pages to flood the victim's phone.

With the password alone (no SIM) they cannot finish any recovery, but every attempt of
/recover/lost-2fa/ offers "send a code to the phone on file" (3 every 10 minutes per
attempt), and every start of /recover/new-email/ texts a code to that phone at once. From
a few addresses that was dozens of texts an hour, outside the number's own hourly limit
and the country's SMS budget that every other form that texts a number counts. The codes
count against them too now; over the limit the page says so and no code goes out.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from tests.factories import PASSWORD
from tests.recovery.self_service_helpers import (
    ACCOUNT_EMAIL,
    ACCOUNT_PHONE,
    browser,
    customer_account,
    lost_2fa,
    new_email,
)

pytestmark = pytest.mark.django_db
CODE_TEXT = re.compile(r"recovery code: \d{6}\.")


def codes_to_victim(sms_outbox: list) -> int:
    return len([m for m in sms_outbox if m.to == ACCOUNT_PHONE and CODE_TEXT.search(m.body)])


def test_the_password_alone_texts_the_victim_at_most_three_codes_an_hour(capture, sms_outbox):
    customer_account()
    start = timezone.now()
    answers = []
    for minutes, ip in ((0, "203.0.113.101"), (11, "203.0.113.102"), (22, "203.0.113.103")):
        with time_machine.travel(start + timedelta(minutes=minutes), tick=False):
            page = lost_2fa(capture, browser(ip=ip, user_agent="Bomber/1"))
            assert page.start(identifier=ACCOUNT_EMAIL, password=PASSWORD).status_code == 302
            answers += [page.send("phone").status_code for _ in range(3)]
    assert codes_to_victim(sms_outbox) == 3
    assert answers.count(429) == 6


def test_starts_of_a_move_to_a_new_email_text_at_most_three_codes_an_hour(capture, sms_outbox):
    customer_account()
    start = timezone.now()
    for minutes, ip in enumerate(["203.0.113.111", "203.0.113.112", "203.0.113.113"] * 2):
        with time_machine.travel(start + timedelta(minutes=minutes), tick=False):
            page = new_email(capture, browser(ip=ip, user_agent="Bomber/2"))
            started = page.start(
                identifier=ACCOUNT_EMAIL if minutes % 2 else ACCOUNT_PHONE,
                password=PASSWORD,
                new_email=f"bomb{minutes}@example.net",
            )
            assert started.status_code in (302, 429)
    assert codes_to_victim(sms_outbox) == 3
