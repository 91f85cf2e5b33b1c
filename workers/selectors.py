"""Reads of the workers' rows for pages and APIs: what /alarms/ shows, an edge's epoch.

Pages that list nodes stay bounded however large the organization grows: the
nodes section shows one page of ``NODE_PAGE_SIZE`` nodes (in tree order, or
those matching a search), plus the paused nodes and their ancestors that are
not on that page, so a pause is never hidden on page 40.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, IntegerField, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from organization.genome import OrganizationalGenome
from organization.models import Node, SubtreePause
from organization.selectors import champion_genome, node_tree, pause_covering, subtree_pauses
from workers.domain.algedonic import Valence
from workers.domain.bargaining import Budgets, EpochUsage, remaining_messages, remaining_tokens
from workers.models import AlgedonicSignalRecord, Directive, Envelope, ResourceEpoch, Task
from workers.services.bargaining import current_epoch_key, epoch_budgets
from workers.services.outbox import envelopes_due

RECENT_SIGNALS = 25
NODE_PAGE_SIZE = 50
# Paused nodes (and their ancestors) shown beside the page; pauses listed in full.
PINNED_LIMIT = 50
PAUSES_SHOWN = 100


@dataclass(frozen=True)
class NodeRow:
    node: Node
    own_pause: SubtreePause | None
    covering_pause: SubtreePause | None

    @property
    def paused(self) -> bool:
        return self.covering_pause is not None


@dataclass(frozen=True)
class NodePage:
    rows: list[NodeRow]
    # Paused nodes and their ancestors that are not among ``rows``, in tree order.
    pinned: list[NodeRow]
    number: int
    pages: int
    total: int
    query: str

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.number < self.pages else None


@dataclass(frozen=True)
class AlarmContext:
    signals: list[AlgedonicSignalRecord]
    pauses: list[SubtreePause]
    more_pauses: int
    node_page: NodePage


def recent_signals(*, limit: int = RECENT_SIGNALS) -> list[AlgedonicSignalRecord]:
    """The newest algedonic signals, newest first."""
    return list(AlgedonicSignalRecord.objects.order_by("-created_at")[:limit])


def _rows(nodes: Iterable[Node], pauses: Mapping[str, SubtreePause]) -> list[NodeRow]:
    return [
        NodeRow(
            node=node,
            own_pause=pauses.get(node.id),
            covering_pause=pause_covering(
                node_id=node.id, ancestor_ids=list(node.ancestor_ids), pauses=pauses
            ),
        )
        for node in nodes
    ]


def _matching(query: str) -> QuerySet[Node]:
    nodes = node_tree()
    if query:
        nodes = nodes.filter(Q(id__icontains=query) | Q(name__icontains=query))
    return nodes


def _pinned(
    pauses: Mapping[str, SubtreePause], shown: set[str], limit: int = PINNED_LIMIT
) -> list[Node]:
    paused_ids = list(pauses)[:limit]
    wanted = set(paused_ids)
    for ancestor_ids in Node.objects.filter(id__in=paused_ids).values_list(
        "ancestor_ids", flat=True
    ):
        wanted.update(ancestor_ids)
    wanted -= shown
    return list(node_tree().filter(id__in=wanted)[:limit])


def node_page(*, pauses: Mapping[str, SubtreePause], page: int = 1, query: str = "") -> NodePage:
    """One page of nodes (clamped to the pages there are) and the pinned paused ones."""
    nodes = _matching(query.strip())
    total = nodes.count()
    pages = max((total + NODE_PAGE_SIZE - 1) // NODE_PAGE_SIZE, 1)
    number = min(max(page, 1), pages)
    start = (number - 1) * NODE_PAGE_SIZE
    listed = list(nodes[start : start + NODE_PAGE_SIZE])
    pinned = _pinned(pauses, {node.id for node in listed})
    return NodePage(
        rows=_rows(listed, pauses),
        pinned=_rows(pinned, pauses),
        number=number,
        pages=pages,
        total=total,
        query=query.strip(),
    )


def alarm_context(*, page: int = 1, query: str = "") -> AlarmContext:
    """What /alarms/ shows: recent signals, the pauses, a page of nodes with their pause state."""
    pauses = subtree_pauses()
    shown = list(pauses.values())
    return AlarmContext(
        signals=recent_signals(),
        pauses=shown[:PAUSES_SHOWN],
        more_pauses=max(len(shown) - PAUSES_SHOWN, 0),
        node_page=node_page(pauses=pauses, page=page, query=query),
    )


def epoch_summary(*, epoch: ResourceEpoch, released: int) -> dict[str, Any]:
    """An edge's epoch as the grants API shows it: budgets, usage and what remains."""
    genome = champion_genome()
    assert genome is not None, "a grant was just made, so the organization exists"
    budgets = epoch_budgets(genome, epoch)
    usage = EpochUsage(
        allocation_count=epoch.allocation_count, allocated_tokens=epoch.allocated_tokens
    )
    return {
        "epoch_key": epoch.epoch_key,
        "controller_node_id": epoch.controller_node_id,
        "requester_node_id": epoch.requester_node_id,
        "budget_tokens": budgets.tokens,
        "message_budget": budgets.messages,
        "extra_tokens": epoch.extra_tokens,
        "extra_messages": epoch.extra_messages,
        "allocation_count": epoch.allocation_count,
        "allocated_tokens": epoch.allocated_tokens,
        "used_tokens": epoch.used_tokens,
        "remaining_tokens": remaining_tokens(budgets, usage),
        "remaining_messages": remaining_messages(budgets, usage),
        "released_task_count": released,
    }


