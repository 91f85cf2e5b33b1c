"""System 2 coordination: record every signal, dampen the serious ones. Pure.

System 2 is the anti-oscillation function between System 1 units. Every signal it sends is
recorded (:func:`coordination_event`; bargaining reads these events as pressure on grants).
A signal serious enough, contention or oscillation at severity 5 or more, or a blocked
dependency at 7 or more, becomes a dampening task (:func:`dampening_task`): a coordination
task, not a coding one, for the first affected unit that is a direct child of the controller,
routed on the System2Coordination channel (:func:`dampening_envelope`).
"""

from __future__ import annotations

import copy
from typing import Any

from organization.genome import OrganizationalGenome, VsmChannelType
from workers.domain.channel_messages import (
    ChannelEvent,
    CoordinationKind,
    System2CoordinationSignal,
    correlation_of,
    event_payload,
    joined,
    kind_label,
)
from workers.domain.messages import MessageEnvelope, RiskClass, TaskPacket

COORDINATION_SIGNAL_EVENT = "system2_coordination_signal"
DAMPENING_TASK_CREATED_EVENT = "system2_dampening_task_created"
DAMPENING_POLICY = "system2_dampening_v1"
DAMPENING_TASK_MAPPED_POLICY = "system2_dampening_signal"

# The lowest severity at which each kind is dampened; other kinds never are.
DAMPENING_THRESHOLDS = {
    CoordinationKind.CONTENTION: 5,
    CoordinationKind.OSCILLATION: 5,
    CoordinationKind.DEPENDENCY_BLOCKED: 7,
}
HIGH_RISK_SEVERITY = 8


def coordination_event(
    signal: System2CoordinationSignal, incoming: MessageEnvelope
) -> ChannelEvent:
    """The ``system2_coordination_signal`` event, filed under the first affected task."""
    metadata = {
        "source_channel": incoming.channel_type.value,
        "coordination_kind": kind_label(signal.kind, signal.other_kind),
    }
    if signal.severity is not None:
        metadata["severity"] = str(signal.severity)
    return ChannelEvent(
        kind=COORDINATION_SIGNAL_EVENT,
        payload=event_payload(signal, incoming),
        metadata=metadata,
        task_id=signal.affected_task_ids[0] if signal.affected_task_ids else None,
        correlation_id=correlation_of(incoming),
    )


def needs_dampening(signal: System2CoordinationSignal) -> bool:
    """Contention or oscillation at severity ≥ 5, a blocked dependency at ≥ 7 (absent = 0)."""
    threshold = DAMPENING_THRESHOLDS.get(signal.kind)
    return threshold is not None and (signal.severity or 0) >= threshold


def dampening_task(
    signal: System2CoordinationSignal,
    *,
    controller_node_id: str,
    genome: OrganizationalGenome,
    incoming_envelope_id: str,
) -> TaskPacket | None:
    """The task that dampens ``signal`` at ``controller_node_id``, or None if it needs none.

    Assigned to the first of the signal's target and affected nodes that is a direct child
    of the controller; to nobody (the router chooses) when none is.
    """
    if not needs_dampening(signal):
        return None
    kind = signal.kind.value
    severity = signal.severity or 0
    goal = f"Coordinate affected System 1 units to dampen {kind}. Summary: {signal.summary}"
    if signal.evidence:
        goal += f" Evidence: {'; '.join(signal.evidence)}"
    metadata = {
        "coordination_policy": DAMPENING_POLICY,
        "coordination_kind": kind,
        "coordination_signal_message_id": incoming_envelope_id,
        "coordination_source_node_id": signal.source_node_id or signal.coordinator_node_id,
        "coordination_severity": str(severity),
        "coordination_affected_node_ids": joined(signal.affected_node_ids),
        "coordination_affected_task_ids": joined(signal.affected_task_ids),
        "requires_code_write": "false",
        "decomposition_authority": "system2",
        "vsm_coordination_summary": signal.summary,
    }
    if signal.target_node_id is not None:
        metadata["coordination_target_node_id"] = signal.target_node_id
        metadata["target_child"] = signal.target_node_id
    return TaskPacket(
        title=f"Dampen System 2 {kind}",
        goal=goal,
        dependencies=list(signal.affected_task_ids),
        risk=RiskClass.HIGH if severity >= HIGH_RISK_SEVERITY else RiskClass.MEDIUM,
        assigned_to=_first_direct_child(signal, genome, controller_node_id),
        metadata=dict(sorted(metadata.items())),
    )


def _first_direct_child(
    signal: System2CoordinationSignal, genome: OrganizationalGenome, controller_node_id: str
) -> str | None:
    controller = genome.nodes.get(controller_node_id)
    if controller is None:
        return None
    candidates = [signal.target_node_id, *signal.affected_node_ids]
    return next((node for node in candidates if node in controller.children), None)


def dampening_envelope(incoming: MessageEnvelope) -> MessageEnvelope:
    """The envelope a dampening task is routed as having come in on: ``incoming``, on the
    System2Coordination channel (so the task keeps that channel and its raised priority)."""
    synthetic = copy.deepcopy(incoming)
    synthetic.channel_type = VsmChannelType.SYSTEM2_COORDINATION
    return synthetic


def dampening_created_payload(
    signal: System2CoordinationSignal,
    task: TaskPacket,
    *,
    controller_node_id: str,
    incoming: MessageEnvelope,
) -> dict[str, Any]:
    """The ``system2_dampening_task_created`` event payload."""
    return {
        "controller_node_id": controller_node_id,
        "task_id": task.id,
        "task_title": task.title,
        "assigned_to": task.assigned_to,
        "coordination_kind": signal.kind.value,
        "severity": signal.severity,
        "risk": task.risk.value,
        "affected_node_ids": list(signal.affected_node_ids),
        "affected_task_ids": list(signal.affected_task_ids),
        "signal_message_id": incoming.id,
        "source_channel": incoming.channel_type.value,
        "correlation_id": correlation_of(incoming),
    }
