"""Reads of the workers' rows for pages: what /alarms/ shows."""

from __future__ import annotations

from dataclasses import dataclass

from organization.models import Node, SubtreePause
from organization.selectors import node_tree, pause_covering, subtree_pauses
from workers.models import AlgedonicSignalRecord

RECENT_SIGNALS = 25


@dataclass(frozen=True)
class NodeRow:
    node: Node
    own_pause: SubtreePause | None
    covering_pause: SubtreePause | None

    @property
    def paused(self) -> bool:
        return self.covering_pause is not None


@dataclass(frozen=True)
class AlarmContext:
    signals: list[AlgedonicSignalRecord]
    pauses: list[SubtreePause]
    node_rows: list[NodeRow]


def recent_signals(*, limit: int = RECENT_SIGNALS) -> list[AlgedonicSignalRecord]:
    """The newest algedonic signals, newest first."""
    return list(AlgedonicSignalRecord.objects.order_by("-created_at")[:limit])


def alarm_context() -> AlarmContext:
    """What /alarms/ shows: recent signals, the pauses, every node with its pause state."""
    pauses = subtree_pauses()
    rows = []
    for node in node_tree():
        covering = pause_covering(
            node_id=node.id, ancestor_ids=list(node.ancestor_ids), pauses=pauses
        )
        rows.append(NodeRow(node=node, own_pause=pauses.get(node.id), covering_pause=covering))
    return AlarmContext(signals=recent_signals(), pauses=list(pauses.values()), node_rows=rows)
