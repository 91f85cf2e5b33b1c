"""Routing lineage: what a routed task carries about the envelope that brought it. Pure.

Before routing, :func:`annotate_from_incoming` writes where the task came from
(``vsm_source_channel``, ``vsm_source_payload_type``) and, for a task that arrived as a
sibling handoff (OperationToOperation) or a management directive (ManagementToOperation),
the ``handoff_*`` or ``management_*`` lineage keys. Once the child is chosen,
:func:`mark_target` records it. :func:`relayed_metadata` is what the outbound envelope
carries of the task's metadata, and :func:`task_routed_lineage` what the TaskRouted event
lists (every key, None when absent).

Channel names are the project's channel values (``VsmChannelType``), the same strings
everywhere: ``vsm_source_channel=OperationToOperation``.

Which value wins: ``vsm_source_*`` always describes the last hop, so it is overwritten at
every controller. The handoff and management *origin* keys (kind, channel, source, the
controller it went through, envelope, correlation, causation) are written only when absent,
so a task relayed down a nested metasystem keeps the lineage of the message that started it;
the *target* key follows the task down and names the last child it was routed to.
"""

from __future__ import annotations

import dataclasses

from organization.genome import VsmChannelType
from workers.domain.messages import MessageEnvelope, TaskPacket

HANDOFF_KIND = "operation_to_operation"
MANAGEMENT_KIND = "management_to_operation"

HANDOFF_KEYS = (
    "handoff_kind",
    "handoff_channel",
    "handoff_source_node_id",
    "handoff_target_node_id",
    "handoff_via_controller_node_id",
    "handoff_correlation_id",
    "handoff_causation_id",
    "handoff_envelope_id",
    "handoff_operation_kind",
    "handoff_artifact_count",
    "handoff_related_task_id",
    "handoff_dependency_task_ids",
    "handoff_artifact_refs",
    "handoff_summary",
)
MANAGEMENT_KEYS = (
    "management_kind",
    "management_channel",
    "management_source_node_id",
    "management_target_node_id",
    "management_via_controller_node_id",
    "management_correlation_id",
    "management_causation_id",
    "management_envelope_id",
    "management_operation_kind",
    "management_directive_message_id",
    "management_policy",
    "management_related_task_id",
    "management_dependency_task_ids",
)
COORDINATION_KEYS = (
    "coordination_policy",
    "coordination_kind",
    "coordination_signal_message_id",
    "coordination_source_node_id",
    "coordination_target_node_id",
    "coordination_severity",
    "coordination_affected_node_ids",
    "coordination_affected_task_ids",
)
COMMAND_KEYS = (
    "command_issued_by",
    "command_target_node_id",
    "command_non_negotiable",
    "command_legal_or_policy_basis",
    "command_system5_identity",
    "command_policy_values",
    "command_policy_constraints",
    "command_denied_capabilities",
)
# Keys of the task's shape that routing and trials read (``requires_parent_review`` is set by
# the mapper and read by nothing yet).
TASK_SHAPE_KEYS = (
    "requires_code_write",
    "required_capability",
    "target_child",
    "trial_approved",
    "task_class",
    "estimated_files_touched",
    "requires_parent_review",
)
# Relayed on every outbound envelope when present on the task.
RELAYED_KEYS = HANDOFF_KEYS + MANAGEMENT_KEYS + COORDINATION_KEYS + COMMAND_KEYS
# Long or list-valued keys the envelope carries but the TaskRouted event leaves out.
NOT_IN_TASK_ROUTED = frozenset(
    {
        "handoff_artifact_refs",
        "handoff_summary",
        "coordination_affected_node_ids",
        "coordination_affected_task_ids",
    }
)
TASK_ROUTED_KEYS = tuple(key for key in RELAYED_KEYS if key not in NOT_IN_TASK_ROUTED)

# The lineage family each incoming channel starts: (key prefix, kind value).
_FAMILIES = {
    VsmChannelType.OPERATION_TO_OPERATION: ("handoff", HANDOFF_KIND),
    VsmChannelType.MANAGEMENT_TO_OPERATION: ("management", MANAGEMENT_KIND),
}


def annotate_from_incoming(
    task: TaskPacket, incoming: MessageEnvelope, *, controller_node_id: str
) -> TaskPacket:
    """A copy of ``task`` carrying the lineage of ``incoming`` (see the module docstring)."""
    annotated = _own_metadata(task)
    metadata = annotated.metadata
    metadata["vsm_source_channel"] = incoming.channel_type.value
    metadata["vsm_source_payload_type"] = incoming.payload_type
    family = _FAMILIES.get(incoming.channel_type)
    if family is not None:
        prefix, kind = family
        origin = {
            "kind": kind,
            "channel": incoming.channel_type.value,
            "via_controller_node_id": controller_node_id,
            "envelope_id": incoming.id,
            "source_node_id": incoming.source_node_id,
            "correlation_id": incoming.correlation_id,
            "causation_id": incoming.causation_id,
        }
        for name, value in origin.items():
            if value is not None:
                metadata.setdefault(f"{prefix}_{name}", value)
    annotated.metadata = dict(sorted(metadata.items()))
    return annotated


def mark_target(task: TaskPacket, child_id: str) -> TaskPacket:
    """A copy of ``task`` naming ``child_id`` as the target of its handoff or management lineage.

    A task with neither lineage is returned unchanged (as a copy).
    """
    marked = _own_metadata(task)
    if marked.metadata.get("handoff_kind") == HANDOFF_KIND:
        marked.metadata["handoff_target_node_id"] = child_id
    if marked.metadata.get("management_kind") == MANAGEMENT_KIND:
        marked.metadata["management_target_node_id"] = child_id
    marked.metadata = dict(sorted(marked.metadata.items()))
    return marked


def _own_metadata(task: TaskPacket) -> TaskPacket:
    """A copy of ``task`` with a metadata map of its own, the only part lineage changes.

    Its other fields are shared with ``task``: a decoded message is a value that nothing
    changes in place (every hop replaces a field, never edits one), and a deep copy of the
    whole packet cost each routing hop two copies of everything it carries.
    """
    return dataclasses.replace(task, metadata=dict(task.metadata))


def relayed_metadata(task: TaskPacket) -> dict[str, str]:
    """The task's handoff, management, coordination and command keys that are present."""
    return {key: task.metadata[key] for key in RELAYED_KEYS if key in task.metadata}


def task_routed_lineage(task: TaskPacket) -> dict[str, str | None]:
    """Every lineage key the TaskRouted event lists, None when the task lacks it."""
    return {key: task.metadata.get(key) for key in TASK_ROUTED_KEYS}
