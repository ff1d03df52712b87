"""A software passkey: a real P-256 key that signs WebAuthn assertions without a browser.

It answers the options of a begin endpoint the way an authenticator does (authenticator
data for the relying party, the client data with the challenge and the site's origin, an
ECDSA signature over both), so the server's own checks run in full. The browser tests use
Chromium's virtual authenticator; this one lets the Django test client run ceremonies, at
the same instant from several threads too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client
from django.urls import reverse
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import User
from accounts.passkeys import relying_party_id, site_origin
from tests.factories import PASSWORD

USER_PRESENT = 0x01
USER_VERIFIED = 0x04


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SoftwarePasskey:
    """One passkey of `user`, stored as django-otp-webauthn stores a registered one."""

    def __init__(self, user: User, *, name: str = "Software passkey") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        numbers = self.key.public_key().public_numbers()
        cose_key = {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32), -3: numbers.y.to_bytes(32)}
        self.sign_count = 0
        self.credential = WebAuthnCredential.objects.create(
            user=user,
            name=name,
            confirmed=True,
            credential_id=secrets.token_bytes(32),
            public_key=cbor2.dumps(cose_key),
            sign_count=0,
        )

    def assertion(
        self, options: dict[str, Any], *, signing_key: ec.EllipticCurvePrivateKey | None = None
    ) -> dict[str, Any]:
        """The JSON a browser posts to the complete endpoint for these begin `options`;
        `signing_key` signs in place of the passkey's own key (a forged assertion)."""
        self.sign_count += 1
        authenticator_data = (
            hashlib.sha256(relying_party_id().encode()).digest()
            + bytes([USER_PRESENT | USER_VERIFIED])
            + struct.pack(">I", self.sign_count)
        )
        client_data = json.dumps(
            {
                "type": "webauthn.get",
                "challenge": options["challenge"],
                "origin": site_origin(),
                "crossOrigin": False,
            }
        ).encode()
        signature = (signing_key or self.key).sign(
            authenticator_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        credential_id = b64url(bytes(self.credential.credential_id))
        return {
            "id": credential_id,
            "rawId": credential_id,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(authenticator_data),
                "signature": b64url(signature),
                "userHandle": None,
            },
            "clientExtensionResults": {},
        }


PASSKEY_STEP = "/accounts/2fa/passkey/authentication/"


def signed_in_with_passkey(user: User, passkey: SoftwarePasskey) -> Client:
    """A test client signed in with the password, then the passkey as the second step."""
    client = Client()
    client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    options = client.post(f"{PASSKEY_STEP}begin/", content_type="application/json")
    assert options.status_code == 200, options.content
    done = client.post(
        f"{PASSKEY_STEP}complete/",
        passkey.assertion(options.json()),
        content_type="application/json",
    )
    assert done.status_code == 200, done.content
    return client
