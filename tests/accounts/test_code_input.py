"""Codes as people type them: backup codes from an alphabet without look-alikes, accepted
with O for 0, I or L for 1, small letters, spaces and dashes (old codes too); and the
keyboards and autofill hints of the code and phone fields."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from accounts.hashing import HashPurpose, keyed_hash
from accounts.models import BACKUP_CODE_ALPHABET, BackupCode, BackupCodeDevice
from accounts.services.audit import AuditContext
from accounts.services.two_factor import backup_code_new, two_factor_provision, two_factor_verify
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def enrolled():
    user = UserFactory.create()
    device, codes = two_factor_provision(user=user, context=AuditContext(), notify=False)
    return user, device, codes


def add_code(user, stored: str) -> None:
    device = BackupCodeDevice.objects.get(user=user)
    BackupCode.objects.create(
        device=device, code_hash=keyed_hash(stored, purpose=HashPurpose.BACKUP_CODE)
    )


def test_new_codes_have_no_look_alikes_and_80_bits():
    assert not set("ILOU") & set(BACKUP_CODE_ALPHABET)
    assert len(BACKUP_CODE_ALPHABET) == 32
    codes = {backup_code_new() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert re.fullmatch(r"(?:[0-9A-HJKMNP-TV-Z]{4}-){3}[0-9A-HJKMNP-TV-Z]{4}", code), code


@pytest.mark.parametrize(
    "typed",
    [
        "0123-4567-89AB-CDEF",
        "o123 4567 89ab cdef",
        "OI23456789ABCDEF",
        "0l23\u20134567\u201389ab\u2013cdef",
        " 0123.4567.89AB.CDEF ",
    ],
)
def test_a_current_code_is_accepted_as_typed(enrolled, typed):
    user, _device, _codes = enrolled
    add_code(user, "0123456789ABCDEF")
    result = two_factor_verify(user=user, code=typed, context=AuditContext())
    assert isinstance(result.device, BackupCodeDevice)
    assert not two_factor_verify(user=user, code=typed, context=AuditContext()).device


@pytest.mark.parametrize(
    "typed", ["BOIL-2345-67AB-CDEF", "b0il-2345-67ab-cdef", "8O1L 2345 67AB CDEF"]
)
def test_a_code_of_the_old_alphabet_still_works(enrolled, typed):
    """Codes handed out before the change (RFC 4648 base32, with O, I and L) keep working,
    also with 0 for O, 1 for I and 8 for B."""
    user, _device, _codes = enrolled
    add_code(user, "BOIL234567ABCDEF")
    assert isinstance(
        two_factor_verify(user=user, code=typed, context=AuditContext()).device, BackupCodeDevice
    )


def test_a_wrong_code_is_still_wrong(enrolled):
    user, _device, _codes = enrolled
    add_code(user, "0123456789ABCDEF")
    assert (
        two_factor_verify(user=user, code="0123-4567-89AB-CDEG", context=AuditContext()).device
        is None
    )


def test_code_and_phone_fields_bring_up_the_right_keyboard(client, enrolled):
    user, _device, _codes = enrolled
    signup = client.get(reverse("account_signup")).content.decode()
    assert re.search(r'<input[^>]*type="tel"[^>]*name="phone"', signup)
    assert re.search(
        r'<input[^>]*type="tel"[^>]*name="phone"',
        client.get(reverse("recover_email")).content.decode(),
    )
    assert re.search(
        r'<input[^>]*type="tel"[^>]*name="contact_phone"',
        client.get(reverse("recover_help")).content.decode(),
    )
    client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    verify = client.get(reverse("two_factor_verify")).content.decode()
    match = re.search(r'<input[^>]*name="code"[^>]*>', verify)
    assert match, verify
    field = match.group(0)
    assert 'autocomplete="one-time-code"' in field


def test_setup_page_offers_an_otpauth_link_and_a_numeric_code_field(client):
    user = UserFactory.create()
    client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    html = client.get(reverse("two_factor_setup")).content.decode()
    assert re.search(r'id="otpauth-link" href="otpauth://totp/[^"]+secret=', html)
    match = re.search(r'<input[^>]*name="code"[^>]*>', html)
    assert match, html
    field = match.group(0)
    assert 'inputmode="numeric"' in field and 'autocomplete="one-time-code"' in field


def test_backup_codes_page_offers_a_download_copy_and_print(client):
    user = UserFactory.create()
    client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    client.get(reverse("two_factor_setup"))
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.get(user=user)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    html = client.post(
        reverse("two_factor_setup"), {"code": f"{totp.token():06d}"}
    ).content.decode()
    codes = re.findall(r"<code>([0-9A-Z-]{19})</code>", html)
    assert len(codes) == 10
    download = re.search(
        r'id="download-codes" download="[^"]+\.txt" href="data:text/plain;charset=utf-8,([^"]+)"',
        html,
    )
    from urllib.parse import unquote

    assert download, html
    assert all(code in unquote(download.group(1)) for code in codes)
    assert 'id="copy-codes"' in html and 'id="print-codes"' in html
