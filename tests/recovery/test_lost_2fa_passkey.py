"""A passkey inside /recover/lost-2fa/, through its endpoints with a software passkey.

The assertions are real (tests/passkey_authenticator.py): the server checks challenge,
origin, relying party and signature as it does for a browser's. With the password the
passkey is a sign-in, recorded as any sign-in with a second factor; a failed assertion
after the password is a failed sign-in; one waiting recovery keeps every other out, and
two completions at the same instant give one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import SecurityEvent, SignIn, User
from accounts.services.audit import AuditContext
from notifications.models import Notification
from recovery.models import SelfServiceCancelLink, SelfServiceRecovery
from recovery.self_service import (
    PasskeyOutcome,
    SelfServiceRefused,
    self_service_passkey_prove,
    self_service_start,
)
from tests.concurrency import run_together
from tests.factories import PASSWORD
from tests.passkey_authenticator import SoftwarePasskey
from tests.recovery.self_service_helpers import (
    ACCOUNT_EMAIL,
    ACCOUNT_PHONE,
    CODE_IN_SMS,
    Path,
    browser,
    customer_account,
    last_code,
    lost_2fa,
)

Status = SelfServiceRecovery.Status
BEGIN = reverse("recover_lost_2fa_passkey_begin")
COMPLETE = reverse("recover_lost_2fa_passkey_complete")
REGISTRATION_BEGIN = "/accounts/2fa/passkey/registration/begin/"
PHONE_BROWSER = "Mozilla/5.0 (Android 14; Mobile; rv:131.0) Gecko/131.0 Firefox/131.0"
PHONE_IP = "203.0.113.61"
ALREADY_WAITING = "A recovery of this account is already in its waiting period."


@pytest.fixture
def owner(db):
    user, codes = customer_account()
    return user, codes, SoftwarePasskey(user)


def begin(client: Client) -> dict:
    response = client.post(BEGIN, content_type="application/json")
    assert response.status_code == 200, response.content
    return response.json()


def complete(client: Client, assertion: dict):
    return client.post(COMPLETE, assertion, content_type="application/json")


def written() -> dict[str, object]:
    """What a refused passkey must leave as it was."""
    return {
        "attempts": list(
            SelfServiceRecovery.objects.order_by("pk").values_list("pk", "status", "proofs")
        ),
        "events": SecurityEvent.objects.count(),
        "notifications": Notification.objects.count(),
        "cancel_links": SelfServiceCancelLink.objects.count(),
        "sign_ins": list(SignIn.objects.values_list("pk", "outcome")),
    }


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.django_db
def test_password_and_passkey_sign_in_like_any_sign_in_with_a_second_factor(owner, capture):
    """The history shows the sign-in with this device and network, and the session may
    add a passkey (allowed only soon after a second factor), as after the 2FA step."""
    user, _codes, passkey = owner
    path = lost_2fa(capture, browser(user_agent=PHONE_BROWSER, ip=PHONE_IP))
    assert path.start(identifier=ACCOUNT_EMAIL, password=PASSWORD).status_code == 302

    done = complete(path.client, passkey.assertion(begin(path.client)))
    assert done.status_code == 200, done.content
    assert done.json()["redirect_url"] == reverse("account_app_replace_with_passkey")
    assert path.attempt.status == Status.COMPLETED

    sign_in = SignIn.objects.get(user=user)
    assert (sign_in.outcome, sign_in.ip_address, sign_in.user_agent) == (
        SignIn.Outcome.SIGNED_IN,
        PHONE_IP,
        PHONE_BROWSER,
    )
    history = path.client.get(reverse("account_security")).content.decode()
    assert "Firefox Mobile on Android" in history
    assert path.client.post(REGISTRATION_BEGIN).status_code == 200


@pytest.mark.django_db
def test_a_failed_passkey_after_the_password_is_a_failed_sign_in(owner, capture):
    """A forged assertion (another key) after the right password is in the history as a
    wrong second factor, with the device; the attempt keeps only the password."""
    user, _codes, passkey = owner
    path = lost_2fa(capture, browser(user_agent=PHONE_BROWSER, ip=PHONE_IP))
    path.start(identifier=ACCOUNT_EMAIL, password=PASSWORD)

    forged = passkey.assertion(
        begin(path.client), signing_key=ec.generate_private_key(ec.SECP256R1())
    )
    refused = complete(path.client, forged)
    assert refused.status_code == 422, refused.content

    failed = SignIn.objects.get(user=user)
    assert (failed.outcome, failed.ip_address, failed.user_agent) == (
        SignIn.Outcome.WRONG_SECOND_FACTOR,
        PHONE_IP,
        PHONE_BROWSER,
    )
    assert path.attempt.status == Status.PROVING
    assert [p["method"] for p in path.attempt.proofs] == ["password"]
    assert not signed_in(path.client)


@pytest.mark.django_db
def test_a_failed_passkey_after_a_backup_code_is_no_failed_sign_in(owner, capture):
    """Without the password nobody tried to sign in: the history's "right password, wrong
    two-factor code" would be untrue, so it gets no row."""
    _user, codes, passkey = owner
    path = lost_2fa(capture)
    path.start(identifier=ACCOUNT_EMAIL, backup_code=codes[0])
    forged = passkey.assertion(
        begin(path.client), signing_key=ec.generate_private_key(ec.SECP256R1())
    )
    assert complete(path.client, forged).status_code == 422
    assert not SignIn.objects.exists()
    assert path.attempt.status == Status.PROVING


