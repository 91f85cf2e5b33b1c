"""One function per ledger event kind of the runtime: what each event says, in one place.

Each builder returns an ``Event``: the kind, its payload and the ids it is tagged
with. The context every event of a hop shares (actor, node, responsible ancestors,
correlation, causation, genome version) is added by ``workers.services.hop.Hop``.
Builders only build: nothing here reads or writes the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger import kinds
from ledger.services import EventDraft
from organization.genome import OrganizationalGenome, ancestor_ids
from workers.domain.messages import MessageEnvelope, TaskPacket, TaskResult, to_json


@dataclass(frozen=True)
class Event:
    kind: str
    payload: dict[str, Any]
    task_id: str | None = None
    directive_id: str | None = None
    suggestion_id: str | None = None
    trial_id: str | None = None


def ancestors_of(genome: OrganizationalGenome, node_id: str | None) -> list[str]:
    if node_id is None or node_id not in genome.nodes:
        return []
    return ancestor_ids(genome, node_id)


def message_event(
    kind: str,
    envelope: MessageEnvelope,
    genome: OrganizationalGenome,
    *,
    wire: dict[str, Any] | None = None,
    **ids: Any,
) -> EventDraft:
    """``message_published`` / ``message_received``: the event carries the whole envelope
    (``wire``, its ``to_json``, when the caller has it already)."""
    node_id = envelope.target_node_id or envelope.source_node_id
    return EventDraft(
        kind=kind,
        actor=f"node:{envelope.source_node_id or 'environment'}",
        payload=to_json(envelope) if wire is None else wire,
        payload_keys_are_text=True,
        node_id=node_id,
        responsible_ancestor_ids=ancestors_of(genome, node_id),
        correlation_id=envelope.correlation_id,
        causation_id=envelope.causation_id,
        genome_id=genome.id,
        **ids,
    )


def _task_tags(task: TaskPacket) -> dict[str, Any]:
    return {"task_id": task.id, "directive_id": task.directive_id}


def task_mapped(task: TaskPacket, *, controller_node_id: str, policy: str) -> Event:
    return Event(
        kinds.TASK_MAPPED,
        {
            "controller_node_id": controller_node_id,
            "task_id": task.id,
            "task_title": task.title,
            "directive_id": task.directive_id,
            "parent_task_id": task.parent_task_id,
            "dependency_task_ids": list(task.dependencies),
            "decomposition_policy": policy,
            "decomposition_authority": task.metadata.get("decomposition_authority", "system3"),
            "risk": task.risk.value,
            "metadata": task.metadata,
        },
        **_task_tags(task),
    )


def task_routed(
    task: TaskPacket,
    *,
    parent_node_id: str,
    child_node_id: str,
    reason: str,
    source_channel: str,
    outbound_channel: str,
    priority: str,
    genome_id: str,
    lineage: dict[str, str | None],
) -> Event:
    return Event(
        kinds.TASK_ROUTED,
        {
            "parent_node_id": parent_node_id,
            "child_node_id": child_node_id,
            "task_id": task.id,
            "task_title": task.title,
            "directive_id": task.directive_id,
            "parent_task_id": task.parent_task_id,
            "dependency_task_ids": list(task.dependencies),
            "reason": reason,
            "source_channel": source_channel,
            "outbound_channel": outbound_channel,
            "channel_priority": priority,
            "routed_genome_id": genome_id,
            **lineage,
        },
        **_task_tags(task),
    )


def task_routing_failed(task: TaskPacket, *, reason: str) -> Event:
    return Event(
        kinds.TASK_ROUTING_FAILED,
        {"task_id": task.id, "task_title": task.title, "reason": reason},
        **_task_tags(task),
    )


def task_result_received(result: TaskResult) -> Event:
    return Event(
        kinds.TASK_RESULT_RECEIVED,
        to_json(result),
        task_id=result.task_id,
        directive_id=result.metadata.get("directive_id") or None,
    )


def decomposition_revision_created(
    *,
    failed: TaskPacket,
    revision: TaskPacket,
    role: str,
    result: TaskResult,
    source_channel: str,
    revision_channel: str,
) -> Event:
    return Event(
        kinds.DECOMPOSITION_REVISION_CREATED,
        {
            "failed_task_id": failed.id,
            "revision_task_id": revision.id,
            "decomposition_role": role,
            "result_status": result.status.value,
            "child_node_id": result.produced_by,
            "source_channel": source_channel,
            "revision_channel": revision_channel,
        },
        task_id=revision.id,
        directive_id=revision.directive_id,
    )


def directive_settled(*, directive_id: str, failed: bool, status: str, summary: str) -> Event:
    return Event(
        kinds.DIRECTIVE_FAILED if failed else kinds.DIRECTIVE_COMPLETED,
        {"status": status, "summary": summary},
        directive_id=directive_id,
    )


def capability_violation(task: TaskPacket, *, node_id: str, reason: str) -> Event:
    return Event(
        kinds.CAPABILITY_VIOLATION,
        {"task_id": task.id, "node_id": node_id, "reason": reason},
        **_task_tags(task),
    )


# -- trials: what a controller's router did with its live trial ---------------


def _trial_tags(task: TaskPacket, trial_id: str) -> dict[str, Any]:
    return {**_task_tags(task), "trial_id": trial_id, "suggestion_id": trial_id}


def trial_task_routed(
    task: TaskPacket,
    *,
    trial_id: str,
    child_node_id: str,
    candidate_genome_id: str,
    trial_mode: str,
    role: str,
    exposure_basis_points: int | None,
    exposure_bucket: int,
) -> Event:
    return Event(
        kinds.TRIAL_TASK_ROUTED,
        {
            "trial_id": trial_id,
            "task_id": task.id,
            "child_node_id": child_node_id,
            "candidate_genome_id": candidate_genome_id,
            "is_shadow_route": role == "shadow",
            "trial_mode": trial_mode,
            "trial_route_role": role,
            "exposure_basis_points": exposure_basis_points,
            "exposure_bucket": exposure_bucket,
        },
        **_trial_tags(task, trial_id),
    )


def trial_route_fallback(task: TaskPacket, *, trial_id: str, role: str, reason: str) -> Event:
    """The trial's arm did not get the task (or its shadow copy) and the champion's route
    stands alone."""
    return Event(
        kinds.TRIAL_ROUTE_FALLBACK,
        {"trial_id": trial_id, "task_id": task.id, "trial_route_role": role, "reason": reason},
        **_trial_tags(task, trial_id),
    )


def trial_shadow_result_recorded(
    result: TaskResult, *, trial_id: str, controller_node_id: str
) -> Event:
    return Event(
        kinds.TRIAL_SHADOW_RESULT_RECORDED,
        {
            "trial_id": trial_id,
            "task_id": result.task_id,
            "controller_node_id": controller_node_id,
            "produced_by": result.produced_by,
            "status": result.status.value,
            "trace_id": result.metadata.get("trace_id"),
        },
        task_id=result.task_id,
        directive_id=result.metadata.get("directive_id") or None,
        trial_id=trial_id,
        suggestion_id=trial_id,
    )
