"""Invariants that hold for every genome and every patch sequence (hypothesis)."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from organization.genome import (
    ChannelConfig,
    ChannelDirection,
    GenomeError,
    GenomeInvalid,
    OrganizationalGenome,
    PromoteLeafToMetasystem,
    RemoveSubtree,
    ViableNode,
    VsmChannelType,
    apply_patch,
    content_hash,
    derive_capabilities,
    genome_from_json,
    genome_problems,
    genome_to_json,
    parse_patch,
    patch_to_json,
    subtree_ids,
)
from tests.organization.strategies import genomes, mutate_one_field, patches_for

# Property tests over generated genomes take seconds: they run with the slow ones.
pytestmark = pytest.mark.slow

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_structural_invariants(genome: OrganizationalGenome) -> None:
    assert genome_problems(genome) == []
    for node in genome.nodes.values():
        if node.children:
            assert not derive_capabilities(node).can_write_code, node.id


@PROPERTY
@given(genomes())
def test_a_random_genome_is_valid_and_survives_a_json_round_trip(
    genome: OrganizationalGenome,
) -> None:
    assert_structural_invariants(genome)

    reloaded = genome_from_json(genome_to_json(genome))

    assert reloaded == genome
    assert content_hash(reloaded) == content_hash(genome)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_patch_sequences_keep_every_invariant_and_refusals_change_nothing(
    data: st.DataObject,
) -> None:
    genome = data.draw(genomes(max_nodes=5))
    for _ in range(data.draw(st.integers(1, 6))):
        patch = data.draw(patches_for(genome))
        snapshot, hash_before = copy.deepcopy(genome), content_hash(genome)
        try:
            patched = apply_patch(genome, patch)
        except GenomeError:
            assert genome == snapshot
            assert content_hash(genome) == hash_before
            continue
        assert genome == snapshot, "apply_patch never mutates its input"
        assert_structural_invariants(patched)
        check_patch_consequences(snapshot, patch, patched)
        genome = patched


def check_patch_consequences(
    before: OrganizationalGenome, patch: object, after: OrganizationalGenome
) -> None:
    if isinstance(patch, PromoteLeafToMetasystem):
        original = derive_capabilities(before, patch.node_id)
        assert derive_capabilities(after, patch.extracted_child_id) == original
        assert after.nodes[patch.node_id].children == [patch.extracted_child_id]
        assert not derive_capabilities(after, patch.node_id).can_write_code
    if isinstance(patch, RemoveSubtree):
        gone = set(subtree_ids(before, patch.node_id))
        assert gone.isdisjoint(after.nodes)
        for channel in after.channels:
            assert channel.from_node_id not in gone and channel.to_node_id not in gone


@PROPERTY
@given(st.data())
def test_a_parsed_patch_replays_exactly(data: st.DataObject) -> None:
    genome = data.draw(genomes(max_nodes=4))
    patch = data.draw(patches_for(genome))

    parsed = parse_patch(patch_to_json(patch))

    assert parsed == patch
    assert patch_to_json(parsed) == patch_to_json(patch)
    outcomes = []
    for _ in range(2):
        try:
            outcomes.append(genome_to_json(apply_patch(genome, parsed)))
        except GenomeError as error:
            outcomes.append({"error": type(error).__name__, "message": str(error)})
    assert outcomes[0] == outcomes[1]


@PROPERTY
@given(st.data())
def test_changing_any_single_node_field_changes_the_hash(data: st.DataObject) -> None:
    genome = data.draw(genomes(max_nodes=4))
    changed = copy.deepcopy(genome)
    node = changed.nodes[data.draw(st.sampled_from(sorted(changed.nodes)))]

    mutate_one_field(data.draw, node)

    assert content_hash(changed) != content_hash(genome)


@PROPERTY
@given(st.data())
def test_changing_any_genome_level_content_changes_the_hash(data: st.DataObject) -> None:
    genome = data.draw(genomes(max_nodes=3))
    changed = copy.deepcopy(genome)

    name = mutate_one_field(data.draw, changed)

    if name in ("id", "lineage"):
        assert content_hash(changed) == content_hash(genome)
    else:
        assert content_hash(changed) != content_hash(genome)


@PROPERTY
@given(genomes(), st.sampled_from(["second root", "cycle", "dangling child", "channel"]))
def test_validate_catches_hand_made_breakage(genome: OrganizationalGenome, breakage: str) -> None:
    some_node = max(genome.nodes)
    if breakage == "second root":
        genome.nodes["stray"] = ViableNode(name="stray", id="stray")
        expected = "node 'stray' has no parent: a second root"
    elif breakage == "cycle":
        # Re-hang the root under a node of its own subtree, keeping both link directions.
        genome.nodes[genome.root_node_id].parent_id = some_node
        genome.nodes[some_node].children.append(genome.root_node_id)
        expected = "parent links form a cycle"
    elif breakage == "dangling child":
        genome.nodes[some_node].children.append("ghost")
        expected = f"node {some_node!r} lists missing child 'ghost'"
    else:
        genome.channels.append(
            ChannelConfig(
                channel_type=VsmChannelType.COMMAND,
                from_node_id=some_node,
                to_node_id="ghost",
                direction=ChannelDirection.PARENT_TO_CHILD,
            )
        )
        expected = "to missing node 'ghost'"

    problems = genome_problems(genome)

    assert any(expected in problem for problem in problems), problems
    assert_raises_invalid(genome)


def assert_raises_invalid(genome: OrganizationalGenome) -> None:
    try:
        genome_from_json(genome_to_json(genome))
    except GenomeInvalid:
        return
    raise AssertionError("a broken genome was accepted")


@PROPERTY
@given(genomes(max_nodes=4))
def test_promoting_a_leaf_moves_its_execution_rights_to_the_extracted_child(
    genome: OrganizationalGenome,
) -> None:
    for leaf_id in [n for n in sorted(genome.nodes) if genome.nodes[n].is_leaf]:
        before = derive_capabilities(genome, leaf_id)
        patch = PromoteLeafToMetasystem(node_id=leaf_id, extracted_child_name="worker")

        promoted = apply_patch(genome, patch)

        assert derive_capabilities(promoted, patch.extracted_child_id) == before
        manager = derive_capabilities(promoted, leaf_id)
        assert not manager.can_write_code and manager.can_delegate


@PROPERTY
@given(genomes(max_nodes=6), st.data())
def test_removing_any_non_root_subtree_succeeds_and_leaves_no_channel_behind(
    genome: OrganizationalGenome, data: st.DataObject
) -> None:
    candidates = [n for n in sorted(genome.nodes) if n != genome.root_node_id]
    if not candidates:
        return
    node_id = data.draw(st.sampled_from(candidates))
    gone = set(subtree_ids(genome, node_id))

    pruned = apply_patch(genome, RemoveSubtree(node_id=node_id))

    assert set(pruned.nodes) == set(genome.nodes) - gone
    touched = {c.from_node_id for c in pruned.channels} | {c.to_node_id for c in pruned.channels}
    assert touched.isdisjoint(gone)
    assert [c for c in genome.channels if {c.from_node_id, c.to_node_id}.isdisjoint(gone)] == (
        pruned.channels
    )
