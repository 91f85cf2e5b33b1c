"""Where each node of a drawn tree goes: a tidy tree layout, computed by igraph.

Pure (no Django). The positions come from igraph's Reingold-Tilford layout
(``Graph.layout_reingold_tilford``), a well-kept library rather than an algorithm
of our own: parents sit centred beside their children, subtrees never overlap and
the same tree always gets the same picture. The picture reads left to right (the
root on the left, one column per depth), so node names, which are long, run along
the rows instead of colliding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import igraph


@dataclass(frozen=True)
class Placement:
    """A node's place: ``column`` is its depth below the drawn root, ``row`` its line (0 is
    the top; half rows happen where a parent is centred between an even number of children)."""

    column: int
    row: float


def tidy_tree(node_ids: Sequence[str], parent_of: Mapping[str, str | None]) -> dict[str, Placement]:
    """Place a tree given in pre-order (``node_ids[0]`` is its root; every other node's parent,
    by ``parent_of``, comes before it). Raises ValueError for a node whose parent is not drawn."""
    if not node_ids:
        return {}
    index = {node_id: i for i, node_id in enumerate(node_ids)}
    edges = []
    for node_id in node_ids[1:]:
        parent = parent_of.get(node_id)
        if parent not in index:
            raise ValueError(f"{node_id!r} is drawn without its parent {parent!r}")
        edges.append((index[parent], index[node_id]))
    graph = igraph.Graph(n=len(node_ids), edges=edges, directed=True)
    coords = graph.layout_reingold_tilford(root=[0], mode="out").coords
    top = min(x for x, _ in coords)
    return {
        node_id: Placement(column=round(depth), row=x - top)
        for node_id, (x, depth) in zip(node_ids, coords, strict=True)
    }
