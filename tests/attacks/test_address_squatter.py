"""The squatter who signs up with the address a scheduled login-email change moves to.

The squatter knows (or guesses) the new address of a change support approved and signs up
with it on the public sign-up page during the waiting period. They must not be able to
stop every other customer's change: the beat task that applies due changes meets the
taken address, ends that one change in words, and goes on with the others.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from support.models import CaseEvent, EmailChange
from support.services.actions import email_changes_apply_due
from tests.attacks.test_frozen_owner import ATTACKER_INBOX, _approved_change_to_the_attackers_inbox
from tests.factories import UserFactory
from tests.support.conftest import ACCOUNT_EMAIL

pytestmark = pytest.mark.django_db


def test_a_taken_address_ends_its_own_change_and_no_other(
    account, agent, supervisor, capture, sms_outbox, mailoutbox
):
    """The squatter's sign-up takes the address; when the wait is over the squatted change
    is cancelled (the account keeps its login email, the requester's page says so), and
    another customer's change due at the same time applies."""
    squatted = _approved_change_to_the_attackers_inbox(
        agent=agent,
        supervisor=supervisor,
        capture=capture,
        sms_outbox=sms_outbox,
        mailoutbox=mailoutbox,
    )
    neighbour = UserFactory.create(email="neighbour@example.org", phone="+4915100000077")
    other = EmailChange.objects.create(
        case=squatted.case,
        requester=squatted.requester,
        user=neighbour,
        new_email="neighbour.new@example.org",
        requested_by=agent,
        status=EmailChange.Status.WAITING_PERIOD,
        effective_at=squatted.effective_at,
    )

    squatter = Client(REMOTE_ADDR="203.0.113.93")
    signed_up = squatter.post(
        reverse("account_signup"),
        {
            "email": ATTACKER_INBOX,
            "phone": "0151 99988877",
            "password1": "a-long-enough-passphrase",
            "password2": "a-long-enough-passphrase",
        },
    )
    assert signed_up.status_code == 302
    assert User.objects.filter(email=ATTACKER_INBOX).exists()

    with time_machine.travel(timezone.now() + timedelta(days=2), tick=False):
        assert email_changes_apply_due() == 1
    assert User.objects.get(pk=account.pk).email == ACCOUNT_EMAIL
    assert User.objects.get(pk=neighbour.pk).email == "neighbour.new@example.org"
    squatted.refresh_from_db()
    other.refresh_from_db()
    assert squatted.status == EmailChange.Status.CANCELLED
    assert other.status == EmailChange.Status.APPLIED
    assert CaseEvent.objects.filter(
        case=squatted.requester,
        type=CaseEvent.Type.EMAIL_CHANGE_CANCELLED,
        details__email_change_id=squatted.pk,
    ).exists()
