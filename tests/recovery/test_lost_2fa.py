"""/recover/lost-2fa/: two proofs, a risk-scaled wait every contact can stop, a new
authenticator, then the hold."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import BackupCode, RevocationCampaign, SecurityEvent, User
from accounts.services.audit import AuditContext, security_event_record
from recovery.models import SelfServiceCancelLink, SelfServiceRecovery
from support.models import CaseEvent, CasePriority, RecoveryCase
from tests.factories import PASSWORD, totp_code
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
    other_code,
)

pytestmark = pytest.mark.django_db

Status = SelfServiceRecovery.Status
BACKUP_CODE = re.compile(r"<code>((?:[0-9A-HJKMNP-TV-Z]{4}-){3}[0-9A-HJKMNP-TV-Z]{4})</code>")
BAD_DETAILS = "These details do not match an account."


@pytest.fixture
def customer():
    return customer_account()


def prove_two(path, sms_outbox, *, first: dict | None = None) -> None:
    """Password (or what `first` gives) and a code texted to the phone on file."""
    started = path.start(**(first or {"identifier": ACCOUNT_EMAIL, "password": PASSWORD}))
    assert started.status_code == 302, started.content
    assert path.send("phone").status_code == 302
    code = last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS)
    assert path.verify("phone", code).status_code == 302


def test_password_and_phone_code_start_a_24_hour_wait_every_contact_can_stop(
    customer, capture, sms_outbox, mailoutbox
):
    """Both proofs start the default wait; the login email and the phone each get a notice
    with a cancel link of their own, and the page shows the countdown and what comes next."""
    path = lost_2fa(capture)
    page = path.get()
    assert page.status_code == 200 and 'data-state="start"' in page.content.decode()
    prove_two(path, sms_outbox)

    attempt = path.attempt
    assert attempt.status == Status.WAITING
    assert attempt.wait_hours == 24 and attempt.risk_factors == []
    assert attempt.wait_ends_at is not None
    assert abs(attempt.wait_ends_at - (timezone.now() + timedelta(hours=24))) < timedelta(minutes=1)
    assert [p["method"] for p in attempt.proofs] == ["password", "phone_code"]
    links = SelfServiceCancelLink.objects.filter(attempt=attempt)
    assert sorted(links.values_list("channel", flat=True)) == ["email", "sms"]
    assert all(len(link.token_hash) == 64 for link in links)
    email_token = cancel_token(mailoutbox, to=[ACCOUNT_EMAIL])
    sms_token = cancel_token(sms_outbox, to=ACCOUNT_PHONE)
    assert email_token != sms_token and len(email_token) >= 43
    assert not links.filter(token_hash=email_token).exists(), "only hashes are stored"

    waiting = path.get().content.decode()
    assert 'data-state="waiting"' in waiting
    assert "Waiting period until" in waiting and "UTC (in 23" in waiting
    assert "set up a new authenticator app and get new backup codes" in waiting
    # Nothing changed yet.
    assert TOTPDevice.objects.filter(user=customer[0], confirmed=True).count() == 1
    types = list(
        SecurityEvent.objects.filter(account_id=customer[0].pk)
        .order_by("seq")
        .values_list("type", flat=True)
    )
    assert types[-4:] == [
        "self_service_requested",
        "self_service_code_sent",
        "self_service_proof_added",
        "self_service_wait_started",
    ]


def test_after_the_wait_the_customer_sets_up_a_new_authenticator_and_the_account_is_held(
    customer, capture, sms_outbox, mailoutbox, settings
):
    """At the end of the wait: the old authenticator and backup codes go, the customer sets
    up a new one (QR + key) in the same browser, gets ten new backup codes, every contact is
    told, and the account is on the self-service hold."""
    user, old_codes = customer
    path = lost_2fa(capture)
    prove_two(path, sms_outbox)
    early = path.finish()
    assert early.status_code == 302 and path.attempt.status == Status.WAITING

    with time_machine.travel(timezone.now() + timedelta(hours=24, minutes=1), tick=False):
        page = path.get().content.decode()
        assert "The waiting period is over." in page
        finished = path.finish()
        assert finished.status_code == 302
        assert finished["Location"] == reverse("recover_lost_2fa_setup")
        setup = path.client.get(finished["Location"])
        assert setup.status_code == 200
        html = setup.content.decode()
        assert "<svg" in html and 'id="manual-key"' in html
        device = TOTPDevice.objects.get(user=user, confirmed=False)
        assert not TOTPDevice.objects.filter(user=user, confirmed=True).exists()
        assert User.objects.get(pk=user.pk).reenrolment_required
        mailoutbox.clear()
        sms_outbox.clear()
        with capture():
            done = path.client.post(finished["Location"], {"code": totp_code(device)})
        assert done.status_code == 200
        new_codes = BACKUP_CODE.findall(done.content.decode())
        assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
        user.refresh_from_db()
        assert not user.reenrolment_required
        assert user.security_hold_until >= timezone.now() + timedelta(
            hours=settings.SECURITY_HOLD_HOURS_REENROLMENT - 1
        )
        assert path.attempt.status == Status.COMPLETED
        assert {m.to[0] for m in mailoutbox} == {ACCOUNT_EMAIL}
        assert [m.to for m in sms_outbox] == [ACCOUNT_PHONE]
        assert "set up again" in mailoutbox[0].subject
        completed = path.get().content.decode()
        assert "Done: your new authenticator app is set up." in completed
        # A finished attempt does nothing a second time.
        assert path.finish().status_code == 302
    assert TOTPDevice.objects.filter(user=user, confirmed=True).count() == 1


def test_a_backup_code_and_an_email_code_are_two_proofs_too(customer, capture, mailoutbox):
    """A backup code (used up, and the use told) with a code to the email on file."""
    user, codes = customer
    path = lost_2fa(capture)
    assert path.start(identifier=ACCOUNT_EMAIL, backup_code=codes[0]).status_code == 302
    assert BackupCode.objects.filter(device__user=user).count() == 9
    assert "used one of your backup codes" in mailoutbox[-1].body
    path.send("email")
    code = last_code(mailoutbox, to=[ACCOUNT_EMAIL], pattern=CODE_IN_EMAIL)
    assert path.verify("email", code).status_code == 302
    assert path.attempt.status == Status.WAITING
    assert [p["method"] for p in path.attempt.proofs] == ["backup_code", "email_code"]


def test_the_phone_number_names_the_account_too(customer, capture, sms_outbox):
    """The customer may name the account by its phone number instead of the email."""
    path = lost_2fa(capture)
    prove_two(path, sms_outbox, first={"identifier": "0151 98765432", "password": PASSWORD})
    assert path.attempt.status == Status.WAITING


def test_wrong_and_malformed_codes_are_refused_and_prove_nothing(customer, capture, sms_outbox):
    path = lost_2fa(capture)
    path.start(identifier=ACCOUNT_EMAIL, password=PASSWORD)
    path.send("phone")
    code = last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS)
    wrong = path.verify("phone", other_code(code))
    assert wrong.status_code == 400 and "This code is not right" in wrong.content.decode()
    malformed = path.verify("phone", "12ab")
    assert malformed.status_code == 400 and "Enter the 6 digits" in malformed.content.decode()
    # A code sent by SMS cannot pass as the email's.
    assert path.verify("email", code).status_code == 400
    assert path.attempt.status == Status.PROVING and len(path.attempt.proofs) == 1


def test_five_wrong_codes_use_the_code_up(customer, capture, sms_outbox):
    path = lost_2fa(capture)
    path.start(identifier=ACCOUNT_EMAIL, password=PASSWORD)
    path.send("phone")
    code = last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS)
    for _ in range(5):
        assert path.verify("phone", other_code(code)).status_code == 400
    right = path.verify("phone", code)
    assert right.status_code == 400 and "can no longer be used" in right.content.decode()
    assert path.attempt.status == Status.PROVING


def test_an_expired_code_is_refused(customer, capture, sms_outbox):
    """SMS codes live ten minutes (the policy's SMS_SECRET_LIFETIME)."""
    with time_machine.travel(timezone.now(), tick=False) as clock:
        path = lost_2fa(capture)
        path.start(identifier=ACCOUNT_EMAIL, password=PASSWORD)
        path.send("phone")
        code = last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS)
        clock.shift(timedelta(minutes=10, seconds=1))
        expired = path.verify("phone", code)
    assert expired.status_code == 400 and "expired" in expired.content.decode()
    assert path.attempt.status == Status.PROVING


