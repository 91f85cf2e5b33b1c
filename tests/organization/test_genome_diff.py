"""The node-by-node diff of two genomes (organization/genome/diff.py) and the overlaid tree the
genome history page draws it on; and the one-line patch summaries beside each version."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from organization.genome import (
    AddChild,
    Batch,
    GenomeError,
    LeafOperationSpec,
    NodeLifecycleStatus,
    RemoveSubtree,
    SetNodeStatus,
    ViableNode,
    apply_patch,
    fan_out_organization,
    nested,
    patch_to_json,
)
from organization.genome.diff import ADDED, CHANGED, REMOVED, diff_tree, genome_diff
from organization.genome.patch_summary import patch_kind, patch_target
from tests.organization.strategies import genomes, patches_for


def ids(refs: object) -> list[str]:
    return [ref.node_id for ref in refs]  # type: ignore[attr-defined]


def test_a_genome_against_itself_or_an_equal_copy_has_no_differences() -> None:
    genome = nested()

    assert genome_diff(genome, genome).is_empty
    assert genome_diff(genome, copy.deepcopy(genome)).is_empty


def test_an_added_leaf_is_added_and_its_parent_changed_only_in_its_children() -> None:
    before = fan_out_organization(12)
    after = apply_patch(
        before,
        AddChild(
            parent_id="n-1", child=ViableNode.leaf("new", LeafOperationSpec.tester(), id="new")
        ),
    )

    diff = genome_diff(before, after)

    assert ids(diff.added) == ["new"]
    assert diff.removed == ()
    assert [(c.node_id, c.fields) for c in diff.changed] == [("n-1", ("children",))]
    (change,) = diff.changed[0].changes
    assert change.path == "children" and change.after == [*change.before, "new"]


def test_a_removed_subtree_names_every_removed_node_from_the_top_down() -> None:
    before = fan_out_organization(30)  # n-1 has children n-11 … n-20

    diff = genome_diff(before, apply_patch(before, RemoveSubtree(node_id="n-1")))

    assert ids(diff.removed) == ["n-1", *(f"n-{i}" for i in range(11, 21))]
    assert diff.added == ()
    assert [c.node_id for c in diff.changed] == ["root-codebase-system"]


def test_a_changed_setting_is_named_by_its_path_with_both_values() -> None:
    before = nested()
    after = copy.deepcopy(before)
    leaf = next(node for node in after.nodes.values() if node.is_leaf)
    leaf.model.model = "bigger-model"
    leaf.status = NodeLifecycleStatus.PROBATION

    (change,) = genome_diff(before, after).changed

    assert change.node_id == leaf.id
    by_path = {c.path: (c.before, c.after) for c in change.changes}
    assert by_path["model.model"][1] == "bigger-model"
    assert by_path["status"] == ("Active", "Probation")
    assert change.fields == ("model", "status")


def test_genome_metadata_changes_are_listed_by_key() -> None:
    before = nested()
    after = copy.deepcopy(before)
    after.metadata["candidate_base_genome_id"] = "v-1"

    diff = genome_diff(before, after)

    assert [(c.path, c.before, c.after) for c in diff.genome_changes] == [
        ("metadata.candidate_base_genome_id", None, "v-1")
    ]
    assert not diff.is_empty


@pytest.mark.slow
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_swapping_the_versions_swaps_added_and_removed_and_every_before_and_after(
    data: st.DataObject,
) -> None:
    first = data.draw(genomes(max_nodes=6))
    second = first
    for _ in range(data.draw(st.integers(1, 4))):
        try:
            second = apply_patch(second, data.draw(patches_for(second)))
        except GenomeError:
            continue

    forward, backward = genome_diff(first, second), genome_diff(second, first)

    assert genome_diff(second, second).is_empty
    assert forward.added == backward.removed and forward.removed == backward.added
    assert {
        c.node_id: [(x.path, x.before, x.after) for x in c.changes] for c in forward.changed
    } == {c.node_id: [(x.path, x.after, x.before) for x in c.changes] for c in backward.changed}
    assert set(forward.channels_added) == set(backward.channels_removed)
    assert set(forward.channels_changed) == set(backward.channels_changed)
    assert forward.is_empty == backward.is_empty


def test_the_overlaid_tree_puts_removed_nodes_back_under_their_old_parent() -> None:
    before = fan_out_organization(30)
    after = apply_patch(
        before,
        Batch(
            patches=[
                RemoveSubtree(node_id="n-2"),
                SetNodeStatus(node_id="n-3", status=NodeLifecycleStatus.RETIRED),
                AddChild(
                    parent_id="n-1",
                    child=ViableNode.leaf("fresh", LeafOperationSpec.coding(), id="fresh"),
                ),
            ]
        ),
    )
    diff = genome_diff(before, after)

    tree = diff_tree(before, after, diff)

    by_id = {node.id: node for node in tree}
    assert len(tree) == 31  # 29 kept, one added, n-2 and its children back
    assert by_id["n-2"].mark == REMOVED and by_id["n-2"].parent_id == "root-codebase-system"
    assert by_id["n-21"].mark == REMOVED and by_id["n-21"].parent_id == "n-2"
    assert by_id["fresh"].mark == ADDED and by_id["fresh"].parent_id == "n-1"
    assert by_id["n-3"].mark == CHANGED and by_id["n-4"].mark == ""
    order = [node.id for node in tree]
    assert order.index("n-2") < order.index("n-21"), "parents before children"
    assert all(by_id[n.parent_id].depth == n.depth - 1 for n in tree if n.parent_id)


def test_a_big_tree_keeps_the_top_levels_and_every_marked_node_with_its_ancestors() -> None:
    before = fan_out_organization(1000)  # four levels: n-111 … n-999 are leaves at depth 3
    after = apply_patch(before, SetNodeStatus(node_id="n-500", status=NodeLifecycleStatus.SHADOW))
    diff = genome_diff(before, after)

    tree = diff_tree(before, after, diff)

    drawn = {node.id: node for node in tree}
    assert "n-500" in drawn and drawn["n-500"].mark == CHANGED
    assert "n-501" not in drawn and drawn["n-49"].hidden_children == 9
    assert all(node.depth < 3 or node.mark for node in tree)
    assert len(tree) == 112


def test_patch_summaries_name_the_kind_and_the_target() -> None:
    add = patch_to_json(
        AddChild(parent_id="n-1", child=ViableNode.leaf("x", LeafOperationSpec.coding(), id="x"))
    )
    status = patch_to_json(SetNodeStatus(node_id="n-3", status=NodeLifecycleStatus.RETIRED))

    assert (patch_kind(add), patch_target(add)) == ("add_child", "x under n-1")
    assert patch_target(status) == "n-3 → Retired"
    assert patch_kind(None) == "bootstrap"
    assert patch_target({"kind": "rollback", "to_version_id": "0123456789"}) == (
        "back to version 01234567"
    )
    assert patch_target(patch_to_json(Batch(patches=[RemoveSubtree(node_id="n-9")]))) == (
        "1 patch: remove_subtree n-9"
    )
    assert patch_target({"kind": "something_new"}) == ""


def test_a_big_tree_draws_a_removed_subtree_under_its_old_parent() -> None:
    before = fan_out_organization(1000)
    after = apply_patch(before, RemoveSubtree(node_id="n-99"))  # n-99 under n-9; n-991 … n-999
    diff = genome_diff(before, after)

    tree = diff_tree(before, after, diff)

    drawn = {node.id: node for node in tree}
    assert drawn["n-99"].mark == REMOVED and drawn["n-99"].parent_id == "n-9"
    assert [n.id for n in tree if n.parent_id == "n-99"] == [f"n-99{i}" for i in range(1, 10)]
    assert drawn["n-98"].hidden_children == 10 and "n-981" not in drawn
