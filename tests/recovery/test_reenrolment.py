"""/recover/2fa/: after a revocation, password + emailed code + new authenticator, then a hold."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import BackupCode, SecurityEvent, User
from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from notifications.models import CONTEXT_REMOVED, Notification
from tests.factories import PASSWORD, UserFactory, totp_code

pytestmark = pytest.mark.django_db

CODE_IN_EMAIL = re.compile(r"again is (\d{6})\b")
BACKUP_CODE = re.compile(r"<code>((?:[0-9A-HJKMNP-TV-Z]{4}-){3}[0-9A-HJKMNP-TV-Z]{4})</code>")


def sign_in(client, user):
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return response


@pytest.fixture
def flagged():
    """A customer whose 2FA was revoked in an incident: no device, re-enrolment required."""
    return UserFactory.create(email="revoked@example.com", reenrolment_required=True)


def send_code(client, mailoutbox, capture) -> str:
    mailoutbox.clear()
    with capture(execute=True):
        response = client.post(reverse("recover_2fa"), {"action": "send"})
    assert response.status_code == 200
    assert len(mailoutbox) == 1
    match = CODE_IN_EMAIL.search(mailoutbox[0].body)
    assert match, mailoutbox[0].body
    return match.group(1)


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_password_alone_never_reaches_the_account_or_a_new_authenticator(client, flagged):
    """Signed in with the password only, the customer is sent to /recover/2fa/ and cannot
    set up an authenticator through the normal setup page."""
    sign_in(client, flagged)
    security = client.get(reverse("account_security"), follow=True)
    assert security.redirect_chain[-1][0] == reverse("recover_2fa")
    assert "Set up two-factor authentication again" in security.content.decode()

    setup = client.get(reverse("two_factor_setup"))
    assert setup.status_code == 302
    assert setup["Location"] == reverse("recover_2fa")
    posted = client.post(reverse("two_factor_setup"), {"code": "123456"})
    assert posted["Location"] == reverse("recover_2fa")
    # Nor can the re-enrolment setup step be skipped to.
    assert client.get(reverse("recover_2fa_setup"))["Location"] == reverse("recover_2fa")
    assert not TOTPDevice.objects.filter(user=flagged).exists()


def test_signed_out_visitor_is_sent_to_sign_in(client):
    """The page needs the password first."""
    response = client.get(reverse("recover_2fa"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_send_emails_a_six_digit_code_to_the_account_address(
    client, flagged, mailoutbox, sms_outbox, django_capture_on_commit_callbacks
):
    """The code goes to the address on the account (never a typed one), and only by email."""
    sign_in(client, flagged)
    code = send_code(client, mailoutbox, django_capture_on_commit_callbacks)
    assert re.fullmatch(r"\d{6}", code)
    assert mailoutbox[0].to == ["revoked@example.com"]
    assert sms_outbox == []
    notification = Notification.objects.get(template_key="recovery/reenrolment_code")
    assert notification.status == Notification.Status.SENT
    assert set(notification.context.values()) == {CONTEXT_REMOVED}, "the code does not stay"


def test_wrong_code_is_refused(client, flagged, mailoutbox, django_capture_on_commit_callbacks):
    """A wrong code gives a 400 with a clear message and does not open the setup step."""
    sign_in(client, flagged)
    code = send_code(client, mailoutbox, django_capture_on_commit_callbacks)
    response = client.post(reverse("recover_2fa"), {"action": "verify", "code": other_code(code)})
    assert response.status_code == 400
    assert "This code is not right" in response.content.decode()
    assert client.get(reverse("recover_2fa_setup"))["Location"] == reverse("recover_2fa")

    malformed = client.post(reverse("recover_2fa"), {"action": "verify", "code": "12ab"})
    assert malformed.status_code == 400
    assert "Enter the 6 digits" in malformed.content.decode()


def test_after_five_wrong_codes_even_the_right_one_is_refused(
    client, flagged, mailoutbox, django_capture_on_commit_callbacks
):
    """Five attempts per code: the sixth try fails whatever it is."""
    sign_in(client, flagged)
    code = send_code(client, mailoutbox, django_capture_on_commit_callbacks)
    for _ in range(5):
        wrong = client.post(reverse("recover_2fa"), {"action": "verify", "code": other_code(code)})
        assert wrong.status_code == 400
    right = client.post(reverse("recover_2fa"), {"action": "verify", "code": code})
    assert right.status_code == 400
    assert "can no longer be used" in right.content.decode()
    assert client.get(reverse("recover_2fa_setup"))["Location"] == reverse("recover_2fa")


def test_expired_code_is_refused(client, flagged, mailoutbox, django_capture_on_commit_callbacks):
    """A code is good for ten minutes only."""
    with time_machine.travel("2026-05-04 12:00:00", tick=False) as clock:
        sign_in(client, flagged)
        code = send_code(client, mailoutbox, django_capture_on_commit_callbacks)
        clock.shift(timedelta(minutes=10, seconds=1))
        response = client.post(reverse("recover_2fa"), {"action": "verify", "code": code})
    assert response.status_code == 400
    assert "expired" in response.content.decode()


def test_full_re_enrolment_sets_up_a_new_authenticator_and_a_hold(
    client, flagged, mailoutbox, sms_outbox, django_capture_on_commit_callbacks
):
    """Password, emailed code, QR + manual key, confirming TOTP code, 10 backup codes once;
    then the flag is cleared, the change is recorded, every contact is told and the account
    is on a 24-hour security hold that the security page shows."""
    sign_in(client, flagged)
    code = send_code(client, mailoutbox, django_capture_on_commit_callbacks)
    response = client.post(reverse("recover_2fa"), {"action": "verify", "code": code})
    assert response.status_code == 302
    assert response["Location"] == reverse("recover_2fa_setup")

    page = client.get(reverse("recover_2fa_setup"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "<svg" in html and "<path" in html
    assert not re.search(r'(src|href)="https?://', html), "QR code is rendered locally"
    device = TOTPDevice.objects.get(user=flagged, confirmed=False)
    key = re.search(r'id="manual-key" class="key">([A-Z2-7 ]+)<', html)
    assert key, html
    assert key.group(1).replace(" ", "") in device.config_url

    with time_machine.travel(timezone.now(), tick=False) as clock:
        bad = client.post(reverse("recover_2fa_setup"), {"code": other_code(totp_code(device))})
        assert bad.status_code == 400
        assert "did not match" in bad.content.decode()
        clock.shift(2)  # django-otp throttles a device for a second after a wrong code

        mailoutbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            done = client.post(reverse("recover_2fa_setup"), {"code": totp_code(device)})
    assert done.status_code == 200
    codes = BACKUP_CODE.findall(done.content.decode())
    assert len(codes) == len(set(codes)) == 10
    assert BackupCode.objects.filter(device__user=flagged).count() == 10

    user = User.objects.get(pk=flagged.pk)
    assert user.reenrolment_required is False
    assert TOTPDevice.objects.get(user=user).confirmed
    event = SecurityEvent.objects.get(account_id=user.pk, type="two_factor_reenrolled")
    notices = Notification.objects.filter(security_event=event)
    assert {(n.channel, n.recipient, n.status) for n in notices} == {
        ("email", user.email, "sent"),
        ("sms", user.phone, "sent"),
    }
    assert any(m.to == [user.email] and "set up again" in m.subject for m in mailoutbox), [
        m.subject for m in mailoutbox
    ]
    assert any(m.to == user.phone and "set up again" in m.body for m in sms_outbox)

    expected_hold = timezone.now() + timedelta(hours=24)
    assert user.security_hold_until is not None
    assert abs(user.security_hold_until - expected_hold) < timedelta(minutes=1)
    assert user.on_security_hold

    security = client.get(reverse("account_security"))
    assert security.status_code == 200
    assert "Security hold until" in security.content.decode()
    # Done once: the re-enrolment pages are closed now.
    assert client.get(reverse("recover_2fa"))["Location"] == reverse("account_security")
    assert client.get(reverse("recover_2fa_setup"))["Location"] == reverse("recover_2fa")


def test_user_not_flagged_without_authenticator_goes_to_normal_setup(client):
    """/recover/2fa/ is only for revoked accounts; a new customer sets 2FA up as usual."""
    user = UserFactory.create()
    sign_in(client, user)
    response = client.get(reverse("recover_2fa"))
    assert response.status_code == 302
    assert response["Location"] == reverse("two_factor_setup")
    assert client.post(reverse("recover_2fa"), {"action": "send"})["Location"] == reverse(
        "two_factor_setup"
    )


def test_user_not_flagged_with_authenticator_goes_to_security_page(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    """Someone with a working authenticator cannot restart enrolment here, nor get a code."""
    user = UserFactory.create()
    two_factor_provision(user=user, context=AuditContext(), notify=False)
    sign_in(client, user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("recover_2fa"), {"action": "send"})
    assert response.status_code == 302
    assert response["Location"] == reverse("account_security")
    assert mailoutbox == []
    assert not SecurityEvent.objects.filter(
        account_id=user.pk, type="two_factor_reenrolled"
    ).exists()