def test_proofs_older_than_the_policy_window_start_no_wait(customer, capture, sms_outbox):
    """An attempt left half-proven for a day is forgotten: the page starts over."""
    with time_machine.travel(timezone.now(), tick=False) as clock:
        path = lost_2fa(capture)
        path.start(identifier=ACCOUNT_EMAIL, password=PASSWORD)
        clock.shift(timedelta(hours=24, minutes=1))
        assert 'data-state="start"' in path.get().content.decode()
        assert path.send("phone").status_code == 302
    assert sms_outbox == [] or "recovery code" not in sms_outbox[-1].body


@pytest.mark.parametrize("contact", ["email", "phone"])
def test_a_cancel_from_either_contact_stops_the_attempt_and_opens_a_case(
    customer, capture, sms_outbox, mailoutbox, contact, settings
):
    """The link in the notice to the login email, or in the SMS to the phone, stops the
    attempt for good: the account goes on hold, agents get a high-priority case about it,
    every contact hears of it, and the end of the wait changes nothing."""
    user, _codes = customer
    path = lost_2fa(capture)
    prove_two(path, sms_outbox)
    token = cancel_token(
        mailoutbox if contact == "email" else sms_outbox,
        to=[ACCOUNT_EMAIL] if contact == "email" else ACCOUNT_PHONE,
    )
    other_token = cancel_token(
        sms_outbox if contact == "email" else mailoutbox,
        to=ACCOUNT_PHONE if contact == "email" else [ACCOUNT_EMAIL],
    )
    mailoutbox.clear()
    sms_outbox.clear()
    stopped = cancel(token, capture)
    assert stopped.status_code == 200
    assert "The recovery is stopped" in stopped.content.decode()

    attempt = path.attempt
    assert attempt.status == Status.CANCELLED
    assert attempt.cancelled_via == ("email" if contact == "email" else "sms")
    case = attempt.case
    assert case is not None
    assert case.matched_user == user and case.priority == CasePriority.HIGH
    assert case.kind == RecoveryCase.Kind.NOT_ME and case.is_open
    assert case.events.filter(type=CaseEvent.Type.SELF_SERVICE_STOPPED).exists()
    user.refresh_from_db()
    assert user.on_security_hold
    assert SecurityEvent.objects.filter(account_id=user.pk, type="self_service_cancelled").exists()
    assert {m.to[0] for m in mailoutbox} == {ACCOUNT_EMAIL}
    assert ACCOUNT_PHONE in [m.to for m in sms_outbox]

    assert "This recovery was stopped." in path.get().content.decode()
    with time_machine.travel(timezone.now() + timedelta(days=3), tick=False):
        assert path.finish().status_code == 302
    assert TOTPDevice.objects.filter(user=user, confirmed=True).count() == 1
    assert not User.objects.get(pk=user.pk).reenrolment_required
    # The link works once, and the other contact's link no longer stops anything.
    assert cancel(token, capture).status_code == 404
    assert cancel(other_token, capture).status_code == 404


