"""Make ledger events append-only in the database itself, and create the chain head."""

from django.db import migrations

from ledger.chain import GENESIS_HASH
from ledger.immutability import EVENTS, drop_guard, install_guard


def install(apps, schema_editor):
    install_guard(schema_editor.connection, guards=(EVENTS,))


def uninstall(apps, schema_editor):
    drop_guard(schema_editor.connection, guards=(EVENTS,))


def create_head(apps, schema_editor):
    LedgerHead = apps.get_model("ledger", "LedgerHead")
    LedgerHead.objects.get_or_create(pk=1, defaults={"seq": 0, "hash": GENESIS_HASH})


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [
        migrations.RunPython(create_head, migrations.RunPython.noop),
        migrations.RunPython(install, uninstall),
    ]
