"""Reads of the workers' rows for pages and APIs: what /alarms/ shows, an edge's epoch.

Pages that list nodes stay bounded however large the organization grows: the
nodes section shows one page of ``NODE_PAGE_SIZE`` nodes (in tree order, or
those matching a search), plus the paused nodes and their ancestors that are
not on that page, so a pause is never hidden on page 40.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from organization.models import Node, SubtreePause
from organization.selectors import champion_genome, node_tree, pause_covering, subtree_pauses
from workers.domain.bargaining import EpochUsage, remaining_messages, remaining_tokens
from workers.models import AlgedonicSignalRecord, Directive, Envelope, ResourceEpoch
from workers.services.bargaining import epoch_budgets
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
