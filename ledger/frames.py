"""What the live stream sends of an event: its frame, encoded once, and enough to filter it.

Both the per-process reader (ledger/stream.py), which reads events from the database, and
the bell (ledger/bell.py), which carries the events an append just committed, make them
here, so a frame is the same text whichever way it reached the reader.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ledger.models import LedgerEvent
from ledger.selectors import in_subtree


def event_frame(event: LedgerEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "id": event.id,
        "kind": event.kind,
        "created_at": event.created_at.isoformat(),
        "node_id": event.node_id,
        "responsible_ancestor_ids": list(event.responsible_ancestor_ids or ()),
        "directive_id": event.directive_id,
        "task_id": event.task_id,
        "actor": event.actor,
        "payload": event.payload,
    }


@dataclass(frozen=True)
class StreamEvent:
    """What subscribers see of an event: enough to filter it, and its frame, encoded once."""

    seq: int
    kind: str
    node_id: str | None
    responsible_ancestor_ids: tuple[str, ...]
    frame: str
    directive_id: str | None = None

    @classmethod
    def of(cls, event: LedgerEvent) -> StreamEvent:
        return cls(
            seq=event.seq,
            kind=event.kind,
            node_id=event.node_id,
            responsible_ancestor_ids=tuple(event.responsible_ancestor_ids or ()),
            frame=json.dumps(event_frame(event), separators=(",", ":")),
            directive_id=event.directive_id,
        )

    def as_message(self) -> dict[str, Any]:
        """Plain values a channel layer can carry (the bell's ``events``)."""
        return {
            "seq": self.seq,
            "kind": self.kind,
            "node_id": self.node_id,
            "responsible_ancestor_ids": list(self.responsible_ancestor_ids),
            "frame": self.frame,
            "directive_id": self.directive_id,
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> StreamEvent:
        return cls(
            seq=int(message["seq"]),
            kind=str(message["kind"]),
            node_id=message.get("node_id"),
            responsible_ancestor_ids=tuple(message.get("responsible_ancestor_ids") or ()),
            frame=str(message["frame"]),
            directive_id=message.get("directive_id"),
        )

    def in_subtree_of(self, node_id: str) -> bool:
        return in_subtree(
            node_id=node_id,
            event_node_id=self.node_id,
            responsible_ancestor_ids=self.responsible_ancestor_ids,
        )
