"""The prompt builder (docs/rules/leaf.md): what a leaf's model is told, from the genome alone.

The instructions restate the node's System 5 policy, its runtime capabilities (derived from
structure, never from prompt text) and its permissions, then the active prompt genes, and
the behavior rules of the controllers above it (a metasystem's rules govern its subtree). The
input is the task packet itself as JSON, so nothing the controller decided is paraphrased.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from organization.genome import OrganizationalGenome, ViableNode, derive_capabilities
from workers.domain.messages import TaskPacket, to_json
from workers.providers.base import ModelRequest

PREAMBLE = (
    "You are an operational leaf in a recursive Viable System Model coding organization.\n"
    "You must operate only within the runtime capabilities and permissions granted to this "
    "node.\n"
)
DEFAULT_OUTPUT_CONTRACT = (
    "Return a concise execution summary. If you produce a patch, include it as a unified diff "
    "in the response."
)
# Relayed from a Command envelope (docs/rules/channels.md, "Policy relay"), `|`-joined.
COMMAND_DENIED_CAPABILITIES_KEY = "command_denied_capabilities"


def build_model_request(
    genome: OrganizationalGenome, node_id: str, task: TaskPacket
) -> ModelRequest:
    """The request for ``task`` on ``node_id``; raises NodeNotFound for an unknown node."""
    node = genome.node(node_id)
    return ModelRequest(
        model=node.model,
        instructions=build_instructions(genome, node, task),
        input=json.dumps(to_json(task), indent=2, ensure_ascii=False),
        metadata={
            "node_id": node.id,
            "node_name": node.name,
            "task_id": task.id,
            "peer_leaf_kinds": ",".join(_peer_leaf_kinds(genome, node)),
        },
    )


def _peer_leaf_kinds(genome: OrganizationalGenome, node: ViableNode) -> list[str]:
    """The kinds of the leaves working beside ``node`` (its live siblings), sorted."""
    if node.parent_id is None:
        return []
    kinds = {
        str(sibling.leaf_operation.kind)
        for sibling_id in genome.nodes[node.parent_id].children
        if sibling_id != node.id
        and not (sibling := genome.nodes[sibling_id]).children
        and sibling.leaf_operation.kind is not None
        and sibling.status.value != "Retired"
    }
    return sorted(kinds)


def build_instructions(genome: OrganizationalGenome, node: ViableNode, task: TaskPacket) -> str:
    sections = [
        PREAMBLE,
        _identity(node, task),
        f"# Runtime capabilities\n{derive_capabilities(genome, node.id)!r}\n",
        _permissions(node),
    ]
    prompt = node.prompt
    for title, components in (
        ("Behavior rules", prompt.behavior_rules),
        ("Domain hints", prompt.domain_hints),
        ("Codebase conventions", prompt.codebase_conventions),
        ("Negative constraints", prompt.negative_constraints),
    ):
        active = [component for component in components if component.active]
        if active:
            sections.append(f"# {title}\n{_bullets(c.text for c in active)}")
    inherited = controller_behavior_rules(genome, node)
    if inherited:
        sections.append(f"# Behavior rules of the controllers above\n{_bullets(inherited)}")
    contract = prompt.output_contract
    contract_text = contract.text if contract is not None and contract.active else None
    sections.append(f"# Output contract\n{contract_text or DEFAULT_OUTPUT_CONTRACT}\n")
    return "\n".join(sections)


def controller_behavior_rules(genome: OrganizationalGenome, node: ViableNode) -> list[str]:
    """The active behavior rules of ``node``'s controllers, nearest first, each text once.

    A metasystem never calls a model, so a rule it carries (an operator's patch, or the
    evolution's parsimony guardrail) governs its subtree only by reaching the leaves'
    instructions: every leaf below it reads it here.
    """
    texts: list[str] = []
    seen = {c.text for c in node.prompt.behavior_rules if c.active}
    parent_id = node.parent_id
    while parent_id is not None:
        controller = genome.nodes[parent_id]
        for component in controller.prompt.behavior_rules:
            if component.active and component.text not in seen:
                seen.add(component.text)
                texts.append(component.text)
        parent_id = controller.parent_id
    return texts


def _identity(node: ViableNode, task: TaskPacket) -> str:
    policy = node.system_5
    text = f"# Node identity\nNode name: {node.name}\nSystem 5 identity: {policy.identity}\n"
    if policy.values:
        text += f"Values:\n{_bullets(policy.values)}"
    if policy.non_negotiable_constraints:
        text += f"\nNon-negotiable constraints:\n{_bullets(policy.non_negotiable_constraints)}"
    denied = denied_capabilities(node, task)
    if denied:
        text += f"\nDenied capabilities (System 5):\n{_bullets(denied)}"
    return text


def denied_capabilities(node: ViableNode, task: TaskPacket) -> list[str]:
    """The node's own System 5 denials, then those a Command relayed on the task, once each."""
    relayed = task.metadata.get(COMMAND_DENIED_CAPABILITIES_KEY, "").split("|")
    names = [*node.system_5.denied_capabilities, *relayed]
    return list(dict.fromkeys(name.strip() for name in names if name.strip()))


def _permissions(node: ViableNode) -> str:
    permissions = node.permissions
    return (
        "# Permissions\n"
        f"Allowed paths: {_list(permissions.allowed_paths)}\n"
        f"Denied paths: {_list(permissions.denied_paths)}\n"
        f"Allowed tools: {_list(permissions.allowed_tools)}\n"
        f"Denied tools: {_list(permissions.denied_tools)}\n"
    )


def _list(items: list[str]) -> str:
    return json.dumps(items, ensure_ascii=False)


def _bullets(items: Iterable[str]) -> str:
    return "".join(f"- {item}\n" for item in items)
