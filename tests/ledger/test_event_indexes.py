"""The events carry the indexes their readers use and no others (migration 0009): each index
is a B-tree every append writes."""

from __future__ import annotations

import pytest
from django.db import connection

from ledger.models import LedgerEvent

pytestmark = pytest.mark.django_db

TABLE = LedgerEvent._meta.db_table


def _indexes() -> dict[str, tuple[str, ...]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, TABLE)
    return {
        name: tuple(info["columns"])
        for name, info in constraints.items()
        if info["index"] and not info["primary_key"]
    }


def test_no_index_duplicates_the_start_of_another():
    columns = list(_indexes().values())
    assert ("kind", "seq") in columns and ("node_id", "seq") in columns
    assert ("kind",) not in columns and ("node_id",) not in columns


def test_no_prefix_search_copies_of_the_id_columns():
    """PostgreSQL's varchar_pattern_ops copies serve LIKE 'prefix%', which nothing asks of
    an event (on SQLite Django makes none)."""
    assert [name for name in _indexes() if name.endswith("_like")] == []


@pytest.mark.parametrize(
    ("where", "indexes"),
    [
        ("kind = %s", {"ledger_event_kind_seq"}),
        ("node_id = %s", {"ledger_event_node_seq", "ledger_event_node_kind_seq"}),
    ],
)
def test_a_lookup_by_kind_or_node_alone_still_reads_an_index(where, indexes):
    sql = f"SELECT seq FROM {TABLE} WHERE {where}"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", ["x"])
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", ["x"])
        plan = " ".join(str(part) for row in cursor.fetchall() for part in row)
    assert any(index in plan for index in indexes), plan
