"""The tidy tree layout (igraph's Reingold-Tilford) the dashboard draws the champion with."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from organization.tree_layout import tidy_tree


@st.composite
def trees(draw: st.DrawFn) -> tuple[list[str], dict[str, str | None]]:
    """A random tree in pre-order: each new node hangs under a node on the path to the last."""
    size = draw(st.integers(min_value=1, max_value=60))
    ids = ["n0"]
    parent_of: dict[str, str | None] = {"n0": None}
    path = ["n0"]
    for index in range(1, size):
        depth = draw(st.integers(min_value=0, max_value=len(path) - 1))
        del path[depth + 1 :]
        node_id = f"n{index}"
        parent_of[node_id] = path[-1]
        ids.append(node_id)
        path.append(node_id)
    return ids, parent_of


@given(trees())
def test_nodes_never_overlap_and_parents_sit_beside_their_children(
    tree: tuple[list[str], dict[str, str | None]],
) -> None:
    ids, parent_of = tree
    places = tidy_tree(ids, parent_of)
    assert set(places) == set(ids)
    assert places[ids[0]].column == 0
    for node_id in ids[1:]:
        parent = parent_of[node_id]
        assert parent is not None
        assert places[node_id].column == places[parent].column + 1
    by_column: dict[int, list[float]] = {}
    for place in places.values():
        by_column.setdefault(place.column, []).append(place.row)
    for rows in by_column.values():
        rows.sort()
        assert all(b - a >= 1 - 1e-9 for a, b in itertools.pairwise(rows))
    for node_id in ids:
        children = [places[c].row for c in ids if parent_of[c] == node_id]
        if children:
            assert min(children) <= places[node_id].row <= max(children)
    assert min(place.row for place in places.values()) == 0


def test_siblings_keep_their_order_top_to_bottom() -> None:
    ids = ["root", "a", "a1", "b", "c"]
    parent_of: dict[str, str | None] = {"root": None, "a": "root", "a1": "a"}
    parent_of |= {"b": "root", "c": "root"}
    places = tidy_tree(ids, parent_of)
    assert places["a"].row < places["b"].row < places["c"].row
    assert tidy_tree(ids, parent_of) == places, "the same tree, the same picture"


def test_a_node_drawn_without_its_parent_is_refused() -> None:
    with pytest.raises(ValueError, match="without its parent"):
        tidy_tree(["root", "orphan"], {"root": None, "orphan": "missing"})
