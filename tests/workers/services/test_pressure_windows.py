"""A grant's pressure windows (docs/rules/bargaining.md): the node's latest events of each
family, read in one statement of per-kind windows, the same summaries as the two plain reads."""

from __future__ import annotations

import pytest

from ledger.services import EventDraft, ledger_append_many
from workers.services.pressure import (
    PRESSURE_WINDOW,
    coordination_pressure,
    environment_pressure,
    grant_pressures,
)

pytestmark = pytest.mark.django_db

NODE = "ctl"


def _append(kind: str, payloads: list[dict]) -> None:
    ledger_append_many(
        drafts=[EventDraft(kind=kind, actor="t", node_id=NODE, payload=p) for p in payloads]
    )


def test_the_windows_hold_the_latest_events_of_a_family_across_its_kinds() -> None:
    # Old, severe events first: a window that reached past the latest PRESSURE_WINDOW
    # would see severity 9.
    _append("operation_environment_signal", [{"severity": 9, "kind": "Risk"}] * 30)
    _append("message_received", [{"noise": i} for i in range(300)])
    for i in range(PRESSURE_WINDOW):  # two kinds, interleaved
        kind = ("operation_environment_signal", "future_probe_environment_signal")[i % 2]
        _append(kind, [{"severity": 2, "kind": "Opportunity"}])
    _append("system2_coordination_signal", [{"severity": 8}] * 10)
    _append("system2_coordination_signal", [{"severity": 1}] * PRESSURE_WINDOW)
    _append(
        "operation_environment_signal",
        [{"severity": 3, "kind": "Risk"}],
    )
    # Another node's events count for nothing here.
    ledger_append_many(
        drafts=[
            EventDraft(
                kind="operation_environment_signal",
                actor="t",
                node_id="other",
                payload={"severity": 10, "kind": "Risk"},
            )
        ]
    )

    coordination, environment = grant_pressures(controller_node_id=NODE, requester_node_id="leaf")

    assert environment == environment_pressure(controller_node_id=NODE)
    assert coordination == coordination_pressure(controller_node_id=NODE, requester_node_id="leaf")
    assert environment.event_count == PRESSURE_WINDOW
    assert environment.max_severity == 3  # the latest, not the old severe ones
