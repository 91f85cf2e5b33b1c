"""What a refused request must leave as it found: every table's row count and the ledger."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.apps import apps
from django.db import connection

from ledger.models import LedgerEvent


def database_snapshot() -> dict[str, int]:
    """Rows per table of every installed model, and the ledger's length under its own name.

    One statement counts every table: the API's refusal tests take two snapshots each, and
    forty-odd ORM counts cost more than the request they check.
    """
    models = [model for model in apps.get_models() if not model._meta.proxy]
    tables = [model._meta.db_table for model in models] + [LedgerEvent._meta.db_table]
    counts = ", ".join(f"(SELECT COUNT(*) FROM {connection.ops.quote_name(t)})" for t in tables)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {counts}")
        row = cursor.fetchone()
    labels = [model._meta.label for model in models] + ["ledger length"]
    return dict(zip(labels, row, strict=True))


@contextmanager
def nothing_changes() -> Iterator[None]:
    """The block's requests are all refused: every table and the ledger stay as they were."""
    before = database_snapshot()
    yield
    assert database_snapshot() == before
