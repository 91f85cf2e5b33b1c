"""The controller's other channels: System 2 coordination, typed handoffs and management
directives, environment and Three-Four homeostat signals, and bargains that propose work.

The rules are in docs/rules/channels.md; the pure builders in ``workers.domain``
(coordination, handoffs, environment, homeostat, bargaining.work). Each handler records what
arrived, and turns it into work where the rules say so:

* a coordination signal that needs dampening becomes a dampening task, routed as arriving
  on System2Coordination;
* a handoff or a management directive becomes a task for the named direct child, routed on
  the channel it came on (a named node that is not a direct child fails the routing);
* environment and homeostat signals are recorded as pressure (decomposition and grants read
  it); a homeostat's suggested patches are recorded as gene suggestions and handed to the
  trials app to queue (``workers.signals.gene_suggested``), never applied;
* a bargain that proposes a task gets a grant decision; approved, the task is sent straight
  to the requester, which asked for it.
"""

from __future__ import annotations

from typing import Any

from ledger.services import EventDraft, ledger_record
from organization.genome import VsmChannelType
from workers import events, signals
from workers.domain.bargaining import (
    EpochUsage,
    ResourceAllocationDecision,
    ResourceBargain,
    accepted_task,
    reply_priority,
    work_accepted_payload,
)
from workers.domain.bargaining.work import WORK_ACCEPTED_EVENT
from workers.domain.channel_messages import (
    ChannelEvent,
    EnvironmentSignal,
    ManagementOperationDirective,
    OperationHandoff,
    System2CoordinationSignal,
    ThreeFourHomeostatSignal,
)
from workers.domain.channels import arrived
from workers.domain.coordination import (
    DAMPENING_TASK_CREATED_EVENT,
    DAMPENING_TASK_MAPPED_POLICY,
    coordination_event,
    dampening_created_payload,
    dampening_task,
)
from workers.domain.environment import environment_event
from workers.domain.handoffs import (
    HANDOFF_TASK_MAPPED_POLICY,
    MANAGEMENT_TASK_MAPPED_POLICY,
    handoff_event,
    handoff_task,
    management_event,
    management_task,
)
from workers.domain.homeostat import (
    gene_suggestion_drafts,
    gene_suggestion_event,
    homeostat_event,
)
from workers.domain.lineage import annotate_from_incoming
from workers.domain.messages import MessageEnvelope, PayloadType, TaskPacket, from_json, to_json
from workers.domain.routing import RoutingError
from workers.services.bargaining import epoch_budgets, grant_request
from workers.services.controller.routing import route_task
from workers.services.hop import Hop


def record_channel_event(hop: Hop, event: ChannelEvent) -> None:
    """Record a channel event as this controller's; its metadata rides in the payload, where
    the pressure summaries read it (the ledger has no metadata column)."""
    ledger_record(
        EventDraft(
            kind=event.kind,
            actor=f"node:{hop.node_id}",
            payload={**event.payload, "metadata": event.metadata},
            node_id=hop.node_id,
            responsible_ancestor_ids=events.ancestors_of(hop.genome, hop.node_id),
            correlation_id=event.correlation_id or hop.correlation_id,
            causation_id=hop.incoming.id,
            genome_id=hop.genome.id,
            task_id=event.task_id,
            suggestion_id=event.suggestion_id,
        )
    )


def _route_created(hop: Hop, task: TaskPacket, *, channel: VsmChannelType, policy: str) -> None:
    """Route a task this controller made from a message, as arriving on ``channel``."""
    task = annotate_from_incoming(task, hop.incoming, controller_node_id=hop.node_id)
    arrived(task, channel=channel, payload_type=hop.incoming.payload_type)
    hop.record(events.task_mapped(task, controller_node_id=hop.node_id, policy=policy))
    route_task(hop, task)


def on_coordination(hop: Hop) -> None:
    signal = from_json(System2CoordinationSignal, hop.incoming.payload)
    record_channel_event(hop, coordination_event(signal, hop.incoming))
    task = dampening_task(
        signal,
        controller_node_id=hop.node_id,
        genome=hop.genome,
        incoming_envelope_id=hop.incoming.id,
    )
    if task is None:
        return
    payload = dampening_created_payload(
        signal, task, controller_node_id=hop.node_id, incoming=hop.incoming
    )
    hop.event(DAMPENING_TASK_CREATED_EVENT, payload, task_id=task.id)
    _route_created(
        hop,
        task,
        channel=VsmChannelType.SYSTEM2_COORDINATION,
        policy=DAMPENING_TASK_MAPPED_POLICY,
    )


