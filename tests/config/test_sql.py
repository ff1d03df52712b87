"""Hand-written INSERTs: the statement's parts as the ORM's save would write them."""

from __future__ import annotations

import pytest

from config.sql import insert_parts
from support.models import CaseEvent, RecoveryCase

pytestmark = pytest.mark.django_db


def test_each_set_of_expressions_gets_its_own_statement():
    """One model inserted with and without an SQL expression for a column: each INSERT
    has that expression exactly where it was asked for, whichever came first."""
    case = RecoveryCase(reference="RC-TEST-0001", contact_email="a@example.net")
    event = CaseEvent(case=case, type=CaseEvent.Type.OPENED, details={"kind": "help"})
    for _round in range(2):
        plain = insert_parts(event)
        linked = insert_parts(event, sql={"case_id": "request.id"})
        other = insert_parts(event, sql={"case_id": "other.id"})
        assert plain.columns == linked.columns == other.columns
        assert "request.id" not in plain.values and "%s" in plain.values
        assert linked.values == plain.values.replace("%s", "request.id", 1)
        assert other.values == plain.values.replace("%s", "other.id", 1)
        assert len(plain.params) == len(linked.params) + 1 == len(other.params) + 1


def test_the_row_written_reads_back_as_the_orm_saved_it():
    """A case inserted through its parts reads back field for field like one the ORM saved."""
    from django.db import connection

    from config.sql import mark_inserted

    ours = RecoveryCase(reference="RC-TEST-0002", contact_email="a@example.net", description="x")
    parts = insert_parts(ours)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {parts.table} ({parts.columns}) VALUES ({parts.values}) RETURNING id",  # noqa: S608 # nosec B608
            parts.params,
        )
        mark_inserted(ours, cursor.fetchone()[0])
    orm = RecoveryCase.objects.create(
        reference="RC-TEST-0003", contact_email="a@example.net", description="x"
    )
    skip = {"id", "reference", "created_at", "updated_at", "queued_at"}
    ours_row = RecoveryCase.objects.filter(pk=ours.pk).values().get()
    orm_row = RecoveryCase.objects.filter(pk=orm.pk).values().get()
    assert {k: v for k, v in ours_row.items() if k not in skip} == {
        k: v for k, v in orm_row.items() if k not in skip
    }
