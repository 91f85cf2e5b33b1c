"""Sending a task to a direct child: the router's choice, the pause, the grant, the envelope.

Before a task leaves, the controller checks, in this order (docs/rules/routing.md):

1. the router picks the child (``workers.domain.routing``); no child → the task fails
   here (at the root) or a failed result goes up (at a nested controller);
2. a paused child's subtree gets nothing: the task is held until the resume;
3. a leaf child must be granted the task's tokens for this epoch by this controller, its
   System 3 (``workers.services.bargaining``); denied → the task is deferred;
4. the envelope goes out on the channel the task arrived on (or ResourceBargaining),
   at the priority its risk and that channel give, carrying its lineage and the grant.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from organization.genome import VsmChannelType
from workers import events
from workers.domain.channels import (
    OUTBOUND_CHANNEL,
    arrival_channel,
    outbound_channel,
    outbound_priority,
    relayed_metadata,
)
from workers.domain.lineage import mark_target, task_routed_lineage
from workers.domain.messages import (
    MessageEnvelope,
    PayloadType,
    TaskPacket,
    TaskResult,
    TaskStatus,
    to_json,
)
from workers.domain.routing import RoutingError, route
from workers.models import ResourceGrant, Task
from workers.services.algedonic import hold_if_paused
from workers.services.bargaining import grant_for_route, task_defer
from workers.services.hop import Hop

CHANNEL_TASK_POLICY = "system3_channel_task"
HELD = (Task.Status.BLOCKED_PAUSED, Task.Status.DEFERRED_BUDGET)


def on_task_packet(hop: Hop, task: TaskPacket) -> None:
    """A task packet from the parent (or sent back to itself after a hold): route it on."""
    released = hop.incoming.source_node_id == hop.node_id
    if (task.parent_task_id or task.dependencies) and not released:
        hop.record(
            events.task_mapped(task, controller_node_id=hop.node_id, policy=CHANNEL_TASK_POLICY)
        )
    outcome = route_task(hop, task)
    if released and outcome.status == Task.Status.ROUTED:
        # A held task is on its way again (holding and deferring mark the row themselves).
        Task.objects.filter(id=task.id, status__in=HELD).update(
            status=Task.Status.ROUTED, assigned_node_id=outcome.child_id, updated_at=timezone.now()
        )


@dataclass(frozen=True)
class RouteOutcome:
    """What became of a task: routed, blocked_paused, deferred_budget or failed (and why)."""

    status: str
    child_id: str | None = None
    summary: str = ""


def route_task(hop: Hop, task: TaskPacket) -> RouteOutcome:
    """Send ``task`` to the chosen direct child, or hold or defer it."""
    try:
        decision = route(hop.genome, hop.node_id, task)
    except RoutingError as error:
        _routing_failed(hop, task, str(error))
        return RouteOutcome(Task.Status.FAILED, summary=str(error))
    child_id = decision.child_id
    if hold_if_paused(hop, task, child_id):
        return RouteOutcome(Task.Status.BLOCKED_PAUSED, child_id)
    grant = None
    if not hop.genome.nodes[child_id].children:
        grant = grant_for_route(hop, task, child_id)
        if grant.denied:
            task_defer(hop, grant=grant, task=task)
            return RouteOutcome(Task.Status.DEFERRED_BUDGET, child_id)
    _publish_routed(hop, task, child_id, decision.reason, grant)
    return RouteOutcome(Task.Status.ROUTED, child_id)


def _publish_routed(
    hop: Hop, task: TaskPacket, child_id: str, reason: str, grant: ResourceGrant | None
) -> None:
    task = mark_target(task, child_id)
    task.assigned_to = child_id
    task.metadata = {**task.metadata, "routed_by": hop.node_id, "routing_reason": reason}
    arrival = arrival_channel(task)
    channel = outbound_channel(arrival)
    priority = outbound_priority(task, arrival)
    relayed = relayed_metadata(task)
    hop.record(
        events.task_routed(
            task,
            parent_node_id=hop.node_id,
            child_node_id=child_id,
            reason=reason,
            source_channel=arrival.value,
            outbound_channel=channel.value,
            priority=priority.value,
            genome_id=hop.genome.id,
            lineage=task_routed_lineage(task),
        )
    )
    hop.reply(
        MessageEnvelope(
            channel_type=channel,
            target_node_id=child_id,
            priority=priority,
            payload_type=PayloadType.TASK_PACKET,
            payload=to_json(task),
            metadata={
                "routing_reason": reason,
                OUTBOUND_CHANNEL: channel.value,
                **relayed,
                **_grant_metadata(grant),
            },
        ),
        task_id=task.id,
        directive_id=task.directive_id,
    )


def _grant_metadata(grant: ResourceGrant | None) -> dict[str, str]:
    if grant is None:
        return {}
    return {
        "resource_grant_id": grant.id,
        "resource_grant_status": grant.status,
        "resource_approved_tokens": str(grant.approved_tokens or 0),
    }


def _routing_failed(hop: Hop, task: TaskPacket, reason: str) -> None:
    hop.record(events.task_routing_failed(task, reason=reason))
    parent_id = hop.parent_id
    if parent_id is None:
        Task.objects.filter(id=task.id).update(status=Task.Status.FAILED, result_summary=reason)
        return
    # A nested controller answers its parent with a failed result, so the root sees it.
    failure = TaskResult(
        task_id=task.id,
        produced_by=hop.node_id,
        status=TaskStatus.FAILED,
        summary="task could not be routed",
        error=reason,
        metadata={"directive_id": task.directive_id or ""},
    )
    send_result_up(hop, failure, parent_id)


def send_result_up(hop: Hop, result: TaskResult, parent_id: str) -> None:
    hop.reply(
        MessageEnvelope(
            channel_type=VsmChannelType.MANAGEMENT_TO_OPERATION,
            target_node_id=parent_id,
            payload_type=PayloadType.TASK_RESULT,
            payload=to_json(result),
            metadata={
                "forwarded_by_controller_node_id": hop.node_id,
                "forwarded_result_task_id": result.task_id,
                "vsm_outbound_channel": VsmChannelType.MANAGEMENT_TO_OPERATION.value,
                "source_payload_type": PayloadType.TASK_RESULT,
            },
        ),
        task_id=result.task_id,
        directive_id=result.metadata.get("directive_id") or None,
    )
