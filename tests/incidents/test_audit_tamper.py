"""The database owner tampers with the audit; the keyed chain and signed checkpoints reveal it.

Every attacker here holds the database owner's rights (the test database's user owns the
tables): they can switch off the append-only trigger, rewrite, delete, reorder and truncate
events, move the chain head, and run the project's own code. What they do not hold is the
audit key (`DJANGO_AUDIT_KEY`), which lives outside the database, nor write access to the
checkpoint directory, except where a test says so.
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from celery import current_app
from celery.schedules import crontab
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from accounts.models import AuditChainHead, SecurityEvent
from accounts.services.audit import (
    AuditKey,
    _legacy_digest,
    audit_key_current,
    security_event_digest,
    security_event_record,
    security_events_append_many,
)
from accounts.services.audit_checkpoint import audit_checkpoint_parse
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TRIGGER = "accounts_securityevent_append_only"
ATTACKER_KEY = "the-attackers-own-guess-at-an-audit-key-0123456789"
OLD_KEY = "the-audit-key-before-the-rotation-0123456789abcdef"
NEW_KEY = "the-audit-key-after-the-rotation-0123456789abcdef0"


def as_owner(*statements: tuple[str, list] | str) -> None:
    """Run SQL as the table owner would: with the append-only trigger switched off."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending checks block ALTER TABLE
        cursor.execute(f"ALTER TABLE accounts_securityevent DISABLE TRIGGER {TRIGGER}")
        for statement in statements:
            sql, params = statement if isinstance(statement, tuple) else (statement, [])
            cursor.execute(sql, params)
        cursor.execute(f"ALTER TABLE accounts_securityevent ENABLE TRIGGER {TRIGGER}")


def head_set(seq: int, hash: str, **extra: int) -> None:
    """The chain head is an ordinary row: its owner (and the app's role) can move it."""
    AuditChainHead.objects.filter(pk=1).update(seq=seq, hash=hash, **extra)


def verify(*args: str) -> str:
    out = StringIO()
    call_command("verify_audit", "--no-progress", *args, stdout=out)
    return out.getvalue()


def broken(match: str, *args: str) -> str:
    with pytest.raises(CommandError, match=match) as failure:
        verify(*args)
    assert failure.value.returncode != 0, "the command exits non-zero"
    return str(failure.value)


def against(directory: Path) -> list[str]:
    return ["--checkpoints", str(directory)]


def checkpoint(directory: Path) -> Path:
    out = StringIO()
    call_command("audit_checkpoint", "--dir", str(directory), "--json", stdout=out)
    return Path(json.loads(out.getvalue())["file"])


@pytest.fixture
def checkpoints(tmp_path) -> Path:
    return tmp_path / "checkpoints"


@pytest.fixture
def chain(checkpoints) -> list[SecurityEvent]:
    """Six events of three customers, seq 1..6, and a checkpoint of the head at #6."""
    for user in UserFactory.create_batch(3, phone=None):
        security_event_record(user=user, type=SecurityEvent.Type.SIGNED_UP, notify=False)
        security_event_record(user=user, type=SecurityEvent.Type.PASSWORD_CHANGED, notify=False)
    events = list(SecurityEvent.objects.order_by("seq"))
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6]
    checkpoint(checkpoints)
    assert "Audit chain intact: 6 events." in verify(*against(checkpoints))
    return events


def rewrite_from(seq: int, *, key: str | None, key_id: str | None = None) -> None:
    """Change event `seq`'s type and recompute every later link with the project's digest.

    `key` is the audit key the attacker hashes with (None: the legacy plain SHA-256, key id
    empty); `key_id` the id they write on the rows (by default their key's own id).
    """
    events = list(SecurityEvent.objects.filter(seq__gte=seq).order_by("seq"))
    events[0].type = SecurityEvent.Type.TWO_FACTOR_REVOKED
    prev_hash = events[0].prev_hash
    statements: list[tuple[str, list] | str] = []
    for event in events:
        event.prev_hash = prev_hash
        if key is None:
            event.key_id = ""
            event.hash = security_event_digest(event, prev_hash)
        else:
            attacker_key = AuditKey.from_secret(key)
            event.key_id = key_id or attacker_key.key_id
            event.hash = security_event_digest(
                event, prev_hash, keyring={event.key_id: attacker_key}
            )
        statements.append(
            (
                "UPDATE accounts_securityevent SET type = %s, prev_hash = %s, hash = %s,"
                " key_id = %s WHERE seq = %s",
                [event.type, event.prev_hash, event.hash, event.key_id, event.seq],
            )
        )
        prev_hash = event.hash
    as_owner(*statements)
    assert events[-1].seq is not None
    head_set(events[-1].seq, prev_hash)


