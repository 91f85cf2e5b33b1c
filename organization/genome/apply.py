"""Applying patches: pure (the input genome is never touched) and all-or-nothing."""

from __future__ import annotations

import copy

from organization.genome.enums import PromptSection
from organization.genome.errors import GenomeError, NodeIsNotLeaf, PromptComponentNotFound
from organization.genome.model import (
    ContextPolicy,
    LeafOperationSpec,
    ModelSpec,
    OrganizationalGenome,
    PermissionSpec,
    PromptComponent,
    PromptGenome,
    ViableNode,
)
from organization.genome.operations import add_child, remove_subtree
from organization.genome.patches import (
    AddChannel,
    AddChild,
    AddPromptComponent,
    AddTool,
    Batch,
    Patch,
    PromoteLeafToMetasystem,
    RemoveChannel,
    RemovePromptComponent,
    RemoveSubtree,
    RemoveTool,
    SetNodeStatus,
)
from organization.genome.validation import validate

_LIST_SECTIONS = {
    PromptSection.BEHAVIOR_RULES: "behavior_rules",
    PromptSection.DOMAIN_HINTS: "domain_hints",
    PromptSection.CODEBASE_CONVENTIONS: "codebase_conventions",
    PromptSection.NEGATIVE_CONSTRAINTS: "negative_constraints",
}


def apply_patch(genome: OrganizationalGenome, patch: Patch) -> OrganizationalGenome:
    """A new genome with ``patch`` applied and validated.

    Works on deep copies of both genome and patch, so neither input is ever changed and the
    result shares no objects with them. Raises a GenomeError subclass (the first failing step
    of a batch, or GenomeInvalid if the result breaks a structural invariant); in that case
    nothing is returned and nothing changed.
    """
    candidate = copy.deepcopy(genome)
    _apply_in_place(candidate, copy.deepcopy(patch))
    validate(candidate)
    return candidate


def _apply_in_place(genome: OrganizationalGenome, patch: Patch) -> None:
    match patch:
        case AddChild(parent_id=parent_id, child=child):
            add_child(genome, parent_id, child)
        case PromoteLeafToMetasystem():
            _promote_leaf_to_metasystem(genome, patch)
        case RemoveSubtree(node_id=node_id):
            remove_subtree(genome, node_id)
        case AddChannel(channel=channel):
            genome.channels.append(channel)
        case RemoveChannel(channel_id=channel_id):
            genome.channels = [c for c in genome.channels if c.id != channel_id]
        case AddPromptComponent(node_id=node_id, section=section, component=component):
            _add_prompt_component(genome.node(node_id).prompt, section, component)
        case RemovePromptComponent(node_id=node_id, component_id=component_id):
            if not _remove_prompt_component(genome.node(node_id).prompt, component_id):
                raise PromptComponentNotFound(node_id, component_id)
        case AddTool(node_id=node_id, tool=tool):
            genome.node(node_id).tools.append(tool)
        case RemoveTool(node_id=node_id, tool_name=tool_name):
            node = genome.node(node_id)
            node.tools = [tool for tool in node.tools if tool.name != tool_name]
        case SetNodeStatus(node_id=node_id, status=status):
            genome.node(node_id).status = status
        case Batch(patches=patches):
            for index, step in enumerate(patches):
                try:
                    _apply_in_place(genome, step)
                except GenomeError as error:
                    error.add_note(f"while applying batch step {index} ({step.KIND})")
                    raise
        case _:
            raise TypeError(f"not a genome patch: {patch!r}")


def _promote_leaf_to_metasystem(
    genome: OrganizationalGenome, patch: PromoteLeafToMetasystem
) -> None:
    """Move a leaf's execution rights to a new child and turn the leaf into its manager."""
    node = genome.node(patch.node_id)
    if node.children:
        raise NodeIsNotLeaf(node.id, node.children, reason="only a leaf can be promoted")
    # The genome is already a private copy, so the leaf's parts can move rather than be copied.
    extracted = ViableNode(
        id=patch.extracted_child_id,
        name=patch.extracted_child_name,
        leaf_operation=node.leaf_operation,
        system_5=copy.deepcopy(node.system_5),
        model=node.model,
        prompt=node.prompt,
        tools=node.tools,
        context_policy=node.context_policy,
        permissions=node.permissions,
        metadata={**node.metadata, "extracted_from_node_id": node.id},
    )
    add_child(genome, node.id, extracted)
    node.leaf_operation = LeafOperationSpec()
    node.model = ModelSpec()
    node.prompt = PromptGenome()
    node.tools = []
    node.context_policy = ContextPolicy()
    node.permissions = PermissionSpec()
    node.metadata = {**node.metadata, "promoted_to_metasystem": "true"}


def _add_prompt_component(
    prompt: PromptGenome, section: PromptSection, component: PromptComponent
) -> None:
    if section == PromptSection.OUTPUT_CONTRACT:
        prompt.output_contract = component
    else:
        getattr(prompt, _LIST_SECTIONS[section]).append(component)


def _remove_prompt_component(prompt: PromptGenome, component_id: str) -> bool:
    removed = False
    for attribute in _LIST_SECTIONS.values():
        components: list[PromptComponent] = getattr(prompt, attribute)
        kept = [c for c in components if c.id != component_id]
        removed = removed or len(kept) != len(components)
        setattr(prompt, attribute, kept)
    if prompt.output_contract is not None and prompt.output_contract.id == component_id:
        prompt.output_contract = None
        removed = True
    return removed
