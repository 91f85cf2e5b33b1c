"""Verify the whole ledger: the hash chain, the head, and the trace rows the chain vouches for.

``ledger_audit`` walks the events in seq order (checking each one's seq, link and hash),
checks the head against the last event, checks every trace row against the hash its
``trace_written`` event recorded, and finds trace rows no event names. It reads only; it
stops the chain walk at the first break (what follows a break is not trusted), and checks the
traces of the events before it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models.fields.json import KT

from ledger.chain import GENESIS_HASH, HASHED_FIELDS, ChainBreak, event_hash
from ledger.checkpoint import Checkpoint
from ledger.kinds import TRACE_WRITTEN
from ledger.models import LedgerEvent, LedgerHead, TaskTrace, TaskTraceScope
from ledger.trace_hash import TRACE_HASH_KEY, trace_hash

TRACE_BATCH = 500


@dataclass(frozen=True)
class TraceBreak:
    """A trace row the ledger does not vouch for."""

    trace_id: str
    seq: int | None  # its trace_written event; None when no event names the trace
    reason: str

    def __str__(self) -> str:
        where = f" (trace_written at seq {self.seq})" if self.seq is not None else ""
        return f"trace {self.trace_id}{where}: {self.reason}"


@dataclass
class LedgerReport:
    """What ``ledger_audit`` found. ``ok`` when neither the chain nor a trace is broken."""

    events: int = 0  # verified, from seq 1
    last_hash: str = GENESIS_HASH  # of the last verified event
    traces: int = 0  # trace rows that match their recorded hash
    unverifiable_traces: int = 0  # written before trace_written carried a hash
    bad_traces: int = 0
    chain_break: ChainBreak | None = None
    trace_break: TraceBreak | None = None  # the first bad trace, in seq order
    _pending: list[tuple[int, str, str]] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return self.chain_break is None and self.trace_break is None

    @property
    def problem(self) -> ChainBreak | TraceBreak | None:
        return self.chain_break or self.trace_break

    def problems(self) -> list[str]:
        """What is wrong, one line each (empty when ``ok``)."""
        problems = []
        if self.chain_break is not None:
            problems.append(
                f"ledger chain broken at {self.chain_break} "
                f"({self.events} events verified before it)"
            )
        if self.trace_break is not None:
            rows = _count(self.bad_traces, "trace row")
            problems.append(f"{rows} not matching the ledger; the first: {self.trace_break}")
        return problems

    def summary(self) -> str:
        """``ok <N> events, <M> traces…``: what a clean check covered."""
        summary = f"ok {self.events} events"
        if self.traces:
            summary += f", {_count(self.traces, 'trace')}"
        if self.unverifiable_traces:
            summary += (
                f", {_count(self.unverifiable_traces, 'trace')} written before trace hashes "
                "(not verifiable)"
            )
        return summary

    def trace_failed(self, problem: TraceBreak) -> None:
        self.bad_traces += 1
        if self.trace_break is None:
            self.trace_break = problem


def ledger_audit(
    *,
    chunk_size: int = 2000,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 50_000,
) -> LedgerReport:
    """Verify the chain, the head and the traces; see the module docstring.

    ``progress`` is called with the number of events verified so far, every
    ``progress_every`` events.
    """
    report = LedgerReport()
    for event in _verified_events(report, chunk_size=chunk_size):
        if event["kind"] == TRACE_WRITTEN:
            _queue_trace(report, event)
        if progress is not None and report.events % progress_every == 0:
            progress(report.events)
    _check_traces(report)
    _find_unnamed_trace(report)
    return report


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


# What the walk reads of each event: its hashed fields and its hash, as a dict (no model
# instances: making one an event was about a third of the walk).
_WALKED = (*HASHED_FIELDS, "hash")
Walked = dict[str, Any]


def _verified_events(report: LedgerReport, *, chunk_size: int) -> Iterator[Walked]:
    """Each event whose seq, link and hash are right, in seq order; then the head check.

    Records the first break in ``report.chain_break`` and stops there.
    """
    expected_seq, prev_hash = 1, GENESIS_HASH
    while True:
        rows = (
            LedgerEvent.objects.filter(seq__gte=expected_seq).order_by("seq").values_list(*_WALKED)
        )
        for row in rows.iterator(chunk_size=chunk_size):
            event = dict(zip(_WALKED, row, strict=True))
            reason = _link_problem(event, expected_seq, prev_hash)
            if reason is not None:
                report.chain_break = ChainBreak(expected_seq, reason)
                return
            report.events, report.last_hash = event["seq"], event["hash"]
            yield event
            expected_seq, prev_hash = event["seq"] + 1, event["hash"]
        # The head is read after the walk: an append moves it in the transaction that
        # stores its events, so it can only be at or past the last event the walk saw.
        head = LedgerHead.objects.filter(pk=1).first()
        appended_meanwhile = (
            head is not None
            and head.seq > report.events
            and LedgerEvent.objects.filter(seq__gt=report.events).exists()
        )
        if appended_meanwhile:
            continue  # walk those too
        report.chain_break = _head_problem(head, report.events, report.last_hash)
        return


def _link_problem(event: Walked, expected_seq: int, prev_hash: str) -> str | None:
    if event["seq"] != expected_seq:
        return f"missing; the next stored event is seq {event['seq']}"
    if event["prev_hash"] != prev_hash:
        return "prev_hash does not match the hash of the event before it"
    if event_hash(event) != event["hash"]:
        return "stored hash does not match the event's content"
    return None


def _head_problem(head: LedgerHead | None, last_seq: int, last_hash: str) -> ChainBreak | None:
    """Does the head point at the last event? The first seq it disagrees about, if not."""
    if head is None:
        if last_seq == 0:
            return None  # a flushed database: the first append creates the head
        return ChainBreak(
            last_seq + 1,
            f"the ledger head is missing (deleted?), so the tail after seq {last_seq} "
            "cannot be vouched for; check the ledger against a checkpoint",
        )
    if head.seq > last_seq:
        return ChainBreak(
            last_seq + 1,
            f"missing; the ledger head records seq {head.seq} but the chain ends at {last_seq}",
        )
    if head.seq == last_seq:
        if head.hash != last_hash:
            return ChainBreak(last_seq, "the ledger head records another hash for this event")
        return None
    # Events past the head were stored without moving it: not by an append.
    at_head = (
        GENESIS_HASH
        if head.seq == 0
        else LedgerEvent.objects.filter(seq=head.seq).values_list("hash", flat=True).first()
    )
    if head.hash != at_head:
        return ChainBreak(max(head.seq, 1), "the ledger head records another hash for this event")
    return ChainBreak(
        head.seq + 1,
        f"stored past the ledger head (seq {head.seq}): not written by an append "
        f"(the chain goes on to seq {last_seq})",
    )


def _queue_trace(report: LedgerReport, event: Walked) -> None:
    payload = event["payload"] if isinstance(event["payload"], dict) else {}
    trace_id, recorded = payload.get("trace_id"), payload.get(TRACE_HASH_KEY)
    if not isinstance(trace_id, str) or not isinstance(recorded, str):
        # Written before trace_written carried the row's hash: nothing to check it against.
        report.unverifiable_traces += 1
        return
    report._pending.append((event["seq"], trace_id, recorded))
    if len(report._pending) >= TRACE_BATCH:
        _check_traces(report)


def _check_traces(report: LedgerReport) -> None:
    """Compare the queued traces' rows (and scopes) with the hashes their events recorded."""
    pending, report._pending = report._pending, []
    if not pending:
        return
    ids = [trace_id for _, trace_id, _ in pending]
    rows = {trace.id: trace for trace in TaskTrace.objects.filter(pk__in=ids)}
    scopes: dict[str, list[tuple[int, str, datetime]]] = defaultdict(list)
    for trace_id, distance, node_id, started_at in TaskTraceScope.objects.filter(
        trace_id__in=ids
    ).values_list("trace_id", "distance", "node_id", "started_at"):
        scopes[trace_id].append((distance, node_id, started_at))
    for seq, trace_id, recorded in pending:
        row = rows.get(trace_id)
        if row is None:
            report.trace_failed(TraceBreak(trace_id, seq, "the trace row is missing"))
        elif trace_hash(row, scopes[trace_id]) != recorded:
            report.trace_failed(
                TraceBreak(
                    trace_id,
                    seq,
                    "the trace row or its scopes differ from what its trace_written event "
                    "recorded (the row was changed after it was written)",
                )
            )
        else:
            report.traces += 1


