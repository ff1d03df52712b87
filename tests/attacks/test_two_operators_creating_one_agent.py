"""Two operators creating the same staff account at the same moment.

Two operators on shift both run `create_agent` for a new colleague. The second run must
say in words that the account exists, as it does when run after the first, and leave
nothing of its own behind: no second authenticator or backup codes for the account the
first run created, and no traceback.
"""

from __future__ import annotations

import threading
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from tests.concurrency import in_thread, until_lock_waiters

pytestmark = pytest.mark.django_db(transaction=True)

EMAIL = "new.colleague@desk.example"


def test_the_second_of_two_simultaneous_create_agent_runs_is_refused_in_words():
    """The first run has written the account but not committed when the second starts;
    the second ends with the "already exists" error, and one authenticator exists."""
    created, commit = threading.Event(), threading.Event()
    outcomes: dict[str, object] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                call_command("create_agent", EMAIL, stdout=StringIO())
                created.set()
                assert commit.wait(timeout=30)
        finally:
            created.set()

    def second() -> str:
        try:
            call_command("create_agent", EMAIL, stdout=StringIO())
        except CommandError as exc:
            return str(exc)
        except Exception as exc:  # what escaped the command is the finding
            return f"{type(exc).__name__}: {exc}"
        return "created"

    first_run = in_thread(first, outcomes, "first")
    assert created.wait(timeout=30)
    second_run = in_thread(second, outcomes, "second")
    until_lock_waiters(1, unless_ended=second_run)
    commit.set()
    first_run.join(timeout=30)
    second_run.join(timeout=30)

    assert outcomes["second"] == f"An account with the email {EMAIL} already exists."
    user = User.objects.get(email=EMAIL)
    assert TOTPDevice.objects.filter(user=user).count() == 1
