"""Attackers at the self-service paths (/recover/lost-2fa/, /recover/new-email/).

- The stranger knows the victim's phone number (from a leak) and nothing else.
- The SIM swapper receives every text to the victim's phone, but has no password.
- The inbox thief reads the victim's login email, but has no password.
- The phisher has the password *and* the SIM: two methods. The wait, announced to every
  contact on file, is what stops them.
- A customer (or a script) confirming twice at the same instant gets one success.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts.models import BackupCode, SecurityEvent, User
from accounts.services.audit import AuditContext
from accounts.services.tokens import CodeCheck
from recovery.models import SelfServiceCancelLink, SelfServiceRecovery
from recovery.self_service import (
    lost_factor_reset,
    self_service_code_send,
    self_service_code_verify,
    self_service_start,
)
from tests.factories import PASSWORD
from tests.recovery.self_service_helpers import (
    ACCOUNT_EMAIL,
    ACCOUNT_PHONE,
    CODE_IN_EMAIL,
    CODE_IN_SMS,
    browser,
    cancel,
    cancel_token,
    comparable,
    customer_account,
    last_code,
    lost_2fa,
    new_email,
)

Status = SelfServiceRecovery.Status
GUESSES = ["123456789012", "hunter2hunter2", "Passwort123!"]
ATTACKER_INBOX = "new.owner@example.net"


@pytest.fixture
def victim(db):
    return customer_account()


def untouched(user: User) -> None:
    user.refresh_from_db()
    assert user.email == ACCOUNT_EMAIL and not user.reenrolment_required
    assert user.security_hold_until is None
    assert not SelfServiceRecovery.objects.filter(status=Status.WAITING).exists()


@pytest.mark.django_db
def test_the_stranger_with_the_victims_number_learns_nothing_and_sends_nothing(
    victim, capture, sms_outbox, mailoutbox
):
    """Guessed passwords and backup codes, with the victim's number as the identifier: the
    same answer as for a number nobody has; no text, no email, no attempt."""
    user, _codes = victim
    answers = set()
    for number, guess in [(ACCOUNT_PHONE, g) for g in GUESSES[:2]] + [("+4915100000042", "x" * 12)]:
        response = new_email(capture, browser(ip="203.0.113.66")).start(
            identifier=number, password=guess, new_email=ATTACKER_INBOX
        )
        assert response.status_code == 400
        answers.add(comparable(response.content).replace(number.encode(), b"N"))
        backup = lost_2fa(capture, browser(ip="203.0.113.67")).start(
            identifier=number, backup_code="AAAA-BBBB-CCCC-DDDD"
        )
        assert backup.status_code == 400
    assert len(answers) == 1
    assert sms_outbox == [] and mailoutbox == []
    assert BackupCode.objects.filter(device__user=user).count() == 10
    assert not SelfServiceRecovery.objects.exists()
    untouched(user)


@pytest.mark.django_db
def test_the_sim_swapper_cannot_start_and_cannot_use_the_owners_code(victim, capture, sms_outbox):
    """Without the password no code is ever sent. A code the owner asked for reaches the
    swapped SIM, but it proves nothing in the swapper's own browser: the attempt belongs
    to the owner's session."""
    user, _codes = victim
    swapper = lost_2fa(capture, browser(ip="203.0.113.70", user_agent="SwapperPhone/1"))
    assert swapper.start(identifier=ACCOUNT_PHONE, password="guess-guess-1").status_code == 400
    assert sms_outbox == []

    owner = lost_2fa(capture)
    owner.start(identifier=ACCOUNT_EMAIL, password=PASSWORD)
    owner.send("phone")
    stolen = last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS)
    assert swapper.verify("phone", stolen).status_code == 302
    assert owner.attempt.status == Status.PROVING and len(owner.attempt.proofs) == 1
    # Nor a new login email: that needs the password too.
    grab = new_email(capture, swapper.client).start(
        identifier=ACCOUNT_PHONE, password="guess-guess-2", new_email=ATTACKER_INBOX
    )
    assert grab.status_code == 400
    untouched(user)


@pytest.mark.django_db
def test_the_inbox_thief_cannot_start_and_can_only_stop_the_owner(
    victim, capture, sms_outbox, mailoutbox
):
    """The login email's codes and cancel links reach the thief. Without the password they
    start nothing; the one thing the owner's cancel link lets them do is stop a recovery,
    which changes nothing and brings in an agent."""
    user, _codes = victim
    thief = lost_2fa(capture, browser(ip="203.0.113.80", user_agent="ThiefMail/2"))
    assert thief.start(identifier=ACCOUNT_EMAIL, password="guess-guess-3").status_code == 400

    owner = lost_2fa(capture)
    owner.start(identifier=ACCOUNT_EMAIL, password=PASSWORD)
    owner.send("phone")
    owner.verify("phone", last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS))
    assert owner.attempt.status == Status.WAITING
    assert cancel(cancel_token(mailoutbox, to=[ACCOUNT_EMAIL]), capture).status_code == 200
    attempt = owner.attempt
    assert attempt.status == Status.CANCELLED and attempt.case is not None
    user.refresh_from_db()
    assert user.email == ACCOUNT_EMAIL and not user.reenrolment_required


