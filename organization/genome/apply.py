"""Applying patches: pure (the input genome is never touched) and all-or-nothing."""

from __future__ import annotations

import copy

from organization.genome.encoded import EncodedGenome, delta_between, encode_genome
from organization.genome.enums import PromptSection
from organization.genome.errors import (
    GenomeError,
    GenomeInvalid,
    NodeIsNotLeaf,
    PromptComponentNotFound,
)
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
from organization.genome.validation import structure_problems, validate

_LIST_SECTIONS = {
    PromptSection.BEHAVIOR_RULES: "behavior_rules",
    PromptSection.DOMAIN_HINTS: "domain_hints",
    PromptSection.CODEBASE_CONVENTIONS: "codebase_conventions",
    PromptSection.NEGATIVE_CONSTRAINTS: "negative_constraints",
}


def apply_patch(genome: OrganizationalGenome, patch: Patch) -> OrganizationalGenome:
    """A new genome with ``patch`` applied and validated.

    Neither input is ever changed. The cost follows the patch, not the genome: the result
    has its own node map and channel list, deep copies of the nodes the patch changes and
    of the patch's parts, and shares every other node and channel object with the input
    (genomes are values: nothing changes a node or channel in place once its genome is
    built, which is what makes versions cacheable). Raises a GenomeError subclass (the
    first failing step of a batch, or GenomeInvalid if the result breaks a structural
    invariant); in that case nothing is returned and nothing changed.
    """
    candidate = _shallow_copy(genome)
    _apply_in_place(_Draft(candidate), copy.deepcopy(patch))
    validate(candidate)
    return candidate


def apply_patch_encoded(base: EncodedGenome, patch: Patch) -> EncodedGenome:
    """``apply_patch`` for a genome already encoded: the cost follows the patch.

    ``base`` vouches for the types of every piece it holds (it was encoded strictly), so
    only the pieces the patch changes are encoded and type-checked (GenomeFormatError);
    the structural checks then run on the whole result (GenomeInvalid), as in
    ``apply_patch``, unless the patch kept every node id, link and channel of a base
    whose structure was checked. The result's pieces are ready for ``json_text`` and
    ``content_hash``, and its ``delta`` says which nodes changed.
    """
    candidate = _shallow_copy(base.genome)
    _apply_in_place(_Draft(candidate), copy.deepcopy(patch))
    delta = delta_between(base.genome, candidate)
    encoded = encode_genome(candidate, base, structure_checked=True, delta=delta)
    # A valid structure stays valid when no node id, link or channel changed.
    if delta.structural or not base.structure_checked:
        problems = structure_problems(candidate)
        if problems:
            raise GenomeInvalid(problems)
    return encoded


def _shallow_copy(genome: OrganizationalGenome) -> OrganizationalGenome:
    return OrganizationalGenome(
        id=genome.id,
        root_node_id=genome.root_node_id,
        nodes=dict(genome.nodes),
        channels=list(genome.channels),
        lineage=copy.deepcopy(genome.lineage),
        metadata=dict(genome.metadata),
    )


class _Draft:
    """A genome being patched: a node is copied the first time a step is about to change it."""

    def __init__(self, genome: OrganizationalGenome) -> None:
        self.genome = genome
        self._owned: set[str] = set()

    def node(self, node_id: str) -> ViableNode:
        """The node, private to the draft, for changing (NodeNotFound if there is none)."""
        node = self.genome.node(node_id)
        if node_id not in self._owned:
            node = copy.deepcopy(node)
            self.genome.nodes[node_id] = node
            self._owned.add(node_id)
        return node

    def own(self, node_id: str | None) -> None:
        """Make ``node_id`` private if it exists; operations report a missing one themselves."""
        if node_id is not None and node_id in self.genome.nodes:
            self.node(node_id)

    def adopt(self, node: ViableNode) -> None:
        """A node the patch brings (already a private copy)."""
        self._owned.add(node.id)


def _apply_in_place(draft: _Draft, patch: Patch) -> None:
    genome = draft.genome
    match patch:
        case AddChild(parent_id=parent_id, child=child):
            draft.own(parent_id)
            add_child(genome, parent_id, child)
            draft.adopt(child)
        case PromoteLeafToMetasystem():
            _promote_leaf_to_metasystem(draft, patch)
        case RemoveSubtree(node_id=node_id):
            if node_id in genome.nodes:
                draft.own(genome.nodes[node_id].parent_id)
            remove_subtree(genome, node_id)
        case AddChannel(channel=channel):
            genome.channels.append(channel)
        case RemoveChannel(channel_id=channel_id):
            genome.channels = [c for c in genome.channels if c.id != channel_id]
        case AddPromptComponent(node_id=node_id, section=section, component=component):
            _add_prompt_component(draft.node(node_id).prompt, section, component)
        case RemovePromptComponent(node_id=node_id, component_id=component_id):
            if not _remove_prompt_component(draft.node(node_id).prompt, component_id):
                raise PromptComponentNotFound(node_id, component_id)
        case AddTool(node_id=node_id, tool=tool):
            draft.node(node_id).tools.append(tool)
        case RemoveTool(node_id=node_id, tool_name=tool_name):
            node = draft.node(node_id)
            node.tools = [tool for tool in node.tools if tool.name != tool_name]
        case SetNodeStatus(node_id=node_id, status=status):
            draft.node(node_id).status = status
        case Batch(patches=patches):
            for index, step in enumerate(patches):
                try:
                    _apply_in_place(draft, step)
                except GenomeError as error:
                    error.add_note(f"while applying batch step {index} ({step.KIND})")
                    raise
        case _:
            raise TypeError(f"not a genome patch: {patch!r}")


def _promote_leaf_to_metasystem(draft: _Draft, patch: PromoteLeafToMetasystem) -> None:
    """Move a leaf's execution rights to a new child and turn the leaf into its manager."""
    genome = draft.genome
    node = draft.node(patch.node_id)
    if node.children:
        raise NodeIsNotLeaf(node.id, node.children, reason="only a leaf can be promoted")
    # The node is already a private copy, so the leaf's parts can move rather than be copied.
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
    draft.adopt(extracted)
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
