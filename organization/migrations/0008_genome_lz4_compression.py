"""Genome versions are compressed with lz4 on PostgreSQL, where the server has it.

A version's row holds the whole genome as JSON text (about 2.8 KB a node), so a patch's cost
at 1,000 nodes and more is mostly that INSERT, and most of the INSERT is the default pglz
compression of the TOASTed text. Measured on PostgreSQL 15 (docs/performance.md, "Scale"):
a ``set_node_status`` patch at 1,000 nodes 55-58 ms with pglz, 38-40 ms with lz4; at 10,000
nodes 480 ms and 320 ms. Rows stored before keep their compression; PostgreSQL reads both.
Elsewhere (SQLite, a PostgreSQL built without lz4, before 14) this does nothing.
"""

from django.db import migrations

TABLE_COLUMN = 'ALTER TABLE "organization_genomeversion" ALTER COLUMN "genome" SET COMPRESSION {}'


def _has_lz4(schema_editor) -> bool:
    connection = schema_editor.connection
    if connection.vendor != "postgresql" or connection.pg_version < 140000:
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def use_lz4(apps, schema_editor) -> None:
    if _has_lz4(schema_editor):
        schema_editor.execute(TABLE_COLUMN.format("lz4"))


def use_default(apps, schema_editor) -> None:
    if _has_lz4(schema_editor):
        schema_editor.execute(TABLE_COLUMN.format("DEFAULT"))


class Migration(migrations.Migration):
    dependencies = [
        ("organization", "0007_view_organization_permission"),
    ]

    operations = [migrations.RunPython(use_lz4, use_default, elidable=False)]
