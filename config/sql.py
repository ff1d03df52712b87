"""Hand-written INSERTs for hot paths, with the columns and values Django's `save()` would use."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from django.db import DEFAULT_DB_ALIAS, connection, connections, models


@dataclass(frozen=True)
class InsertParts:
    """What an INSERT of one model instance writes: `INSERT INTO table (columns) VALUES
    (values)` with `params`, or `SELECT values FROM …` inside a larger statement."""

    table: str
    columns: str
    values: str
    params: list[Any]


@functools.cache
def _insert_fields(model: type[models.Model]) -> tuple[models.Field, ...]:
    # As `Model._save_table` inserts a row without a primary key: every concrete column
    # but the generated ones and the key the database draws.
    meta = model._meta
    return tuple(
        field
        for field in meta.local_concrete_fields
        if not field.generated and field is not meta.auto_field
    )


@dataclass(frozen=True)
class _Layout:
    # What an INSERT of one model with the same `sql` expressions always has.
    table: str
    columns: str
    values: str
    parametrised: tuple[models.Field, ...]


@functools.cache
def _layout(model: type[models.Model], sql: tuple[tuple[str, str], ...]) -> _Layout:
    expressions = dict(sql)
    fields = _insert_fields(model)
    return _Layout(
        table=connection.ops.quote_name(model._meta.db_table),
        # Concrete fields always have a column.
        columns=", ".join(connection.ops.quote_name(cast(str, field.column)) for field in fields),
        values=", ".join(expressions.get(field.attname, "%s") for field in fields),
        parametrised=tuple(field for field in fields if field.attname not in expressions),
    )


def insert_parts(instance: models.Model, *, sql: Mapping[str, str] | None = None) -> InsertParts:
    """The parts of an INSERT of `instance`: each value prepared as `save()` prepares it
    (defaults, `auto_now`, JSON), or, for the attnames in `sql`, that SQL expression (the
    id another part of the statement returns, say).

    The model's fields give the columns, so a new field is written here as by the ORM,
    without compiling an ORM query each time; the statement's text is worked out once per
    model and set of expressions, only the values each time.
    """
    layout = _layout(type(instance), tuple(sql.items()) if sql else ())
    # The connection itself, not the `connection` proxy, whose every attribute costs a
    # lookup in the thread's connections: each field's preparation reads a few.
    db = connections[DEFAULT_DB_ALIAS]
    return InsertParts(
        table=layout.table,
        columns=layout.columns,
        values=layout.values,
        params=[
            field.get_db_prep_save(field.pre_save(instance, True), db)
            for field in layout.parametrised
        ],
    )


def mark_inserted(instance: models.Model, pk: int) -> None:
    """Make `instance` what `save()` leaves behind once its row is in, under the id `pk`."""
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = DEFAULT_DB_ALIAS
