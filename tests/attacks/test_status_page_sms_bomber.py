"""The stranger who uses a help request's "send a code to my phone" to flood the victim.

The stranger knows the victim's email address only. A help request naming it matches the
victim's account, and its status page offers "send a code to the phone on file": the code
goes to the victim's phone. That button was limited per request (3 every 10 minutes), so
one request sent the victim about 18 texts an hour, outside the number's own hourly limit
and the country's SMS budget that every other form that texts a number counts. It counts
them too now; over the limit the page answers as always and the text is not sent.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from support.models import CaseEvent
from tests.attacks.helpers import open_request
from tests.support.conftest import ACCOUNT_EMAIL, ACCOUNT_PHONE

pytestmark = pytest.mark.django_db


def test_one_request_texts_the_victim_at_most_three_times_an_hour(account, capture, sms_outbox):
    stranger = open_request(capture=capture, contact_email=ACCOUNT_EMAIL)
    sms_outbox.clear()
    start = timezone.now()
    answers = []
    # The per-request limit (3 every 10 minutes) and the address's (5 an hour) let 5 through.
    for minutes, presses in ((0, 3), (11, 2)):
        with time_machine.travel(start + timedelta(minutes=minutes), tick=False):
            answers += [stranger.post("send_phone_code") for _ in range(presses)]

    assert [a.status_code for a in answers] == [302] * 5
    assert len([m for m in sms_outbox if m.to == ACCOUNT_PHONE]) == 3
    sent = stranger.request.events.filter(type=CaseEvent.Type.CODE_SENT)
    assert sent.count() == 5
    assert sent.filter(details__delivered=False).count() == 2
