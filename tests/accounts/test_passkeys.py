"""Passkey changes through the services and pages: events, notices, holds, the last factor.

The WebAuthn ceremonies themselves run in Chromium (test_passkeys_browser.py); here the
passkeys are rows as the library stores them, to check what the account allows.
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import SecurityEvent, User
from accounts.policy import Method
from accounts.services.audit import AuditContext
from accounts.services.holds import SecurityHoldActive
from accounts.services.passkeys import (
    PasskeyChangeRefused,
    app_replace_with_passkey_decision,
    passkey_proof,
    passkey_remove,
    passkey_rename,
)
from notifications.models import Notification
from tests.factories import PASSWORD, UserFactory, totp_code

pytestmark = pytest.mark.django_db


def passkey_for(user: User, name: str = "Passkey 1", used: bool = False) -> WebAuthnCredential:
    return WebAuthnCredential.objects.create(
        user=user,
        name=name,
        confirmed=True,
        credential_id=secrets.token_bytes(32),
        public_key=secrets.token_bytes(77),
        sign_count=0,
        last_used_at=timezone.now() if used else None,
    )


def signed_in_client(user: User, device: TOTPDevice) -> Client:
    client = Client()
    client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    response = client.post("/accounts/2fa/", {"code": totp_code(device)})
    assert response.status_code == 302, response.content[:300]
    return client


@pytest.fixture
def customer():
    user = UserFactory.create()
    device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    return user, device


def test_the_last_second_factor_is_never_removed():
    """A passkey-only account keeps its passkey: no event, no notice, the row stays."""
    user = UserFactory.create()
    passkey = passkey_for(user)
    with pytest.raises(PasskeyChangeRefused):
        passkey_remove(user=user, passkey_id=passkey.pk, context=AuditContext())
    assert WebAuthnCredential.objects.filter(pk=passkey.pk).exists()
    assert not SecurityEvent.objects.filter(account_id=user.pk).exists()


def test_removing_a_passkey_is_an_event_and_a_notice_to_every_contact(customer):
    user, _device = customer
    passkey = passkey_for(user)
    passkey_remove(user=user, passkey_id=passkey.pk, context=AuditContext())
    assert not WebAuthnCredential.objects.filter(pk=passkey.pk).exists()
    event = SecurityEvent.objects.get(account_id=user.pk)
    assert event.type == SecurityEvent.Type.PASSKEY_REMOVED
    assert set(
        Notification.objects.filter(security_event=event).values_list("channel", "recipient")
    ) == {("email", user.email), ("sms", user.phone)}


def test_no_passkey_change_during_a_security_hold(customer):
    """On hold, renaming and removing are refused and nothing is written."""
    user, _device = customer
    passkey = passkey_for(user)
    user.security_hold_until = timezone.now() + timedelta(hours=24)
    user.save(update_fields=["security_hold_until"])
    with pytest.raises(SecurityHoldActive):
        passkey_rename(user=user, passkey_id=passkey.pk, name="x", context=AuditContext())
    with pytest.raises(SecurityHoldActive):
        passkey_remove(user=user, passkey_id=passkey.pk, context=AuditContext())
    passkey.refresh_from_db()
    assert passkey.name == "Passkey 1"
    assert not SecurityEvent.objects.filter(account_id=user.pk).exists()


def test_the_pages_answer_a_hold_with_the_hold_page_and_change_nothing(customer):
    user, device = customer
    passkey = passkey_for(user)
    client = signed_in_client(user, device)
    user.security_hold_until = timezone.now() + timedelta(hours=24)
    user.save(update_fields=["security_hold_until"])

    response = client.post("/account/security/passkeys/remove/", {"passkey_id": passkey.pk})
    assert response.status_code == 403
    assert WebAuthnCredential.objects.filter(pk=passkey.pk).exists()

    begin = client.post("/accounts/2fa/passkey/registration/begin/")
    assert begin.status_code == 403
    assert json.loads(begin.content)["code"] == "passkey_refused"


def test_another_customers_passkey_is_answered_like_a_missing_one(customer):
    """A signed-in attacker posting a victim's passkey id learns nothing and removes nothing."""
    attacker, device = customer
    victim = UserFactory.create()
    victims_passkey = passkey_for(victim)
    client = signed_in_client(attacker, device)

    for passkey_id in (victims_passkey.pk, victims_passkey.pk + 1000):
        response = client.post(
            "/account/security/passkeys/remove/", {"passkey_id": passkey_id}, follow=True
        )
        assert response.status_code == 200
        assert b"This passkey does not exist any more." in response.content
    assert WebAuthnCredential.objects.filter(pk=victims_passkey.pk).exists()
    assert not SecurityEvent.objects.filter(account_id=victim.pk).exists()


def test_bad_input_on_the_passkey_forms_is_a_message_not_a_500(customer):
    user, device = customer
    client = signed_in_client(user, device)
    for path, data in (
        ("/account/security/passkeys/remove/", {"passkey_id": "abc"}),
        ("/account/security/passkeys/rename/", {"passkey_id": "1", "name": ""}),
    ):
        response = client.post(path, data, follow=True)
        assert response.status_code == 200
        assert b"The passkey was not changed" in response.content


def test_passkey_ceremonies_need_a_password_sign_in_and_registration_the_second_factor(
    customer,
):
    """No passwordless sign-in; no passkey added by a session that only knows the password."""
    user, _device = customer
    anonymous = Client()
    response = anonymous.post("/accounts/2fa/passkey/authentication/begin/")
    assert response.status_code == 403

    half_signed_in = Client()
    half_signed_in.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert half_signed_in.post("/accounts/2fa/passkey/registration/begin/").status_code == 403
    assert half_signed_in.post("/accounts/2fa/passkey/authentication/begin/").status_code == 200


def test_a_still_bound_recently_used_passkey_is_the_authenticator_proof(customer):
    user, _device = customer
    passkey = passkey_for(user, used=True)
    proof = passkey_proof(user=user, passkey_id=passkey.pk)
    assert proof is not None and proof.method == Method.AUTHENTICATOR
    other = UserFactory.create()
    assert passkey_proof(user=other, passkey_id=passkey.pk) is None
    user.last_login = timezone.now()
    assert app_replace_with_passkey_decision(user=user, passkey_id=passkey.pk)
    passkey.delete()
    assert passkey_proof(user=user, passkey_id=passkey.pk) is None
    assert not app_replace_with_passkey_decision(user=user, passkey_id=passkey.pk)


def test_replacing_the_app_needs_a_passkey_sign_in(customer):
    """A session that gave the app's code (maybe a phished one) cannot use the passkey path."""
    user, device = customer
    passkey_for(user, used=True)
    client = signed_in_client(user, device)
    response = client.get("/account/security/passkeys/replace-app/")
    assert response.status_code == 302
    assert response["Location"] == "/account/security/"


def test_revoke_2fa_refuses_an_unknown_factor(customer):
    with pytest.raises(CommandError, match="Unknown factor"):
        call_command("revoke_2fa", "--all", "--reason", "x", "--factors", "totp,sms")


def test_passkeys_page_speaks_german(customer):
    """The page, its list and the way to add one are in the customer's language."""
    user, device = customer
    passkey_for(user, name="Laptop")
    client = signed_in_client(user, device)
    page = client.get("/account/security/passkeys/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    for text in ("Ihre Passkeys", "Passkey hinzufügen", "Umbenennen", "Entfernen", "Laptop"):
        assert text in page
    assert "/static/django_otp_webauthn/otp_webauthn_register.js" in page
