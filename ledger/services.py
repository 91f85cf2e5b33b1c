"""Writes to the ledger. Every event goes through ``ledger_append_many``.

Services record their events with ``ledger_record``. Inside ``ledger_batch()`` (one
runtime hop, one API call) the events are held and written by a single append as
the block ends, in the order they were recorded; outside one they are appended at
once. A hop therefore locks the chain head once, last, after every other row it
locks: one lock order for the whole system.

An append is two statements on PostgreSQL: lock the head, then one data-modifying
``WITH`` that inserts the events (and the rows the batch held back with
``ledger_batch_insert``) and moves the head. SQLite has no such statement: there the
rows, the events and the head are written one statement each.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from django.db import DEFAULT_DB_ALIAS, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from ledger.bell import ledger_bell_ring
from ledger.chain import (
    GENESIS_HASH,
    HASHED_FIELDS,
    canonical_json,
    event_hash_of_payload_text,
    new_id,
)
from ledger.compiled import insert_statement
from ledger.kinds import ALL_KINDS
from ledger.models import LedgerEvent, LedgerHead, LedgerImmutableError, TaskTrace, TaskTraceScope
from ledger.trace_hash import TRACE_HASH_KEY, trace_hash


class LedgerInputError(ValueError):
    """An event that cannot be recorded as given (unknown kind, non-JSON payload)."""


@dataclass(frozen=True)
class EventDraft:
    """An event not yet in the chain: everything but seq, timestamps and hashes."""

    kind: str
    actor: str = "system"
    payload: Any = field(default_factory=dict)
    node_id: str | None = None
    responsible_ancestor_ids: Sequence[str] = ()
    directive_id: str | None = None
    task_id: str | None = None
    trial_id: str | None = None
    suggestion_id: str | None = None
    genome_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    # True when every dict key in the payload is a str (``to_json``'s output, as a message
    # event's envelope): its canonical JSON then reads back to the same text, so the text is
    # computed once instead of twice. Not part of the event.
    payload_keys_are_text: bool = field(default=False, compare=False)


# A draft ready for the chain: the draft, its payload as the database gives it back, and
# that payload's canonical JSON (hashed and stored as it is).
Prepared = tuple[EventDraft, Any, str]
# An INSERT compiled when its rows were handed over, executed with the append.
HeldInsert = tuple[str, tuple[Any, ...]]


@dataclass
class _Batch:
    drafts: list[Prepared] = field(default_factory=list)
    inserts: list[HeldInsert] = field(default_factory=list)


# The open batch of this thread (or task), if one is open.
_open_batch: ContextVar[_Batch | None] = ContextVar("ledger_batch", default=None)


@contextmanager
def ledger_batch() -> Iterator[None]:
    """A transaction whose recorded events are appended once, as it ends.

    Nested batches join the outer one. If the block raises, the transaction rolls
    back and nothing is appended; a block that recorded nothing appends nothing.
    """
    if _open_batch.get() is not None:
        # No savepoint (two statements saved per hop): an error inside dooms the outer
        # transaction, which is what a hop wants anyway.
        with transaction.atomic(savepoint=False):
            yield
        return
    batch = _Batch()
    token = _open_batch.set(batch)
    open_ = True
    try:
        with transaction.atomic():
            yield
            _open_batch.reset(token)
            open_ = False
            _append_prepared(batch.drafts, batch.inserts)
    finally:
        if open_:
            _open_batch.reset(token)


def ledger_record(*drafts: EventDraft) -> None:
    """Record events: into the open batch, or appended now when none is open.

    Raises LedgerInputError at once (before anything is written) for a draft the
    ledger cannot carry, inside a batch as outside.
    """
    prepared = _prepare(drafts)
    batch = _open_batch.get()
    if batch is None:
        _append_prepared(prepared)
    else:
        batch.drafts.extend(prepared)


def ledger_batch_insert(*rows: models.Model) -> None:
    """Insert new ``rows`` (all of one model) with the open batch's append, or now when no
    batch is open.

    For rows nothing in the batch reads back: a held row is invisible to queries until the
    batch ends (on PostgreSQL it is written by the append's one statement). The rows are
    compiled now, as ``Model.objects.create`` would (defaults, ``auto_now_add``), and count
    as saved at once. Row-level locks are not what an insert takes, so holding the insert
    until the head is locked keeps the one lock order; a unique or foreign key conflict
    fails the append, and so the batch, as it would have failed the insert. Like the batch's
    events, held rows outlive a savepoint rolled back inside the batch: hold none there.
    """
    if not rows:
        return
    insert = insert_statement(rows)
    batch = _open_batch.get()
    if batch is None:
        with transaction.get_connection().cursor() as cursor:
            cursor.execute(*insert)
    else:
        batch.inserts.append(insert)
    for row in rows:
        row._state.adding = False
        row._state.db = DEFAULT_DB_ALIAS


def ledger_batch_flush_inserts() -> None:
    """Write the rows the open batch holds back now, for a read in the batch that must see
    them (a rare path: most hops read nothing they insert)."""
    batch = _open_batch.get()
    if batch is None or not batch.inserts:
        return
    with transaction.get_connection().cursor() as cursor:
        for insert in batch.inserts:
            cursor.execute(*insert)
    batch.inserts.clear()


def _prepare(drafts: Sequence[EventDraft]) -> list[Prepared]:
    prepared = []
    for draft in drafts:
        if draft.kind not in ALL_KINDS:
            raise LedgerInputError(f"unknown ledger event kind {draft.kind!r}")
        try:
            # As the database will give it back (JSON types only); a value JSON cannot
            # carry fails here, before anything is written.
            text = canonical_json(draft.payload)
            payload = json.loads(text)
            if not draft.payload_keys_are_text:
                # Keys that are not strings read back as strings, possibly in another order.
                text = canonical_json(payload)
        except (TypeError, ValueError) as error:
            raise LedgerInputError(f"{draft.kind} payload is not JSON: {error}") from error
        prepared.append((draft, payload, text))
    return prepared


def _lock_head() -> tuple[int, str]:
    """Lock the chain head for this transaction, creating it at genesis on an empty ledger;
    returns its seq and hash. One hand-written statement: every append pays it.

    Migration 0002 creates the head; only a flushed database (tests, benches) lacks it, and
    then has no events either. A head missing while events exist was deleted: rebuilding it
    from the last event would hide a deleted tail, so the append is refused (the database's
    head guard refuses that insert too).
    """
    head = _read_head_for_update()
    if head is None:
        # Events first, then the head: a concurrent first append commits both together, so
        # once its events are visible its head is too.
        if LedgerEvent.objects.exists() and not LedgerHead.objects.filter(pk=1).exists():
            raise LedgerImmutableError(
                "the ledger head is missing while events exist; nothing is appended "
                "(run ledger_verify, and check the ledger against a checkpoint)"
            )
        LedgerHead.objects.bulk_create(
            [LedgerHead(pk=1, seq=0, hash=GENESIS_HASH)], ignore_conflicts=True
        )
        head = _read_head_for_update()
        assert head is not None, "the head was just created"
    return head


def _read_head_for_update() -> tuple[int, str] | None:
    connection = transaction.get_connection()
    # SQLite has no row locks: its IMMEDIATE transaction holds the write lock already.
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT seq, hash FROM {LedgerHead._meta.db_table} WHERE id = 1{lock}")
        row = cursor.fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def ledger_append_many(*, drafts: Sequence[EventDraft]) -> list[LedgerEvent]:
    """Append events to the chain, in order, in one transaction.

    Invariant: the chain never forks and ``seq`` has no gaps, because every
    append holds the lock on the single ``LedgerHead`` row until its
    transaction ends; if the surrounding transaction rolls back, its events
    vanish with it and the next append reuses their seqs.

    Raises LedgerInputError, before writing anything, for an unknown kind or a
    payload JSON cannot carry.
    """
    return _append_prepared(_prepare(drafts))


def _append_prepared(
    prepared: Sequence[Prepared], inserts: Sequence[HeldInsert] = ()
) -> list[LedgerEvent]:
    if not prepared:
        if inserts:
            with transaction.get_connection().cursor() as cursor:
                for insert in inserts:
                    cursor.execute(*insert)
        return []
    events: list[LedgerEvent] = []
    texts: list[str] = []
    # Inside a caller's transaction no savepoint: a failed append dooms it anyway.
    with transaction.atomic(savepoint=False):
        seq, prev_hash = _lock_head()
        for draft, payload, text in prepared:
            seq += 1
            fields: dict[str, Any] = {
                "seq": seq,
                "id": new_id(),
                "kind": draft.kind,
                "created_at": timezone.now(),
                "node_id": draft.node_id,
                "responsible_ancestor_ids": list(draft.responsible_ancestor_ids),
                "directive_id": draft.directive_id,
                "task_id": draft.task_id,
                "trial_id": draft.trial_id,
                "suggestion_id": draft.suggestion_id,
                "genome_id": draft.genome_id,
                "correlation_id": draft.correlation_id,
                "causation_id": draft.causation_id,
                "actor": draft.actor,
                "payload": payload,
                "prev_hash": prev_hash,
            }
            prev_hash = event_hash_of_payload_text(fields, text)
            events.append(LedgerEvent(**fields, hash=prev_hash))
            texts.append(text)
        connection = transaction.get_connection()
        if connection.vendor == "postgresql" and len(events) <= ROWS_PER_STATEMENT:
            _write_in_one_statement(connection, inserts, events, texts)
        else:
            _write_statement_by_statement(connection, inserts, events, texts)
        # Wake the live stream once the events are visible; a lost bell only
        # delays them to the consumers' next poll, so it must never fail the append.
        transaction.on_commit(partial(ledger_bell_ring, seq, tuple(events)), robust=True)
    return events


_EVENT_COLUMNS = ", ".join(f'"{name}"' for name in (*HASHED_FIELDS, "hash"))
_JSON_COLUMNS = ("responsible_ancestor_ids", "payload")
# Events per INSERT, well inside both databases' limits on parameters (17 an event).
ROWS_PER_STATEMENT = 500
_EVENT_ROW = (
    "("
    + ", ".join("%s::jsonb" if name in _JSON_COLUMNS else "%s" for name in (*HASHED_FIELDS, "hash"))
    + ")"
)


def _event_rows(
    connection: BaseDatabaseWrapper, events: Sequence[LedgerEvent], texts: Sequence[str]
) -> tuple[str, list[Any]]:
    """The events' ``VALUES`` rows and their parameters, JSON columns as JSON text (the
    payload as the canonical text already hashed), timestamps as the backend stores them."""
    cast = "::jsonb" if connection.vendor == "postgresql" else ""
    row = (
        "("
        + ", ".join(
            f"%s{cast}" if name in _JSON_COLUMNS else "%s" for name in (*HASHED_FIELDS, "hash")
        )
        + ")"
    )
    params: list[Any] = []
    for event, text in zip(events, texts, strict=True):
        params += [
            event.seq,
            event.id,
            event.kind,
            connection.ops.adapt_datetimefield_value(event.created_at),
            event.node_id,
            json.dumps(event.responsible_ancestor_ids),
            event.directive_id,
            event.task_id,
            event.trial_id,
            event.suggestion_id,
            event.genome_id,
            event.correlation_id,
            event.causation_id,
            event.actor,
            text,
            event.prev_hash,
            event.hash,
        ]
    insert = (
        f"INSERT INTO {LedgerEvent._meta.db_table} ({_EVENT_COLUMNS}) "
        f"VALUES {', '.join([row] * len(events))}"
    )
    return insert, params


def _write_statement_by_statement(
    connection: BaseDatabaseWrapper,
    inserts: Sequence[HeldInsert],
    events: Sequence[LedgerEvent],
    texts: Sequence[str],
) -> None:
    """SQLite (no data-modifying ``WITH``), or a long batch: the held rows, the events (in
    statements of ``ROWS_PER_STATEMENT``), then the head."""
    with connection.cursor() as cursor:
        for held in inserts:
            cursor.execute(*held)
        for start in range(0, len(events), ROWS_PER_STATEMENT):
            end = start + ROWS_PER_STATEMENT
            cursor.execute(*_event_rows(connection, events[start:end], texts[start:end]))
        cursor.execute(
            f"UPDATE {LedgerHead._meta.db_table} SET seq = %s, hash = %s WHERE id = 1",
            [events[-1].seq, events[-1].hash],
        )


def _write_in_one_statement(
    connection: BaseDatabaseWrapper,
    inserts: Sequence[HeldInsert],
    events: Sequence[LedgerEvent],
    texts: Sequence[str],
) -> None:
    """PostgreSQL: the held rows, the events and the head in one data-modifying ``WITH``.

    The head's guard (ledger/immutability.py) checks the new head against the last stored
    event, so the head's update reads the inserted events (``max(seq)``): that runs the
    events' insert to its end before the head row is updated. The payload goes in as the
    canonical text already hashed.
    """
    parts = [f"held_{number} AS ({sql})" for number, (sql, _) in enumerate(inserts)]
    params: list[Any] = [param for _, held in inserts for param in held]
    insert, event_params = _event_rows(connection, events, texts)
    parts.append(f"appended AS ({insert} RETURNING seq)")
    params += event_params
    params.append(events[-1].hash)
    sql = (
        f"WITH {', '.join(parts)} UPDATE {LedgerHead._meta.db_table} "
        "SET seq = (SELECT max(seq) FROM appended), hash = %s WHERE id = 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if cursor.rowcount != 1:
            raise LedgerImmutableError("the ledger head did not move; nothing is appended")


def ledger_append(
    *,
    kind: str,
    actor: str = "system",
    payload: Any = None,
    node_id: str | None = None,
    responsible_ancestor_ids: Sequence[str] = (),
    directive_id: str | None = None,
    task_id: str | None = None,
    trial_id: str | None = None,
    suggestion_id: str | None = None,
    genome_id: str | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> LedgerEvent:
    """Append one event; see ``ledger_append_many`` for the invariant."""
    draft = EventDraft(
        kind=kind,
        actor=actor,
        payload={} if payload is None else payload,
        node_id=node_id,
        responsible_ancestor_ids=tuple(responsible_ancestor_ids),
        directive_id=directive_id,
        task_id=task_id,
        trial_id=trial_id,
        suggestion_id=suggestion_id,
        genome_id=genome_id,
        correlation_id=correlation_id,
        causation_id=causation_id,
    )
    return ledger_append_many(drafts=[draft])[0]


def task_trace_record(*, trace: TaskTrace, actor: str = "system") -> TaskTrace:
    """Store a trace with its subtree scopes and record a ``trace_written`` event.

    The trace, one scope row per node it belongs to (the assigned node and each
    responsible ancestor) and the event commit together or not at all (in the
    caller's batch, if one is open); the rows are written with the batch's append
    (``ledger_batch_insert``).
    """
    from ledger.kinds import TRACE_WRITTEN

    with ledger_batch():
        ledger_batch_insert(trace)
        scope_nodes = [trace.assigned_node_id, *trace.responsible_ancestor_ids]
        scopes = [
            TaskTraceScope(
                trace=trace, node_id=node_id, distance=distance, started_at=trace.started_at
            )
            for distance, node_id in enumerate(scope_nodes)
        ]
        ledger_batch_insert(*scopes)
        # The rows are append-only (ledger/immutability.py), and ledger_verify checks them
        # against this hash: decisions read the rows, the chain vouches for them.
        row_hash = trace_hash(
            trace, [(scope.distance, scope.node_id, scope.started_at) for scope in scopes]
        )
        ledger_record(
            EventDraft(
                kind=TRACE_WRITTEN,
                actor=actor,
                payload={**_trace_payload(trace), TRACE_HASH_KEY: row_hash},
                node_id=trace.assigned_node_id,
                responsible_ancestor_ids=tuple(trace.responsible_ancestor_ids),
                directive_id=trace.directive_id,
                task_id=trace.task_id,
                genome_id=trace.genome_id,
            )
        )
    return trace


def _timestamp(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _trace_payload(trace: TaskTrace) -> dict[str, Any]:
    return {
        "trace_id": trace.id,
        "task_id": trace.task_id,
        "genome_id": trace.genome_id,
        "assigned_node_id": trace.assigned_node_id,
        "responsible_ancestor_ids": list(trace.responsible_ancestor_ids),
        "related_suggestion_ids": list(trace.related_suggestion_ids),
        "started_at": _timestamp(trace.started_at),
        "completed_at": _timestamp(trace.completed_at),
        "input_tokens": trace.input_tokens,
        "output_tokens": trace.output_tokens,
        "latency_ms": trace.latency_ms,
        "tests_run": list(trace.tests_run),
        "tests_passed": trace.tests_passed,
        "outcome_score": trace.outcome_score,
    }