def test_truncating_the_events_and_resetting_the_head_is_caught_by_the_checkpoint(
    chain, checkpoints
):
    """Attack: TRUNCATE the event table and reset the head to an empty chain.

    What is left is an empty chain, which is intact on its own; the checkpoint outside the
    database says there were six events.
    """
    as_owner("TRUNCATE accounts_securityevent CASCADE")
    head_set(0, "")
    assert "Audit chain intact: 0 events." in verify(), "the chain alone cannot tell"

    error = broken(r"event #1: missing: checkpoint audit-.*\.json", *against(checkpoints))
    assert "covers events up to #6, the chain ends at #0" in error


def test_truncating_and_writing_new_events_over_the_old_positions_is_caught(chain, checkpoints):
    """Attack: truncate and reset the head, then let the app write seven fresh events.

    The new chain is longer than the checkpoint and fully keyed (the app made it), but the
    event at the checkpoint's position is not the one the checkpoint signed.
    """
    as_owner("TRUNCATE accounts_securityevent CASCADE")
    head_set(0, "")
    security_events_append_many(
        account_ids=[chain[0].account_id] * 7,
        type=SecurityEvent.Type.TWO_FACTOR_REVOKED,
        details={"campaign": 1},
    )
    assert "Audit chain intact: 7 events." in verify()

    broken(r"event #6: differs from checkpoint audit-", *against(checkpoints))


def test_deleting_the_newest_event_and_moving_the_head_back_is_caught(chain, checkpoints):
    """Attack: DELETE the newest event and set the head to the one before it.

    The shorter chain links and hashes correctly, and the head matches it; the checkpoint
    covers event #6, which is gone.
    """
    as_owner("DELETE FROM accounts_securityevent WHERE seq = 6")
    head_set(5, chain[4].hash)
    assert "Audit chain intact: 5 events." in verify(), "the chain alone cannot tell"

    error = broken(r"event #6: missing: checkpoint", *against(checkpoints))
    assert "the chain ends at #5 (events deleted or truncated)" in error


def test_rewriting_an_event_and_recomputing_later_hashes_without_the_key_is_caught(chain):
    """Attack: edit event #3 and recompute #3..#6 and the head with `security_event_digest`.

    Without the audit key the attacker hashes with a key of their own. Whether they label the
    rows with their key's id or keep the real one, the HMACs are not the audit key's, and
    verification fails at the edited event even with no checkpoint at all.
    """
    rewrite_from(3, key=ATTACKER_KEY)
    broken(r"event #3: made with an unknown audit key")

    rewrite_from(3, key=ATTACKER_KEY, key_id=audit_key_current().key_id)
    broken(r"event #3: content was changed after it was written")


def test_rewriting_as_plain_hashes_is_caught(chain, checkpoints):
    """Attack: edit event #3 and recompute #3..#6 as legacy events (plain SHA-256, no key id).

    Plain hashes are accepted only up to the legacy boundary (here none: every event was
    keyed) and never after a keyed event, so the rewrite fails at once, even when the
    attacker also raises the head's legacy boundary.
    """
    rewrite_from(3, key=None)
    broken(r"event #3: carries a plain hash, not an HMAC")

    head_set(6, SecurityEvent.objects.get(seq=6).hash, legacy_until=6)
    broken(r"event #3: carries a plain hash after keyed events")
    broken(r"event #3: carries a plain hash, not an HMAC", *against(checkpoints))


