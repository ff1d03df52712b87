"""Progress bars of the long commands: on stderr for a terminal, never in the results."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import RevocationCampaign
from tests.incidents.helpers import bulk_customers

pytestmark = pytest.mark.django_db


class Terminal(StringIO):
    """An output stream that says it is a terminal, as an operator's stderr is."""

    def isatty(self) -> bool:
        return True


def run(command: str, *args: str, stderr: StringIO) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out, stderr=stderr)
    return out.getvalue()


def test_revoke_2fa_draws_its_bar_on_a_terminal_stderr_and_keeps_json_clean():
    """With stderr on a terminal the revocation shows a bar there, counting every user, while
    stdout holds only the `--json` summary."""
    bulk_customers(30)
    terminal = Terminal()

    out = run(
        "revoke_2fa", "--all", "--reason", "drill", "--batch-size", "7", "--json", stderr=terminal
    )

    campaign = RevocationCampaign.objects.get()
    assert json.loads(out) == {
        "campaign": campaign.pk,
        "total": 30,
        "revoked_now": 30,
        "remaining": 0,
    }
    bar = terminal.getvalue()
    assert f"Campaign {campaign.pk}: 100%" in bar and "30/30" in bar
    assert "\x1b[" not in bar, "no error colouring on the bar"


def test_no_bar_when_stderr_is_not_a_terminal_or_with_no_progress():
    """Piped to a file, or with `--no-progress`, nothing is drawn at all."""
    bulk_customers(5)
    piped, quiet = StringIO(), Terminal()

    run("revoke_2fa", "--all", "--reason", "drill", "--batch-size", "2", stderr=piped)
    run("verify_audit", "--no-progress", stderr=quiet)

    assert piped.getvalue() == "" and quiet.getvalue() == ""


def test_verify_audit_counts_the_chain_on_its_bar():
    """`verify_audit` walks the chain with a bar that ends at the number of events checked."""
    bulk_customers(12)
    run("revoke_2fa", "--all", "--reason", "drill", "--batch-size", "5", stderr=StringIO())
    terminal = Terminal()

    out = run("verify_audit", stderr=terminal)

    assert out.splitlines()[0] == "Audit chain intact: 12 events."
    assert "Audit chain: 100%" in terminal.getvalue() and "12/12" in terminal.getvalue()
