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
from tests.factories import PASSWORD, UserFactory, totp_code

pytestmark = pytest.mark.django_db


def signed_in_client(user, device, at=None) -> Client:
    client = Client(HTTP_USER_AGENT=f"Browser {at}")
    client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    response = client.post(reverse("two_factor_verify"), {"code": totp_code(device, at)})
    assert response.status_code == 302
    return client


@pytest.fixture
def enrolled():
    user = UserFactory()
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
    first = signed_in_client(user, device, time.time())
    second = signed_in_client(user, device, time.time() + 30)
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
