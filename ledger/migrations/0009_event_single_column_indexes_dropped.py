"""Indexes every append wrote and no query reads are dropped from the events:

* the indexes on ``kind`` alone and on ``node_id`` alone: the (kind, seq) and (node_id, seq)
  indexes of 0007 serve every lookup they served;
* on PostgreSQL, the ``varchar_pattern_ops`` ("_like") copies Django adds beside each indexed
  text column, for ``LIKE 'prefix%'`` lookups: nothing looks events up by an id's prefix.

Dropped by name (``DROP INDEX``), not by altering the fields: SQLite alters a field by
remaking its table, which would copy the whole ledger and lose its append-only triggers.
"""

from typing import Any

from django.db import migrations, models

SINGLE = ("kind", "node_id")
LIKE = ("id", "hash", "correlation_id", "directive_id", "task_id", "trial_id")


def _indexes(schema_editor: Any, model: Any, column: str) -> list[str]:
    return list(schema_editor._constraint_names(model, column_names=[column], index=True))


def drop_indexes(apps: Any, schema_editor: Any) -> None:
    model = apps.get_model("ledger", "LedgerEvent")
    names = [name for column in SINGLE for name in _indexes(schema_editor, model, column)]
    if schema_editor.connection.vendor == "postgresql":
        names += [
            name
            for column in LIKE
            for name in _indexes(schema_editor, model, column)
            if name.endswith("_like")
        ]
    for name in names:
        schema_editor.execute(schema_editor._delete_index_sql(model, name))


def create_indexes(apps: Any, schema_editor: Any) -> None:
    # The state before this migration: the fields with db_index, so these are the indexes
    # 0001 made (with PostgreSQL's "_like" ones).
    model = apps.get_model("ledger", "LedgerEvent")
    for column in SINGLE:
        if not _indexes(schema_editor, model, column):
            for sql in schema_editor._field_indexes_sql(model, model._meta.get_field(column)):
                schema_editor.execute(sql)
    if schema_editor.connection.vendor == "postgresql":
        for column in LIKE:
            if not any(name.endswith("_like") for name in _indexes(schema_editor, model, column)):
                field = model._meta.get_field(column)
                schema_editor.execute(schema_editor._create_like_index_sql(model, field))


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0008_event_node_kind_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(drop_indexes, create_indexes)],
            state_operations=[
                migrations.AlterField(
                    model_name="ledgerevent",
                    name="kind",
                    field=models.CharField(max_length=64),
                ),
                migrations.AlterField(
                    model_name="ledgerevent",
                    name="node_id",
                    field=models.CharField(blank=True, max_length=200, null=True),
                ),
            ],
        ),
    ]
