"""Two operators creating the same staff account at the same moment.

Two operators on shift both run `create_agent` for a new colleague. The second run must
say in words that the account exists, as it does when run after the first, and leave
nothing of its own behind: no second authenticator or backup codes for the account the
first run created, and no traceback.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User

pytestmark = pytest.mark.django_db(transaction=True)

EMAIL = "new.colleague@desk.example"


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


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
            connection.close()

    def second() -> None:
        try:
            call_command("create_agent", EMAIL, stdout=StringIO())
            outcomes["second"] = "created"
        except CommandError as exc:
            outcomes["second"] = str(exc)
        except Exception as exc:  # what escaped the command is the finding
            outcomes["second"] = f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()

    first_run = threading.Thread(target=first)
    first_run.start()
    assert created.wait(timeout=30)
    second_run = threading.Thread(target=second)
    second_run.start()
    deadline = timezone.now() + timedelta(seconds=30)
    while not _waiting_on_a_lock() and second_run.is_alive():
        assert timezone.now() < deadline, "the second run never waited for the first"
        time.sleep(0.01)
    commit.set()
    first_run.join(timeout=30)
    second_run.join(timeout=30)

    assert outcomes["second"] == f"An account with the email {EMAIL} already exists."
    user = User.objects.get(email=EMAIL)
    assert TOTPDevice.objects.filter(user=user).count() == 1
