"""The metasystem runtime: map directives, route tasks, observe and forward results.

Each delivered envelope is handled in one transaction that first claims it
(``handled_at``): every effect of the handling (task rows, ledger events, new
envelopes) commits together with the claim, so a redelivery after a crash
redoes the work from scratch and a duplicate delivery does nothing.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from ledger import kinds
from organization.genome import VsmChannelType
from organization.selectors import champion_version, genome_of
from workers.domain.algedonic import AlgedonicSignal
from workers.domain.commands import Command, command_to_task
from workers.domain.decomposition import (
    decomposition_requested,
    plan_decomposition,
    plan_revision,
)
from workers.domain.mapping import MapperConfig, map_directive
from workers.domain.messages import (
    Directive as DirectiveMessage,
)
from workers.domain.messages import (
    MessageEnvelope,
    PayloadType,
    TaskPacket,
    TaskResult,
    TaskStatus,
    from_json,
    new_id,
    to_json,
)
from workers.domain.routing import RoutingError, route
from workers.models import Directive, Envelope, Task
from workers.services.algedonic import hold_if_paused, on_algedonic_signal
from workers.services.directives import directive_settle
from workers.services.handling import KEEP_CHANNEL, RELAYED_PREFIXES, Handling, outbound_priority
from workers.services.transport import envelope_of, message_event

logger = logging.getLogger(__name__)


def controller_receive(*, envelope_id: str, worker: str) -> str:
    """Handle one envelope delivered to a metasystem; returns what happened."""
    with transaction.atomic():
        row = Envelope.objects.select_for_update().filter(id=envelope_id).first()
        if row is None:
            logger.error("envelope %s does not exist; dropping its delivery", envelope_id)
            return "missing"
        if row.handled_at is not None:
            return "duplicate"
        row.handled_at, row.handled_by = timezone.now(), worker
        row.deliveries += 1
        row.save(update_fields=["handled_at", "handled_by", "deliveries"])
        version = champion_version()
        assert version is not None, "an envelope exists, so the organization does"
        genome = genome_of(version)
        incoming = envelope_of(row)
        handling = Handling(str(row.target_node_id), genome, version, incoming)
        handling.events.append(message_event(kinds.MESSAGE_RECEIVED, incoming, genome))
        if incoming.payload_type == PayloadType.DIRECTIVE:
            _on_directive(handling)
        elif incoming.payload_type == PayloadType.TASK_PACKET:
            task = from_json(TaskPacket, incoming.payload)
            _route(handling, task)
        elif incoming.payload_type == PayloadType.ALGEDONIC_SIGNAL:
            on_algedonic_signal(handling, from_json(AlgedonicSignal, incoming.payload))
        elif incoming.payload_type == PayloadType.COMMAND:
            _on_command(handling, from_json(Command, incoming.payload))
        elif incoming.payload_type == PayloadType.TASK_RESULT:
            _on_result(handling, from_json(TaskResult, incoming.payload))
        else:
            logger.warning("controller %s ignores %s", handling.node_id, incoming.payload_type)
        handling.flush()
    return "handled"


# -- directives --------------------------------------------------------------


def _on_directive(handling: Handling) -> None:
    message = from_json(DirectiveMessage, handling.incoming.payload)
    directive = Directive.objects.get(id=message.id)
    root_task = map_directive(message, config=MapperConfig(), controller_node_id=handling.node_id)
    planned: list[tuple[TaskPacket, str, str]]  # task, role, TaskMapped policy
    if directive.planned_tasks:
        planned = [
            (t, "", "operator_plan") for t in _planned_tasks(root_task, directive.planned_tasks)
        ]
    elif decomposition_requested(message.metadata):
        plan = plan_decomposition(
            root_task,
            genome=handling.genome,
            controller_node_id=handling.node_id,
            directive_metadata=message.metadata,
        )
        _task_mapped(handling, plan.root, plan.root_task_mapped_policy)
        planned = [(c.task, c.role.value, c.task_mapped_policy) for c in plan.children]
        planned = planned or [(plan.root, "", "system3_single_task")]
    else:
        planned = [(root_task, "", "system3_single_task")]
    for task, role, policy in planned:
        _add_task(handling, directive, task, role=role, policy=policy)
    directive.status = Directive.Status.RUNNING
    directive.save(update_fields=["status"])
    _route_ready(handling, directive)


def _on_command(handling: Handling, command: Command) -> None:
    """A command becomes a task routed to its target (docs/rules/channels.md, "Command channel")."""
    directive_id = command.metadata.get("directive_id")
    directive = Directive.objects.get(id=directive_id)
    task = command_to_task(command, directive_id=directive_id)
    handling.event(
        kinds.COMMAND_RECEIVED,
        {
            "issued_by": command.issued_by,
            "target": command.target,
            "title": command.title,
            "non_negotiable": command.non_negotiable,
            "legal_or_policy_basis": command.legal_or_policy_basis,
            "policy_values": command.policy_values,
            "non_negotiable_constraints": command.non_negotiable_constraints,
            "denied_capabilities": command.denied_capabilities,
            "source_channel": handling.incoming.channel_type.value,
        },
        task_id=task.id,
        directive_id=directive_id,
    )
    _add_task(handling, directive, task, role="", policy="system3_command_channel")
    directive.status = Directive.Status.RUNNING
    directive.save(update_fields=["status"])
    _route_ready(handling, directive)


def _add_task(
    handling: Handling, directive: Directive, task: TaskPacket, *, role: str, policy: str
) -> None:
    Task.objects.create(
        id=task.id,
        directive=directive,
        title=task.title,
        role=role,
        packet=to_json(task),
        dependencies=list(task.dependencies),
        status=Task.Status.WAITING,
    )
    _task_mapped(handling, task, policy)


def _task_mapped(handling: Handling, task: TaskPacket, policy: str) -> None:
    handling.event(
        kinds.TASK_MAPPED,
        {
            "controller_node_id": handling.node_id,
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
        task_id=task.id,
        directive_id=task.directive_id,
    )


def _planned_tasks(root: TaskPacket, planned: list[dict[str, Any]]) -> list[TaskPacket]:
    """Operator-supplied tasks: each inherits the mapped root task, keys become ids."""
    ids = {item["key"]: new_id() for item in planned}
    tasks = []
    for item in planned:
        task = copy.deepcopy(root)
        task.id = ids[item["key"]]
        task.title = item["title"]
        task.goal = item.get("goal") or root.goal
        task.dependencies = [ids[key] for key in item.get("depends_on", [])]
        task.metadata = {**root.metadata, **item.get("metadata", {}), "plan_key": item["key"]}
        tasks.append(task)
    return tasks


def _route_ready(handling: Handling, directive: Directive) -> None:
    """Route every waiting task whose dependencies finished; fail those whose failed.

    A dependency is finished when it completed, failed or was superseded by a
    revision; a revision task depends on the task it revises, so it is ready
    when that one failed.
    """
    changed = True
    while changed:
        changed = False
        finished = dict(
            directive.tasks.filter(status__in=Task.FINISHED).values_list("id", "status")
        )
        for row in directive.tasks.filter(status=Task.Status.WAITING):
            failed = [d for d in row.dependencies if finished.get(d) == Task.Status.FAILED]
            is_revision = "decomposition_revision_of_task_id" in row.packet.get("metadata", {})
            if failed and not is_revision:
                row.status = Task.Status.FAILED
                row.result_summary = f"not run: dependency {failed[0]} failed"
                row.save(update_fields=["status", "result_summary", "updated_at"])
                changed = True
            elif all(d in finished for d in row.dependencies):
                outcome, child = _route(handling, from_json(TaskPacket, row.packet))
                row.status = outcome
                row.assigned_node_id = child or ""
                row.save(update_fields=["status", "assigned_node_id", "updated_at"])
                changed = changed or outcome == Task.Status.FAILED
    handling.events.extend(directive_settle(directive=directive, genome_id=handling.version.id))


# -- routing -----------------------------------------------------------------


def _route(handling: Handling, task: TaskPacket) -> tuple[str, str | None]:
    """Send ``task`` to the chosen direct child, or hold it if that child is paused.

    Returns the task's new status (routed, blocked_paused or failed) and the child.
    """
    try:
        decision = route(handling.genome, handling.node_id, task)
    except RoutingError as error:
        _routing_failed(handling, task, str(error))
        return Task.Status.FAILED, None
    if hold_if_paused(handling, task, decision.child_id):
        return Task.Status.BLOCKED_PAUSED, decision.child_id
    task.assigned_to = decision.child_id
    task.metadata = {
        **task.metadata,
        "routed_by": handling.node_id,
        "routing_reason": decision.reason,
    }
    incoming = handling.incoming
    channel = (
        incoming.channel_type
        if incoming.channel_type in KEEP_CHANNEL
        else VsmChannelType.RESOURCE_BARGAINING
    )
    priority = outbound_priority(task, incoming.channel_type)
    handling.event(
        kinds.TASK_ROUTED,
        {
            "parent_node_id": handling.node_id,
            "child_node_id": decision.child_id,
            "task_id": task.id,
            "task_title": task.title,
            "directive_id": task.directive_id,
            "parent_task_id": task.parent_task_id,
            "dependency_task_ids": list(task.dependencies),
            "reason": decision.reason,
            "source_channel": incoming.channel_type.value,
            "outbound_channel": channel.value,
            "channel_priority": priority.value,
            "routed_genome_id": handling.version.id,
        },
        task_id=task.id,
        directive_id=task.directive_id,
    )
    handling.publish(
        MessageEnvelope(
            channel_type=channel,
            source_node_id=handling.node_id,
            target_node_id=decision.child_id,
            correlation_id=handling.correlation_id,
            causation_id=incoming.id,
            priority=priority,
            payload_type=PayloadType.TASK_PACKET,
            payload=to_json(task),
            trace=[*incoming.trace, handling.node_id],
            metadata={
                "routing_reason": decision.reason,
                "vsm_outbound_channel": channel.value,
                **{k: v for k, v in task.metadata.items() if k.startswith(RELAYED_PREFIXES)},
            },
        ),
        task_id=task.id,
        directive_id=task.directive_id,
    )
    # A task released after a pause is on its way again.
    Task.objects.filter(id=task.id, status=Task.Status.BLOCKED_PAUSED).update(
        status=Task.Status.ROUTED, assigned_node_id=decision.child_id, updated_at=timezone.now()
    )
    return Task.Status.ROUTED, decision.child_id


def _routing_failed(handling: Handling, task: TaskPacket, reason: str) -> None:
    handling.event(
        kinds.TASK_ROUTING_FAILED,
        {"task_id": task.id, "task_title": task.title, "reason": reason},
        task_id=task.id,
        directive_id=task.directive_id,
    )
    parent_id = handling.genome.nodes[handling.node_id].parent_id
    if parent_id is None:
        Task.objects.filter(id=task.id).update(
            status=Task.Status.FAILED, result_summary=reason, updated_at=timezone.now()
        )
        return
    # A nested controller answers its parent with a failed result, so the root sees it.
    failure = TaskResult(
        task_id=task.id,
        produced_by=handling.node_id,
        status=TaskStatus.FAILED,
        summary="task could not be routed",
        error=reason,
        metadata={"directive_id": task.directive_id or ""},
    )
    _send_result_up(handling, failure, parent_id)


# -- results -----------------------------------------------------------------


def _on_result(handling: Handling, result: TaskResult) -> None:
    directive_id = result.metadata.get("directive_id") or None
    handling.event(
        kinds.TASK_RESULT_RECEIVED,
        to_json(result),
        task_id=result.task_id,
        directive_id=directive_id,
    )
    parent_id = handling.genome.nodes[handling.node_id].parent_id
    if parent_id is not None:
        _send_result_up(handling, result, parent_id)
        return
    row = Task.objects.select_related("directive").filter(id=result.task_id).first()
    if row is None:
        logger.warning("root %s got a result for unknown task %s", handling.node_id, result.task_id)
        return
    if row.status in (Task.Status.COMPLETED, Task.Status.FAILED):
        return  # the root observes exactly one result per task
    row.status = Task.Status.COMPLETED if result.succeeded else Task.Status.FAILED
    row.result = to_json(result)
    row.result_summary = result.error or result.summary
    row.executed_by = result.produced_by
    if row.status == Task.Status.FAILED:
        _maybe_revise(handling, row, result)
    row.save(update_fields=["status", "result", "result_summary", "executed_by", "updated_at"])
    _route_ready(handling, row.directive)


def _maybe_revise(handling: Handling, row: Task, result: TaskResult) -> None:
    """A failed decomposed task gets one revision task; its dependents wait for that instead."""
    failed_task = from_json(TaskPacket, row.packet)
    revision = plan_revision(result, failed_task=failed_task)
    if revision is None:
        return
    row.status = Task.Status.REVISED
    _add_task(handling, row.directive, revision, role=row.role, policy="system3_result_revision")
    for dependent in row.directive.tasks.filter(status=Task.Status.WAITING).exclude(id=revision.id):
        if row.id in dependent.dependencies:
            dependent.dependencies = [
                revision.id if d == row.id else d for d in dependent.dependencies
            ]
            dependent.save(update_fields=["dependencies", "updated_at"])
    handling.event(
        kinds.DECOMPOSITION_REVISION_CREATED,
        {
            "failed_task_id": row.id,
            "revision_task_id": revision.id,
            "decomposition_role": row.role,
            "result_status": result.status.value,
            "child_node_id": result.produced_by,
        },
        task_id=revision.id,
        directive_id=row.directive_id,
    )


def _send_result_up(handling: Handling, result: TaskResult, parent_id: str) -> None:
    incoming = handling.incoming
    handling.publish(
        MessageEnvelope(
            channel_type=VsmChannelType.MANAGEMENT_TO_OPERATION,
            source_node_id=handling.node_id,
            target_node_id=parent_id,
            correlation_id=handling.correlation_id,
            causation_id=incoming.id,
            payload_type=PayloadType.TASK_RESULT,
            payload=to_json(result),
            trace=[*incoming.trace, handling.node_id],
            metadata={
                "forwarded_by_controller_node_id": handling.node_id,
                "forwarded_result_task_id": result.task_id,
                "vsm_outbound_channel": VsmChannelType.MANAGEMENT_TO_OPERATION.value,
                "source_payload_type": PayloadType.TASK_RESULT,
            },
        ),
        task_id=result.task_id,
        directive_id=result.metadata.get("directive_id") or None,
    )