def on_handoff(hop: Hop) -> None:
    handoff = from_json(OperationHandoff, hop.incoming.payload)
    record_channel_event(hop, handoff_event(handoff, hop.incoming))
    _typed_task(hop, handoff, HANDOFF_TASK_MAPPED_POLICY)


def on_management(hop: Hop) -> None:
    directive = from_json(ManagementOperationDirective, hop.incoming.payload)
    record_channel_event(hop, management_event(directive, hop.incoming))
    _typed_task(hop, directive, MANAGEMENT_TASK_MAPPED_POLICY)


def _typed_task(
    hop: Hop, message: OperationHandoff | ManagementOperationDirective, policy: str
) -> None:
    build: Any = handoff_task if isinstance(message, OperationHandoff) else management_task
    try:
        task = build(
            message, controller_node_id=hop.node_id, genome=hop.genome, incoming=hop.incoming
        )
    except RoutingError as error:
        stand_in = TaskPacket(title=message.title)
        hop.record(events.task_routing_failed(stand_in, reason=str(error)))
        return
    _route_created(hop, task, channel=hop.incoming.channel_type, policy=policy)


def on_environment(hop: Hop) -> None:
    signal = from_json(EnvironmentSignal, hop.incoming.payload)
    record_channel_event(hop, environment_event(signal, hop.incoming))


def on_homeostat(hop: Hop) -> None:
    signal = from_json(ThreeFourHomeostatSignal, hop.incoming.payload)
    record_channel_event(hop, homeostat_event(signal, hop.incoming))
    for draft in gene_suggestion_drafts(signal, hop.incoming):
        record_channel_event(hop, gene_suggestion_event(draft, hop.incoming))
        # The trials app queues it (in this hop's transaction); it never changes the genome.
        signals.gene_suggested.send(
            sender=hop.node_id,
            draft=draft,
            controller_node_id=hop.node_id,
            event_context=hop.event_context(),
        )


def on_bargain(hop: Hop) -> None:
    """A child asks for resources, maybe proposing a task; approved, the task is its."""
    bargain = from_json(ResourceBargain, hop.incoming.payload)
    grant = grant_request(
        controller_node_id=hop.node_id,
        bargain=bargain,
        envelope_id=hop.incoming.id,
        correlation_id=hop.correlation_id,
        genome=hop.genome,
    )
    decision = from_json(ResourceAllocationDecision, grant.decision)
    # The reply's metadata is the event's, less what only the event carries.
    reply_metadata = {
        key: str(value)
        for key, value in grant.metadata.items()
        if key not in ("source_channel", "requested_by", "homeostat_pressure_risk")
    }
    hop.reply(
        MessageEnvelope(
            channel_type=VsmChannelType.RESOURCE_BARGAINING,
            target_node_id=bargain.requested_by,
            priority=reply_priority(decision),
            payload_type=PayloadType.RESOURCE_ALLOCATION_DECISION,
            payload={**grant.decision, "grant_id": grant.id},
            metadata={"allocation_policy": decision.allocation_policy, **reply_metadata},
        ),
        task_id=decision.task_id,
    )
    if bargain.proposed_task is None or not decision.accepts_work:
        return
    epoch = grant.epoch
    metadata = grant.metadata
    context: dict[str, Any] = {
        "controller_id": hop.node_id,
        "incoming": hop.incoming,
        "epoch_key": epoch.epoch_key,
        "budgets": epoch_budgets(hop.genome, epoch),
        "usage": EpochUsage(
            allocation_count=int(metadata.get("resource_epoch_allocation_count_before", 0)),
            allocated_tokens=int(metadata.get("resource_epoch_allocated_before_tokens", 0)),
        ),
    }
    task = accepted_task(decision, bargain.proposed_task, **context)
    task.metadata = {
        **task.metadata,
        "routed_by": hop.node_id,
        "routing_reason": "accepted through ResourceBargaining allocation",
    }
    hop.event(
        WORK_ACCEPTED_EVENT, work_accepted_payload(decision, task, **context), task_id=task.id
    )
    hop.reply(
        MessageEnvelope(
            channel_type=VsmChannelType.RESOURCE_BARGAINING,
            target_node_id=bargain.requested_by,
            payload_type=PayloadType.TASK_PACKET,
            payload=to_json(task),
            metadata={
                "routing_reason": "accepted through ResourceBargaining allocation",
                "resource_grant_id": grant.id,
                "resource_grant_status": grant.status,
                "resource_approved_tokens": str(grant.approved_tokens or 0),
            },
        ),
        task_id=task.id,
        directive_id=task.directive_id,
    )
