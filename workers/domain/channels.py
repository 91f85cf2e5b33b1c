"""Which channel and priority a routed task travels with, and the lineage it carries.

Pure, no Django. The rules (docs/rules/routing.md, "Publishing a routed task"):

* a task *arrives* on a channel: the channel of the envelope that brought it, or, for a
  task a controller creates itself, the channel its plan names (a decomposition's test
  and review tasks on System2Coordination, a revision on System2Coordination, a command's
  task on Command). The task keeps that channel in ``vsm_source_channel``;
* it leaves on the same channel when that is a management channel (Command, System 2,
  audit, Three-Four, management-to-operation, operation-to-operation, algedonic), and on
  ResourceBargaining otherwise;
* its priority starts from its risk and is raised by the channel it arrived on;
* the envelope and, at the leaf, the result and trace carry the task's lineage: where it
  came from, the handoff / management / coordination / command key families, and the
  decomposition keys, so fitness can see what coordination a task cost.
"""

from __future__ import annotations

from organization.genome import ChannelPriority, VsmChannelType
from workers.domain import lineage
from workers.domain.messages import MessageEnvelope, RiskClass, TaskPacket

SOURCE_CHANNEL = "vsm_source_channel"
SOURCE_PAYLOAD_TYPE = "vsm_source_payload_type"
OUTBOUND_CHANNEL = "vsm_outbound_channel"

# Channels whose messages keep their channel when routed on.
KEEP_CHANNEL = frozenset(
    {
        VsmChannelType.COMMAND,
        VsmChannelType.SYSTEM2_COORDINATION,
        VsmChannelType.AUDIT,
        VsmChannelType.THREE_FOUR_HOMEOSTAT,
        VsmChannelType.MANAGEMENT_TO_OPERATION,
        VsmChannelType.OPERATION_TO_OPERATION,
        VsmChannelType.ALGEDONIC,
    }
)
DEFAULT_TASK_CHANNEL = VsmChannelType.RESOURCE_BARGAINING
RAISED_TO_HIGH = frozenset(
    {
        VsmChannelType.SYSTEM2_COORDINATION,
        VsmChannelType.AUDIT,
        VsmChannelType.THREE_FOUR_HOMEOSTAT,
    }
)
RISK_PRIORITY = {
    RiskClass.LOW: ChannelPriority.NORMAL,
    RiskClass.MEDIUM: ChannelPriority.NORMAL,
    RiskClass.HIGH: ChannelPriority.HIGH,
    RiskClass.CRITICAL: ChannelPriority.CRITICAL,
}

# Task metadata families the leaf copies onto its result and trace.
LINEAGE_PREFIXES = ("vsm_source_", "handoff_", "management_", "coordination_")
DECOMPOSITION_KEYS = (
    "decomposition_policy",
    "decomposition_authority",
    "decomposition_role",
    "decomposition_parent_task_id",
    "decomposition_task_count",
    "decomposition_revision_depth",
    "decomposition_revision_of_task_id",
)
SHAPE_KEYS = ("required_capability", "target_child")
# The trial tags a trial route writes that do not start with ``trial_``
# (docs/rules/trials.md, "Routing modes").
TRIAL_TAG_KEYS = ("related_suggestion_id", "candidate_genome_id")


def arrival_channel(task: TaskPacket) -> VsmChannelType:
    """The channel ``task`` arrived on, as stamped by ``arrived``."""
    stamped = task.metadata.get(SOURCE_CHANNEL)
    return VsmChannelType(stamped) if stamped else VsmChannelType.OPERATION_TO_ENVIRONMENT


def arrived(task: TaskPacket, *, channel: VsmChannelType, payload_type: str) -> None:
    """Stamp the channel and payload type ``task`` arrived with (step one of routing).

    A controller stamps a task it creates with the channel its plan names, and a task
    that reaches it in an envelope with that envelope's channel; a task it sends back to
    itself (released after a pause or a deferral) keeps its stamp.
    """
    task.metadata = {
        **task.metadata,
        SOURCE_CHANNEL: channel.value,
        SOURCE_PAYLOAD_TYPE: payload_type,
    }


def outbound_channel(arrival: VsmChannelType) -> VsmChannelType:
    return arrival if arrival in KEEP_CHANNEL else DEFAULT_TASK_CHANNEL


def outbound_priority(task: TaskPacket, arrival: VsmChannelType) -> ChannelPriority:
    """The base priority from risk, raised by the channel the task arrived on."""
    base = RISK_PRIORITY[task.risk]
    if arrival is VsmChannelType.ALGEDONIC:
        return ChannelPriority.INTERRUPT
    if arrival is VsmChannelType.COMMAND:
        if task.metadata.get("command_non_negotiable") == "true" or task.risk is RiskClass.CRITICAL:
            return ChannelPriority.CRITICAL
        return max(base, ChannelPriority.HIGH, key=lambda p: p.rank)
    if arrival in RAISED_TO_HIGH:
        return max(base, ChannelPriority.HIGH, key=lambda p: p.rank)
    return base


def relayed_metadata(task: TaskPacket) -> dict[str, str]:
    """What a routed envelope carries of its task's metadata: where it came from and the
    handoff, management, coordination and command families."""
    source = {
        k: task.metadata[k] for k in (SOURCE_CHANNEL, SOURCE_PAYLOAD_TYPE) if k in task.metadata
    }
    return {**source, **lineage.relayed_metadata(task)}


def result_metadata(task: TaskPacket, incoming: MessageEnvelope) -> dict[str, str]:
    """What a leaf copies from the task and its envelope onto the result (and the trace)."""
    metadata = task.metadata
    copied = {
        key: value
        for key, value in metadata.items()
        if key.startswith("trial_") or key in TRIAL_TAG_KEYS
    }
    copied.update(
        {
            "task_title": task.title,
            "task_goal": task.goal,
            "directive_id": task.directive_id or "",
            "parent_task_id": task.parent_task_id or "",
            "dependency_task_ids": ",".join(task.dependencies),
        }
    )
    copied.update(
        {key: metadata[key] for key in (*DECOMPOSITION_KEYS, *SHAPE_KEYS) if key in metadata}
    )
    copied.update(
        {
            OUTBOUND_CHANNEL: incoming.metadata.get(OUTBOUND_CHANNEL)
            or incoming.channel_type.value,
            "channel_priority": incoming.priority.value,
            "envelope_id": incoming.id,
            "correlation_id": incoming.correlation_id or "",
            "causation_id": incoming.causation_id or "",
        }
    )
    # The lineage families: the task's own keys first, else the envelope's.
    for source in (incoming.metadata, metadata):
        copied.update({k: v for k, v in source.items() if k.startswith(LINEAGE_PREFIXES)})
    return copied


def trace_metadata(task: TaskPacket, incoming: MessageEnvelope) -> dict[str, str]:
    """The result's metadata plus the task's shape, and every task key as ``task_metadata.<k>``."""
    predicates = task.static_predicates
    return {
        **result_metadata(task, incoming),
        "task_risk": task.risk.value,
        "task_scope": "\n".join(task.scope),
        "task_languages": ",".join(predicates.languages),
        "task_modules": ",".join(predicates.modules),
        "task_tags": ",".join(predicates.tags),
        **{f"task_metadata.{key}": value for key, value in task.metadata.items()},
    }
