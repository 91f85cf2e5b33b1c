"""Writes to the ledger. Every event goes through ``ledger_append_many``.

Services record their events with ``ledger_record``. Inside ``ledger_batch()`` (one
runtime hop, one API call) the events are held and written by a single append as
the block ends, in the order they were recorded; outside one they are appended at
once. A hop therefore locks the chain head once, last, after every other row it
locks: one lock order for the whole system.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

from ledger.bell import ledger_bell_ring
from ledger.chain import GENESIS_HASH, event_hash, new_id, normalise_payload
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


# The drafts of the open batch of this thread (or task), if one is open.
_open_batch: ContextVar[list[tuple[EventDraft, Any]] | None] = ContextVar(
    "ledger_batch", default=None
)


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
    drafts: list[tuple[EventDraft, Any]] = []
    token = _open_batch.set(drafts)
    open_ = True
    try:
        with transaction.atomic():
            yield
            _open_batch.reset(token)
            open_ = False
            _append_prepared(drafts)
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
        batch.extend(prepared)


def _prepare(drafts: Sequence[EventDraft]) -> list[tuple[EventDraft, Any]]:
    prepared = []
    for draft in drafts:
        if draft.kind not in ALL_KINDS:
            raise LedgerInputError(f"unknown ledger event kind {draft.kind!r}")
        try:
            payload = normalise_payload(draft.payload)
        except (TypeError, ValueError) as error:
            raise LedgerInputError(f"{draft.kind} payload is not JSON: {error}") from error
        prepared.append((draft, payload))
    return prepared


def _lock_head() -> LedgerHead:
    """Lock the chain head for this transaction, creating it at genesis on an empty ledger.

    Migration 0002 creates the head; only a flushed database (tests, benches) lacks it, and
    then has no events either. A head missing while events exist was deleted: rebuilding it
    from the last event would hide a deleted tail, so the append is refused (the database's
    head guard refuses that insert too).
    """
    head = LedgerHead.objects.select_for_update().filter(pk=1).first()
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
        head = LedgerHead.objects.select_for_update().get(pk=1)
    return head


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


def _append_prepared(prepared: Sequence[tuple[EventDraft, Any]]) -> list[LedgerEvent]:
    if not prepared:
        return []
    events: list[LedgerEvent] = []
    # Inside a caller's transaction no savepoint: a failed append dooms it anyway.
    with transaction.atomic(savepoint=False):
        head = _lock_head()
        seq, prev_hash = head.seq, head.hash
        for draft, payload in prepared:
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
            prev_hash = event_hash(fields)
            events.append(LedgerEvent(**fields, hash=prev_hash))
        LedgerEvent.objects.bulk_create(events)
        LedgerHead.objects.filter(pk=1).update(seq=seq, hash=prev_hash)
        if events:
            # Wake the live stream once the events are visible; a lost bell only
            # delays them to the consumers' next poll, so it must never fail the append.
            transaction.on_commit(partial(ledger_bell_ring, seq), robust=True)
    return events


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
    caller's batch, if one is open).
    """
    from ledger.kinds import TRACE_WRITTEN

    with ledger_batch():
        trace.save(force_insert=True)
        scope_nodes = [trace.assigned_node_id, *trace.responsible_ancestor_ids]
        scopes = [
            TaskTraceScope(
                trace=trace, node_id=node_id, distance=distance, started_at=trace.started_at
            )
            for distance, node_id in enumerate(scope_nodes)
        ]
        TaskTraceScope.objects.bulk_create(scopes)
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
