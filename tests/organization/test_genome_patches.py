"""Each patch kind (docs/rules/genome.md, "Patches"): effect, errors, a refusal changes nothing."""

from __future__ import annotations

import pytest

from organization.genome import (
    AddChannel,
    AddChild,
    AddPromptComponent,
    AddTool,
    Batch,
    CannotRemoveRoot,
    ChannelConfig,
    ChannelDirection,
    ContextPolicy,
    GenomeError,
    GenomeInvalid,
    LeafOperationSpec,
    ModelSpec,
    NodeAlreadyExists,
    NodeIsNotLeaf,
    NodeLifecycleStatus,
    NodeNotFound,
    OrganizationalGenome,
    Patch,
    PermissionSpec,
    PromoteLeafToMetasystem,
    PromptComponent,
    PromptComponentNotFound,
    PromptGenome,
    PromptSection,
    RemoveChannel,
    RemovePromptComponent,
    RemoveSubtree,
    RemoveTool,
    SetNodeStatus,
    ToolSpec,
    ViableNode,
    VsmChannelType,
    apply_patch,
    content_hash,
    genome_to_json,
    nested,
    single_coder,
)

CODER = "backend-coder"


def refused(genome: OrganizationalGenome, patch: Patch, error: type[GenomeError]) -> str:
    """Apply a patch that must fail; check the genome is untouched; return the message."""
    before_json, before_hash = genome_to_json(genome), content_hash(genome)
    with pytest.raises(error) as raised:
        apply_patch(genome, patch)
    assert genome_to_json(genome) == before_json
    assert content_hash(genome) == before_hash
    return str(raised.value)


def test_apply_patch_returns_a_new_genome_and_leaves_the_input_alone() -> None:
    genome = nested()
    before = genome_to_json(genome)

    patched = apply_patch(genome, SetNodeStatus(node_id=CODER, status=NodeLifecycleStatus.RETIRED))

    assert patched is not genome
    assert patched.nodes[CODER].status is NodeLifecycleStatus.RETIRED
    assert genome_to_json(genome) == before


def test_add_child_attaches_the_node_with_its_channel_bundle() -> None:
    child = ViableNode.leaf("reviewer", LeafOperationSpec.reviewer(), id="rev")
    patch = AddChild(parent_id="backend-system", child=child)

    patched = apply_patch(nested(), patch)

    assert patched.nodes["backend-system"].children == [CODER, "rev"]
    assert patched.nodes["rev"].parent_id == "backend-system"
    assert [c.id for c in patched.channels[-5:]] == [
        f"backend-system->rev:{t}"
        for t in ("ResourceBargaining", "Command", "System2Coordination", "Audit", "Algedonic")
    ]
    assert child.parent_id is None, "the patch object itself is not modified"


def test_add_child_is_refused_for_a_missing_parent_a_taken_id_or_a_child_with_children() -> None:
    genome = nested()

    assert "'nowhere'" in refused(
        genome, AddChild(parent_id="nowhere", child=ViableNode(name="x")), NodeNotFound
    )
    assert f"{CODER!r} already exists" in refused(
        genome,
        AddChild(parent_id=genome.root_node_id, child=ViableNode(name="x", id=CODER)),
        NodeAlreadyExists,
    )
    assert "single node" in refused(
        genome,
        AddChild(parent_id=CODER, child=ViableNode(name="x", id="x", children=["y"])),
        NodeIsNotLeaf,
    )


def test_promotion_extracts_a_leaf_carrying_the_original_execution_genes() -> None:
    genome = nested()
    coder = genome.nodes[CODER]
    coder.tools = [ToolSpec(name="shell")]
    coder.prompt.base_identity = "writes Rust"
    coder.metadata = {"team": "core"}
    coder.system_4.future_probe_enabled = False
    coder.permissions.denied_paths = ["/etc"]

    promoted = apply_patch(
        genome,
        PromoteLeafToMetasystem(
            node_id=CODER, extracted_child_name="backend-coder-worker", extracted_child_id="w"
        ),
    )

    worker, manager = promoted.nodes["w"], promoted.nodes[CODER]
    assert (worker.name, worker.parent_id, manager.children) == (
        "backend-coder-worker",
        CODER,
        ["w"],
    )
    assert worker.leaf_operation == LeafOperationSpec.coding()
    assert worker.system_5 == coder.system_5 and worker.model == coder.model
    assert worker.prompt == coder.prompt and worker.tools == coder.tools
    assert worker.permissions == coder.permissions
    assert worker.metadata == {"team": "core", "extracted_from_node_id": CODER}
    assert worker.system_4.future_probe_enabled is True, "System 4 config is not copied"

    assert manager.leaf_operation == LeafOperationSpec()
    assert manager.model == ModelSpec() and manager.prompt == PromptGenome()
    assert manager.tools == [] and manager.context_policy == ContextPolicy()
    assert manager.permissions == PermissionSpec()
    assert manager.metadata == {"team": "core", "promoted_to_metasystem": "true"}
    assert manager.system_5 == coder.system_5 and manager.system_4 == coder.system_4
    assert manager.name == CODER
    assert promoted.channels[-5].id == f"{CODER}->w:ResourceBargaining"


