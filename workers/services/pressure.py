"""Reads of the pressure a controller is under: System 2 coordination and the environment.

Both summaries are built by pure functions (``workers.domain.bargaining``) from the
controller's own recent ledger events of their kinds: decomposition reads the
environment pressure, resource grants read both.
"""

from __future__ import annotations

from collections.abc import Iterable

from ledger.models import LedgerEvent
from workers.domain.bargaining import (
    COORDINATION_EVENT_KIND,
    ENVIRONMENT_EVENT_KINDS,
    CoordinationPressure,
    EventRecord,
    summarise_coordination_pressure,
    summarise_environment_pressure,
)
from workers.domain.decomposition import EnvironmentPressure

# The controller's last events of each family that the summaries read.
PRESSURE_WINDOW = 100


def recent_events(*, node_id: str, event_kinds: Iterable[str]) -> list[EventRecord]:
    """The node's last events of these kinds, oldest first, as the pure summaries read them."""
    rows = (
        LedgerEvent.objects.filter(node_id=node_id, kind__in=list(event_kinds))
        .order_by("-seq")
        .values("kind", "payload")[:PRESSURE_WINDOW]
    )
    records: list[EventRecord] = []
    for row in reversed(list(rows)):
        payload = row["payload"] if isinstance(row["payload"], dict) else {}
        metadata = payload.get("metadata")
        records.append(
            {
                "kind": row["kind"],
                "payload": payload,
                "metadata": metadata if isinstance(metadata, dict) else {},
            }
        )
    return records


def environment_pressure(*, controller_node_id: str) -> EnvironmentPressure:
    return summarise_environment_pressure(
        recent_events(node_id=controller_node_id, event_kinds=ENVIRONMENT_EVENT_KINDS)
    )


def coordination_pressure(
    *, controller_node_id: str, requester_node_id: str
) -> CoordinationPressure:
    return summarise_coordination_pressure(
        recent_events(node_id=controller_node_id, event_kinds={COORDINATION_EVENT_KIND}),
        requester_node_id,
    )