@pytest.mark.django_db
def test_the_phisher_with_password_and_sim_is_stopped_by_the_owners_inbox(
    victim, capture, sms_outbox, mailoutbox
):
    """Two methods held by one attacker start the wait, but every contact on file hears of
    it at once; the owner stops it from their inbox, and the account never changes."""
    user, _codes = victim
    phisher = new_email(capture, browser(ip="203.0.113.90", user_agent="Phish/3"))
    assert (
        phisher.start(
            identifier=ACCOUNT_PHONE, password=PASSWORD, new_email=ATTACKER_INBOX
        ).status_code
        == 302
    )
    assert "password of your account" in mailoutbox[0].body and mailoutbox[0].to == [ACCOUNT_EMAIL]
    phisher.verify("phone", last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS))
    phisher.verify("new_email", last_code(mailoutbox, to=[ATTACKER_INBOX], pattern=CODE_IN_EMAIL))
    attempt = phisher.attempt
    assert attempt.status == Status.WAITING
    # A never-seen device and network: the longest wait.
    assert attempt.wait_hours == 72 + 48
    assert cancel(cancel_token(mailoutbox, to=[ACCOUNT_EMAIL]), capture).status_code == 200
    attempt.refresh_from_db()
    assert attempt.status == Status.CANCELLED
    user.refresh_from_db()
    assert user.email == ACCOUNT_EMAIL and user.on_security_hold
    assert phisher.get().status_code == 200
    assert "This recovery was stopped." in phisher.get().content.decode()


def _at_once(*calls):
    """Run the calls in threads released together; each thread has its own connection."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:  # the refusal of the loser is a result too
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_two_confirmations_at_once_give_one_success(sms_outbox):
    """The same right code sent twice at the same instant: one proof, one wait, one set of
    cancel links and notices. Then two "set up my authenticator" at once: one reset."""
    user, _codes = customer_account()
    context = AuditContext(ip_address="198.51.100.7", user_agent="x")
    started = self_service_start(
        kind="lost_factor", identifier=ACCOUNT_EMAIL, password=PASSWORD, context=context
    )
    assert started is not None
    attempt = started.attempt
    self_service_code_send(attempt=attempt, channel="phone", context=AuditContext())
    code = last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS)

    results = _at_once(
        lambda: self_service_code_verify(
            attempt=attempt, channel="phone", code=code, context=context
        ),
        lambda: self_service_code_verify(
            attempt=attempt, channel="phone", code=code, context=context
        ),
    )
    assert sorted(r.value for r in results) == [CodeCheck.NONE.value, CodeCheck.OK.value]
    attempt.refresh_from_db()
    assert attempt.status == Status.WAITING
    assert SelfServiceCancelLink.objects.filter(attempt=attempt).count() == 2
    assert (
        SecurityEvent.objects.filter(account_id=user.pk, type="self_service_wait_started").count()
        == 1
    )

    SelfServiceRecovery.objects.filter(pk=attempt.pk).update(
        wait_ends_at=timezone.now() - timedelta(minutes=1)
    )
    resets = _at_once(
        lambda: lost_factor_reset(attempt=attempt, context=context),
        lambda: lost_factor_reset(attempt=attempt, context=context),
    )
    assert sum(isinstance(r, User) for r in resets) == 1
    assert resets.count(None) == 1
    assert SecurityEvent.objects.filter(account_id=user.pk, type="two_factor_revoked").count() == 1


@pytest.mark.django_db
def test_a_second_browser_cannot_finish_the_owners_attempt(victim, capture, sms_outbox):
    """Even with the wait over, "set up my authenticator" acts only for the session that
    proved the methods."""
    owner = lost_2fa(capture)
    owner.start(identifier=ACCOUNT_EMAIL, password=PASSWORD)
    owner.send("phone")
    owner.verify("phone", last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS))
    SelfServiceRecovery.objects.update(wait_ends_at=timezone.now() - timedelta(minutes=1))
    other = lost_2fa(capture, browser(ip="203.0.113.99"))
    assert other.finish().status_code == 302
    assert other.client.get(reverse("recover_lost_2fa_setup"))["Location"] == reverse(
        "recover_lost_2fa"
    )
    assert owner.attempt.status == Status.WAITING


@pytest.mark.django_db
def test_a_frozen_account_takes_no_more_codes_and_starts_no_wait(
    victim, capture, sms_outbox, mailoutbox
):
    """The phisher with password and SIM started; the owner, warned by the start notice,
    freezes the account. The phisher's code that arrived before the freeze starts no wait,
    and no new code goes out: the frozen page, and nothing written."""
    user, _codes = victim
    phisher = lost_2fa(capture, browser(ip="203.0.113.91", user_agent="Phish/4"))
    assert phisher.start(identifier=ACCOUNT_PHONE, password=PASSWORD).status_code == 302
    phisher.send("phone")
    code = last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS)
    User.objects.filter(pk=user.pk).update(frozen_at=timezone.now())
    texts_before, events_before = len(sms_outbox), SecurityEvent.objects.count()

    assert phisher.send("phone").status_code == 403
    assert phisher.verify("phone", code).status_code == 403
    assert len(sms_outbox) == texts_before
    assert SecurityEvent.objects.count() == events_before
    attempt = phisher.attempt
    assert attempt.status == Status.PROVING and attempt.wait_ends_at is None
    assert not SelfServiceCancelLink.objects.filter(attempt=attempt).exists()