def test_a_cancel_link_lands_in_the_session_and_never_in_a_url(customer, capture, sms_outbox):
    path = lost_2fa(capture)
    prove_two(path, sms_outbox)
    token = cancel_token(sms_outbox, to=ACCOUNT_PHONE)
    client = browser(ip="192.0.2.200")
    landing = client.get(reverse("recover_self_service_cancel_link", args=[token]))
    assert landing["Location"] == reverse("recover_self_service_cancel")
    page = client.get(landing["Location"])
    assert token not in page.content.decode()
    bogus = browser(ip="192.0.2.201")
    bogus.get(reverse("recover_self_service_cancel_link", args=["x" * 43]))
    assert bogus.post(reverse("recover_self_service_cancel")).status_code == 404
    assert path.attempt.status == Status.WAITING


def add_risk(user: User, risk: str) -> None:
    if risk == "recent_change":
        security_event_record(
            user=user, type=SecurityEvent.Type.PASSWORD_CHANGED, context=AuditContext()
        )
    elif risk == "incident":
        RevocationCampaign.objects.create(reason="breach", operator="ops")


@pytest.mark.parametrize(
    ("risks", "client_kwargs", "hours"),
    [
        ([], {}, 24),
        (["recent_change"], {}, 48),
        (["incident"], {}, 48),
        ([], {"user_agent": "curl/8.0"}, 48),
        ([], {"ip": "203.0.113.9"}, 48),
        (["recent_change", "incident"], {"user_agent": "curl/8.0", "ip": "203.0.113.9"}, 120),
    ],
)
def test_the_wait_grows_with_each_risk(customer, capture, sms_outbox, risks, client_kwargs, hours):
    """24 h by default; each of: a password or contact change in the last 7 days, a declared
    incident, a device never seen, a network never seen adds 24 h (settings)."""
    user, _codes = customer
    for risk in risks:
        add_risk(user, risk)
    path = lost_2fa(capture, browser(**client_kwargs))
    prove_two(path, sms_outbox)
    attempt = path.attempt
    assert attempt.wait_hours == hours
    assert len(attempt.risk_factors) == (hours - 24) // 24
    if hours > 24:
        assert "The wait is longer than usual because" in path.get().content.decode()


