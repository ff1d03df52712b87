"""`manage.py revoke_2fa`: a declared, confirmed, resumable mass revocation of 2FA."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from datetime import datetime
from io import StringIO

import pytest
from allauth.usersessions.models import UserSession
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import (
    BackupCode,
    BackupCodeDevice,
    CampaignTarget,
    RevocationCampaign,
    SecurityEvent,
    User,
)
from notifications.models import Notification
from tests.incidents.helpers import bulk_customers, revoke_2fa_process, wait_for

pytestmark = pytest.mark.django_db

CAMPAIGN_TEMPLATE = "accounts/campaign_revocation"
REVOKED = SecurityEvent.Type.TWO_FACTOR_REVOKED


def revoke(*args: str) -> str:
    out = StringIO()
    call_command("revoke_2fa", *args, stdout=out)
    return out.getvalue()


def snapshot() -> dict[str, int]:
    """Everything a revocation writes or removes, counted."""
    return {
        "totp": TOTPDevice.objects.count(),
        "backup_devices": BackupCodeDevice.objects.count(),
        "backup_codes": BackupCode.objects.count(),
        "reenrolment": User.objects.filter(reenrolment_required=True).count(),
        "events": SecurityEvent.objects.count(),
        "notifications": Notification.objects.count(),
        "campaigns": RevocationCampaign.objects.count(),
        "targets": CampaignTarget.objects.count(),
        "sessions": Session.objects.count(),
    }


def users_file(tmp_path, lines: list[str]):
    path = tmp_path / "users.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_dry_run_prints_count_and_sample_and_changes_nothing():
    """--dry-run counts the customers (staff excluded), shows a sample and writes nothing."""
    users = bulk_customers(12, backup_codes=True)
    bulk_customers(1, prefix="staff", is_staff=True)
    before = snapshot()

    out = revoke("--all", "--dry-run")

    assert "Dry run: 12 users would lose their 2FA" in out
    sample = [line.strip() for line in out.splitlines()[1:11]]
    assert sample == [u.email for u in users[:10]]
    assert "Forecast:" in out
    assert "staff0@example.com" not in out
    parsed = json.loads(revoke("--all", "--dry-run", "--json"))
    assert parsed.pop("forecast")["selected"] == 12
    assert parsed == {
        "dry_run": True,
        "count": 12,
        "sample": [u.email for u in users[:10]],
        "unmatched": [],
    }
    assert snapshot() == before


def test_over_the_threshold_without_the_exact_confirm_refuses_and_changes_nothing(settings):
    """Above REVOKE_CONFIRM_THRESHOLD a run needs --confirm N with N the exact count."""
    settings.REVOKE_CONFIRM_THRESHOLD = 5
    bulk_customers(8)
    before = snapshot()

    with pytest.raises(CommandError, match="--confirm 8") as refused:
        revoke("--all", "--reason", "Authenticator seed leak")
    assert refused.value.returncode != 0
    with pytest.raises(CommandError, match="--confirm 8"):
        revoke("--all", "--reason", "Authenticator seed leak", "--confirm", "7")
    with pytest.raises(CommandError, match="--confirm 8"):
        revoke("--all", "--reason", "Authenticator seed leak", "--confirm", "9")

    assert snapshot() == before


def test_confirm_equal_to_the_count_runs(settings):
    """With --confirm N equal to the number of selected users the campaign runs to the end."""
    settings.REVOKE_CONFIRM_THRESHOLD = 5
    users = bulk_customers(8)

    summary = json.loads(
        revoke("--all", "--reason", "Authenticator seed leak", "--confirm", "8", "--json")
    )

    campaign = RevocationCampaign.objects.get()
    assert summary == {"campaign": campaign.pk, "total": 8, "revoked_now": 8, "remaining": 0}
    assert campaign.status == RevocationCampaign.Status.FINISHED
    assert campaign.reason == "Authenticator seed leak"
    assert not TOTPDevice.objects.filter(user__in=users).exists()


def test_below_the_threshold_no_confirm_is_needed(settings):
    """A small run (at or under the threshold) needs a reason but no --confirm."""
    settings.REVOKE_CONFIRM_THRESHOLD = 5
    bulk_customers(5)
    out = revoke("--all", "--reason", "Lost device batch")
    assert "revoked 5 now" in out
    assert SecurityEvent.objects.filter(type=REVOKED).count() == 5


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_a_reason_is_required(reason):
    """A new campaign without a (non-blank) --reason is refused before anything is written."""
    bulk_customers(3)
    before = snapshot()
    args = ["--all"] + ([] if reason is None else ["--reason", reason])
    with pytest.raises(CommandError, match="--reason is required"):
        revoke(*args)
    assert snapshot() == before


def test_a_selection_is_required():
    """Without --all, --users or a filter the command refuses rather than guessing."""
    bulk_customers(2)
    with pytest.raises(CommandError, match="Choose --all"):
        revoke("--reason", "x")
    assert not RevocationCampaign.objects.exists()


def test_users_file_with_ids_and_emails(tmp_path):
    """--users FILE takes ids and emails (any case, blank lines, unknowns); staff are skipped."""
    users = bulk_customers(6)
    staff = bulk_customers(1, prefix="staff", is_staff=True)[0]
    path = users_file(
        tmp_path,
        [
            str(users[0].pk),
            users[1].email.upper(),
            "",
            f"  {users[2].pk}  ",
            "nobody@example.com",
            staff.email,
        ],
    )

    summary = json.loads(revoke("--users", path, "--reason", "Phished list", "--json"))

    chosen = {users[0].pk, users[1].pk, users[2].pk}
    assert summary["total"] == 3 and summary["revoked_now"] == 3
    assert (
        set(SecurityEvent.objects.filter(type=REVOKED).values_list("account_id", flat=True))
        == chosen
    )
    assert set(TOTPDevice.objects.values_list("user_id", flat=True)) == {
        users[3].pk,
        users[4].pk,
        users[5].pk,
        staff.pk,
    }
    assert set(User.objects.filter(reenrolment_required=True).values_list("pk", flat=True)) == (
        chosen
    )


def test_missing_users_file_is_refused(tmp_path):
    """A --users path that does not exist is a clear error, not a silent empty campaign."""
    with pytest.raises(CommandError, match="No such file"):
        revoke("--users", str(tmp_path / "missing.txt"), "--reason", "x")
    assert not RevocationCampaign.objects.exists()


def test_joined_before_filter():
    """--joined-before DATE revokes only accounts created before that date."""
    old = bulk_customers(3, prefix="old", joined=timezone.make_aware(datetime(2020, 5, 1)))
    new = bulk_customers(4, prefix="new", joined=timezone.make_aware(datetime(2022, 5, 1)))

    assert "Dry run: 3 users" in revoke("--joined-before", "2021-01-01", "--dry-run")
    revoke("--joined-before", "2021-01-01", "--reason", "Legacy enrolment flaw")

    revoked = set(SecurityEvent.objects.filter(type=REVOKED).values_list("account_id", flat=True))
    assert revoked == {u.pk for u in old}
    assert set(TOTPDevice.objects.values_list("user_id", flat=True)) == {u.pk for u in new}
    with pytest.raises(CommandError, match="Not a date"):
        revoke("--joined-before", "last tuesday", "--reason", "x")


def test_last_login_before_filter():
    """--last-login-before DATE revokes the accounts not signed in since that date, and
    those never signed in at all; an account signed in later keeps its authenticator."""
    dormant = bulk_customers(2, prefix="dormant")
    never = bulk_customers(1, prefix="never")
    active = bulk_customers(3, prefix="active")
    User.objects.filter(pk__in=[u.pk for u in dormant]).update(
        last_login=timezone.make_aware(datetime(2021, 3, 1))
    )
    User.objects.filter(pk__in=[u.pk for u in active]).update(
        last_login=timezone.make_aware(datetime(2022, 3, 1))
    )

    assert "Dry run: 3 users" in revoke("--last-login-before", "2022-01-01", "--dry-run")
    revoke("--last-login-before", "2022-01-01", "--reason", "Stolen session cookies")

    revoked = set(SecurityEvent.objects.filter(type=REVOKED).values_list("account_id", flat=True))
    assert revoked == {u.pk for u in dormant + never}
    assert set(TOTPDevice.objects.values_list("user_id", flat=True)) == {u.pk for u in active}


def test_campaign_notices_contain_no_links_and_quote_their_reference(
    mailoutbox, django_capture_on_commit_callbacks
):
    """The campaign email tells people to open the site themselves: no URL, no <a>, a reference."""
    users = bulk_customers(4)
    with django_capture_on_commit_callbacks(execute=True):
        revoke("--all", "--reason", "Authenticator seed leak")

    assert sorted(m.to[0] for m in mailoutbox) == sorted(u.email for u in users)
    notices = {n.recipient: n for n in Notification.objects.filter(template_key=CAMPAIGN_TEMPLATE)}
    assert len(notices) == 4
    for message in mailoutbox:
        notice = notices[message.to[0]]
        html = dict((mime, content) for content, mime in message.alternatives)["text/html"]
        for part in (message.subject, message.body, html):
            assert "http" not in part.lower()
            assert "<a " not in part.lower()
            assert "www." not in part.lower()
        assert notice.reference in message.body
        assert notice.reference in html
        assert message.extra_headers["X-Recovery-Desk-Reference"] == notice.reference
        assert notice.status == Notification.Status.SENT
        assert notice.security_event is not None
        assert notice.security_event.type == REVOKED
        assert notice.security_event.account_id == notice.account_id


@pytest.mark.slow
def test_three_thousand_users_are_each_revoked_and_notified_exactly_once():
    """A large campaign removes every device, flags, signs out, and writes one event and notice
    per user; resuming the finished campaign changes nothing."""
    users = bulk_customers(3000, backup_codes=True)
    staff = bulk_customers(1, prefix="staff", is_staff=True)[0]
    signed_in, staff_client = Client(), Client()
    signed_in.force_login(users[1234])
    staff_client.force_login(staff)
    for client in (signed_in, staff_client):
        assert client.get("/recover/").status_code == 200  # a visit records the session
    customer_session = signed_in.session.session_key
    assert UserSession.objects.filter(session_key=customer_session).exists()
    ids = {u.pk for u in users}

    started = time.perf_counter()
    summary = json.loads(
        revoke("--all", "--reason", "Authenticator seed leak", "--confirm", "3000", "--json")
    )
    elapsed = time.perf_counter() - started
    print(f"\nrevoke_2fa over 3,000 users took {elapsed:.2f} s")

    campaign = RevocationCampaign.objects.get()
    assert summary == {"campaign": campaign.pk, "total": 3000, "revoked_now": 3000, "remaining": 0}
    assert not TOTPDevice.objects.filter(user_id__in=ids).exists()
    assert not BackupCodeDevice.objects.filter(user_id__in=ids).exists()
    assert not BackupCode.objects.filter(device__user_id__in=ids).exists()
    assert TOTPDevice.objects.filter(user_id=staff.pk).exists(), "staff are not customers"
    assert set(User.objects.filter(reenrolment_required=True).values_list("pk", flat=True)) == ids
    events = Counter(
        SecurityEvent.objects.filter(type=REVOKED).values_list("account_id", flat=True)
    )
    assert events == Counter(ids)
    notices = Notification.objects.filter(campaign=campaign)
    assert Counter(notices.values_list("account_id", flat=True)) == Counter(ids)
    assert set(notices.values_list("template_key", flat=True)) == {CAMPAIGN_TEMPLATE}
    assert notices.values("reference").distinct().count() == 3000
    assert not CampaignTarget.objects.filter(campaign=campaign).exists()
    # The revoked customer's session is gone; the staff member's is not.
    assert not Session.objects.filter(session_key=customer_session).exists()
    assert not UserSession.objects.filter(user_id__in=ids).exists()
    assert "_auth_user_id" not in signed_in.session
    assert "_auth_user_id" in staff_client.session

    again = json.loads(revoke("--resume", str(campaign.pk), "--json"))
    assert again["revoked_now"] == 0 and again["remaining"] == 0
    assert SecurityEvent.objects.filter(type=REVOKED).count() == 3000
    assert Notification.objects.filter(campaign=campaign).count() == 3000
    call_command("verify_audit", stdout=StringIO())


def _backends_of(application_name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            [application_name],
        )
        return cursor.fetchone()[0]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_killed_run_resumes_without_revoking_or_notifying_anyone_twice(db):
    """SIGKILL during a real `manage.py revoke_2fa` leaves whole batches done; --resume
    finishes the rest, and every user ends with exactly one event and one notice."""
    total, batch = 2000, 50
    users = bulk_customers(total)
    ids = {u.pk for u in users}
    name = "revoke_2fa_crash_test"

    process = revoke_2fa_process(
        "--all",
        "--reason",
        "Authenticator seed leak",
        "--confirm",
        str(total),
        "--batch-size",
        str(batch),
        application_name=name,
    )
    done = Notification.objects.filter(campaign__isnull=False)
    try:
        assert wait_for(lambda: done.count() > 0 or process.poll() is not None, timeout=60)
    finally:
        process.send_signal(signal.SIGKILL)
        _out, err = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL, err
    # PostgreSQL rolls back the batch the dead process had open and frees its locks.
    assert wait_for(lambda: _backends_of(name) == 0, timeout=20)

    campaign = RevocationCampaign.objects.get()
    done_before = done.count()
    print(f"\nrevoke_2fa killed after {done_before} of {total} users")
    assert 0 < done_before < total, "the kill should land mid-way; lower the batch size"
    assert done_before % batch == 0, "only whole batches are ever done"
    assert campaign.status == RevocationCampaign.Status.RUNNING
    assert SecurityEvent.objects.filter(type=REVOKED).count() == done_before
    assert CampaignTarget.objects.filter(campaign=campaign).count() == total - done_before
    assert TOTPDevice.objects.count() == total - done_before

    resumed = revoke_2fa_process(
        "--resume", str(campaign.pk), "--batch-size", str(batch), "--json", application_name=name
    )
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary == {
        "campaign": campaign.pk,
        "total": total,
        "revoked_now": total - done_before,
        "remaining": 0,
    }

    campaign.refresh_from_db()
    assert campaign.status == RevocationCampaign.Status.FINISHED
    assert not CampaignTarget.objects.exists()
    assert campaign.total == total
    events = Counter(
        SecurityEvent.objects.filter(type=REVOKED).values_list("account_id", flat=True)
    )
    assert events == Counter(ids)
    notices = Counter(
        Notification.objects.filter(campaign=campaign).values_list("account_id", flat=True)
    )
    assert notices == Counter(ids)
    assert not TOTPDevice.objects.exists()
    call_command("verify_audit", stdout=StringIO())
