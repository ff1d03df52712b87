"""The benchmark's compressed self-service waits: days pass in seconds in a benchmark build,
the announced hours stay the policy's, and production refuses to start with them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from recovery.models import SelfServiceRecovery
from recovery.tasks import self_service_apply_due_task
from tests.config.test_production_settings import ROOT, manage
from tests.factories import PASSWORD, totp_code
from tests.recovery.self_service_helpers import (
    ACCOUNT_EMAIL,
    ACCOUNT_PHONE,
    CODE_IN_EMAIL,
    CODE_IN_SMS,
    NEW_EMAIL,
    customer_account,
    last_code,
    lost_2fa,
    new_email,
)

Status = SelfServiceRecovery.Status
BACKUP_CODE = re.compile(r"<code>((?:[0-9A-HJKMNP-TV-Z]{4}-){3}[0-9A-HJKMNP-TV-Z]{4})</code>")
# A 24-hour wait is over in 0.9 s, a 72-hour one in 2.6 s: long enough to see the wait
# still running after the proofs on a busy machine, short enough for a fast test.
COMPRESSION = 100_000.0
PRODUCTION_SECRETS = {
    "DJANGO_SECRET_KEY": "x" * 20 + "a-long-random-production-secret-0123456789",
    "DJANGO_AUDIT_KEY": "y" * 20 + "a-long-random-audit-key-0123",
    "DJANGO_ALLOWED_HOSTS": "desk.example.com",
}


def wait_until_over(attempt: SelfServiceRecovery) -> None:
    """Real time passes until the compressed end of the wait (a few seconds at most)."""
    assert attempt.wait_ends_at is not None
    remaining = (attempt.wait_ends_at - timezone.now()).total_seconds()
    assert 0 < remaining < 5, remaining
    time.sleep(remaining + 0.05)


@pytest.mark.django_db
def test_a_compressed_lost_2fa_wait_elapses_and_the_customer_sets_up_a_new_authenticator(
    settings, capture, sms_outbox
):
    settings.SELF_SERVICE_WAIT_COMPRESSION = COMPRESSION
    user, old_codes = customer_account()
    path = lost_2fa(capture)
    assert path.start(identifier=ACCOUNT_EMAIL, password=PASSWORD).status_code == 302
    path.send("phone")
    path.verify("phone", last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS))
    attempt = path.attempt
    assert attempt.status == Status.WAITING
    assert attempt.wait_hours == 24, "the wait announced is the policy's"
    assert path.finish()["Location"] == reverse("recover_lost_2fa"), "not over yet"
    assert path.attempt.status == Status.WAITING

    wait_until_over(attempt)
    finished = path.finish()
    assert finished["Location"] == reverse("recover_lost_2fa_setup")
    assert path.client.get(finished["Location"]).status_code == 200
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    with capture():
        done = path.client.post(finished["Location"], {"code": totp_code(device)})
    new_codes = BACKUP_CODE.findall(done.content.decode())
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    assert path.attempt.status == Status.COMPLETED
    assert not User.objects.get(pk=user.pk).reenrolment_required


@pytest.mark.django_db
def test_a_compressed_new_email_wait_elapses_and_the_beat_task_applies_the_change(
    settings, capture, sms_outbox, mailoutbox
):
    settings.SELF_SERVICE_WAIT_COMPRESSION = COMPRESSION
    user, _codes = customer_account()
    path = new_email(capture)
    path.start(identifier=ACCOUNT_EMAIL, password=PASSWORD, new_email=NEW_EMAIL)
    path.verify("phone", last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS))
    path.verify("new_email", last_code(mailoutbox, to=[NEW_EMAIL], pattern=CODE_IN_EMAIL))
    attempt = path.attempt
    assert attempt.status == Status.WAITING and attempt.wait_hours == 72
    assert attempt.wait_ends_at is not None
    assert (attempt.wait_ends_at - timezone.now()) < timedelta(seconds=3)
    assert self_service_apply_due_task() == 0, "not over yet"

    wait_until_over(attempt)
    with capture():
        assert self_service_apply_due_task() == 1
    assert User.objects.get(pk=user.pk).email == NEW_EMAIL
    assert path.attempt.status == Status.COMPLETED


@pytest.mark.django_db
def test_an_uncompressed_wait_lasts_its_hours(capture, sms_outbox):
    customer_account()
    path = lost_2fa(capture)
    path.start(identifier=ACCOUNT_EMAIL, password=PASSWORD)
    path.send("phone")
    path.verify("phone", last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS))
    wait_ends_at = path.attempt.wait_ends_at
    assert wait_ends_at is not None
    remaining = wait_ends_at - timezone.now()
    assert timedelta(hours=23, minutes=59) < remaining <= timedelta(hours=24)


@pytest.mark.parametrize("value", ["1000", "1", "0.5"])
def test_production_refuses_to_start_with_a_wait_compression(value):
    """Any value at all, even one that would change nothing: the variable has no business in
    a production environment."""
    result = manage("check", DJANGO_BENCH_SELF_SERVICE_WAIT_COMPRESSION=value, **PRODUCTION_SECRETS)
    assert result.returncode != 0
    assert "DJANGO_BENCH_SELF_SERVICE_WAIT_COMPRESSION is for benchmark builds only" in (
        result.stderr
    )


def test_production_without_it_starts_and_waits_the_full_time():
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.SELF_SERVICE_WAIT_COMPRESSION)",
        **PRODUCTION_SECRETS,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "1.0"


def test_the_bench_build_refuses_a_compression_that_would_lengthen_waits():
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings.bench",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres",
        DJANGO_BENCH_SELF_SERVICE_WAIT_COMPRESSION="0.5",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "must be at least 1" in result.stderr