def envelopes_waiting_to_send(*, limit: int = 500) -> list[Envelope]:
    """The unhandled envelopes the outbox sweeper would send now, oldest first."""
    return list(Envelope.objects.filter(envelopes_due()).order_by("created_at")[:limit])


def directive_waiting_to_send(*, directive_id: str) -> int:
    """How many of a directive's envelopes wait for the outbox sweeper (their send failed or
    is overdue): its work is committed but not on its way."""
    return Envelope.objects.filter(envelopes_due(), correlation_id=directive_id).count()


def directives_with_waiting(directives: QuerySet[Directive]) -> QuerySet[Directive]:
    """``directives`` with ``waiting_to_send`` (as above) in the same query."""
    due = (
        Envelope.objects.filter(envelopes_due(), correlation_id=OuterRef("id"))
        .order_by()
        .values("correlation_id")
        .annotate(count=Count("id"))
        .values("count")
    )
    return directives.annotate(
        waiting_to_send=Coalesce(Subquery(due, output_field=IntegerField()), 0)
    )


# -- the overview page (/) -------------------------------------------------------------------

OVERVIEW_DIRECTIVES = 8
OVERVIEW_EDGES = 10
ALARM_WINDOW = timedelta(hours=24)
# A worker finishes beat's trials tick every 30 s, and beat's database scheduler writes its
# last run times every 3 minutes: silence past these means the process is gone (or stuck).
WORKER_SILENCE = timedelta(minutes=2)
BEAT_SILENCE = timedelta(minutes=5)


@dataclass(frozen=True)
class DirectiveOverview:
    running: list[Directive]
    running_total: int
    recent: list[Directive]


def directive_overview(*, limit: int = OVERVIEW_DIRECTIVES) -> DirectiveOverview:
    """The directives still running (accepted or running), newest first, and the newest
    settled ones."""
    unsettled = Directive.objects.filter(
        status__in=[Directive.Status.ACCEPTED, Directive.Status.RUNNING]
    )
    settled = Directive.objects.exclude(
        status__in=[Directive.Status.ACCEPTED, Directive.Status.RUNNING]
    )
    fields = ("id", "title", "status", "risk", "created_at", "completed_at")
    return DirectiveOverview(
        running=list(unsettled.only(*fields).order_by("-created_at")[:limit]),
        running_total=unsettled.count(),
        recent=list(settled.only(*fields).order_by("-created_at")[:limit]),
    )


@dataclass(frozen=True)
class AlarmSummary:
    pain_signals: int  # pain signals raised within ``ALARM_WINDOW``
    newest: list[AlgedonicSignalRecord]
    paused_subtrees: int


def alarm_summary(*, now: datetime | None = None, newest: int = 3) -> AlarmSummary:
    """How loud the organization is: recent pain, the newest signals, the paused subtrees."""
    since = (now or timezone.now()) - ALARM_WINDOW
    return AlarmSummary(
        pain_signals=AlgedonicSignalRecord.objects.filter(
            created_at__gte=since, valence=Valence.PAIN
        ).count(),
        newest=recent_signals(limit=newest),
        paused_subtrees=SubtreePause.objects.count(),
    )


@dataclass(frozen=True)
class EdgeBudget:
    controller_node_id: str
    requester_node_id: str
    allocated_tokens: int
    used_tokens: int
    budget_tokens: int | None  # None: the edge has no token budget (unlimited)
    allocation_count: int
    message_budget: int | None

    @property
    def used_percent(self) -> int | None:
        if not self.budget_tokens:
            return None
        return min(round(100 * self.allocated_tokens / self.budget_tokens), 100)


