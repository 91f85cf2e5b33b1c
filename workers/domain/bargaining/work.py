"""A bargain that proposed its own task: the task accepted with the grant. Pure.

When a child's bargain carries the task it proposes to do and System 3 approves it, wholly or
in part, the task goes straight back to the requester (no router, no trial), after the
decision, annotated with what was granted.
"""

from __future__ import annotations

from typing import Any

from workers.domain.bargaining.epochs import Budgets, EpochUsage
from workers.domain.bargaining.outputs import accepted_task_metadata, epoch_metadata
from workers.domain.bargaining.pressure import NO_COORDINATION_PRESSURE, CoordinationPressure
from workers.domain.bargaining.records import ResourceAllocationDecision
from workers.domain.lineage import annotate_from_incoming
from workers.domain.messages import MessageEnvelope, TaskPacket

WORK_ACCEPTED_EVENT = "resource_bargain_work_accepted"


def accepted_task(
    decision: ResourceAllocationDecision,
    proposed_task: TaskPacket,
    *,
    controller_id: str,
    incoming: MessageEnvelope,
    epoch_key: str,
    budgets: Budgets,
    usage: EpochUsage,
    coordination: CoordinationPressure = NO_COORDINATION_PRESSURE,
) -> TaskPacket:
    """The proposed task, accepted: lineage of the bargain's envelope, the grant's keys, and
    assigned to the requester. ``usage`` is the requester's usage before this decision.

    Raises ValueError for a Denied decision, which accepts no work.
    """
    if not decision.accepts_work:
        raise ValueError(f"a {decision.status.value} decision accepts no work")
    task = annotate_from_incoming(proposed_task, incoming, controller_node_id=controller_id)
    task.assigned_to = decision.requested_by
    granted = accepted_task_metadata(
        decision,
        controller_id=controller_id,
        request_message_id=incoming.id,
        correlation_id=incoming.correlation_id,
        epoch_key=epoch_key,
        budgets=budgets,
        usage=usage,
        coordination=coordination,
    )
    task.metadata = dict(sorted({**task.metadata, **granted}.items()))
    return task


def work_accepted_payload(
    decision: ResourceAllocationDecision,
    task: TaskPacket,
    *,
    controller_id: str,
    incoming: MessageEnvelope,
    epoch_key: str,
    budgets: Budgets,
    usage: EpochUsage,
    coordination: CoordinationPressure = NO_COORDINATION_PRESSURE,
) -> dict[str, Any]:
    """The ``resource_bargain_work_accepted`` event payload: who, what was granted, the epoch
    before and after, and the coordination pressure that weighed on it."""
    epoch = epoch_metadata(decision, epoch_key=epoch_key, budgets=budgets, usage=usage)
    numbers = {
        key.removeprefix("resource_epoch_"): int(value)
        for key, value in epoch.items()
        if key != "resource_epoch_key"
    }
    return {
        "controller_node_id": controller_id,
        "requested_by": decision.requested_by,
        "task_id": task.id,
        "task_title": task.title,
        "request_message_id": incoming.id,
        "correlation_id": incoming.correlation_id or incoming.id,
        "status": decision.status.value,
        "approved_tokens": decision.approved_tokens,
        "approved_tool_permissions": list(decision.approved_tool_permissions),
        "denied_tool_permissions": list(decision.denied_tool_permissions),
        "approved_context_refs": list(decision.approved_context_refs),
        "denied_context_refs": list(decision.denied_context_refs),
        "epoch_key": epoch_key,
        "epoch": numbers,
        "coordination_pressure": coordination.as_json(),
    }