def _find_unnamed_trace(report: LedgerReport) -> None:
    """A trace row no trace_written event names was not written by ``task_trace_record``.

    One statement, so a trace and its event, committed together, are seen together.
    """
    named = (
        LedgerEvent.objects.filter(kind=TRACE_WRITTEN)
        .annotate(named_trace_id=KT("payload__trace_id"))
        .filter(named_trace_id__isnull=False)
        .values("named_trace_id")
    )
    unnamed = TaskTrace.objects.exclude(pk__in=named).order_by("started_at", "id")
    first = unnamed.values_list("id", flat=True).first()
    if first is not None:
        report.trace_failed(
            TraceBreak(first, None, "no trace_written event records this trace (inserted?)")
        )


def checkpoint_problem(report: LedgerReport, checkpoint: Checkpoint) -> str | None:
    """Why the verified ledger of ``report`` does not hold ``checkpoint``'s event, or None.

    The chain from genesis is verified, so the event at the checkpoint's seq still having
    the checkpoint's hash proves the whole prefix up to it is the one checkpointed.
    """
    if checkpoint.seq > report.events:
        if report.chain_break is not None:
            return f"the chain is broken before seq {checkpoint.seq}"
        return (
            f"the ledger ends at seq {report.events}, before the checkpoint's seq "
            f"{checkpoint.seq}: events were removed"
        )
    held = (
        GENESIS_HASH
        if checkpoint.seq == 0
        else LedgerEvent.objects.filter(seq=checkpoint.seq).values_list("hash", flat=True).first()
    )
    if held != checkpoint.hash:
        return (
            f"seq {checkpoint.seq} now has hash {held}: the chain was rewritten at or before "
            "that seq"
        )
    return None
