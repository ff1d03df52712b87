"""A passkey inside /recover/lost-2fa/, through its endpoints with a software passkey.

The assertions are real (tests/passkey_authenticator.py): the server checks challenge,
origin, relying party and signature as it does for a browser's. With the password the
passkey is a sign-in, recorded as any sign-in with a second factor; a failed assertion
after the password is a failed sign-in.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client
from django.urls import reverse

from accounts.models import SignIn
from recovery.models import SelfServiceRecovery
from tests.factories import PASSWORD
from tests.passkey_authenticator import SoftwarePasskey
from tests.recovery.self_service_helpers import (
    ACCOUNT_EMAIL,
    browser,
    customer_account,
    lost_2fa,
)

Status = SelfServiceRecovery.Status
BEGIN = reverse("recover_lost_2fa_passkey_begin")
COMPLETE = reverse("recover_lost_2fa_passkey_complete")
REGISTRATION_BEGIN = "/accounts/2fa/passkey/registration/begin/"
PHONE_BROWSER = "Mozilla/5.0 (Android 14; Mobile; rv:131.0) Gecko/131.0 Firefox/131.0"
PHONE_IP = "203.0.113.61"


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