def waiting_beside(path: Path, capture, sms_outbox) -> SelfServiceRecovery:
    """Another browser's recovery (password and a texted code) that reached its wait
    after `path` had started."""
    other = lost_2fa(capture, browser(ip="198.51.100.99", user_agent="Other/1"))
    assert other.start(identifier=ACCOUNT_EMAIL, password=PASSWORD).status_code == 302
    attempt = other.attempt
    assert other.send("phone").status_code == 302
    code = last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS)
    assert other.verify("phone", code).status_code == 302
    attempt.refresh_from_db()
    assert attempt.status == Status.WAITING
    return attempt


def attacker_beside_a_waiting_recovery(
    owner, capture, sms_outbox, first: str
) -> tuple[Path, SelfServiceRecovery, SelfServiceRecovery, dict]:
    """The attacker's attempt (password or backup code) and ceremony began before the
    owner's own recovery reached its wait, so the start's check let them through."""
    _user, codes, _passkey = owner
    attacker = lost_2fa(capture, browser(ip="203.0.113.66", user_agent="Attacker/2"))
    secret = {"password": PASSWORD} if first == "password" else {"backup_code": codes[0]}
    assert attacker.start(identifier=ACCOUNT_EMAIL, **secret).status_code == 302
    mine = attacker.attempt
    options = begin(attacker.client)
    return attacker, mine, waiting_beside(attacker, capture, sms_outbox), options


@pytest.mark.django_db
@pytest.mark.parametrize("first", ["password", "backup_code"])
def test_a_passkey_recovery_is_refused_while_another_one_waits(owner, capture, sms_outbox, first):
    """The passkey finishes nothing while another recovery waits: the true reason, in
    English and German, before the passkey is even asked, and nothing written (not even
    the passkey's use); no sign-in, and the waiting recovery goes on."""
    _user, _codes, passkey = owner
    attacker, mine, waiting, options = attacker_beside_a_waiting_recovery(
        owner, capture, sms_outbox, first
    )
    before = written()
    used = WebAuthnCredential.objects.values("sign_count", "last_used_at").get(
        pk=passkey.credential.pk
    )

    refused = complete(attacker.client, passkey.assertion(options))
    assert refused.status_code == 403, refused.content
    assert refused.json()["code"] == "passkey_refused"
    assert refused.json()["detail"].startswith(ALREADY_WAITING)
    for language, reason in (
        ("en", ALREADY_WAITING),
        ("de", "Für dieses Konto läuft bereits eine Wiederherstellung in der Wartezeit."),
    ):
        asked = attacker.client.post(
            BEGIN, content_type="application/json", HTTP_ACCEPT_LANGUAGE=language
        )
        assert asked.status_code == 403, asked.content
        assert asked.json()["detail"].startswith(reason)

    assert written() == before
    assert (
        WebAuthnCredential.objects.values("sign_count", "last_used_at").get(
            pk=passkey.credential.pk
        )
        == used
    )
    mine.refresh_from_db()
    assert mine.status == Status.PROVING
    waiting.refresh_from_db()
    assert waiting.status == Status.WAITING
    assert not signed_in(attacker.client)
    assert attacker.client.post(REGISTRATION_BEGIN).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("first", ["password", "backup_code"])
