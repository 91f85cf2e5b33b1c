"""Storing the tasks a controller plans: one ``Task`` row and one ``task_mapped`` event each."""

from __future__ import annotations

from organization.genome import VsmChannelType
from workers import events
from workers.domain.channels import arrived
from workers.domain.messages import TaskPacket, to_json
from workers.models import Task
from workers.services.hop import Hop


def add_task(
    hop: Hop,
    directive_id: str,
    task: TaskPacket,
    role: str,
    policy: str,
    channel: VsmChannelType,
) -> Task:
    """A new waiting task, stamped with the channel it will be routed as arriving on.

    The row is not saved yet: ``route_ready`` inserts the new rows once it has routed
    them, with their outcome (one statement for all of them).
    """
    arrived(task, channel=channel, payload_type=hop.incoming.payload_type)
    row = Task(
        id=task.id,
        directive_id=directive_id,
        title=task.title,
        role=role,
        packet=to_json(task),
        dependencies=list(task.dependencies),
        status=Task.Status.WAITING,
    )
    hop.record(events.task_mapped(task, controller_node_id=hop.node_id, policy=policy))
    return row
