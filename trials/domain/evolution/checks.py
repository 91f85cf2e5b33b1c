"""What the generation checks on a genome before it proposes a patch (pure, no Django).

* **Already in the champion** (:func:`novel_steps`): a step whose application would leave
  the genome's content unchanged, or that adds a node, prompt component, tool or channel the
  genome has already (a node by id, or by name under the same parent). The reference kernel
  re-applied promoted ``add_child`` patches, so its recombination mostly failed.
* **Task shapes** (:func:`task_shape`): the task keys the router reads, taken from a trace's
  metadata (the leaf copies every task key there as ``task_metadata.<key>``).
* **Routable** (:func:`unroutable`): a candidate whose controller keeps its children and whose
  router finds a child for at least one recent task shape; else no trial traffic could ever
  reach it.
* **Still routed** (:func:`stranded_shapes`): the shapes the champion routes that a candidate
  no longer can; a child is retired only if there are none.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from organization.genome import (
    AddChannel,
    AddChild,
    AddPromptComponent,
    AddTool,
    Batch,
    GenomeError,
    OrganizationalGenome,
    Patch,
    PromptComponent,
    SetNodeStatus,
    ViableNode,
    apply_patch,
    canonical_json,
    patch_to_json,
)
from workers.domain.messages import TaskPacket
from workers.domain.routing import RoutingError, route
from workers.domain.trial_routing import candidate_controller_refusal

# The task keys routing reads (docs/rules/routing.md), and where a trace keeps them.
SHAPE_KEYS = (
    "task_class",
    "required_capability",
    "requires_code_write",
    "target_child",
    "command_denied_capabilities",
)
TASK_METADATA_PREFIX = "task_metadata."
PARSIMONY_TAG = "evolution_parsimony_guardrail"

Shape = tuple[tuple[str, str], ...]


def task_shape(metadata: Mapping[str, str]) -> dict[str, str]:
    """The routing keys of a trace's task: the key itself, else ``task_metadata.<key>``."""
    shape: dict[str, str] = {}
    for key in SHAPE_KEYS:
        value = metadata.get(key) or metadata.get(TASK_METADATA_PREFIX + key)
        if value:
            shape[key] = str(value)
    return shape


def distinct_shapes(shapes: Iterable[Mapping[str, str]]) -> list[Shape]:
    """Each shape once, in first-seen order."""
    seen: dict[Shape, None] = {}
    for shape in shapes:
        seen.setdefault(tuple(sorted(shape.items())), None)
    return list(seen)


def describe_shape(shape: Shape) -> str:
    return ", ".join(f"{key}={value}" for key, value in shape) or "a task with no requirements"


def routes(genome: OrganizationalGenome, controller_node_id: str, shape: Shape) -> str | None:
    """The child ``genome``'s router picks for a task of this shape, or None."""
    packet = TaskPacket(id="evolution-shape", title=describe_shape(shape), metadata=dict(shape))
    try:
        return route(genome, controller_node_id, packet).child_id
    except (RoutingError, GenomeError):
        return None


def stranded_shapes(
    champion: OrganizationalGenome,
    candidate: OrganizationalGenome,
    controller_node_id: str,
    shapes: Sequence[Shape],
) -> list[Shape]:
    """Shapes the champion routes at the controller and the candidate no longer can."""
    return [
        shape
        for shape in shapes
        if routes(champion, controller_node_id, shape) is not None
        and routes(candidate, controller_node_id, shape) is None
    ]


def unroutable(
    candidate: OrganizationalGenome, controller_node_id: str, shapes: Sequence[Shape]
) -> str | None:
    """Why no trial traffic could reach ``candidate`` at the controller, or None.

    With no recent traces the plainest task (no requirements) stands in for the shapes.
    """
    refusal = candidate_controller_refusal(candidate, controller_node_id)
    if refusal is not None:
        return refusal
    tried = list(shapes) or [()]
    if any(routes(candidate, controller_node_id, shape) is not None for shape in tried):
        return None
    return (
        f"the candidate's router finds no child of {controller_node_id} for any of the "
        f"{len(tried)} recent task shape(s)"
    )


# -- already in the champion ---------------------------------------------------------------------


def _components(node: ViableNode) -> Iterator[PromptComponent]:
    prompt = node.prompt
    yield from prompt.behavior_rules
    yield from prompt.domain_hints
    yield from prompt.codebase_conventions
    yield from prompt.negative_constraints
    if prompt.output_contract is not None:
        yield prompt.output_contract


def has_parsimony_guardrail(node: ViableNode) -> bool:
    return any(c.active and PARSIMONY_TAG in c.tags for c in _components(node))


def step_in_genome(genome: OrganizationalGenome, step: Patch) -> bool:
    """Whether ``genome`` already has what this (non-batch) step would bring."""
    match step:
        case AddChild(parent_id=parent_id, child=child):
            if child.id in genome.nodes:
                return True
            parent = genome.nodes.get(parent_id)
            return parent is not None and any(
                genome.nodes[sibling].name == child.name for sibling in parent.children
            )
        case AddPromptComponent(node_id=node_id, component=component):
            node = genome.nodes.get(node_id)
            return node is not None and any(
                existing.id == component.id or existing.text == component.text
                for existing in _components(node)
            )
        case AddTool(node_id=node_id, tool=tool):
            node = genome.nodes.get(node_id)
            return node is not None and any(existing.name == tool.name for existing in node.tools)
        case AddChannel(channel=channel):
            return any(existing.id == channel.id for existing in genome.channels)
    try:
        applied = apply_patch(genome, step)
    except GenomeError:
        return False
    return applied.nodes == genome.nodes and applied.channels == genome.channels


def flatten(patch: Patch) -> list[Patch]:
    if isinstance(patch, Batch):
        return [step for inner in patch.patches for step in flatten(inner)]
    return [patch]


def novel_steps(
    genome: OrganizationalGenome, patch: Patch
) -> tuple[list[Patch], OrganizationalGenome]:
    """The patch's steps ``genome`` does not have yet, and the genome with them applied.

    Each step is judged on the genome as the earlier steps left it, so a step two parents
    share is kept once. Raises GenomeError when a new step does not apply.
    """
    kept: list[Patch] = []
    current = genome
    for step in flatten(patch):
        if step_in_genome(current, step):
            continue
        current = apply_patch(current, step)
        kept.append(step)
    return kept, current


def joined(steps: Sequence[Patch]) -> Patch:
    return steps[0] if len(steps) == 1 else Batch(patches=list(steps))


# -- what a patch tries, to recognise a pending or tried duplicate -------------------------------


def signature(patch: Patch) -> frozenset[str]:
    """What a patch tries, as comparable strings: a parsimony guardrail by its node (its id
    differs each generation), a status change by node and status, anything else exactly."""
    marks: set[str] = set()
    for step in flatten(patch):
        match step:
            case AddPromptComponent(node_id=node_id, component=component) if (
                PARSIMONY_TAG in component.tags
            ):
                marks.add(f"parsimony:{node_id}")
            case SetNodeStatus(node_id=node_id, status=status):
                marks.add(f"status:{node_id}:{status.value}")
            case _:
                marks.add(canonical_json(patch_to_json(step)))
    return frozenset(marks)
