"""Reads of the pressure a controller is under: System 2 coordination and the environment.

Both summaries are built by pure functions (``workers.domain.bargaining``) from the
controller's own recent ledger events of their kinds: decomposition reads the
environment pressure, resource grants read both, in one statement (``grant_pressures``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.db import connection

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
    return [_record(row["kind"], row["payload"]) for row in reversed(list(rows))]


def _record(kind: str, payload: Any) -> EventRecord:
    payload = payload if isinstance(payload, dict) else {}
    metadata = payload.get("metadata")
    return {
        "kind": kind,
        "payload": payload,
        "metadata": metadata if isinstance(metadata, dict) else {},
    }


def _window(family: int, number: int) -> str:
    """The node's last events of one kind, newest first (the ``(node_id, kind, seq)`` index);
    its parameters are the node and the kind."""
    table = LedgerEvent._meta.db_table
    return (
        f"SELECT * FROM (SELECT {family} AS family, seq, kind, payload FROM {table} "
        f"WHERE node_id = %s AND kind = %s "
        f"ORDER BY seq DESC LIMIT {PRESSURE_WINDOW}) AS window_{number}"
    )


COORDINATION, ENVIRONMENT = 0, 1


def grant_pressures(
    *, controller_node_id: str, requester_node_id: str
) -> tuple[CoordinationPressure, EnvironmentPressure]:
    """Both summaries a grant reads, from one statement of indexed, limited reads joined by
    ``UNION ALL`` (what ``coordination_pressure`` and ``environment_pressure`` read, in two).
    Its cost follows the window, not the node's history."""
    # One limited window per kind, each an index range read on (node_id, kind, seq) whatever
    # the planner's statistics say; a family's latest events are then the latest of those.
    windows = [(COORDINATION, COORDINATION_EVENT_KIND)] + [
        (ENVIRONMENT, kind) for kind in sorted(ENVIRONMENT_EVENT_KINDS)
    ]
    sql = " UNION ALL ".join(_window(family, n) for n, (family, _) in enumerate(windows))
    params = [value for _, kind in windows for value in (controller_node_id, kind)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    families: dict[int, list[tuple[int, EventRecord]]] = {COORDINATION: [], ENVIRONMENT: []}
    for family, seq, kind, payload in rows:
        # Both databases hand JSON columns to a raw cursor as text (Django's psycopg loader).
        decoded = json.loads(payload) if isinstance(payload, str) else payload
        families[family].append((seq, _record(kind, decoded)))
    oldest_first = {
        family: [record for _, record in sorted(found, key=lambda item: item[0])[-PRESSURE_WINDOW:]]
        for family, found in families.items()
    }
    return (
        summarise_coordination_pressure(oldest_first[COORDINATION], requester_node_id),
        summarise_environment_pressure(oldest_first[ENVIRONMENT]),
    )


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
