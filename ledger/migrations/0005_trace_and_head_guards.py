"""Make task traces append-only and keep the chain head moving only forward, in the database."""

from django.db import migrations

from ledger.immutability import HEAD, TRACES, drop_guard, install_guard


def install(apps, schema_editor):
    install_guard(schema_editor.connection, guards=(TRACES, HEAD))


def uninstall(apps, schema_editor):
    drop_guard(schema_editor.connection, guards=(TRACES, HEAD))


class Migration(migrations.Migration):
    dependencies = [("ledger", "0004_payload_values_rows")]

    operations = [migrations.RunPython(install, uninstall)]
