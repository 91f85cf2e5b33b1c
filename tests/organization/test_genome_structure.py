"""Tree operations: attach, detach, walk (docs/rules/genome.md) and the standard channel bundle."""

from __future__ import annotations

import pytest

from organization.genome import (
    CannotRemoveRoot,
    ChannelDirection,
    LeafOperationSpec,
    NodeAlreadyExists,
    NodeIsNotLeaf,
    NodeNotFound,
    OrganizationalGenome,
    ViableNode,
    VsmChannelType,
    add_child,
    ancestor_ids,
    depth,
    is_leaf,
    is_metasystem,
    nested,
    remove_subtree,
    standard_channel_bundle,
    subtree_ids,
)


def wide_tree() -> OrganizationalGenome:
    """root → a → (a1, a2 → a2x), root → b."""
    genome = OrganizationalGenome.from_root(ViableNode.metasystem("root", id="root"))
    for parent, child in [("root", "a"), ("a", "a1"), ("a", "a2"), ("a2", "a2x"), ("root", "b")]:
        add_child(genome, parent, ViableNode.leaf(child, LeafOperationSpec.coding(), id=child))
    return genome


def test_adding_a_child_links_it_both_ways() -> None:
    genome = wide_tree()

    assert genome.nodes["a2"].parent_id == "a"
    assert genome.nodes["a"].children == ["a1", "a2"]
    assert is_metasystem(genome, "a") and is_leaf(genome, "a1")


def test_each_edge_gets_the_five_channel_bundle_in_spec_order() -> None:
    bundle = [
        (c.id, c.channel_type, c.direction, c.from_node_id, c.to_node_id)
        for c in standard_channel_bundle("p", "c")
    ]

    assert bundle == [
        (
            "p->c:ResourceBargaining",
            VsmChannelType.RESOURCE_BARGAINING,
            ChannelDirection.BIDIRECTIONAL,
            "p",
            "c",
        ),
        ("p->c:Command", VsmChannelType.COMMAND, ChannelDirection.PARENT_TO_CHILD, "p", "c"),
        (
            "p->c:System2Coordination",
            VsmChannelType.SYSTEM2_COORDINATION,
            ChannelDirection.PARENT_TO_CHILD,
            "p",
            "c",
        ),
        ("p->c:Audit", VsmChannelType.AUDIT, ChannelDirection.BIDIRECTIONAL, "p", "c"),
        ("p->c:Algedonic", VsmChannelType.ALGEDONIC, ChannelDirection.CHILD_TO_PARENT, "c", "p"),
    ]
    assert all(c.enabled and not c.required for c in standard_channel_bundle("p", "c"))


def test_the_same_structure_always_has_the_same_channels() -> None:
    assert wide_tree().channels == wide_tree().channels
    assert len(wide_tree().channels) == 5 * 5


def test_it_rejects_adding_under_a_missing_parent() -> None:
    with pytest.raises(NodeNotFound, match="parent node 'ghost' does not exist"):
        add_child(wide_tree(), "ghost", ViableNode(name="x"))


def test_it_rejects_adding_a_node_whose_id_is_taken() -> None:
    with pytest.raises(NodeAlreadyExists, match="node 'a1' already exists"):
        add_child(wide_tree(), "b", ViableNode(name="again", id="a1"))


def test_it_rejects_adding_a_child_that_brings_its_own_children() -> None:
    child = ViableNode(name="x", id="x", children=["y"])

    with pytest.raises(NodeIsNotLeaf, match="must be added as a single node"):
        add_child(wide_tree(), "b", child)


def test_subtree_ids_are_pre_order_in_child_order() -> None:
    genome = wide_tree()

    assert subtree_ids(genome, "root") == ["root", "a", "a1", "a2", "a2x", "b"]
    assert subtree_ids(genome, "a2") == ["a2", "a2x"]


def test_ancestors_run_from_the_immediate_parent_up_to_the_root() -> None:
    genome = wide_tree()

    assert ancestor_ids(genome, "a2x") == ["a2", "a", "root"]
    assert ancestor_ids(genome, "root") == []
    assert [depth(genome, n) for n in ("root", "a", "a2", "a2x")] == [0, 1, 2, 3]


def test_removing_a_subtree_takes_its_nodes_and_their_channels() -> None:
    genome = wide_tree()

    removed = remove_subtree(genome, "a")

    assert removed == ["a", "a1", "a2", "a2x"]
    assert sorted(genome.nodes) == ["b", "root"]
    assert genome.nodes["root"].children == ["b"]
    assert {(c.from_node_id, c.to_node_id) for c in genome.channels} == {
        ("root", "b"),
        ("b", "root"),
    }


def test_it_refuses_to_remove_the_root() -> None:
    with pytest.raises(CannotRemoveRoot, match="'root' is the root"):
        remove_subtree(wide_tree(), "root")


def test_it_rejects_removing_a_missing_node() -> None:
    with pytest.raises(NodeNotFound, match="'ghost'"):
        remove_subtree(wide_tree(), "ghost")


def test_walks_name_a_missing_node() -> None:
    genome = nested()
    for walk in (subtree_ids, ancestor_ids, depth, is_leaf):
        with pytest.raises(NodeNotFound):
            walk(genome, "ghost")