def test_an_old_change_and_an_old_incident_add_nothing(customer, capture, sms_outbox):
    user, _codes = customer
    with time_machine.travel(timezone.now() - timedelta(days=8), tick=False):
        add_risk(user, "recent_change")
        add_risk(user, "incident")
    RevocationCampaign.objects.update(status=RevocationCampaign.Status.FINISHED)
    path = lost_2fa(capture)
    prove_two(path, sms_outbox)
    assert path.attempt.wait_hours == 24


def test_unknown_account_and_wrong_password_get_the_same_answer_and_write_nothing(
    customer, client, nothing_written
):
    """Byte for byte the same 400 page; no attempt, no event, no message."""
    answers = []
    for identifier, password in [
        (ACCOUNT_EMAIL, "not-the-password"),
        ("nobody.here@example.org", "not-the-password"),
        ("+4915100000009", "not-the-password"),
    ]:
        with nothing_written():
            response = client.post(
                reverse("recover_lost_2fa"),
                {"action": "start", "identifier": identifier, "password": password},
            )
        assert response.status_code == 400
        assert BAD_DETAILS in response.content.decode()
        answers.append(comparable(response.content).replace(identifier.encode(), b"ID"))
    assert answers[0] == answers[1] == answers[2]


class CountingHasher:
    """Counts every password hash the request computes (the slow part of a check)."""

    calls = 0


@pytest.fixture
def counted_hashes(settings):
    from django.contrib.auth.hashers import MD5PasswordHasher

    class Counting(MD5PasswordHasher):
        algorithm = "md5"

        def encode(self, password, salt):
            CountingHasher.calls += 1
            return super().encode(password, salt)

    settings.PASSWORD_HASHERS = [f"{__name__}.CountingMD5"]
    globals()["CountingMD5"] = Counting
    CountingHasher.calls = 0
    return CountingHasher