def test_the_proof_is_refused_under_lock_when_the_other_wait_began_meanwhile(
    owner, capture, sms_outbox, first
):
    """The other recovery reached its wait between the page's check and the proof (the
    assertion was already verified): the service refuses with the reason and writes
    nothing, whichever first proof the attempt has."""
    _user, _codes, passkey = owner
    _attacker, mine, _waiting, _options = attacker_beside_a_waiting_recovery(
        owner, capture, sms_outbox, first
    )
    WebAuthnCredential.objects.filter(pk=passkey.credential.pk).update(last_used_at=timezone.now())
    before = written()
    with pytest.raises(SelfServiceRefused) as refused:
        self_service_passkey_prove(
            attempt=mine, passkey_id=passkey.credential.pk, context=AuditContext()
        )
    assert refused.value.reason == SelfServiceRefused.ALREADY_WAITING
    assert written() == before


@pytest.mark.django_db(transaction=True)
def test_two_passkey_completions_at_the_same_instant_give_one(owner):
    """The same signed assertion posted twice at once from the session that began the
    ceremony (a double click, a replaying script): one sign-in, one proof, one history row."""
    user, _codes, passkey = owner
    client = browser()
    client.post(
        reverse("recover_lost_2fa"),
        {"action": "start", "identifier": ACCOUNT_EMAIL, "password": PASSWORD},
    )
    assertion = passkey.assertion(begin(client))
    twin = browser()
    twin.cookies = client.cookies

    def completing(tab: Client) -> Callable[[], int]:
        return lambda: complete(tab, assertion).status_code

    answers = run_together([completing(c) for c in (client, twin)])
    assert Counter(answers)[200] == 1, answers
    assert (
        SecurityEvent.objects.filter(
            account_id=user.pk, type=SecurityEvent.Type.SELF_SERVICE_PROOF_ADDED
        ).count()
        == 1
    )
    assert list(SignIn.objects.filter(user=user).values_list("outcome", flat=True)) == [
        SignIn.Outcome.SIGNED_IN
    ]
    assert SelfServiceRecovery.objects.get().status == Status.COMPLETED
    assert TOTPDevice.objects.filter(user=user, confirmed=True).count() == 1
    assert User.objects.get(pk=user.pk).security_hold_until is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first", ["password", "backup_code"])
def test_two_passkey_proofs_of_one_attempt_at_the_same_instant_count_once(owner, first):
    """Behind the endpoint, two verified proofs of the same attempt at once (each past its
    own ceremony): one signs in or starts the wait, the other is refused; one proof event,
    and at most one wait with its notices."""
    user, codes, passkey = owner
    secret = {"password": PASSWORD} if first == "password" else {"backup_code": codes[0]}
    started = self_service_start(
        kind=SelfServiceRecovery.Kind.LOST_FACTOR,
        identifier=ACCOUNT_EMAIL,
        context=AuditContext(),
        **secret,
    )
    assert started is not None
    WebAuthnCredential.objects.filter(pk=passkey.credential.pk).update(last_used_at=timezone.now())

    def prove() -> str:
        return self_service_passkey_prove(
            attempt=started.attempt, passkey_id=passkey.credential.pk, context=AuditContext()
        )

    outcomes = run_together([prove, prove])
    won = PasskeyOutcome.SIGNED_IN if first == "password" else PasskeyOutcome.PROVEN
    assert sorted(outcomes) == sorted([won, PasskeyOutcome.REFUSED])
    assert (
        SecurityEvent.objects.filter(
            account_id=user.pk, type=SecurityEvent.Type.SELF_SERVICE_PROOF_ADDED
        ).count()
        == 1
    )
    assert SelfServiceCancelLink.objects.count() == (0 if first == "password" else 2)
