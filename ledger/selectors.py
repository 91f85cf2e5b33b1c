"""Reads of the ledger: chain verification, recent events, subtree traces."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from ledger.chain import ChainBreak
from ledger.models import LedgerEvent, TaskTrace, TaskTraceScope
from ledger.verification import TraceBreak, ledger_audit

DEFAULT_TRACE_LIMIT = 100


def ledger_verify() -> tuple[int, ChainBreak | TraceBreak | None]:
    """(number of verified events, the first problem or None): chain, head and traces.

    ``ledger.verification.ledger_audit`` has the whole report.
    """
    report = ledger_audit()
    return report.events, report.problem


def subtree_task_traces(
    *, node_id: str, since: datetime | None = None, limit: int = DEFAULT_TRACE_LIMIT
) -> list[TaskTrace]:
    """The newest traces of work done in ``node_id``'s subtree, newest first.

    A trace belongs to the subtree when its assigned node is ``node_id`` or
    ``node_id`` is one of its responsible ancestors. Filters first, then keeps
    the newest ``limit`` (the reference limited first and missed traces).
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    # One filter() call, so both conditions apply to the same scope row.
    conditions: dict[str, object] = {"scopes__node_id": node_id}
    if since is not None:
        conditions["scopes__started_at__gte"] = since
    traces: QuerySet[TaskTrace] = TaskTrace.objects.filter(**conditions)
    return list(traces.order_by("-started_at", "id")[:limit])


SUBTREE_SCAN_CHUNK = 500


def subtree_events_after(
    *, node_id: str | None, after_seq: int, limit: int = SUBTREE_SCAN_CHUNK
) -> tuple[list[LedgerEvent], int]:
    """Events of ``node_id``'s subtree with seq above ``after_seq``, in seq order.

    Scans at most ``limit`` events in seq order and returns the ones in the
    subtree (``node_id`` is the event's node or one of its responsible
    ancestors; ``None`` keeps every event) with the last seq scanned, so a
    caller resumes from there and never reads an event twice. A chunk that
    scanned fewer than ``limit`` events reached the end of the ledger.

    Reading by ``seq > after_seq`` misses nothing: an append holds the chain
    head's lock until its transaction commits, so seq N is committed before
    seq N + 1 can be written. SQLite has no JSON containment lookup, so the
    subtree test runs here rather than in SQL.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    scanned = list(LedgerEvent.objects.filter(seq__gt=after_seq).order_by("seq")[:limit])
    if not scanned:
        return [], after_seq
    if node_id is None:
        return scanned, scanned[-1].seq
    matched = [
        event
        for event in scanned
        if in_subtree(
            node_id=node_id,
            event_node_id=event.node_id,
            responsible_ancestor_ids=event.responsible_ancestor_ids or (),
        )
    ]
    return matched, scanned[-1].seq


def in_subtree(
    *, node_id: str, event_node_id: str | None, responsible_ancestor_ids: Sequence[str]
) -> bool:
    """The subtree rule of the stream: the event is at ``node_id`` or below it."""
    return event_node_id == node_id or node_id in responsible_ancestor_ids


def ledger_head_seq() -> int:
    """The seq of the last committed event, 0 for an empty ledger."""
    last = LedgerEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    return int(last) if last is not None else 0


def directive_latest_traces(*, directive_id: str) -> dict[str, TaskTrace]:
    """Each task's latest trace in a directive, by task id: one query for the whole directive."""
    traces = TaskTrace.objects.filter(directive_id=directive_id).order_by("started_at")
    return {trace.task_id: trace for trace in traces}


TRACE_PAGE_SIZE = 25
# A trace's outcome as its leaf scored it: positive for a completed task, negative for a failed one.
TRACE_OUTCOMES = ("completed", "failed")


@dataclass(frozen=True)
class TracePage:
    traces: list[TaskTrace]
    number: int
    has_next: bool
    outcome: str | None

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.has_next else None


