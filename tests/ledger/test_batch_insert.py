"""A batch's append writes the rows it held back, its events and the head together.

On PostgreSQL that is one data-modifying statement; on SQLite one statement each. Either
way the rows appear with the events, vanish with them, and the chain is the one
``event_hash`` defines.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import given
from hypothesis import strategies as st

from ledger import kinds
from ledger.chain import GENESIS_HASH, canonical_json, event_hash, event_hash_of_payload_text
from ledger.models import LedgerEvent, LedgerHead, TaskTrace
from ledger.services import (
    ROWS_PER_STATEMENT,
    EventDraft,
    ledger_batch,
    ledger_batch_flush_inserts,
    ledger_batch_insert,
    ledger_record,
)
from tests.ledger.factories import TaskTraceFactory

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
# Text that looks like the place the payload is spliced into must not confuse the splice.
tricky_text = st.sampled_from(['","payload":0,"prev_hash":"', '"payload":0', "naïve ✓", ""])


@given(
    payload=json_values,
    actor=st.text() | tricky_text,
    node_id=st.none() | tricky_text,
    ancestors=st.lists(st.text() | tricky_text, max_size=3),
)
def test_hashing_the_payload_text_gives_the_event_hash(
    payload: Any, actor: str, node_id: str | None, ancestors: list[str]
) -> None:
    fields: dict[str, Any] = {
        "seq": 7,
        "id": "event-7",
        "kind": kinds.TASK_MAPPED,
        "created_at": datetime(2026, 12, 2, 15, 0, 0, 123456, tzinfo=UTC),
        "node_id": node_id,
        "responsible_ancestor_ids": ancestors,
        "directive_id": None,
        "task_id": "t-1",
        "trial_id": None,
        "suggestion_id": None,
        "genome_id": "g-1",
        "correlation_id": "c-1",
        "causation_id": None,
        "actor": actor,
        "payload": payload,
        "prev_hash": GENESIS_HASH,
    }

    assert event_hash_of_payload_text(fields, canonical_json(payload)) == event_hash(fields)


def mapped(task_id: str) -> EventDraft:
    return EventDraft(kind=kinds.TASK_MAPPED, task_id=task_id, payload={"task_id": task_id})


@pytest.mark.django_db
def test_rows_held_by_a_batch_are_written_with_its_append() -> None:
    trace = TaskTraceFactory.build()
    with ledger_batch():
        ledger_batch_insert(trace)
        ledger_record(mapped("t-1"), mapped("t-2"))
        # Held until the append: nothing in the batch reads it back.
        assert not TaskTrace.objects.filter(id=trace.id).exists()

    assert TaskTrace.objects.filter(id=trace.id).exists()
    assert list(LedgerEvent.objects.values_list("seq", "task_id")) == [(1, "t-1"), (2, "t-2")]
    head = LedgerHead.objects.get(pk=1)
    assert (head.seq, head.hash) == (2, LedgerEvent.objects.get(seq=2).hash)


@pytest.mark.django_db
def test_events_appended_in_one_statement_verify(capsys: pytest.CaptureFixture[str]) -> None:
    payload = {"b": [1, 2.5, None], "a": {"naïve ✓": True}, "payload": "prev_hash"}
    with ledger_batch():
        ledger_record(EventDraft(kind=kinds.TASK_MAPPED, payload=payload), mapped("t-2"))

    assert LedgerEvent.objects.get(seq=1).payload == payload
    call_command("ledger_verify")
    assert capsys.readouterr().out.strip() == "ok 2 events"


@pytest.mark.django_db
def test_the_append_of_a_batch_is_two_statements_on_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no data-modifying WITH: one statement per table there")
    ledger_record(mapped("t-0"))  # the head exists
    with CaptureQueriesContext(connection) as append, ledger_batch():
        ledger_batch_insert(TaskTraceFactory.build(), TaskTraceFactory.build())
        ledger_record(mapped("t-1"), mapped("t-2"))

    verbs = [query["sql"].split()[0] for query in append.captured_queries]
    # The test's own transaction makes the batch a savepoint.
    assert [verb for verb in verbs if verb not in ("SAVEPOINT", "RELEASE")] == ["SELECT", "WITH"]
    assert TaskTrace.objects.count() == 2 and LedgerEvent.objects.count() == 3


@pytest.mark.django_db
def test_psycopg_converts_an_append_of_a_shape_it_has_seen_from_its_cache() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("psycopg's statement cache: PostgreSQL")
    from psycopg import _queries

    ledger_record(mapped("t-0"))  # the head exists

    def append_of_a_hops_shape(number: int) -> None:
        with ledger_batch():
            ledger_batch_insert(TaskTraceFactory.build())
            # Four events and a trace: 68 of the event's parameters alone.
            ledger_record(*(mapped(f"t-{number}-{n}") for n in range(4)))

    append_of_a_hops_shape(1)
    before = _queries._query2pg.cache_info()
    append_of_a_hops_shape(2)
    after = _queries._query2pg.cache_info()
    assert after.misses == before.misses
    assert after.hits > before.hits


@pytest.mark.django_db
def test_a_batch_that_fails_writes_neither_its_rows_nor_its_events() -> None:
    trace = TaskTraceFactory.build()
    with pytest.raises(RuntimeError), ledger_batch():
        ledger_batch_insert(trace)
        ledger_record(mapped("t-1"))
        raise RuntimeError("the hop failed")

    assert not TaskTrace.objects.exists()
    assert not LedgerEvent.objects.exists()


@pytest.mark.django_db
def test_rows_are_written_without_events_and_at_once_outside_a_batch() -> None:
    held, direct = TaskTraceFactory.build(), TaskTraceFactory.build()
    with ledger_batch():
        ledger_batch_insert(held)
    ledger_batch_insert(direct)

    assert set(TaskTrace.objects.values_list("id", flat=True)) == {held.id, direct.id}
    assert not LedgerEvent.objects.exists()


@pytest.mark.django_db
def test_a_flush_makes_held_rows_visible_inside_the_batch() -> None:
    trace = TaskTraceFactory.build()
    with ledger_batch():
        ledger_batch_insert(trace)
        ledger_batch_flush_inserts()
        assert TaskTrace.objects.filter(id=trace.id).exists()
        ledger_record(mapped("t-1"))

    assert TaskTrace.objects.count() == 1 and LedgerEvent.objects.count() == 1


@pytest.mark.django_db
def test_a_batch_longer_than_one_statement_is_appended_whole_and_verifies(
    capsys: pytest.CaptureFixture[str],
) -> None:
    count = ROWS_PER_STATEMENT * 2 + 1
    with ledger_batch():
        ledger_record(*(mapped(f"t-{number}") for number in range(count)))

    assert LedgerEvent.objects.count() == count == LedgerHead.objects.get(pk=1).seq
    call_command("ledger_verify")
    assert capsys.readouterr().out.strip() == f"ok {count} events"
