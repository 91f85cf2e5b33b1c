"""Trace rows are append-only, and ledger_verify checks each against its trace_written event."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from ledger import kinds
from ledger.models import LedgerEvent, TaskTrace, TaskTraceScope
from ledger.selectors import subtree_task_traces
from ledger.services import ledger_append, task_trace_record
from ledger.trace_hash import TRACE_HASH_KEY, TRACE_HASHED_FIELDS, trace_hash
from ledger.verification import ledger_audit
from tests.ledger.factories import TaskTraceFactory
from tests.ledger.tampering import guards_dropped, sql

pytestmark = pytest.mark.django_db


def record(**fields: object) -> TaskTrace:
    return task_trace_record(trace=TaskTraceFactory.build(**fields))


def verify_output(capsys: pytest.CaptureFixture[str]) -> str:
    call_command("ledger_verify")
    return capsys.readouterr().out.strip()


def event_seq(trace: TaskTrace) -> int:
    return LedgerEvent.objects.get(kind=kinds.TRACE_WRITTEN, payload__trace_id=trace.id).seq


def refused(statement: str, params: list[object]) -> None:
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        sql(statement, params)


def test_the_database_refuses_to_change_a_traces_outcome_score() -> None:
    trace = record(outcome_score=-1.0)

    refused("UPDATE ledger_tasktrace SET outcome_score = 100 WHERE id = %s", [trace.id])

    assert TaskTrace.objects.get(pk=trace.pk).outcome_score == -1.0


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_tasktrace SET input_tokens = 0, latency_ms = 1 WHERE id = %s",
        "DELETE FROM ledger_tasktrace WHERE id = %s",
        "UPDATE ledger_tasktracescope SET node_id = 'frontend-system' WHERE trace_id = %s",
        "DELETE FROM ledger_tasktracescope WHERE trace_id = %s",
    ],
    ids=["tokens", "delete trace", "move scope", "delete scope"],
)
def test_the_database_refuses_every_change_to_traces_and_scopes(statement: str) -> None:
    trace = record(input_tokens=500, latency_ms=900)

    refused(statement, [trace.id])

    stored = TaskTrace.objects.get(pk=trace.pk)
    assert (stored.input_tokens, stored.latency_ms) == (500, 900)
    assert subtree_task_traces(node_id="backend-system") == [trace]
    assert TaskTraceScope.objects.filter(trace=trace).count() == 3


def test_the_orm_refuses_queryset_updates_of_traces_too() -> None:
    trace = record()

    with pytest.raises(DatabaseError), transaction.atomic():
        TaskTrace.objects.filter(pk=trace.pk).update(merged=True)

    assert TaskTrace.objects.get(pk=trace.pk).merged is None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="TRUNCATE exists on PostgreSQL only")
def test_the_database_refuses_to_truncate_traces() -> None:
    record()
    sql("SET CONSTRAINTS ALL IMMEDIATE")  # else the deferred foreign key check refuses first

    refused("TRUNCATE ledger_tasktracescope, ledger_tasktrace", [])

    assert TaskTrace.objects.count() == 1


def test_the_trace_written_event_records_the_hash_of_the_stored_row() -> None:
    # Values the database hands back in another type: ints for floats, tuples for lists.
    trace = record(
        outcome_score=2,
        metadata={"task_title": "naïve ✓", "nested": {"b": [1, 2.5], "a": None}},
        tests_run=("pytest -q",),
        delayed_adjustments=[{"delta_score": -0.25, "reason": "reverted"}],
        completed_at=timezone.now(),
        tests_passed=True,
    )

    stored = TaskTrace.objects.get(pk=trace.pk)
    scopes = TaskTraceScope.objects.filter(trace=stored).values_list(
        "distance", "node_id", "started_at"
    )
    event = LedgerEvent.objects.get(kind=kinds.TRACE_WRITTEN)
    assert event.payload[TRACE_HASH_KEY] == trace_hash(stored, list(scopes))


def test_the_trace_hash_covers_every_column_of_a_trace() -> None:
    # A new column must be a decision: hashed by a new key for new rows, or left out on purpose.
    columns = {field.name for field in TaskTrace._meta.concrete_fields}

    assert set(TRACE_HASHED_FIELDS) == columns


def test_verify_counts_the_traces_it_checked(capsys: pytest.CaptureFixture[str]) -> None:
    record()
    record()

    assert verify_output(capsys) == "ok 2 events, 2 traces"


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ("UPDATE ledger_tasktrace SET outcome_score = 100 WHERE id = %s", "differ from what"),
        ("UPDATE ledger_tasktrace SET input_tokens = 1 WHERE id = %s", "differ from what"),
        (
            """UPDATE ledger_tasktrace SET metadata = '{"trial_id": "forged"}' WHERE id = %s""",
            "differ from what",
        ),
        (
            "UPDATE ledger_tasktracescope SET node_id = 'frontend-system' "
            "WHERE trace_id = %s AND distance = 1",
            "differ from what",
        ),
        ("DELETE FROM ledger_tasktracescope WHERE trace_id = %s AND distance = 2", "differ"),
        ("DELETE FROM ledger_tasktracescope WHERE trace_id = %s", "differ from what"),
    ],
    ids=["outcome", "tokens", "metadata", "scope moved", "scope deleted", "scopes deleted"],
)
def test_verify_names_a_trace_changed_behind_a_dropped_guard(statement: str, reason: str) -> None:
    record()
    tampered = record()
    record()
    with guards_dropped():
        sql(statement, [tampered.id])

    with pytest.raises(
        CommandError,
        match=rf"1 trace row not matching the ledger; the first: trace {tampered.id} "
        rf"\(trace_written at seq {event_seq(tampered)}\): .*{reason}",
    ):
        call_command("ledger_verify")


def test_verify_reports_a_deleted_trace() -> None:
    trace = record()
    seq = event_seq(trace)
    with guards_dropped():
        sql("DELETE FROM ledger_tasktracescope WHERE trace_id = %s", [trace.id])
        sql("DELETE FROM ledger_tasktrace WHERE id = %s", [trace.id])

    with pytest.raises(
        CommandError, match=rf"trace {trace.id} \(trace_written at seq {seq}\): .*row is missing"
    ):
        call_command("ledger_verify")


def test_verify_reports_a_trace_inserted_without_its_event() -> None:
    record()
    # An INSERT needs no schema rights: the triggers allow it, verification must not.
    forged = TaskTraceFactory.build(outcome_score=50.0)
    forged.save(force_insert=True)

    with pytest.raises(
        CommandError, match=rf"trace {forged.id}: no trace_written event records this trace"
    ):
        call_command("ledger_verify")


def test_a_trace_written_before_trace_hashes_is_unverifiable_but_not_a_failure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    record()
    # What task_trace_record wrote before its event carried the row's hash.
    old = TaskTraceFactory.build(started_at=timezone.now() - timedelta(days=30))
    old.save(force_insert=True)
    TaskTraceScope.objects.create(
        trace=old, node_id=old.assigned_node_id, distance=0, started_at=old.started_at
    )
    ledger_append(
        kind=kinds.TRACE_WRITTEN,
        payload={"trace_id": old.id, "task_id": old.task_id, "outcome_score": 1.0},
        task_id=old.task_id,
    )

    assert verify_output(capsys) == (
        "ok 2 events, 1 trace, 1 trace written before trace hashes (not verifiable)"
    )


def test_a_chain_break_and_a_bad_trace_are_both_reported() -> None:
    trace = record()
    record()
    with guards_dropped():
        sql("UPDATE ledger_ledgerevent SET actor = 'mallory' WHERE seq = 2")
        sql("UPDATE ledger_tasktrace SET outcome_score = 9 WHERE id = %s", [trace.id])

    with pytest.raises(CommandError) as raised:
        call_command("ledger_verify")

    message = str(raised.value)
    assert "ledger chain broken at seq 2: stored hash does not match" in message
    assert f"trace {trace.id} (trace_written at seq 1)" in message


def test_traces_are_checked_batch_by_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ledger.verification.TRACE_BATCH", 2)
    traces = [record() for _ in range(5)]
    with guards_dropped():
        sql("UPDATE ledger_tasktrace SET latency_ms = 1 WHERE id = %s", [traces[3].id])

    report = ledger_audit(chunk_size=2)

    assert (report.events, report.traces, report.bad_traces) == (5, 4, 1)
    assert report.trace_break is not None and report.trace_break.trace_id == traces[3].id


def test_events_appended_while_verifying_are_no_false_alarm() -> None:
    record()
    record()

    def append_meanwhile(verified: int) -> None:
        if verified <= 2:
            record()

    report = ledger_audit(chunk_size=1, progress=append_meanwhile, progress_every=1)

    assert report.problem is None
    assert report.events == LedgerEvent.objects.count() == 4
    assert report.traces == 4
