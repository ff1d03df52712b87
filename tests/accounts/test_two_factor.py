"""Sign-in with mandatory 2FA: TOTP, replay, backup codes, throttling, first-time setup."""

from __future__ import annotations

import re

import pytest
import time_machine
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import BackupCode, SecurityEvent
from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from notifications.models import Notification
from tests.factories import PASSWORD, UserFactory, totp_code

pytestmark = pytest.mark.django_db


def sign_in(client, user):
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return response


@pytest.fixture
def enrolled():
    user = UserFactory.create()
    device, codes = two_factor_provision(user=user, context=AuditContext(), notify=False)
    return user, device, codes


def test_password_alone_reaches_no_signed_in_page(client, enrolled):
    user, _device, _codes = enrolled
    sign_in(client, user)
    response = client.get(reverse("account_security"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("two_factor_verify"))
    assert client.get(reverse("account_change_password"))["Location"].startswith(
        reverse("two_factor_verify")
    )


def test_correct_totp_code_passes_and_replay_is_refused(client, enrolled):
    user, device, _codes = enrolled
    sign_in(client, user)
    code = totp_code(device)
    response = client.post(reverse("two_factor_verify"), {"code": code})
    assert response.status_code == 302
    assert client.get(reverse("account_security")).status_code == 200

    other = client.__class__()
    sign_in(other, user)
    replay = other.post(reverse("two_factor_verify"), {"code": code})
    assert replay.status_code == 400
    assert "already used" in replay.content.decode()
    assert other.get(reverse("account_security")).status_code == 302


def test_wrong_code_fails(client, enrolled):
    user, device, _codes = enrolled
    sign_in(client, user)
    wrong = f"{(int(totp_code(device)) + 1) % 1_000_000:06d}"
    response = client.post(reverse("two_factor_verify"), {"code": wrong})
    assert response.status_code == 400
    assert client.get(reverse("account_security")).status_code == 302


def test_backup_code_works_once_and_is_notified(
    client, enrolled, sms_outbox, django_capture_on_commit_callbacks, mailoutbox
):
    user, _device, codes = enrolled
    sign_in(client, user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("two_factor_verify"), {"code": codes[0].lower()})
    assert response.status_code == 302
    assert BackupCode.objects.filter(device__user=user).count() == 9
    event = SecurityEvent.objects.get(account_id=user.pk, type="backup_code_used")
    assert {n.channel for n in Notification.objects.filter(security_event=event)} == {
        "email",
        "sms",
    }
    assert "A backup code was used" in mailoutbox[0].subject
    assert sms_outbox[0].to == user.phone

    client.post(reverse("account_logout"))
    sign_in(client, user)
    again = client.post(reverse("two_factor_verify"), {"code": codes[0]})
    assert again.status_code == 400


def test_failures_are_throttled(client, enrolled):
    """After wrong codes even the right code is refused until the back-off delay passes;
    only several wrong codes in a row are called "too many"."""
    user, device, _codes = enrolled
    sign_in(client, user)
    with time_machine.travel("2026-11-23 10:00:00", tick=False) as clock:
        for _ in range(3):
            client.post(reverse("two_factor_verify"), {"code": "000000"})
            clock.shift(10)
        client.post(reverse("two_factor_verify"), {"code": "000000"})
        right = client.post(reverse("two_factor_verify"), {"code": totp_code(device)})
        assert right.status_code == 400
        assert "Too many wrong codes. Try again in 8 seconds." in right.content.decode()
        clock.shift(60)
        right = client.post(reverse("two_factor_verify"), {"code": totp_code(device)})
        assert right.status_code == 302


def test_one_wrong_code_resubmitted_quickly_is_not_called_too_many(client, enrolled):
    """A double-click on a mistyped code meets the one-second back-off: the page says how
    long to wait, not that there were too many wrong codes."""
    user, _device, _codes = enrolled
    sign_in(client, user)
    with time_machine.travel("2026-11-23 10:00:00", tick=False):
        first = client.post(reverse("two_factor_verify"), {"code": "000000"})
        assert "This code is not valid" in first.content.decode()
        again = client.post(reverse("two_factor_verify"), {"code": "000000"})
    html = again.content.decode()
    assert again.status_code == 400
    assert "Too many" not in html
    assert "Wait 1 second before you try another code." in html


def test_signed_in_is_said_only_after_the_second_factor(client, enrolled):
    """allauth's "Successfully signed in as …" is not shown after the password alone."""
    user, device, _codes = enrolled
    sign_in(client, user)
    page = client.get(reverse("two_factor_verify"))
    assert "signed in" not in page.content.decode().lower()
    done = client.post(reverse("two_factor_verify"), {"code": totp_code(device)}, follow=True)
    assert "You are signed in." in done.content.decode()


def test_user_without_authenticator_sets_one_up(
    client, django_capture_on_commit_callbacks, mailoutbox
):
    """QR code as inline SVG, manual key, confirm with a code, then 10 backup codes once."""
    user = UserFactory.create()
    sign_in(client, user)
    assert client.get(reverse("two_factor_verify"))["Location"] == reverse("two_factor_setup")
    page = client.get(reverse("two_factor_setup"))
    html = page.content.decode()
    assert "<svg" in html and "<path" in html
    assert not re.search(r'(src|href)="https?://', html), "no third-party QR or asset"
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    key = re.search(r'id="manual-key" class="key">([A-Z2-7 ]+)<', html)
    assert key, html
    assert key.group(1).replace(" ", "") in device.config_url

    bad = client.post(reverse("two_factor_setup"), {"code": "12345"})
    assert bad.status_code == 400
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(reverse("two_factor_setup"), {"code": totp_code(device)})
    assert done.status_code == 200
    codes = re.findall(
        r"<code>((?:[0-9A-HJKMNP-TV-Z]{4}-){3}[0-9A-HJKMNP-TV-Z]{4})</code>", done.content.decode()
    )
    assert len(codes) == len(set(codes)) == 10
    stored = set(BackupCode.objects.filter(device__user=user).values_list("code_hash", flat=True))
    assert len(stored) == 10 and not stored & set(codes)
    assert SecurityEvent.objects.filter(account_id=user.pk, type="two_factor_enabled").exists()
    assert "Two-factor authentication was set up" in mailoutbox[0].subject
    assert client.get(reverse("account_security")).status_code == 200
    assert client.get(reverse("two_factor_setup"))["Location"] == reverse("account_security")


def test_flagged_user_cannot_re_enrol_with_password_alone(client):
    user = UserFactory.create(reenrolment_required=True)
    sign_in(client, user)
    response = client.get(reverse("two_factor_setup"))
    assert response.status_code == 302
    assert response["Location"] == "/recover/2fa/"
    assert not TOTPDevice.objects.filter(user=user).exists()


def test_next_parameter_cannot_leave_the_site(client, enrolled):
    user, device, _codes = enrolled
    sign_in(client, user)
    response = client.post(
        reverse("two_factor_verify") + "?next=https://evil.example/", {"code": totp_code(device)}
    )
    assert response["Location"] == reverse("account_security")


def test_second_device_setup_replaces_nothing_for_enrolled_user(client, enrolled):
    user, device, _codes = enrolled
    sign_in(client, user)
    client.post(reverse("two_factor_verify"), {"code": totp_code(device)})
    assert client.get(reverse("two_factor_setup"))["Location"] == reverse("account_security")
    assert list(TOTPDevice.objects.filter(user=user)) == [device]