@dataclass(frozen=True)
class BudgetOverview:
    epoch_key: str
    edges: list[EdgeBudget]  # the busiest edges this epoch
    edges_total: int  # every edge with a grant this epoch


def budget_overview(*, limit: int = OVERVIEW_EDGES, node_id: str | None = None) -> BudgetOverview:
    """Each edge's token use this epoch against its budget, the most allocated first; with
    ``node_id``, only the edges that node is an end of. One pass over the champion's channels
    for the edges shown, however many edges there are."""
    key = current_epoch_key()
    epochs = ResourceEpoch.objects.filter(epoch_key=key)
    if node_id is not None:
        epochs = epochs.filter(Q(controller_node_id=node_id) | Q(requester_node_id=node_id))
    shown = list(epochs.order_by("-allocated_tokens", "controller_node_id")[:limit])
    genome = champion_genome() if shown else None
    edges = []
    for budgets, epoch in zip(_edge_budgets(genome, shown), shown, strict=True):
        edges.append(
            EdgeBudget(
                controller_node_id=epoch.controller_node_id,
                requester_node_id=epoch.requester_node_id,
                allocated_tokens=epoch.allocated_tokens,
                used_tokens=epoch.used_tokens,
                budget_tokens=budgets.tokens,
                allocation_count=epoch.allocation_count,
                message_budget=budgets.messages,
            )
        )
    return BudgetOverview(epoch_key=key, edges=edges, edges_total=epochs.count())


def _edge_budgets(
    genome: OrganizationalGenome | None, epochs: list[ResourceEpoch]
) -> list[Budgets]:
    if genome is None:
        return [Budgets(tokens=None, messages=None) for _ in epochs]
    # The cached champion's channel index finds each edge's own channels (edge_budgets).
    return [epoch_budgets(genome, epoch) for epoch in epochs]


@dataclass(frozen=True)
class ProcessLiveness:
    name: str
    last_seen: datetime | None
    alive: bool
    evidence: str  # what "last seen" is measured by
    never: str  # what the page says when there is no such evidence at all


def runtime_liveness(*, now: datetime | None = None) -> list[ProcessLiveness]:
    """Whether a Celery worker and beat are running, from what they leave in the database: a
    worker stores each periodic task's result (beat's trials tick runs every 30 s), beat
    records when it last sent each periodic task."""
    from django_celery_beat.models import PeriodicTask
    from django_celery_results.models import TaskResult

    moment = now or timezone.now()
    worker_seen = TaskResult.objects.aggregate(last=Max("date_done"))["last"]
    beat_seen = PeriodicTask.objects.filter(enabled=True).aggregate(last=Max("last_run_at"))["last"]
    return [
        ProcessLiveness(
            name="worker",
            last_seen=worker_seen,
            alive=worker_seen is not None and moment - worker_seen <= WORKER_SILENCE,
            evidence="last task result stored",
            never="no task result stored yet",
        ),
        ProcessLiveness(
            name="beat",
            last_seen=beat_seen,
            alive=beat_seen is not None and moment - beat_seen <= BEAT_SILENCE,
            evidence="last periodic task sent",
            never="no periodic task sent yet",
        ),
    ]


# -- /directives/ ------------------------------------------------------------------------------

DIRECTIVE_PAGE_SIZE = 25


@dataclass(frozen=True)
class DirectivePage:
    directives: Sequence[Directive]  # each with ``task_count`` and ``tasks_done`` annotated
    number: int
    has_next: bool
    query: str
    status: str | None

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.has_next else None


def directive_page(
    *,
    query: str = "",
    status: str | None = None,
    page: int = 1,
    page_size: int = DIRECTIVE_PAGE_SIZE,
) -> DirectivePage:
    """Directives newest first, matching ``query`` in their title or id and ``status`` (one of
    ``Directive.Status``; anything else is no filter), with how many of their tasks are done.
    Reads one row past the page instead of counting every match."""
    if page < 1 or page_size < 1:
        raise ValueError("page and page_size must be at least 1")
    directives = Directive.objects.all()
    query = query.strip()
    if query:
        directives = directives.filter(Q(title__icontains=query) | Q(id__startswith=query))
    if status not in Directive.Status.values:
        status = None
    if status is not None:
        directives = directives.filter(status=status)
    start = (page - 1) * page_size
    rows = list(
        directives.annotate(
            task_count=Count("tasks"),
            tasks_done=Count("tasks", filter=Q(tasks__status__in=Task.FINISHED)),
        ).order_by("-created_at", "id")[start : start + page_size + 1]
    )
    return DirectivePage(
        directives=rows[:page_size],
        number=page,
        has_next=len(rows) > page_size,
        query=query,
        status=status,
    )
