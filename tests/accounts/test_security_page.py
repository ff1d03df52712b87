"""The signed-in customer's security page: status, backup codes, events, sessions."""

from __future__ import annotations

import re
import time

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from accounts.models import BackupCode, SecurityEvent
from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from tests.factories import UserFactory, customer_sign_in, totp_code

pytestmark = pytest.mark.django_db


def signed_in_client(user, device, at=None) -> Client:
    return customer_sign_in(Client(HTTP_USER_AGENT=f"Browser {at}"), user, device, at=at)


@pytest.fixture
def enrolled():
    user = UserFactory.create()
    device, codes = two_factor_provision(user=user, context=AuditContext(), notify=False)
    return user, device, codes


def test_page_shows_status_events_and_sessions(enrolled):
    user, device, _codes = enrolled
    client = signed_in_client(user, device)
    html = client.get(reverse("account_security")).content.decode()
    assert "On: an authenticator app protects your account." in html
    assert "10 backup codes left." in html
    assert "Two-factor authentication set up" in html
    assert "this device" in html


def test_regenerate_backup_codes_needs_a_current_code(
    enrolled, django_capture_on_commit_callbacks, mailoutbox
):
    user, device, old_codes = enrolled
    with time_machine.travel("2026-11-23 10:00:00", tick=False) as clock:
        client = signed_in_client(user, device)
        old_hashes = set(BackupCode.objects.values_list("code_hash", flat=True))

        refused = client.post(reverse("backup_codes_regenerate"), {"code": "000000"}, follow=True)
        assert "Backup codes were not changed" in refused.content.decode()
        assert set(BackupCode.objects.values_list("code_hash", flat=True)) == old_hashes

        clock.shift(30)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("backup_codes_regenerate"), {"code": totp_code(device)})
    assert response.status_code == 200
    new_codes = re.findall(r"<code>([0-9A-Z-]{19})</code>", response.content.decode())
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    assert not set(BackupCode.objects.values_list("code_hash", flat=True)) & old_hashes
    assert (
        SecurityEvent.objects.filter(account_id=user.pk, type="backup_codes_regenerated").count()
        == 1
    )
    assert any("New backup codes" in m.subject for m in mailoutbox)


def test_sign_out_everywhere_else_ends_other_sessions(enrolled):
    user, device, _codes = enrolled
    # The app's codes of two windows in a row, both from one start: read apart, the clock
    # could cross a window between them and make the second code two windows ahead.
    start = time.time()
    first = signed_in_client(user, device, start)
    second = signed_in_client(user, device, start + 30)
    assert second.get(reverse("account_security")).status_code == 200

    response = first.post(reverse("sessions_end_others"), follow=True)
    assert "Signed out of 1 other session(s)." in response.content.decode()
    assert first.get(reverse("account_security")).status_code == 200
    assert second.get(reverse("account_security")).status_code == 302
    assert SecurityEvent.objects.filter(account_id=user.pk, type="sessions_ended").count() == 1


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get(reverse("account_security"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
WINDOWS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)


def test_devices_are_named_and_sign_ins_listed_in_words(enrolled):
    """Sessions and sign-ins read "Mobile Safari on iOS (iPhone)", not a user-agent string,
    and a session seen a moment ago is not "0 minutes" ago."""
    user, device, _codes = enrolled
    with time_machine.travel("2026-11-23 10:00:00", tick=True):
        customer_sign_in(Client(HTTP_USER_AGENT=IPHONE), user, device)
    desktop = customer_sign_in(Client(HTTP_USER_AGENT=WINDOWS_CHROME), user, device)
    html = desktop.get(reverse("account_security")).content.decode()
    assert "Mobile Safari on iOS (iPhone)" in html
    assert "Chrome on Windows" in html
    assert "Mozilla/5.0" not in html.replace(f'title="{IPHONE}"', "").replace(
        f'title="{WINDOWS_CHROME}"', ""
    )
    assert "0\xa0minutes" not in html and "0 minutes" not in html
    sign_ins = re.search(r'id="sign-ins">(.*?)</section>', html, re.S)
    assert sign_ins, html
    assert sign_ins.group(1).count("<li>") == 2


def test_german_page_names_devices_in_german(enrolled):
    user, device, _codes = enrolled
    client = Client(HTTP_USER_AGENT=WINDOWS_CHROME, HTTP_ACCEPT_LANGUAGE="de")
    customer_sign_in(client, user, device)
    html = client.get(reverse("account_security")).content.decode()
    assert "Chrome auf Windows" in html
    assert "Letzte Anmeldungen" in html


def test_the_hold_is_a_countdown_for_the_reader_s_time_zone(enrolled):
    """The hold names UTC and the time left; the page carries the moment for the browser
    to show in the reader's own zone."""
    from datetime import timedelta

    from django.utils import timezone

    user, device, _codes = enrolled
    client = signed_in_client(user, device)
    until = timezone.now() + timedelta(hours=47, minutes=30)
    type(user).objects.filter(pk=user.pk).update(security_hold_until=until)
    html = client.get(reverse("account_security")).content.decode()
    assert "UTC (in 1\xa0day, 23\xa0hours)" in html
    assert f'data-until="{until.isoformat()}"' in html.replace("+00:00", "+00:00")