def test_rewriting_the_whole_chain_as_legacy_and_moving_the_boundary_is_caught(chain, checkpoints):
    """Attack: rewrite all events as legacy ones and raise the head's legacy boundary to #6.

    Inside the database that is indistinguishable from a chain written before the audit key
    existed; the checkpoint holds the real hash at #6 and the real boundary.
    """
    rewrite_from(1, key=None)
    head_set(6, SecurityEvent.objects.get(seq=6).hash, legacy_until=6)
    assert "Audit chain intact: 6 events." in verify(), "the chain alone cannot tell"

    broken(r"event #1: carries a plain hash", *against(checkpoints))


def test_rewriting_with_a_leaked_key_is_caught_by_the_checkpoint(chain, checkpoints):
    """Attack: the audit key leaked too; edit #3 and recompute #3..#6 with the real key.

    The chain alone is then indistinguishable from the truth; the checkpoint written before
    the rewrite still holds the old hash of #6.
    """
    rewrite_from(3, key=django_settings.AUDIT_KEY)
    assert "Audit chain intact: 6 events." in verify(), "the chain alone cannot tell"

    broken(r"event #6: differs from checkpoint audit-", *against(checkpoints))


@pytest.mark.parametrize("keep_links", [False, True], ids=["swap-rows", "swap-keeping-links"])
def test_reordering_two_events_is_caught(chain, checkpoints, keep_links):
    """Attack: swap the positions of events #2 and #4.

    Moving the rows breaks the links; moving them but leaving each position's prev_hash and
    hash where they were keeps the links, but the HMAC covers the position.
    """
    columns = ", prev_hash = %s, hash = %s" if keep_links else ""

    def move(event: SecurityEvent, to: SecurityEvent) -> tuple[str, list]:
        params = [to.seq] + ([to.prev_hash, to.hash] if keep_links else [])
        return (
            f"UPDATE accounts_securityevent SET seq = %s{columns} WHERE id = %s",  # noqa: S608
            [*params, event.pk],
        )

    second, fourth = chain[1], chain[3]
    as_owner(
        ("UPDATE accounts_securityevent SET seq = 0 WHERE id = %s", [second.pk]),
        move(fourth, second),
        move(second, fourth),
    )

    problem = "content was changed" if keep_links else "does not link to the event before it"
    broken(rf"event #2: {problem}")
    broken(rf"event #2: {problem}", *against(checkpoints))


def test_a_forged_or_edited_checkpoint_is_refused(chain, checkpoints):
    """Attack: also write to the checkpoint directory, to make a truncated chain look right.

    An edited file (the head moved back to #5), a file signed with the attacker's own key,
    and one signed with a key that claims the real key's id are all refused by name, and so
    is anything that is not a checkpoint.
    """
    as_owner("DELETE FROM accounts_securityevent WHERE seq = 6")
    head_set(5, chain[4].hash)
    original = next(checkpoints.glob("*.json"))
    document = json.loads(original.read_text())

    edited = {**document, "seq": 5, "count": 5, "hash": chain[4].hash}
    original.write_text(json.dumps(edited))
    broken(rf"Checkpoint refused: {original.name} .*bad signature", *against(checkpoints))

    with override_settings(AUDIT_KEY=ATTACKER_KEY):
        original.unlink()
        forged = checkpoint(checkpoints)
    broken(rf"Checkpoint refused: {forged.name} .*unknown audit key", *against(checkpoints))

    claimed = {**json.loads(forged.read_text()), "key_id": audit_key_current().key_id}
    forged.write_text(json.dumps(claimed))
    broken(r"bad signature \(the file was edited or forged\)", *against(checkpoints))

    forged.write_text("{not json")
    broken(r"not valid JSON", *against(checkpoints))
    forged.unlink()
    broken(r"No checkpoints in", *against(checkpoints))


