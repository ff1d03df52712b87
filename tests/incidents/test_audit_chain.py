"""`manage.py verify_audit`: the security-event hash chain reveals edited and deleted rows."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from accounts.models import AuditChainHead, SecurityEvent, User
from accounts.services.audit import security_event_digest, security_event_record
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TRIGGER = "accounts_securityevent_append_only"


def verify() -> str:
    out = StringIO()
    call_command("verify_audit", stdout=out)
    return out.getvalue()


def as_superuser(sql: str, params: list | None = None) -> None:
    """What someone with the database owner's rights could do: bypass the append-only trigger."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending checks block ALTER TABLE
        cursor.execute(f"ALTER TABLE accounts_securityevent DISABLE TRIGGER {TRIGGER}")
        cursor.execute(sql, params or [])
        cursor.execute(f"ALTER TABLE accounts_securityevent ENABLE TRIGGER {TRIGGER}")


@pytest.fixture
def chain() -> list[SecurityEvent]:
    """Six events of three customers, seq 1..6 (no notices, so nothing references them)."""
    for user in UserFactory.create_batch(3, phone=None):
        security_event_record(user=user, type=SecurityEvent.Type.SIGNED_UP, notify=False)
        security_event_record(user=user, type=SecurityEvent.Type.PASSWORD_CHANGED, notify=False)
    events = list(SecurityEvent.objects.order_by("seq"))
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6]
    return events


def broken(match: str) -> CommandError:
    with pytest.raises(CommandError, match=match) as failure:
        verify()
    assert failure.value.returncode != 0, "the command exits non-zero"
    return failure.value


def test_an_empty_and_a_fresh_chain_verify():
    """No events, then events written one by one and by a mass revocation, all verify."""
    assert "Audit chain intact: 0 events." in verify()
    users = UserFactory.create_batch(3, phone=None)
    for user in users:
        security_event_record(user=user, type=SecurityEvent.Type.TWO_FACTOR_ENABLED)
    call_command("revoke_2fa", "--all", "--reason", "drill", "--batch-size", "2", stdout=StringIO())
    assert "Audit chain intact: 6 events." in verify()
    head = AuditChainHead.objects.get()
    assert head.seq == 6 and head.hash == SecurityEvent.objects.get(seq=6).hash


def test_erasing_an_account_keeps_the_chain_intact(chain):
    """Deleting a customer does not touch their events, so the chain still verifies."""
    User.objects.filter(pk=chain[2].account_id).delete()
    assert SecurityEvent.objects.count() == 6
    assert "Audit chain intact: 6 events." in verify()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("type", "'two_factor_enabled'"),
        ("details", """'{"via": "nothing happened"}'::jsonb"""),
        ("account_id", "account_id + 1"),
        ("ip_address", "'203.0.113.9'::inet"),
        ("created_at", "created_at - interval '1 day'"),
    ],
)
def test_an_edited_row_is_found_at_its_seq(chain, column, value):
    """Changing any audited field of event #3 breaks the chain exactly there."""
    as_superuser(f"UPDATE accounts_securityevent SET {column} = {value} WHERE seq = 3")  # noqa: S608
    error = broken(r"event #3: content was changed after it was written")
    assert "(2 events before it are intact)" in str(error)


def test_an_edit_that_recomputes_its_own_hash_breaks_the_next_link(chain):
    """Re-hashing the edited row is not enough: the next event still links to the old hash."""
    edited = SecurityEvent.objects.get(seq=3)
    edited.type = SecurityEvent.Type.TWO_FACTOR_ENABLED
    new_hash = security_event_digest(edited, edited.prev_hash)
    as_superuser(
        "UPDATE accounts_securityevent SET type = %s, hash = %s WHERE seq = 3",
        [edited.type, new_hash],
    )
    broken(r"event #4: does not link to the event before it")


def test_a_deleted_row_is_found_at_its_seq(chain):
    """A deleted event in the middle leaves a gap the walk reports by its number."""
    as_superuser("DELETE FROM accounts_securityevent WHERE seq = 3")
    broken(r"event #3: missing \(deleted\) event")


def test_a_deleted_last_event_is_found(chain):
    """Deleting the newest event leaves no gap, but the chain head no longer matches."""
    as_superuser("DELETE FROM accounts_securityevent WHERE seq = 6")
    assert SecurityEvent.objects.count() == 5
    broken(r"event #6: newest events missing")


def test_the_trigger_is_back_after_the_bypass(chain):
    """The helper re-enables the trigger: the application itself still cannot edit or delete."""
    as_superuser("UPDATE accounts_securityevent SET user_agent = 'x' WHERE seq = 1")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        SecurityEvent.objects.filter(seq=2).delete()
    broken(r"event #1: content was changed")
