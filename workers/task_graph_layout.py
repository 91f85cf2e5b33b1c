"""Where each task of a directive's graph goes: a layered (Sugiyama) layout, by igraph.

Pure (no Django). Tasks read left to right in dependency order: a task sits one column right
of the last task it depends on (longest-path layering, from the standard library's
``graphlib``), and igraph's ``Graph.layout_sugiyama`` orders each column to keep edges from
crossing (the barycenter heuristic) and spaces the rows, a well-kept library rather than an
algorithm of our own.

An edge that spans several columns gets one waypoint per column it crosses. We add those
waypoints ourselves, as vertices of the graph handed to igraph, so that every edge igraph sees
joins neighbouring columns: python-igraph 1.0 crashed the process (a segfault, not an
exception) now and then when it had to add them itself, with or without ``layers=``; on graphs
whose edges all join neighbouring columns it has not (tests/workers/test_task_graph_layout.py
runs thousands of random graphs in a subprocess to keep it so). Where igraph leaves two
boxes of one column closer than a row, they are pushed apart, in igraph's order.
"""

from __future__ import annotations

import functools
import graphlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import igraph


@dataclass(frozen=True)
class Point:
    """A place on the grid: ``column`` is the layer (0 on the left), ``row`` the line in it
    (0 at the top; igraph may leave half rows)."""

    column: int
    row: float


@dataclass(frozen=True)
class LayeredGraph:
    places: dict[str, Point]
    # Each drawn dependency (dependency, dependent) with the waypoints between its two ends.
    edges: dict[tuple[str, str], list[Point]]
    # Dependencies left out of the layering because they close a cycle (drawn straight).
    cyclic: list[tuple[str, str]] = field(default_factory=list)

    @property
    def columns(self) -> int:
        return max((place.column for place in self.places.values()), default=-1) + 1

    @property
    def rows(self) -> float:
        rows = [place.row for place in self.places.values()]
        rows += [point.row for points in self.edges.values() for point in points]
        return max(rows, default=-1.0) + 1


def layered_dag(node_ids: Sequence[str], depends_on: Mapping[str, Sequence[str]]) -> LayeredGraph:
    """Place ``node_ids`` (in the order given, which breaks ties) with an edge from each
    dependency to its dependent. Dependencies on ids that are not drawn are ignored; so are
    repeated ones. A cycle (which the directive rules refuse, but a drawing must survive)
    loses one of its edges to the layering at a time; those come back in ``cyclic``."""
    index = {node_id: position for position, node_id in enumerate(node_ids)}
    if len(index) != len(node_ids):
        raise ValueError("node ids must be unique")
    edges = list(
        dict.fromkeys(
            (dependency, node_id)
            for node_id in node_ids
            for dependency in depends_on.get(node_id, ())
            if dependency in index and dependency != node_id
        )
    )
    layer, cyclic = _longest_path_layers(node_ids, edges)
    acyclic = [edge for edge in edges if edge not in set(cyclic)]
    layers = [layer[node_id] for node_id in node_ids]
    chains: dict[tuple[str, str], list[int]] = {}
    graph_edges: list[tuple[int, int]] = []
    for start, end in acyclic:
        previous, waypoints = index[start], []
        for column in range(layer[start] + 1, layer[end]):
            waypoint = len(layers)
            layers.append(column)
            waypoints.append(waypoint)
            graph_edges.append((previous, waypoint))
            previous = waypoint
        graph_edges.append((previous, index[end]))
        chains[(start, end)] = waypoints
    if not node_ids:
        return LayeredGraph(places={}, edges={})
    graph = igraph.Graph(n=len(layers), edges=graph_edges, directed=True)
    coords = graph.layout_sugiyama(layers=layers).coords
    rows = _spaced_rows([x for x, _ in coords], layers)
    top = min(rows)

    def point(vertex: int) -> Point:
        return Point(column=layers[vertex], row=rows[vertex] - top)

    return LayeredGraph(
        places={node_id: point(index[node_id]) for node_id in node_ids},
        edges={edge: [point(vertex) for vertex in chain] for edge, chain in chains.items()},
        cyclic=cyclic,
    )


def _spaced_rows(positions: Sequence[float], layers: Sequence[int]) -> list[float]:
    """igraph's positions, pushed apart where two in one column are closer than a row.

    igraph's coordinate assignment sometimes leaves two vertices of a column half a row
    apart (boxes would overlap); its order, the crossing minimisation's result, is kept.
    """
    rows = list(positions)
    by_layer: dict[int, list[int]] = {}
    for vertex, layer in enumerate(layers):
        by_layer.setdefault(layer, []).append(vertex)
    for vertices in by_layer.values():
        vertices.sort(key=lambda vertex: (positions[vertex], vertex))
        for above, below in itertools.pairwise(vertices):
            rows[below] = max(rows[below], rows[above] + 1)
    return rows


# A directive's graph keeps its shape while its tasks change status, and the live page draws
# it again on every change: the layout (tens of milliseconds for hundreds of tasks) is kept.
LAYOUT_CACHE_SIZE = 128


@functools.lru_cache(maxsize=LAYOUT_CACHE_SIZE)
def layered_dag_cached(
    node_ids: tuple[str, ...], depends_on: tuple[tuple[str, tuple[str, ...]], ...]
) -> LayeredGraph:
    """``layered_dag`` remembered by shape (the result is shared: do not change it)."""
    return layered_dag(node_ids, dict(depends_on))


def _longest_path_layers(
    node_ids: Sequence[str], edges: Sequence[tuple[str, str]]
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Each node's column (one past its deepest dependency), and the edges dropped to break
    cycles."""
    dropped: list[tuple[str, str]] = []
    remaining = list(edges)
    while True:
        dependencies: dict[str, list[str]] = {node_id: [] for node_id in node_ids}
        for start, end in remaining:
            dependencies[end].append(start)
        try:
            order = list(graphlib.TopologicalSorter(dependencies).static_order())
        except graphlib.CycleError as error:
            # args[1] is the cycle as [a, b, ..., a], each node a dependency of the next.
            cycle = error.args[1]
            edge = (cycle[0], cycle[1])
            dropped.append(edge)
            remaining = [kept for kept in remaining if kept != edge]
            continue
        layer: dict[str, int] = {}
        for node_id in order:
            layer[node_id] = max((layer[d] + 1 for d in dependencies[node_id]), default=0)
        return layer, dropped