def test_an_unknown_account_costs_a_password_hash_as_a_known_one_does(
    customer, client, counted_hashes
):
    """The same work either way: one password hash for a known account and for an unknown one."""
    counts = []
    for identifier in (ACCOUNT_EMAIL, "nobody.here@example.org"):
        counted_hashes.calls = 0
        client.post(
            reverse("recover_lost_2fa"),
            {"action": "start", "identifier": identifier, "password": "wrong-password-1"},
        )
        counts.append(counted_hashes.calls)
    assert counts == [1, 1]


def test_malformed_input_is_a_localized_400(client):
    for data in (
        {"action": "start", "identifier": "not an address", "password": "x"},
        {"action": "start", "identifier": ACCOUNT_EMAIL},
        {"action": "start", "identifier": ACCOUNT_EMAIL, "password": "x", "backup_code": "y"},
        {"action": "explode"},
        {"action": "verify_code", "channel": "phone", "code": "123456"},
    ):
        response = client.post(reverse("recover_lost_2fa"), data)
        assert response.status_code in (302, 400), data
    german = client.post(
        reverse("recover_lost_2fa"),
        {"action": "start", "identifier": "x"},
        HTTP_ACCEPT_LANGUAGE="de",
    )
    assert german.status_code == 400
    assert "Geben Sie die E-Mail-Adresse oder die Telefonnummer Ihres Kontos ein." in (
        german.content.decode()
    )


def test_the_first_step_is_rate_limited_per_identifier(customer, capture):
    """Five tries per identifier an hour, whether or not the password was right."""
    for number in range(5):
        path = lost_2fa(capture, browser(ip=f"203.0.113.{number + 50}"))
        assert path.start(identifier=ACCOUNT_EMAIL, password="wrong-1").status_code == 400
    last = lost_2fa(capture, browser(ip="203.0.113.99"))
    assert last.start(identifier=ACCOUNT_EMAIL, password=PASSWORD).status_code == 429
    assert not SelfServiceRecovery.objects.exists()


def test_a_frozen_account_gets_the_frozen_page_and_nothing_starts(customer, capture, mailoutbox):
    user, _codes = customer
    User.objects.filter(pk=user.pk).update(frozen_at=timezone.now())
    response = lost_2fa(capture).start(identifier=ACCOUNT_EMAIL, password=PASSWORD)
    assert response.status_code == 403 and "This account is frozen" in response.content.decode()
    assert not SelfServiceRecovery.objects.exists() and mailoutbox == []


def test_an_account_on_hold_gets_the_hold_page_and_keeps_its_backup_code(customer, capture):
    user, codes = customer
    User.objects.filter(pk=user.pk).update(security_hold_until=timezone.now() + timedelta(hours=5))
    response = lost_2fa(capture).start(identifier=ACCOUNT_EMAIL, backup_code=codes[0])
    assert response.status_code == 403
    assert "Security changes are on hold" in response.content.decode()
    assert BackupCode.objects.filter(device__user=user).count() == 10
    assert not SelfServiceRecovery.objects.exists()


def test_a_second_attempt_cannot_wait_beside_the_first(customer, capture, sms_outbox):
    path = lost_2fa(capture)
    prove_two(path, sms_outbox)
    second = lost_2fa(capture, browser())
    refused = second.start(identifier=ACCOUNT_EMAIL, password=PASSWORD)
    assert refused.status_code == 409
    assert "already in its waiting period" in refused.content.decode()
    assert SelfServiceRecovery.objects.count() == 1


