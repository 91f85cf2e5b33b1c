"""TaskRouter (docs/rules/routing.md) with the fixes the reference needs: pure, no Django.

Rules, in order, over the direct children of the routing metasystem:

1. no children: the node is not a metasystem and cannot route (NotMetasystem);
2. ``task.assigned_to`` names a direct child;
3. metadata ``target_child`` equals a direct child's id or name (first match);
4. the first child, in order, that can take the task: a leaf whose derived
   capabilities allow it, or a metasystem with such a leaf somewhere below it.

Unlike the reference, Retired children are skipped by *every* rule, a child
metasystem is chosen only if some leaf in its subtree can take the task, and
denied capabilities (the task's command relay and System 5 policies of every
node on the way down) are enforced rather than only written into prompts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from organization.genome import (
    NodeLifecycleStatus,
    OrganizationalGenome,
    ViableNode,
    ancestor_ids,
    capability_allows,
    derive_capabilities,
)
from workers.domain.messages import TaskPacket


class RoutingError(Exception):
    pass


class NotMetasystem(RoutingError):
    def __init__(self, node_id: str) -> None:
        super().__init__(f"node {node_id!r} has no children, so it cannot route tasks")
        self.node_id = node_id


class NoRouteableChild(RoutingError):
    def __init__(self, node_id: str, task_title: str, reason: str) -> None:
        super().__init__(f"no child of {node_id!r} can take task {task_title!r}: {reason}")
        self.node_id = node_id


@dataclass(frozen=True)
class RouteDecision:
    child_id: str
    reason: str


@dataclass(frozen=True)
class TaskRequirements:
    """What a leaf must be allowed to do to execute a task."""

    requires_code_write: bool
    required_capability: str | None
    denied_capabilities: frozenset[str]

    @classmethod
    def of(cls, task: TaskPacket) -> TaskRequirements:
        metadata = task.metadata
        denied = metadata.get("command_denied_capabilities", "")
        return cls(
            requires_code_write=metadata.get("requires_code_write") == "true",
            required_capability=metadata.get("required_capability") or None,
            denied_capabilities=frozenset(name for name in denied.split("|") if name),
        )

    def needed(self) -> set[str]:
        needed = {self.required_capability} if self.required_capability else set()
        if self.requires_code_write:
            needed.add("write_code")
        return needed


def denied_along(genome: OrganizationalGenome, node_id: str) -> frozenset[str]:
    """Capabilities denied to ``node_id`` by its own or any ancestor's System 5 policy."""
    denied: set[str] = set()
    for current in [node_id, *ancestor_ids(genome, node_id)]:
        denied.update(genome.nodes[current].system_5.denied_capabilities)
    return frozenset(denied)


def leaf_refusal(
    genome: OrganizationalGenome, node_id: str, requirements: TaskRequirements
) -> str | None:
    """Why ``node_id`` may not execute a task with these requirements, or None if it may."""
    node = genome.nodes[node_id]
    if node.children:
        return f"{node_id} is a metasystem (it has children) and never executes tasks"
    capabilities = derive_capabilities(node)
    if requirements.requires_code_write and not capabilities.can_write_code:
        return f"{node_id} cannot write code (requires_code_write=true)"
    capability = requirements.required_capability
    if capability and not capability_allows(capabilities, capability):
        return f"{node_id} lacks the required capability {capability!r}"
    denied = (
        requirements.denied_capabilities | denied_along(genome, node_id)
    ) & requirements.needed()
    if denied:
        return f"{node_id} is denied {', '.join(sorted(denied))} by policy"
    return None


def _live(children: Iterable[ViableNode]) -> list[ViableNode]:
    return [child for child in children if child.status is not NodeLifecycleStatus.RETIRED]


def _subtree_can_take(
    genome: OrganizationalGenome, node: ViableNode, requirements: TaskRequirements
) -> bool:
    if not node.children:
        return leaf_refusal(genome, node.id, requirements) is None
    return any(
        _subtree_can_take(genome, child, requirements)
        for child in _live(genome.nodes[child_id] for child_id in node.children)
    )


def route(genome: OrganizationalGenome, parent_id: str, task: TaskPacket) -> RouteDecision:
    """Choose the direct child of ``parent_id`` that receives ``task``."""
    parent = genome.node(parent_id)
    if not parent.children:
        raise NotMetasystem(parent_id)
    children = _live(genome.nodes[child_id] for child_id in parent.children)
    if not children:
        raise NoRouteableChild(parent_id, task.title, "every child is retired")

    if task.assigned_to and any(child.id == task.assigned_to for child in children):
        return RouteDecision(task.assigned_to, "task already assigned to direct child")
    target = task.metadata.get("target_child")
    if target:
        for child in children:
            if target in (child.id, child.name):
                return RouteDecision(child.id, f"matched target_child metadata: {target}")

    requirements = TaskRequirements.of(task)
    for child in children:
        if _subtree_can_take(genome, child, requirements):
            if child.children:
                return RouteDecision(
                    child.id, "direct child is a metasystem with a leaf that can take the task"
                )
            return RouteDecision(child.id, "first direct child leaf with the required capabilities")
    needed = ", ".join(sorted(requirements.needed())) or "nothing special"
    raise NoRouteableChild(parent_id, task.title, f"no live leaf below can provide {needed}")
