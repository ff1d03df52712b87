"""The outbox and the burst guard's holds leave accounts for the notifications app, rows and all.

The tables are renamed, not copied (`accounts_notification` -> `notifications_notification`,
`accounts_deliveryhold` -> `notifications_deliveryhold`): every row and id, the foreign keys
to security events and campaigns, the check and unique constraints and the indexes stay as
they are. The constraints, indexes and identity sequences that carry the table's name in
theirs are renamed too, to what Django and PostgreSQL name them on a table created under the
new name, so later schema changes find them. Here the models leave this app's state;
notifications.0001_initial adds them to that app's state and moves their content types.
"""

from django.db import migrations

MOVED_TABLES = [
    ("notification", "accounts_notification", "notifications_notification"),
    ("deliveryhold", "accounts_deliveryhold", "notifications_deliveryhold"),
]


def _default_names(schema_editor, table, columns, info):
    """The names an unnamed constraint or index of this kind gets on `table`.

    Primary keys, the unique and check constraints declared with a column and (from
    PostgreSQL 18) the NOT NULL constraints are named by PostgreSQL; indexes (plain and `_like`) and foreign keys by Django's schema editor.
    Constraints and indexes named in a model's Meta match none of these and keep their name.
    """
    if info["primary_key"]:
        return [f"{table}_pkey"]
    if info["foreign_key"]:
        to_table, to_column = info["foreign_key"]
        suffix = f"_fk_{to_table}_{to_column}"
        return [schema_editor._create_index_name(table, columns, suffix=suffix)]
    if len(columns) != 1:
        return []
    if info["check"]:
        return [f"{table}_{columns[0]}_check"]
    if info["unique"] and not info["index"]:
        return [f"{table}_{columns[0]}_key"]
    if info["index"]:
        return [schema_editor._create_index_name(table, columns, suffix=s) for s in ("", "_like")]
    if not info["unique"]:
        # PostgreSQL 18 keeps NOT NULL as a named constraint of no other kind.
        return [f"{table}_{columns[0]}_not_null"]
    return []


def _rename_identifiers(schema_editor, table, from_table, to_table):
    """Rename what `table` still names after `from_table` to the names it gets as `to_table`."""
    connection = schema_editor.connection
    quote = schema_editor.quote_name
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        (sequence,) = cursor.fetchone()
    for name, info in constraints.items():
        old_names = _default_names(schema_editor, from_table, info["columns"], info)
        if name not in old_names:
            continue
        new_name = _default_names(schema_editor, to_table, info["columns"], info)[
            old_names.index(name)
        ]
        if info["index"]:
            schema_editor.execute(f"ALTER INDEX {quote(name)} RENAME TO {quote(new_name)}")
        else:
            schema_editor.execute(
                f"ALTER TABLE {quote(table)} RENAME CONSTRAINT {quote(name)} TO {quote(new_name)}"
            )
    if sequence is not None and sequence.split(".")[-1].strip('"') == f"{from_table}_id_seq":
        schema_editor.execute(f"ALTER SEQUENCE {sequence} RENAME TO {quote(f'{to_table}_id_seq')}")


def identifiers_forwards(apps, schema_editor):
    for _model, old_table, new_table in MOVED_TABLES:
        _rename_identifiers(schema_editor, new_table, old_table, new_table)


def identifiers_backwards(apps, schema_editor):
    for _model, old_table, new_table in MOVED_TABLES:
        _rename_identifiers(schema_editor, new_table, new_table, old_table)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_security_events_phone_and_permissions"),
        # The supervisors' group gets accounts.view_notification there; the permission must
        # exist under accounts before its content type moves to notifications.
        ("support", "0003_roles"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                *(
                    migrations.AlterModelTable(name=model, table=new_table)
                    for model, _old_table, new_table in MOVED_TABLES
                ),
                migrations.RunPython(identifiers_forwards, identifiers_backwards),
            ],
            state_operations=[
                migrations.DeleteModel(name="DeliveryHold"),
                migrations.DeleteModel(name="Notification"),
            ],
        ),
    ]