def test_a_genuine_checkpoint_parses_and_an_edited_one_does_not(chain, checkpoints):
    """Each signed field counts: changing any of them, or adding one, voids the signature."""
    text = next(checkpoints.glob("*.json")).read_text()
    parsed = audit_checkpoint_parse(text, name="c.json")
    assert (parsed.seq, parsed.count, parsed.hash) == (6, 6, chain[5].hash)
    document = json.loads(text)
    for field, value in [
        ("seq", 7),
        ("count", 5),
        ("hash", "0" * 64),
        ("legacy_until", 6),
        ("created_at", "2020-01-01T00:00:00+00:00"),
        ("extra", 1),
    ]:
        with pytest.raises(ValueError, match=r"bad signature|unexpected fields"):
            audit_checkpoint_parse(json.dumps({**document, field: value}), name="c.json")


def test_events_made_with_an_old_key_verify_with_it_as_a_fallback_and_fail_without_it(
    checkpoints,
):
    """Rotation: new events use the new key; old events and checkpoints need the old key listed."""
    users = UserFactory.create_batch(2, phone=None)
    with override_settings(AUDIT_KEY=OLD_KEY, AUDIT_KEY_FALLBACKS=[]):
        security_event_record(user=users[0], type=SecurityEvent.Type.SIGNED_UP, notify=False)
        checkpoint(checkpoints)
        old_id = audit_key_current().key_id
    with override_settings(AUDIT_KEY=NEW_KEY, AUDIT_KEY_FALLBACKS=[OLD_KEY]):
        security_event_record(user=users[1], type=SecurityEvent.Type.SIGNED_UP, notify=False)
        security_events_append_many(
            account_ids=[u.pk for u in users],
            type=SecurityEvent.Type.TWO_FACTOR_REVOKED,
            details={},
        )
        checkpoint(checkpoints)
        new_id = audit_key_current().key_id
        assert "Audit chain intact: 4 events." in verify(*against(checkpoints))
    assert old_id != new_id
    assert list(SecurityEvent.objects.order_by("seq").values_list("key_id", flat=True)) == [
        old_id,
        new_id,
        new_id,
        new_id,
    ]

    with override_settings(AUDIT_KEY=NEW_KEY, AUDIT_KEY_FALLBACKS=[]):
        broken(rf"event #1: made with an unknown audit key \(key id {old_id}\)")
        broken(r"signed with an unknown audit key", *against(checkpoints))


def test_legacy_events_from_before_the_key_still_verify_and_only_before_it(checkpoints):
    """Events written before the chain was keyed (plain SHA-256, no key id) verify as legacy.

    The migration sets the boundary at the newest of them; keyed events follow; a plain
    event after the boundary is refused.
    """
    from importlib import import_module

    from django.apps import apps

    user = UserFactory(phone=None)
    prev_hash = ""
    for seq in (1, 2):
        event = SecurityEvent(
            seq=seq, account_id=user.pk, type=SecurityEvent.Type.SIGNED_UP, key_id=""
        )
        event.hash = _legacy_digest(
            prev_hash,
            [seq, user.pk, event.type, None, None, "", {}, event.created_at.isoformat()],
        )
        event.prev_hash, prev_hash = prev_hash, event.hash
        event.save()
    AuditChainHead.objects.create(pk=1, seq=2, hash=prev_hash)
    migrations = import_module("accounts.migrations")
    assert migrations.__file__ is not None
    (migration,) = Path(migrations.__file__).parent.glob("*_audit_key_id.py")
    import_module(f"accounts.migrations.{migration.stem}").legacy_boundary_set(apps, None)
    assert AuditChainHead.objects.get().legacy_until == 2

    security_event_record(user=user, type=SecurityEvent.Type.PASSWORD_CHANGED, notify=False)
    checkpoint(checkpoints)
    out = verify(*against(checkpoints))
    assert "Audit chain intact: 3 events." in out and "2 legacy events" in out

    third = SecurityEvent.objects.get(seq=3)
    third.key_id = ""
    as_owner(
        (
            "UPDATE accounts_securityevent SET key_id = '', hash = %s WHERE seq = 3",
            [security_event_digest(third, third.prev_hash)],
        )
    )
    head_set(3, security_event_digest(third, third.prev_hash))
    broken(r"event #3: carries a plain hash.*only events up to #2 predate the keyed chain")


