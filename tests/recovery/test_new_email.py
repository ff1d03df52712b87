"""/recover/new-email/: password + a code to the phone on file + a code to the new address,
a 72-hour wait the old address and the phone can stop, then the new login email and a hold."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from allauth.account.models import EmailAddress
from django.urls import reverse
from django.utils import timezone

from accounts.models import SecurityEvent, User
from accounts.services.audit import AuditContext, security_event_record
from recovery.models import SelfServiceRecovery
from recovery.self_service import self_service_apply_due
from tests.factories import PASSWORD
from tests.recovery.self_service_helpers import (
    ACCOUNT_EMAIL,
    ACCOUNT_PHONE,
    CODE_IN_EMAIL,
    CODE_IN_SMS,
    NEW_EMAIL,
    cancel,
    cancel_token,
    comparable,
    customer_account,
    last_code,
    new_email,
    other_code,
)

pytestmark = pytest.mark.django_db

Status = SelfServiceRecovery.Status


@pytest.fixture
def customer():
    return customer_account()


def prove_both(path, sms_outbox, mailoutbox, *, identifier: str = ACCOUNT_EMAIL) -> None:
    """The password; then the codes that went to the phone on file and the new address."""
    started = path.start(identifier=identifier, password=PASSWORD, new_email=NEW_EMAIL)
    assert started.status_code == 302, started.content
    phone_code = last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS)
    email_code = last_code(mailoutbox, to=[NEW_EMAIL], pattern=CODE_IN_EMAIL)
    assert path.verify("phone", phone_code).status_code == 302
    assert path.attempt.status == Status.PROVING, "one code is not enough"
    assert path.verify("new_email", email_code).status_code == 302


def test_three_proofs_start_a_72_hour_wait_the_old_address_and_the_phone_can_stop(
    customer, capture, sms_outbox, mailoutbox
):
    path = new_email(capture)
    prove_both(path, sms_outbox, mailoutbox)
    attempt = path.attempt
    assert attempt.status == Status.WAITING and attempt.wait_hours == 72
    assert sorted(p["method"] for p in attempt.proofs) == [
        "new_email_code",
        "password",
        "phone_code",
    ]
    assert cancel_token(mailoutbox, to=[ACCOUNT_EMAIL])
    assert cancel_token(sms_outbox, to=ACCOUNT_PHONE)
    assert not any("/recover/stop/" in m.body for m in mailoutbox if m.to == [NEW_EMAIL])
    page = path.get().content.decode()
    assert "Waiting period until" in page and "h***n@e***.net" in page
    assert User.objects.get(pk=customer[0].pk).email == ACCOUNT_EMAIL


def test_after_the_wait_the_sweep_makes_the_new_address_the_login_and_holds_the_account(
    customer, capture, sms_outbox, mailoutbox, settings
):
    """allauth's address follows the login email; old address, new address and phone are
    told; the account is on the email-change hold; the customer signs in with the new one."""
    user, _codes = customer
    path = new_email(capture)
    prove_both(path, sms_outbox, mailoutbox)
    assert self_service_apply_due() == 0
    with time_machine.travel(timezone.now() + timedelta(hours=72, minutes=1), tick=False):
        mailoutbox.clear()
        sms_outbox.clear()
        with capture():
            assert self_service_apply_due() == 1
        user.refresh_from_db()
        assert user.email == NEW_EMAIL
        assert list(
            EmailAddress.objects.filter(user=user).values_list("email", "primary", "verified")
        ) == [(NEW_EMAIL, True, True)]
        assert user.security_hold_until >= timezone.now() + timedelta(
            hours=settings.SECURITY_HOLD_HOURS_EMAIL_CHANGE - 1
        )
        assert {m.to[0] for m in mailoutbox} == {ACCOUNT_EMAIL, NEW_EMAIL}
        assert [m.to for m in sms_outbox] == [ACCOUNT_PHONE]
        assert path.attempt.status == Status.COMPLETED
        assert "Done: your account now signs in with" in path.get().content.decode()
        assert self_service_apply_due() == 0
    signed_in = path.client.post(
        reverse("account_login"), {"login": NEW_EMAIL, "password": PASSWORD}
    )
    assert signed_in.status_code == 302


def test_a_visit_after_the_wait_applies_the_change_without_the_sweep(
    customer, capture, sms_outbox, mailoutbox
):
    path = new_email(capture)
    prove_both(path, sms_outbox, mailoutbox, identifier="+49 151 98765432")
    with time_machine.travel(timezone.now() + timedelta(hours=73), tick=False), capture():
        page = path.get()
    assert "Done: your account now signs in with" in page.content.decode()
    assert User.objects.get(pk=customer[0].pk).email == NEW_EMAIL


@pytest.mark.parametrize("contact", ["old_email", "phone"])
def test_the_old_address_or_the_phone_stops_the_change(
    customer, capture, sms_outbox, mailoutbox, contact
):
    user, _codes = customer
    path = new_email(capture)
    prove_both(path, sms_outbox, mailoutbox)
    token = (
        cancel_token(mailoutbox, to=[ACCOUNT_EMAIL])
        if contact == "old_email"
        else cancel_token(sms_outbox, to=ACCOUNT_PHONE)
    )
    assert cancel(token, capture).status_code == 200
    attempt = path.attempt
    assert attempt.status == Status.CANCELLED and attempt.case is not None
    with time_machine.travel(timezone.now() + timedelta(days=4), tick=False):
        assert self_service_apply_due() == 0
        assert "This recovery was stopped." in path.get().content.decode()
    user.refresh_from_db()
    assert user.email == ACCOUNT_EMAIL and user.on_security_hold
    assert EmailAddress.objects.get(user=user).email == ACCOUNT_EMAIL


def test_wrong_codes_prove_nothing(customer, capture, sms_outbox, mailoutbox):
    path = new_email(capture)
    path.start(identifier=ACCOUNT_EMAIL, password=PASSWORD, new_email=NEW_EMAIL)
    phone_code = last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS)
    email_code = last_code(mailoutbox, to=[NEW_EMAIL], pattern=CODE_IN_EMAIL)
    assert path.verify("phone", email_code).status_code == 400
    assert path.verify("new_email", phone_code).status_code == 400
    assert path.verify("new_email", other_code(email_code)).status_code == 400
    # The email on file is not a channel of this path.
    assert path.verify("email", email_code).status_code == 400
    assert path.attempt.status == Status.PROVING and len(path.attempt.proofs) == 1


def test_expired_codes_are_refused(customer, capture, sms_outbox, mailoutbox):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        path = new_email(capture)
        path.start(identifier=ACCOUNT_EMAIL, password=PASSWORD, new_email=NEW_EMAIL)
        phone_code = last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS)
        clock.shift(timedelta(minutes=11))
        assert "expired" in path.verify("phone", phone_code).content.decode()
        # A new code works.
        path.send("phone")
        fresh = last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS)
        assert path.verify("phone", fresh).status_code == 302


def test_an_account_without_a_phone_cannot_take_this_path(capture, mailoutbox):
    customer_account(phone=None)
    response = new_email(capture).start(
        identifier=ACCOUNT_EMAIL, password=PASSWORD, new_email=NEW_EMAIL
    )
    assert response.status_code == 409
    assert "no phone number on file" in response.content.decode()
    assert not SelfServiceRecovery.objects.exists() and mailoutbox == []


def test_the_accounts_own_address_cannot_become_its_new_login_email(capture):
    customer_account()
    response = new_email(capture).start(
        identifier=ACCOUNT_EMAIL, password=PASSWORD, new_email=ACCOUNT_EMAIL
    )
    assert response.status_code == 409
    assert not SelfServiceRecovery.objects.exists()


def test_an_address_of_another_account_cannot_become_the_login_email(
    capture, sms_outbox, mailoutbox
):
    """Refused once the address's code is proven (the start answers as for a free address,
    tests/attacks/test_new_email_prober.py): the attempt ends and no wait starts."""
    user, _codes = customer_account()
    customer_account(email="someone.else@example.org", phone="+4915100000777")
    path = new_email(capture)
    started = path.start(
        identifier=ACCOUNT_EMAIL, password=PASSWORD, new_email="someone.else@example.org"
    )
    assert started.status_code == 302
    path.verify("phone", last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS))
    email_code = last_code(mailoutbox, to=["someone.else@example.org"], pattern=CODE_IN_EMAIL)
    assert path.verify("new_email", email_code).status_code == 302
    assert path.attempt.status == Status.CANCELLED
    assert path.attempt.wait_ends_at is None
    assert User.objects.get(pk=user.pk).email == ACCOUNT_EMAIL


def test_an_address_taken_during_the_wait_ends_the_attempt(
    customer, capture, sms_outbox, mailoutbox
):
    path = new_email(capture)
    prove_both(path, sms_outbox, mailoutbox)
    customer_account(email=NEW_EMAIL, phone="+4915100000888")
    with time_machine.travel(timezone.now() + timedelta(hours=73), tick=False):
        assert self_service_apply_due() == 0
    assert path.attempt.status == Status.CANCELLED
    assert User.objects.get(pk=customer[0].pk).email == ACCOUNT_EMAIL


def test_a_hold_begun_during_the_wait_postpones_the_change(
    customer, capture, sms_outbox, mailoutbox
):
    user, _codes = customer
    path = new_email(capture)
    prove_both(path, sms_outbox, mailoutbox)
    later = timezone.now() + timedelta(hours=73)
    User.objects.filter(pk=user.pk).update(security_hold_until=later + timedelta(hours=5))
    with time_machine.travel(later, tick=False):
        assert self_service_apply_due() == 0
        assert "on a security hold until" in path.get().content.decode()
    with time_machine.travel(later + timedelta(hours=6), tick=False):
        assert self_service_apply_due() == 1


def test_a_recent_phone_change_makes_the_wait_longer(customer, capture, sms_outbox, mailoutbox):
    security_event_record(
        user=customer[0], type=SecurityEvent.Type.PHONE_CHANGED, context=AuditContext()
    )
    path = new_email(capture)
    prove_both(path, sms_outbox, mailoutbox)
    assert path.attempt.wait_hours == 96
    assert path.attempt.risk_factors == ["recent_change"]


def test_a_wrong_password_and_an_unknown_account_answer_alike(customer, client, nothing_written):
    answers = []
    for identifier in (ACCOUNT_EMAIL, "nobody@example.org"):
        with nothing_written():
            response = client.post(
                reverse("recover_new_email"),
                {
                    "action": "start",
                    "identifier": identifier,
                    "password": "not-the-password",
                    "new_email": NEW_EMAIL,
                },
            )
        assert response.status_code == 400
        answers.append(comparable(response.content).replace(identifier.encode(), b"ID"))
    assert answers[0] == answers[1]
