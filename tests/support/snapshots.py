"""What a refused request must leave as it found: every table's row count and the ledger."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.apps import apps

from ledger.models import LedgerEvent


def database_snapshot() -> dict[str, int]:
    """Rows per table of every installed model, and the ledger's length under its own name."""
    counts = {
        model._meta.label: model._default_manager.count()
        for model in apps.get_models()
        if not model._meta.proxy
    }
    counts["ledger length"] = LedgerEvent.objects.count()
    return counts


@contextmanager
def nothing_changes() -> Iterator[None]:
    """The block's requests are all refused: every table and the ledger stay as they were."""
    before = database_snapshot()
    yield
    assert database_snapshot() == before
