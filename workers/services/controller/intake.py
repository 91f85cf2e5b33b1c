"""Turning a directive or a command into tasks at the root controller.

A directive becomes the mapper's single task, the operator's own plan, or a System 3
decomposition (implementation, then test, review and integration tasks). Each task is
stamped with the channel its plan names (docs/rules/routing.md), so a test task routed
later, when the implementation's result arrives, still travels on System2Coordination.
"""

from __future__ import annotations

import copy
from typing import Any

from ledger import kinds
from ledger.compiled import READINGS
from organization.genome import VsmChannelType
from workers import events
from workers.domain.commands import Command, command_to_task
from workers.domain.decomposition import decomposition_requested, plan_decomposition
from workers.domain.mapping import MapperConfig, map_directive
from workers.domain.messages import DirectiveMessage, TaskPacket, from_json, new_id
from workers.models import Directive
from workers.services.controller.planning import add_task
from workers.services.controller.results import route_ready
from workers.services.hop import Hop
from workers.services.pressure import environment_pressure

# A task planned at intake: the packet, its decomposition role, its TaskMapped policy and
# the channel it is routed as arriving on.
Planned = tuple[TaskPacket, str, str, VsmChannelType]


def on_directive(hop: Hop) -> None:
    message = from_json(DirectiveMessage, hop.incoming.payload)
    planned_tasks = hop.incoming.payload.get("planned_tasks") or []
    root_task = map_directive(message, config=MapperConfig(), controller_node_id=hop.node_id)
    channel = hop.incoming.channel_type
    planned: list[Planned]
    if planned_tasks:
        planned = [
            (task, "", "operator_plan", channel)
            for task in _planned_tasks(root_task, planned_tasks)
        ]
    elif decomposition_requested(message.metadata):
        plan = plan_decomposition(
            root_task,
            genome=hop.genome,
            controller_node_id=hop.node_id,
            directive_metadata=message.metadata,
            pressure=environment_pressure(controller_node_id=hop.node_id),
        )
        hop.record(
            events.task_mapped(
                plan.root, controller_node_id=hop.node_id, policy=plan.root_task_mapped_policy
            )
        )
        planned = [(c.task, c.role.value, c.task_mapped_policy, c.channel) for c in plan.children]
        planned = planned or [(plan.root, "", "system3_single_task", channel)]
    else:
        planned = [(root_task, "", "system3_single_task", channel)]
    tasks = [add_task(hop, message.id, *item) for item in planned]
    _running(message.id)
    route_ready(hop, message.id, tasks)


def _running(directive_id: str) -> None:
    READINGS.update(
        ("directive running",),
        lambda d: (
            Directive.objects.filter(id=d, status=Directive.Status.ACCEPTED),
            {"status": Directive.Status.RUNNING},
        ),
        directive_id,
    )


def on_command(hop: Hop, command: Command) -> None:
    """A command becomes a task routed to its target on the Command channel."""
    directive_id = command.metadata["directive_id"]
    task = command_to_task(command, directive_id=directive_id)
    hop.event(
        kinds.COMMAND_RECEIVED,
        {
            "issued_by": command.issued_by,
            "target": command.target,
            "title": command.title,
            "non_negotiable": command.non_negotiable,
            "legal_or_policy_basis": command.legal_or_policy_basis,
            "system5_identity": command.system5_identity,
            "policy_values": command.policy_values,
            "non_negotiable_constraints": command.non_negotiable_constraints,
            "denied_capabilities": command.denied_capabilities,
            "metadata": command.metadata,
            "source_channel": hop.incoming.channel_type.value,
        },
        task_id=task.id,
        directive_id=directive_id,
    )
    row = add_task(hop, directive_id, task, "", "system3_command_channel", VsmChannelType.COMMAND)
    _running(directive_id)
    route_ready(hop, directive_id, [row])


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
