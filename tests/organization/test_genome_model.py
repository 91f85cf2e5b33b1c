"""The genome's building blocks start with their defaults (docs/rules/genome.md, "Nodes")."""

from __future__ import annotations

import uuid

import pytest

from organization.genome import (
    ChannelConfig,
    ChannelDirection,
    ChannelPriority,
    GenomeInvalid,
    LeafKind,
    LeafOperationSpec,
    NodeLifecycleStatus,
    NodeNotFound,
    OrganizationalGenome,
    PromptComponent,
    PromptOrigin,
    PromptSection,
    ViableNode,
    VsmChannelType,
)


def test_a_new_node_carries_the_spec_defaults() -> None:
    node = ViableNode(name="n")

    assert uuid.UUID(node.id).version == 4
    assert node.parent_id is None
    assert node.children == []
    assert node.system_5.identity == "unclassified viable node"
    assert node.system_4.future_probe_enabled is True
    assert node.system_4.probe_interval_seconds is None
    assert node.system_3.can_allocate_budget and node.system_3.can_decompose_tasks
    assert node.system_3.can_issue_commands and node.system_3.can_integrate_child_outputs
    assert node.system_3_star.audit_window_tasks == 50
    assert node.system_3_star.audit_enabled and node.system_3_star.gene_suggestion_enabled
    assert (node.model.provider, node.model.model) == ("abstract", "unbound")
    assert node.prompt.base_identity == "" and node.prompt.output_contract is None
    assert node.leaf_operation == LeafOperationSpec()
    assert node.permissions.requires_human_approval is False
    assert node.age_epochs == 0
    assert node.status is NodeLifecycleStatus.ACTIVE
    assert node.metadata == {}


@pytest.mark.parametrize(
    ("preset", "kind", "flags"),
    [
        (LeafOperationSpec.coding, LeafKind.CODING, (1, 1, 0, 1, 0, 1, 1)),
        (LeafOperationSpec.reviewer, LeafKind.REVIEWING, (0, 1, 1, 1, 0, 1, 0)),
        (LeafOperationSpec.tester, LeafKind.TESTING, (0, 1, 0, 0, 0, 1, 0)),
        (LeafOperationSpec, None, (0, 0, 0, 0, 0, 0, 0)),
    ],
)
def test_leaf_presets_match_the_spec_table(
    preset: type[LeafOperationSpec], kind: LeafKind | None, flags: tuple[int, ...]
) -> None:
    spec = preset()

    assert spec.kind == kind
    assert (
        spec.allows_code_write,
        spec.allows_test_execution,
        spec.allows_review,
        spec.allows_research,
        spec.allows_integration,
        spec.allows_filesystem_read,
        spec.allows_filesystem_write,
    ) == tuple(bool(flag) for flag in flags)


def test_leaf_and_metasystem_constructors_start_detached_and_active() -> None:
    leaf = ViableNode.leaf("coder", LeafOperationSpec.coding(), id="c")
    manager = ViableNode.metasystem("manager")

    assert (leaf.id, leaf.name, leaf.leaf_operation) == ("c", "coder", LeafOperationSpec.coding())
    assert manager.leaf_operation == LeafOperationSpec()
    for node in (leaf, manager):
        assert node.parent_id is None and node.children == []
        assert node.status is NodeLifecycleStatus.ACTIVE
    assert uuid.UUID(manager.id).version == 4


def test_fresh_ids_differ_between_nodes() -> None:
    assert ViableNode(name="a").id != ViableNode(name="a").id


def test_a_channel_defaults_to_enabled_optional_normal_priority() -> None:
    channel = ChannelConfig(
        channel_type=VsmChannelType.AUDIT, direction=ChannelDirection.BIDIRECTIONAL
    )

    assert channel.enabled is True and channel.required is False
    assert channel.priority is ChannelPriority.NORMAL
    assert channel.max_messages_per_epoch is None and channel.max_token_budget_per_epoch is None


def test_channel_priorities_order_by_urgency_not_alphabet() -> None:
    ordered = [
        ChannelPriority.LOW,
        ChannelPriority.NORMAL,
        ChannelPriority.HIGH,
        ChannelPriority.CRITICAL,
        ChannelPriority.INTERRUPT,
    ]

    assert sorted([ordered[i] for i in (3, 0, 4, 1, 2)]) == ordered
    assert [priority.rank for priority in ordered] == [0, 1, 2, 3, 4]
    assert ChannelPriority.CRITICAL > ChannelPriority.HIGH >= ChannelPriority.HIGH


def test_enums_use_the_variant_names_of_the_spec() -> None:
    assert len(VsmChannelType) == 11
    assert VsmChannelType.SYSTEM2_COORDINATION.value == "System2Coordination"
    assert VsmChannelType.THREE_FOUR_HOMEOSTAT.value == "ThreeFourHomeostat"
    assert [d.value for d in ChannelDirection] == [
        "ParentToChild",
        "ChildToParent",
        "SiblingToSibling",
        "NodeToEnvironment",
        "EnvironmentToNode",
        "Bidirectional",
    ]
    assert [o.value for o in PromptOrigin] == [
        "Manual",
        "Mutation",
        "SummarizedMemory",
        "TaskCluster",
        "SystemPolicy",
    ]
    assert PromptSection.OUTPUT_CONTRACT.value == "OutputContract"
    assert [s.value for s in NodeLifecycleStatus] == ["Shadow", "Probation", "Active", "Retired"]


def test_a_prompt_component_is_manual_and_active_by_default() -> None:
    component = PromptComponent(text="be brief")

    assert component.origin is PromptOrigin.MANUAL and component.active is True


def test_it_rejects_an_unknown_standard_leaf_kind() -> None:
    with pytest.raises(ValueError, match="unknown leaf kind 'Painting'"):
        LeafKind("Painting")

    assert LeafKind.custom("Painting") != LeafKind.custom("Sculpting")
    assert str(LeafKind.custom("Painting")) == "Custom(Painting)"


def test_a_genome_starts_from_a_single_detached_root() -> None:
    root = ViableNode.metasystem("root", id="root")

    genome = OrganizationalGenome.from_root(root)

    assert genome.root_node_id == "root" and list(genome.nodes) == ["root"]
    assert genome.channels == [] and genome.lineage.parent_genome_ids == []
    assert genome.lineage.created_at_unix_ms is None
    assert genome.root is root


def test_it_refuses_to_start_a_genome_from_a_node_with_children() -> None:
    root = ViableNode.metasystem("root", id="root")
    root.children.append("someone")

    with pytest.raises(GenomeInvalid, match="root node 'root' must have no parent"):
        OrganizationalGenome.from_root(root)


def test_looking_up_a_missing_node_names_it() -> None:
    genome = OrganizationalGenome.from_root(ViableNode(name="r", id="r"))

    with pytest.raises(NodeNotFound, match="node 'ghost' does not exist"):
        genome.node("ghost")