def test_the_beat_task_writes_a_checkpoint_every_five_minutes(chain, settings, tmp_path):
    """Beat runs `audit_checkpoint_task` every five minutes; it writes a verifiable file."""
    entry = next(
        e
        for e in settings.CELERY_BEAT_SCHEDULE.values()
        if e["task"] == "accounts.tasks.audit_checkpoint_task"
    )
    assert entry["schedule"] == crontab(minute="*/5")
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "beat"

    current_app.loader.import_default_modules()  # what a worker does at start: autodiscovery
    current_app.tasks["accounts.tasks.audit_checkpoint_task"].delay()

    (written,) = (tmp_path / "beat").glob("*.json")
    assert audit_checkpoint_parse(written.read_text(), name=written.name).seq == 6
    assert "Holds all 1 checkpoints" in verify(*against(tmp_path / "beat"))


def test_the_chain_hashes_are_hmacs_under_the_audit_key(chain):
    """A stored hash is the HMAC of its content under the configured key, not a plain digest."""
    event = chain[2]
    assert event.key_id == audit_key_current().key_id
    with override_settings(AUDIT_KEY=ATTACKER_KEY):
        other = AuditKey.from_secret(ATTACKER_KEY)
        assert security_event_digest(event, event.prev_hash, keyring={event.key_id: other}) != (
            event.hash
        )
    assert security_event_digest(event, event.prev_hash) == event.hash


def test_a_checkpoint_taken_while_an_event_was_hidden_does_not_match_its_count(tmp_path, chain):
    """Attack: hide event #3 while a checkpoint is taken, then put it back.

    The chain is whole again, and the head and hash at #6 are the real ones, but the
    checkpoint counted five events up to #6: the count it signed gives the gap away.
    """
    hidden = chain[2]
    as_owner("DELETE FROM accounts_securityevent WHERE seq = 3")
    checkpoint(tmp_path / "taken-with-a-gap")
    as_owner(
        (
            "INSERT INTO accounts_securityevent (id, account_id, type, actor_id, ip_address,"
            " user_agent, details, created_at, seq, prev_hash, hash, key_id)"
            " VALUES (%s, %s, %s, NULL, NULL, '', %s::jsonb, %s, 3, %s, %s, %s)",
            [
                hidden.pk,
                hidden.account_id,
                hidden.type,
                json.dumps(hidden.details),
                hidden.created_at,
                hidden.prev_hash,
                hidden.hash,
                hidden.key_id,
            ],
        )
    )
    assert "Audit chain intact: 6 events." in verify()

    broken(
        r"event #6: checkpoint .* counted 5 events up to here, the chain has 6",
        *against(tmp_path / "taken-with-a-gap"),
    )


def test_the_plain_check_uses_the_checkpoints_beat_writes_and_catches_a_truncation(
    chain, checkpoints, settings
):
    """Attack: truncate the events and reset the head, then let the operator run the check
    as the command table shows it, `manage.py verify_audit` without arguments. The
    checkpoints beat writes to `DJANGO_AUDIT_CHECKPOINT_DIR` are used all the same, so
    the truncation is found; `--no-checkpoints` is the one way to skip them."""
    settings.AUDIT_CHECKPOINT_DIR = checkpoints
    as_owner("TRUNCATE accounts_securityevent CASCADE")
    head_set(0, "")

    error = broken(r"event #1: missing: checkpoint audit-.*\.json")

    assert "covers events up to #6, the chain ends at #0" in error
    assert "Audit chain intact: 0 events." in verify("--no-checkpoints")


def test_without_any_checkpoint_the_plain_check_says_what_it_cannot_see(settings, tmp_path):
    """No checkpoint written yet: the chain is checked and the output says that a truncated
    chain or one rewritten by the database owner cannot be found without checkpoints."""
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "none-yet"

    output = verify()

    assert "Audit chain intact" in output
    assert "No checkpoints in" in output and "cannot be detected" in output
