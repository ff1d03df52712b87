"""The stranger who asks /recover/new-email/ which addresses have an account.

They hold an account of their own (its password and its phone) and a list of email
addresses. For each address they start a move of their own account to it: the start page
refused an address another account uses ("That address cannot be used") and accepted one
nobody has, so every try told them whether the address has an account here, with no code
to prove and nothing sent to the address. The start now answers alike; an address in use
is refused only once its code is proven, that is to whoever reads its inbox.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.models import User
from recovery.models import SelfServiceRecovery
from tests.factories import PASSWORD
from tests.recovery.self_service_helpers import (
    ACCOUNT_EMAIL,
    ACCOUNT_PHONE,
    CODE_IN_EMAIL,
    CODE_IN_SMS,
    browser,
    comparable,
    customer_account,
    last_code,
    new_email,
)

pytestmark = pytest.mark.django_db

# Both read j***e@e***.org masked, as the page shows them.
VICTIMS_EMAIL = "jane.doe@example.org"
NOBODYS_EMAIL = "jade.joe@example.org"


def _probe(capture, address: str, n: int) -> tuple:
    """What the stranger sees when they start a move of their own account to `address`."""
    path = new_email(capture, browser(ip=f"198.51.100.{n}"))
    started = path.start(identifier=ACCOUNT_EMAIL, password=PASSWORD, new_email=address)
    page = path.get()
    shown = comparable(page.content).replace(address.encode(), b"ADDRESS")
    path.post("restart")
    return started.status_code, started.get("Location"), page.status_code, shown


def test_starting_a_move_to_an_address_in_use_reads_as_one_to_a_free_address(capture):
    customer_account()
    customer_account(email=VICTIMS_EMAIL, phone="+4915100000777")

    assert _probe(capture, VICTIMS_EMAIL, 1) == _probe(capture, NOBODYS_EMAIL, 2)


def test_an_address_in_use_is_refused_once_its_code_is_proven_and_nothing_changes(
    capture, sms_outbox, mailoutbox
):
    """Whoever reads the inbox of the address in use learns it cannot be used; the move
    ends there, with a true page, and no wait starts."""
    user, _codes = customer_account()
    customer_account(email=VICTIMS_EMAIL, phone="+4915100000777")
    path = new_email(capture)
    assert (
        path.start(identifier=ACCOUNT_EMAIL, password=PASSWORD, new_email=VICTIMS_EMAIL).status_code
        == 302
    )
    path.verify("phone", last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS))
    proven = path.verify(
        "new_email", last_code(mailoutbox, to=[VICTIMS_EMAIL], pattern=CODE_IN_EMAIL)
    )

    assert proven.status_code == 302
    assert path.attempt.status == SelfServiceRecovery.Status.CANCELLED
    assert path.attempt.wait_ends_at is None
    page = path.get().content.decode()
    assert "already belongs to another account" in page
    assert "Someone stopped it" not in page
    assert User.objects.get(pk=user.pk).email == ACCOUNT_EMAIL


def test_an_address_taken_during_the_wait_is_named_as_the_reason_on_the_page(
    capture, sms_outbox, mailoutbox
):
    """The move ends when the address was taken during the wait; the page said someone
    stopped it with a link sent to a contact on file and that support would call, neither
    of which happened."""
    customer_account()
    path = new_email(capture)
    path.start(identifier=ACCOUNT_EMAIL, password=PASSWORD, new_email=NOBODYS_EMAIL)
    path.verify("phone", last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS))
    path.verify("new_email", last_code(mailoutbox, to=[NOBODYS_EMAIL], pattern=CODE_IN_EMAIL))
    assert path.attempt.status == SelfServiceRecovery.Status.WAITING
    customer_account(email=NOBODYS_EMAIL, phone="+4915100000888")

    with time_machine.travel(timezone.now() + timedelta(hours=73), tick=False):
        page = path.get().content.decode()

    assert path.attempt.status == SelfServiceRecovery.Status.CANCELLED
    assert "already belongs to another account" in page
    assert "Someone stopped it" not in page
