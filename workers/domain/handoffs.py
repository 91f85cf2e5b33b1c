"""Typed handoffs between operations and directives from management to an operation. Pure.

An :class:`OperationHandoff` is one System 1 unit passing work to a sibling through their
controller; a :class:`ManagementOperationDirective` is a manager telling one of its
operations what to do. Either way the controller records the message and turns it into a
task for the named node, which must be one of its direct children: anything else is a
:class:`~workers.domain.routing.NoRouteableChild` error, as the router would raise.
"""

from __future__ import annotations

from organization.genome import NodeLifecycleStatus, OrganizationalGenome
from workers.domain.channel_messages import (
    ChannelEvent,
    HandoffKind,
    ManagementOperationDirective,
    OperationHandoff,
    correlation_of,
    event_payload,
    joined,
    kind_label,
)
from workers.domain.commands import RAW_METADATA_KEYS
from workers.domain.lineage import HANDOFF_KIND, MANAGEMENT_KIND
from workers.domain.messages import MessageEnvelope, RiskClass, TaskPacket
from workers.domain.routing import NoRouteableChild

HANDOFF_RECEIVED_EVENT = "operation_handoff_received"
MANAGEMENT_RECEIVED_EVENT = "management_operation_directive_received"
HANDOFF_TASK_MAPPED_POLICY = "operation_handoff"
MANAGEMENT_TASK_MAPPED_POLICY = "management_operation_directive"
MANAGEMENT_POLICY = "management_operation_directive_v1"


def handoff_event(handoff: OperationHandoff, incoming: MessageEnvelope) -> ChannelEvent:
    """The ``operation_handoff_received`` event, filed under the related task."""
    return ChannelEvent(
        kind=HANDOFF_RECEIVED_EVENT,
        payload=event_payload(handoff, incoming),
        metadata={
            "source_channel": incoming.channel_type.value,
            "handoff_operation_kind": kind_label(handoff.kind, handoff.other_kind),
        },
        task_id=handoff.related_task_id,
        correlation_id=correlation_of(incoming),
    )


def management_event(
    directive: ManagementOperationDirective, incoming: MessageEnvelope
) -> ChannelEvent:
    """The ``management_operation_directive_received`` event, filed under the related task."""
    return ChannelEvent(
        kind=MANAGEMENT_RECEIVED_EVENT,
        payload=event_payload(directive, incoming),
        metadata={
            "source_channel": incoming.channel_type.value,
            "management_operation_kind": kind_label(directive.kind, directive.other_kind),
        },
        task_id=directive.related_task_id,
        correlation_id=correlation_of(incoming),
    )


def require_direct_child(
    genome: OrganizationalGenome, controller_node_id: str, node_id: str, task_title: str
) -> None:
    """NoRouteableChild unless ``node_id`` is a live direct child of the controller."""
    controller = genome.nodes.get(controller_node_id)
    if controller is None or node_id not in controller.children:
        raise NoRouteableChild(
            controller_node_id, task_title, f"{node_id} is not a direct child of this controller"
        )
    if genome.nodes[node_id].status is NodeLifecycleStatus.RETIRED:
        raise NoRouteableChild(controller_node_id, task_title, f"{node_id} is retired")


def handoff_task(
    handoff: OperationHandoff,
    *,
    controller_node_id: str,
    genome: OrganizationalGenome,
    incoming: MessageEnvelope,
) -> TaskPacket:
    """The task continuing ``handoff`` at its target; NoRouteableChild if the target is not
    a direct child. Artifact URIs become context refs (and ``handoff_artifact_refs``)."""
    require_direct_child(genome, controller_node_id, handoff.target_node_id, handoff.title)
    refs = list(dict.fromkeys(a.uri for a in handoff.artifacts if a.uri))
    metadata = {f"handoff_metadata.{k}": v for k, v in handoff.metadata.items()}
    metadata.update(
        {
            "handoff_kind": HANDOFF_KIND,
            "handoff_operation_kind": kind_label(handoff.kind, handoff.other_kind),
            "handoff_source_node_id": handoff.source_node_id,
            "handoff_target_node_id": handoff.target_node_id,
            "handoff_envelope_id": incoming.id,
            "handoff_artifact_count": str(len(handoff.artifacts)),
            "handoff_summary": handoff.summary,
            "requires_code_write": "false",
            "source_payload_type": incoming.payload_type,
        }
    )
    if handoff.related_task_id is not None:
        metadata["handoff_related_task_id"] = handoff.related_task_id
    if handoff.dependency_task_ids:
        metadata["handoff_dependency_task_ids"] = joined(handoff.dependency_task_ids)
    if refs:
        metadata["handoff_artifact_refs"] = joined(refs)
    blocked = handoff.kind is HandoffKind.DEPENDENCY_BLOCKED
    return TaskPacket(
        parent_task_id=handoff.related_task_id,
        title=handoff.title,
        goal=handoff_goal(handoff),
        context_refs=refs,
        dependencies=list(handoff.dependency_task_ids),
        risk=RiskClass.HIGH if blocked else RiskClass.MEDIUM,
        assigned_to=handoff.target_node_id,
        metadata=dict(sorted(metadata.items())),
    )


def handoff_goal(handoff: OperationHandoff) -> str:
    """What the target is to do: continue, given the summary, artifacts and evidence."""
    goal = (
        f"Continue operation handoff from {handoff.source_node_id} to "
        f"{handoff.target_node_id}. Summary: {handoff.summary}"
    )
    if handoff.artifacts:
        goal += f" Artifacts: {', '.join(a.kind for a in handoff.artifacts)}."
    if handoff.evidence:
        goal += f" Evidence: {'; '.join(handoff.evidence)}"
    return goal


def management_task(
    directive: ManagementOperationDirective,
    *,
    controller_node_id: str,
    genome: OrganizationalGenome,
    incoming: MessageEnvelope,
) -> TaskPacket:
    """The task carrying out ``directive`` at its operation node; NoRouteableChild if that node
    is not a direct child. The routing keys of the directive's metadata apply as they are."""
    node_id = directive.operation_node_id
    require_direct_child(genome, controller_node_id, node_id, directive.title)
    metadata = {f"management_metadata.{k}": v for k, v in directive.metadata.items()}
    raw = {k: directive.metadata[k] for k in RAW_METADATA_KEYS if k in directive.metadata}
    metadata.update(raw)
    metadata.update(
        {
            "management_kind": MANAGEMENT_KIND,
            "management_operation_kind": kind_label(directive.kind, directive.other_kind),
            "management_source_node_id": directive.manager_node_id,
            "management_target_node_id": node_id,
            "management_directive_message_id": incoming.id,
            "management_policy": MANAGEMENT_POLICY,
            "source_payload_type": incoming.payload_type,
        }
    )
    if directive.related_task_id is not None:
        metadata["management_related_task_id"] = directive.related_task_id
    if directive.dependency_task_ids:
        metadata["management_dependency_task_ids"] = joined(directive.dependency_task_ids)
    return TaskPacket(
        parent_task_id=directive.related_task_id,
        title=directive.title,
        goal=directive.body,
        target_state=directive.target_state,
        constraints=list(directive.constraints),
        context_refs=list(directive.context_refs),
        authority_refs=list(directive.authority_refs),
        dependencies=list(directive.dependency_task_ids),
        risk=directive.risk,
        assigned_to=node_id,
        metadata=dict(sorted(metadata.items())),
    )