def test_another_browser_cannot_go_on_with_the_attempt(customer, capture, sms_outbox):
    """The attempt belongs to the session that started it."""
    path = lost_2fa(capture)
    prove_two(path, sms_outbox)
    stranger = lost_2fa(capture, browser())
    assert 'data-state="start"' in stranger.get().content.decode()
    with time_machine.travel(timezone.now() + timedelta(days=2), tick=False):
        assert stranger.finish().status_code == 302
        assert stranger.client.get(reverse("recover_lost_2fa_setup")).status_code == 302
    assert path.attempt.status == Status.WAITING


def test_expired_cancel_links_are_removed_by_expire_tokens(customer, capture, sms_outbox):
    """A week after the wait, the links (hashes) are deleted; the attempt keeps its record."""
    from support.services.cleanup import tokens_expire

    path = lost_2fa(capture)
    prove_two(path, sms_outbox)
    assert tokens_expire()["self_service_cancel_links"] == 0
    with time_machine.travel(timezone.now() + timedelta(days=8, hours=1), tick=False):
        assert tokens_expire()["self_service_cancel_links"] == 2
    assert not SelfServiceCancelLink.objects.exists()
    assert path.attempt.status == Status.WAITING


def test_an_attempt_nobody_finished_gives_way_to_a_new_one_that_waits_again(
    customer, capture, sms_outbox
):
    """A customer who lost the browser that waited starts again elsewhere once the wait is
    over; the new attempt proves two methods and waits its own full time."""
    first = lost_2fa(capture)
    prove_two(first, sms_outbox)
    old = first.attempt
    with time_machine.travel(timezone.now() + timedelta(hours=25), tick=False):
        second = lost_2fa(capture, browser())
        prove_two(second, sms_outbox)
        new = second.attempt
        assert new.pk != old.pk and new.status == Status.WAITING
        assert new.wait_ends_at is not None
        assert new.wait_ends_at > timezone.now() + timedelta(hours=23)
        old.refresh_from_db()
        assert old.status == Status.ABANDONED
        assert first.finish().status_code == 302
    assert not User.objects.get(pk=customer[0].pk).reenrolment_required


def test_only_a_just_used_passkey_of_the_account_is_a_proof(customer, capture):
    """The service behind the passkey ceremony: another account's passkey, or one of the
    account's passkeys never used, proves nothing and writes nothing."""
    from accounts.services.audit import AuditContext as Context
    from recovery.self_service import PasskeyOutcome, self_service_passkey_prove
    from tests.accounts.test_passkeys import passkey_for
    from tests.factories import UserFactory

    user, _codes = customer
    path = lost_2fa(capture)
    path.start(identifier=ACCOUNT_EMAIL, password=PASSWORD)
    attempt = path.attempt
    strangers = passkey_for(UserFactory.create(email="other@example.net", phone=None), used=True)
    unused = passkey_for(user, used=False)
    events = SecurityEvent.objects.count()
    for passkey in (strangers, unused):
        outcome = self_service_passkey_prove(
            attempt=attempt, passkey_id=passkey.pk, context=Context()
        )
        assert outcome == PasskeyOutcome.REFUSED
    attempt.refresh_from_db()
    assert [p["method"] for p in attempt.proofs] == ["password"]
    assert attempt.status == Status.PROVING
    assert SecurityEvent.objects.count() == events


def test_the_page_offers_a_passkey_only_to_an_account_that_has_one(customer, capture):
    """Without a passkey the page asks for a code to a contact and names no authenticator
    (the app is what was lost); with one, it offers the passkey ceremony too."""
    from tests.accounts.test_passkeys import passkey_for

    user, _codes = customer
    path = lost_2fa(capture)
    path.start(identifier=ACCOUNT_EMAIL, password=PASSWORD)
    page = path.get().content.decode()
    assert (
        "Still needed: one of: a code sent to the phone on file; a code sent to the email on "
        "file</p>" in page
    )
    assert "passkey" not in page.lower()

    passkey_for(user)
    page = path.get().content.decode()
    assert 'id="passkey-verification-placeholder"' in page
    assert "/recover/lost-2fa/passkey/begin/" in page
    assert "a passkey" in page
