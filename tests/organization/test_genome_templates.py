"""The stock genomes an operator can bootstrap (docs/rules/genome.md, "Stock genomes")."""

from __future__ import annotations

from organization.genome import (
    TEMPLATES,
    LeafOperationSpec,
    content_hash,
    derive_capabilities,
    fan_out_organization,
    nested,
    single_coder,
    subtree_ids,
    validate,
)

ROOT_IDENTITY = "Autonomous coding organization root"


def test_single_is_a_root_managing_one_coding_leaf() -> None:
    genome = single_coder()
    validate(genome)
    root, leaf = genome.nodes["root-codebase-system"], genome.nodes["primary-code-service"]

    assert genome.root_node_id == "root-codebase-system"
    assert subtree_ids(genome, genome.root_node_id) == [
        "root-codebase-system",
        "primary-code-service",
    ]
    assert root.name == root.id and leaf.name == leaf.id
    assert root.system_5.identity == ROOT_IDENTITY
    assert leaf.system_5.identity == "General coding leaf under the root VSM."
    assert (leaf.model.provider, leaf.model.model) == ("echo", "local-echo")
    assert leaf.leaf_operation == LeafOperationSpec.coding()
    assert len(genome.channels) == 5
    assert derive_capabilities(genome, leaf.id).can_write_code
    assert not derive_capabilities(genome, root.id).can_write_code


def test_nested_puts_a_backend_metasystem_between_root_and_coder() -> None:
    genome = nested()
    validate(genome)

    assert subtree_ids(genome, genome.root_node_id) == [
        "root-codebase-system",
        "backend-system",
        "backend-coder",
    ]
    assert genome.nodes["root-codebase-system"].system_5.identity == ROOT_IDENTITY
    assert genome.nodes["backend-system"].system_5.identity == "Backend viable subsystem."
    coder = genome.nodes["backend-coder"]
    assert coder.system_5.identity == "Backend coding leaf."
    assert (coder.model.provider, coder.model.model) == ("echo", "local-echo")
    assert len(genome.channels) == 10
    assert not derive_capabilities(genome, "backend-system").can_write_code
    assert derive_capabilities(genome, "backend-coder").can_write_code


def test_templates_are_listed_by_name_and_give_the_same_content_every_time() -> None:
    assert sorted(TEMPLATES) == ["nested", "single"]
    assert TEMPLATES["single"] is single_coder and TEMPLATES["nested"] is nested
    assert content_hash(nested()) == content_hash(nested())
    assert nested().id != nested().id


def test_a_fan_out_organization_has_exactly_the_nodes_asked_for_ten_to_a_parent() -> None:
    genome = fan_out_organization(1_000)
    validate(genome)

    assert len(genome.nodes) == 1_000
    assert len(genome.root.children) == 10
    assert max(len(node.children) for node in genome.nodes.values()) == 10
    assert len(genome.channels) == 5 * 999


def test_every_leaf_of_a_fan_out_organization_can_write_code_and_no_metasystem_can() -> None:
    genome = fan_out_organization(123)

    for node_id, node in genome.nodes.items():
        assert derive_capabilities(genome, node_id).can_write_code is node.is_leaf


def test_a_fan_out_organization_of_one_node_is_a_lone_root() -> None:
    genome = fan_out_organization(1)

    assert list(genome.nodes) == ["root-codebase-system"]