def subtree_trace_page(
    *, node_id: str, outcome: str | None = None, page: int = 1, page_size: int = TRACE_PAGE_SIZE
) -> TracePage:
    """One page of ``node_id``'s subtree traces, newest first, optionally only the completed
    or the failed ones (``TRACE_OUTCOMES``; anything else is no filter). Reads one row past the
    page to know whether another follows, so no count over a large subtree is needed."""
    if page < 1 or page_size < 1:
        raise ValueError("page and page_size must be at least 1")
    # Through the scope rows: their (node_id, started_at) index gives the order too.
    scopes: QuerySet[TaskTraceScope] = TaskTraceScope.objects.filter(node_id=node_id)
    if outcome == "completed":
        scopes = scopes.filter(trace__outcome_score__gt=0)
    elif outcome == "failed":
        scopes = scopes.filter(trace__outcome_score__lte=0)
    else:
        outcome = None
    start = (page - 1) * page_size
    window = scopes.select_related("trace").order_by("-started_at", "-trace_id")
    rows = [scope.trace for scope in window[start : start + page_size + 1]]
    return TracePage(
        traces=rows[:page_size], number=page, has_next=len(rows) > page_size, outcome=outcome
    )


EVENT_PAGE_SIZE = 50


@dataclass(frozen=True)
class EventFilter:
    """What the ledger explorer narrows to; empty fields do not narrow."""

    kind: str = ""
    node_id: str = ""
    directive_id: str = ""
    trial_id: str = ""
    correlation_id: str = ""
    causation_id: str = ""
    actor: str = ""

    def queryset(self) -> QuerySet[LedgerEvent]:
        events = LedgerEvent.objects.all()
        for column, value in (
            ("kind", self.kind),
            ("node_id", self.node_id),
            ("directive_id", self.directive_id),
            ("trial_id", self.trial_id),
            ("correlation_id", self.correlation_id),
            ("causation_id", self.causation_id),
            ("actor", self.actor),
        ):
            if value:
                events = events.filter(**{column: value})
        return events


@dataclass(frozen=True)
class EventPage:
    events: list[LedgerEvent]
    older_than: int | None  # the ``before`` of the next (older) page, None at the start
    newer_than: int | None  # the ``after`` of the previous (newer) page, None at the end


def ledger_event_page(
    *,
    where: EventFilter,
    before: int | None = None,
    after: int | None = None,
    size: int = EVENT_PAGE_SIZE,
) -> EventPage:
    """One page of matching events, newest first, by seq (keyset: cheap at any depth).

    ``before`` gives the page of events below that seq, ``after`` the page just above it
    (still shown newest first); neither gives the newest page.
    """
    events = where.queryset()
    if after is not None:
        chunk = list(events.filter(seq__gt=after).order_by("seq")[: size + 1])
        more_newer = len(chunk) > size
        page = list(reversed(chunk[:size]))
        more_older = events.filter(seq__lte=after).exists()
    else:
        if before is not None:
            events = events.filter(seq__lt=before)
        chunk = list(events.order_by("-seq")[: size + 1])
        more_older = len(chunk) > size
        page = chunk[:size]
        more_newer = before is not None and where.queryset().filter(seq__gte=before).exists()
    return EventPage(
        events=page,
        older_than=page[-1].seq if page and more_older else None,
        newer_than=page[0].seq if page and more_newer else None,
    )


def subtree_recent_events(
    *, node_id: str, limit: int = 20, scan_limit: int = 2_000
) -> tuple[list[LedgerEvent], int]:
    """The latest ``limit`` events of ``node_id``'s subtree, newest first, and the head seq.

    Walks back from the head through at most ``scan_limit`` events, reading only their seq,
    node and ancestors (the subtree test runs in Python, as in ``subtree_events_after``), then
    fetches the matches whole: a quiet subtree in a busy ledger costs a bounded, light read.
    The head seq is where a live page starts following.
    """
    head = ledger_head_seq()
    matched: list[int] = []
    before, scanned = head + 1, 0
    while len(matched) < limit and scanned < scan_limit and before > 1:
        chunk = list(
            LedgerEvent.objects.filter(seq__lt=before)
            .order_by("-seq")
            .values_list("seq", "node_id", "responsible_ancestor_ids")[:SUBTREE_SCAN_CHUNK]
        )
        if not chunk:
            break
        scanned += len(chunk)
        before = chunk[-1][0]
        matched.extend(
            seq
            for seq, event_node_id, ancestors in chunk
            if in_subtree(
                node_id=node_id,
                event_node_id=event_node_id,
                responsible_ancestor_ids=ancestors or (),
            )
        )
    events = LedgerEvent.objects.filter(seq__in=matched[:limit]).order_by("-seq")
    return list(events), head
