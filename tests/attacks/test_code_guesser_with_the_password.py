"""The holder of a leaked password who guesses the second proof of /recover/lost-2fa/.

The password alone starts an attempt; the second proof is a 6-digit code to the email or
phone on file, which the guesser does not receive. Each code takes 5 guesses, and the code
checks were limited per address only: from many addresses, with a new attempt (and codes
to the victim's inbox) every few minutes, the guesses per hour grew with the number of
addresses. They are bounded per account now, whatever the addresses, and so are the codes
that land in the victim's inbox.
"""

from __future__ import annotations

import re

import pytest

from tests.factories import PASSWORD
from tests.recovery.self_service_helpers import (
    ACCOUNT_EMAIL,
    ACCOUNT_PHONE,
    browser,
    customer_account,
    lost_2fa,
)

pytestmark = pytest.mark.django_db
CODE_MAIL = re.compile(r"recover your account is \d{6}\.")
NOT_RIGHT = "This code is not right"


def test_guesses_at_the_emailed_code_are_bounded_per_account(capture, mailoutbox):
    customer_account()
    checked = limited = 0
    for n in range(8):
        guesser = lost_2fa(capture, browser(ip=f"203.0.113.{140 + n}", user_agent="Guess/1"))
        identifier = ACCOUNT_EMAIL if n % 2 else ACCOUNT_PHONE
        assert guesser.start(identifier=identifier, password=PASSWORD).status_code == 302
        guesser.send("email")
        for guess in range(5):
            answer = guesser.verify("email", f"{(n * 5 + guess) * 7919 % 1_000_000:06d}")
            if answer.status_code == 429:
                limited += 1
            elif NOT_RIGHT in answer.content.decode():
                checked += 1
    assert checked <= 10
    assert checked + limited == 40
    codes_mailed = [m for m in mailoutbox if m.to == [ACCOUNT_EMAIL] and CODE_MAIL.search(m.body)]
    assert len(codes_mailed) <= 3
