"""`manage.py seed_demo` after the product has changed demo accounts, and what it prints last."""

from __future__ import annotations

import re
import sys

import pytest
from allauth.account.models import EmailAddress
from django.core.management import call_command
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import BackupCode, SecurityEvent, User
from accounts.services.audit import AuditContext
from accounts.services.users import user_email_change
from notifications.models import Notification
from support.models import CaseStatus, RecoveryCase

SIGN_IN_ROW = re.compile(r"^  \S+@\S+ +phone \+\d+ +key [A-Z2-7]{32}$")


def row_counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (
            User,
            EmailAddress,
            TOTPDevice,
            BackupCode,
            RecoveryCase,
            SecurityEvent,
            Notification,
        )
    }


def seed(capsys) -> list[str]:
    """Run the command as `make run` does and return everything it printed, in order.

    The command's own output and the console email and SMS backends share one stream, so
    the order of the lines is the order a terminal shows.
    """
    call_command("seed_demo", stdout=sys.stdout)
    return capsys.readouterr().out.splitlines()


@pytest.mark.django_db(transaction=True)
def test_a_second_run_after_an_email_change_adds_nothing_and_ends_with_the_sign_ins(
    settings, capsys
):
    """A demo customer whose login email was changed through the product is found again by
    its phone: the second run neither fails nor adds a row, and both runs end with the
    sign-in table, after every email and SMS the seeding sent."""
    settings.DEBUG = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    settings.SMS_BACKEND = "notifications.sms.backends.ConsoleBackend"

    first = seed(capsys)
    assert any(line.startswith("SMS to ") or line.startswith("Subject: ") for line in first)
    # Triage ran as each case committed; the demo customers then asked for an agent.
    assert RecoveryCase.objects.filter(status=CaseStatus.WAITING).count() == 10
    anna = User.objects.get(phone="+4915100000000")
    user_email_change(user=anna, new_email="anna.moved@example.org", context=AuditContext())
    capsys.readouterr()
    before = row_counts()

    second = seed(capsys)

    assert row_counts() == before
    assert User.objects.get(phone="+4915100000000").email == "anna.moved@example.org"
    assert not User.objects.filter(email="anna.00@gmail.com").exists()
    for output in (first, second):
        table = output[-7:]
        assert output[-8].startswith("Sign in at http://127.0.0.1:8000/accounts/login/")
        assert all(SIGN_IN_ROW.match(line) for line in table), table
        assert "agent@example.com" in table[0] and "supervisor@example.com" in table[1]
    assert "anna.moved@example.org" in second[-5]