def test_promotion_is_refused_for_a_metasystem_or_a_missing_node() -> None:
    genome = nested()

    assert "only a leaf can be promoted" in refused(
        genome,
        PromoteLeafToMetasystem(node_id="backend-system", extracted_child_name="x"),
        NodeIsNotLeaf,
    )
    refused(
        genome, PromoteLeafToMetasystem(node_id="ghost", extracted_child_name="x"), NodeNotFound
    )


def test_promotion_is_refused_when_the_extracted_id_is_taken() -> None:
    patch = PromoteLeafToMetasystem(
        node_id=CODER, extracted_child_name="x", extracted_child_id="backend-system"
    )

    refused(nested(), patch, NodeAlreadyExists)


def test_remove_subtree_drops_nodes_and_channels_and_refuses_the_root() -> None:
    patched = apply_patch(nested(), RemoveSubtree(node_id="backend-system"))

    assert list(patched.nodes) == ["root-codebase-system"]
    assert patched.channels == []
    refused(nested(), RemoveSubtree(node_id="root-codebase-system"), CannotRemoveRoot)
    refused(nested(), RemoveSubtree(node_id="ghost"), NodeNotFound)


def test_add_channel_appends_and_remove_channel_deletes_by_id() -> None:
    channel = ChannelConfig(
        id="peer",
        channel_type=VsmChannelType.OPERATION_TO_OPERATION,
        from_node_id=CODER,
        to_node_id="backend-system",
        direction=ChannelDirection.SIBLING_TO_SIBLING,
    )

    added = apply_patch(nested(), AddChannel(channel=channel))
    removed = apply_patch(added, RemoveChannel(channel_id="peer"))

    assert added.channels[-1] == channel
    assert removed.channels == nested().channels


def test_removing_an_absent_channel_changes_nothing() -> None:
    genome = nested()

    assert apply_patch(genome, RemoveChannel(channel_id="nope")) == genome


def test_add_channel_is_refused_when_it_names_a_missing_node_or_reuses_an_id() -> None:
    dangling = ChannelConfig(
        channel_type=VsmChannelType.COMMAND,
        from_node_id="ghost",
        direction=ChannelDirection.PARENT_TO_CHILD,
    )
    duplicate = ChannelConfig(
        id=nested().channels[0].id,
        channel_type=VsmChannelType.COMMAND,
        direction=ChannelDirection.PARENT_TO_CHILD,
    )

    assert "from missing node 'ghost'" in refused(
        nested(), AddChannel(channel=dangling), GenomeInvalid
    )
    assert "is used by 2 channels" in refused(
        nested(), AddChannel(channel=duplicate), GenomeInvalid
    )


@pytest.mark.parametrize(
    ("section", "attribute"),
    [
        (PromptSection.BEHAVIOR_RULES, "behavior_rules"),
        (PromptSection.DOMAIN_HINTS, "domain_hints"),
        (PromptSection.CODEBASE_CONVENTIONS, "codebase_conventions"),
        (PromptSection.NEGATIVE_CONSTRAINTS, "negative_constraints"),
    ],
)
def test_a_prompt_component_is_appended_to_its_section(
    section: PromptSection, attribute: str
) -> None:
    first, second = PromptComponent(text="one"), PromptComponent(text="two")
    genome = apply_patch(
        nested(), AddPromptComponent(node_id=CODER, section=section, component=first)
    )

    genome = apply_patch(
        genome, AddPromptComponent(node_id=CODER, section=section, component=second)
    )

    assert getattr(genome.nodes[CODER].prompt, attribute) == [first, second]


def test_an_output_contract_replaces_the_previous_one() -> None:
    old, new = PromptComponent(text="json"), PromptComponent(text="yaml")
    genome = nested()
    for component in (old, new):
        genome = apply_patch(
            genome,
            AddPromptComponent(
                node_id=CODER, section=PromptSection.OUTPUT_CONTRACT, component=component
            ),
        )

    assert genome.nodes[CODER].prompt.output_contract == new


