"""A code's message and page tell how long that code really works, whatever it is set to."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import OneTimeCode
from accounts.services.holds import security_hold_extend
from tests.factories import PASSWORD, UserFactory
from tests.recovery.self_service_helpers import ACCOUNT_EMAIL, customer_account, lost_2fa

pytestmark = pytest.mark.django_db

TEN_MINUTES = re.compile(r"\b10 minutes\b|\b10 Minuten\b")


@pytest.fixture
def fifteen_minute_codes(settings):
    """An operator gave emailed codes 15 minutes (SPEC §4a allows up to 24 hours)."""
    settings.ONE_TIME_CODE_MINUTES = 15


def _minutes_left(code: OneTimeCode) -> float:
    return (code.expires_at - timezone.now()).total_seconds() / 60


@pytest.mark.parametrize("language", ["en", "de"])
def test_the_reenrolment_code_email_and_page_tell_the_codes_real_life(
    language, client, mailoutbox, django_capture_on_commit_callbacks, fifteen_minute_codes
):
    """The re-enrolment code lives 15 minutes here: its email and its page say 15, not 10."""
    user = UserFactory.create(
        email="revoked@example.com", reenrolment_required=True, language=language
    )
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = language
    assert (
        client.post(
            reverse("account_login"), {"login": user.email, "password": PASSWORD}
        ).status_code
        == 302
    )
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post(reverse("recover_2fa"), {"action": "send"})

    code = OneTimeCode.objects.get(user=user, purpose=OneTimeCode.Purpose.REENROLMENT)
    assert 14 < _minutes_left(code) <= 15
    [mail] = mailoutbox
    told = "15 minutes" if language == "en" else "15 Minuten"
    assert told in mail.body and not TEN_MINUTES.search(mail.body)
    html = str(mail.alternatives[0][0])
    assert told in html and not TEN_MINUTES.search(html)
    content = page.content.decode()
    assert told in content and not TEN_MINUTES.search(content)


def test_the_self_service_page_tells_the_life_of_the_code_it_sent(
    capture, mailoutbox, sms_outbox, fifteen_minute_codes
):
    """An emailed self-service code lives the setting's 15 minutes, a texted one at most
    10 (SMS secrets, NIST SP 800-63B-4): the page's "on its way" says which."""
    customer_account()
    path = lost_2fa(capture)
    assert path.start(identifier=ACCOUNT_EMAIL, password=PASSWORD).status_code == 302

    sent = path.send("email")
    emailed = path.client.get(sent["Location"]).content.decode()
    assert "It works for 15 minutes." in emailed
    assert "It works for 15 minutes." in mailoutbox[-1].body

    sent = path.send("phone")
    texted = path.client.get(sent["Location"]).content.decode()
    assert "It works for 10 minutes." in texted


def test_the_reenrolment_code_email_during_a_hold_does_not_ask_for_a_password_change_now(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    """After support's recovery the account sets up 2FA again while on hold, when its
    password cannot be changed: the code's email must not tell the owner to change it now
    without saying that the hold comes first."""
    user = UserFactory.create(email="recovered@example.com", reenrolment_required=True)
    security_hold_extend(user=user, hours=48)
    assert (
        client.post(
            reverse("account_login"), {"login": user.email, "password": PASSWORD}
        ).status_code
        == 302
    )
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("recover_2fa"), {"action": "send"})

    [mail] = mailoutbox
    assert "change it now and contact support" not in mail.body
    assert "as soon as the security hold on your account ends" in mail.body