def test_removing_a_prompt_component_removes_it_everywhere_including_the_contract() -> None:
    genome = nested()
    prompt = genome.nodes[CODER].prompt
    prompt.behavior_rules = [PromptComponent(id="c", text="a"), PromptComponent(id="k", text="b")]
    prompt.domain_hints = [PromptComponent(id="c", text="c")]
    prompt.output_contract = PromptComponent(id="c", text="d")

    patched = apply_patch(genome, RemovePromptComponent(node_id=CODER, component_id="c"))

    left = patched.nodes[CODER].prompt
    assert [c.id for c in left.behavior_rules] == ["k"]
    assert left.domain_hints == [] and left.output_contract is None


def test_removing_a_missing_prompt_component_is_refused() -> None:
    message = refused(
        nested(), RemovePromptComponent(node_id=CODER, component_id="c"), PromptComponentNotFound
    )

    assert message == f"node {CODER!r} has no prompt component with id 'c'"


def test_prompt_patches_on_a_missing_node_are_refused() -> None:
    component = PromptComponent(text="x")
    refused(
        nested(),
        AddPromptComponent(
            node_id="ghost", section=PromptSection.DOMAIN_HINTS, component=component
        ),
        NodeNotFound,
    )
    refused(nested(), RemovePromptComponent(node_id="ghost", component_id="c"), NodeNotFound)


def test_tools_are_appended_with_duplicates_and_removed_by_name() -> None:
    genome = nested()
    for tool in (ToolSpec(name="shell"), ToolSpec(name="git"), ToolSpec(name="shell")):
        genome = apply_patch(genome, AddTool(node_id=CODER, tool=tool))
    assert [t.name for t in genome.nodes[CODER].tools] == ["shell", "git", "shell"]

    genome = apply_patch(genome, RemoveTool(node_id=CODER, tool_name="shell"))

    assert [t.name for t in genome.nodes[CODER].tools] == ["git"]
    assert apply_patch(genome, RemoveTool(node_id=CODER, tool_name="absent")) == genome
    refused(genome, AddTool(node_id="ghost", tool=ToolSpec(name="x")), NodeNotFound)
    refused(genome, RemoveTool(node_id="ghost", tool_name="x"), NodeNotFound)


def test_set_node_status_changes_only_the_status() -> None:
    genome = single_coder()

    patched = apply_patch(
        genome, SetNodeStatus(node_id="primary-code-service", status=NodeLifecycleStatus.SHADOW)
    )

    assert patched.nodes["primary-code-service"].status is NodeLifecycleStatus.SHADOW
    patched.nodes["primary-code-service"].status = NodeLifecycleStatus.ACTIVE
    assert patched == genome
    refused(
        genome, SetNodeStatus(node_id="ghost", status=NodeLifecycleStatus.RETIRED), NodeNotFound
    )


def test_a_batch_applies_its_steps_in_order() -> None:
    batch = Batch(
        patches=[
            PromoteLeafToMetasystem(
                node_id=CODER, extracted_child_name="w", extracted_child_id="w"
            ),
            AddTool(node_id="w", tool=ToolSpec(name="shell")),
            SetNodeStatus(node_id="w", status=NodeLifecycleStatus.PROBATION),
        ]
    )

    patched = apply_patch(nested(), batch)

    assert patched.nodes["w"].tools == [ToolSpec(name="shell")]
    assert patched.nodes["w"].status is NodeLifecycleStatus.PROBATION


def test_a_batch_whose_last_step_fails_changes_nothing() -> None:
    batch = Batch(
        patches=[
            SetNodeStatus(node_id=CODER, status=NodeLifecycleStatus.RETIRED),
            RemoveSubtree(node_id="backend-system"),
            RemoveSubtree(node_id="root-codebase-system"),
        ]
    )

    with pytest.raises(CannotRemoveRoot) as raised:
        apply_patch(nested(), batch)
    refused(nested(), batch, CannotRemoveRoot)
    assert "while applying batch step 2 (remove_subtree)" in raised.value.__notes__


def test_a_batch_may_add_a_channel_before_the_node_it_names() -> None:
    channel = ChannelConfig(
        channel_type=VsmChannelType.OPERATION_TO_ENVIRONMENT,
        from_node_id="later",
        direction=ChannelDirection.NODE_TO_ENVIRONMENT,
    )
    batch = Batch(
        patches=[
            AddChannel(channel=channel),
            AddChild(parent_id=CODER, child=ViableNode(name="later", id="later")),
        ]
    )

    assert apply_patch(nested(), batch).channels[-6] == channel


def test_an_empty_batch_changes_nothing() -> None:
    genome = nested()

    assert apply_patch(genome, Batch()) == genome
