"""The champion tree as an SVG picture: pixel geometry around the igraph layout.

The layout (where each node goes) is ``organization.tree_layout.tidy_tree``; this module only
scales it to pixels and names the links (a node's page, expand and collapse), so the template
draws without arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.urls import reverse

from organization.selectors import ChampionTree, TreeNode
from organization.tree_layout import tidy_tree

COLUMN_WIDTH = 250
ROW_HEIGHT = 34
BOX_WIDTH = 190
BOX_HEIGHT = 24
LEAF_RADIUS = 9
MARGIN = 12
LABEL_CHARACTERS = 24


@dataclass(frozen=True)
class DrawnNode:
    node: TreeNode
    x: float  # left edge of the shape
    y: float  # vertical centre
    label: str
    href: str
    toggle_href: str | None  # expand (collapsed) or collapse (opened) link, as a page URL
    toggle_fragment: str | None  # the same as an htmx fragment URL

    @property
    def description(self) -> str:
        """What a screen reader (and the tooltip) says about the node."""
        node = self.node
        parts = [node.name, "metasystem" if node.kind == "metasystem" else "System 1 leaf"]
        parts.append(node.status)
        if node.pause_target:
            parts.append("paused")
        elif node.paused:
            parts.append("paused with an ancestor")
        if node.trial_here:
            parts.append("running a trial")
        elif node.under_trial:
            parts.append("inside a trial")
        if node.hidden_children:
            parts.append(f"{node.hidden_children} children not drawn")
        if node.hidden_paused:
            parts.append("a paused node inside")
        return ", ".join(parts)

    # The geometry the template draws, in pixels.
    @property
    def right(self) -> float:
        return self.x + (BOX_WIDTH if not self.node.is_leaf else 2 * LEAF_RADIUS)

    @property
    def box_top(self) -> float:
        return self.y - BOX_HEIGHT / 2

    @property
    def leaf_centre(self) -> float:
        return self.x + LEAF_RADIUS

    @property
    def label_x(self) -> float:
        return self.x + (2 * LEAF_RADIUS + 6 if self.node.is_leaf else 8)

    @property
    def pause_marker_x(self) -> float:
        return self.x - 16 if self.node.is_leaf else self.x + BOX_WIDTH - 18

    @property
    def trial_marker_x(self) -> float:
        return self.x - 30 if self.node.is_leaf else self.x + BOX_WIDTH - 36

    @property
    def toggle_x(self) -> float:
        # A leaf's label runs to the right of its circle: its toggle (never needed) would too.
        return self.right + 6

    @property
    def toggle_top(self) -> float:
        return self.y - 10

    @property
    def toggle_label_x(self) -> float:
        return self.toggle_x + 6

    @property
    def toggle_width(self) -> int:
        return 44 if self.node.hidden_children else 20


@dataclass(frozen=True)
class Edge:
    path: str
    paused: bool


@dataclass(frozen=True)
class Drawing:
    nodes: list[DrawnNode]
    edges: list[Edge]
    width: int
    height: int
    tree: ChampionTree


def _query(expanded: list[str]) -> str:
    return f"?{urlencode([('expand', node_id) for node_id in expanded])}" if expanded else ""


def tree_drawing(tree: ChampionTree) -> Drawing:
    placements = tidy_tree(
        [node.id for node in tree.nodes], {node.id: node.parent_id for node in tree.nodes}
    )
    home, fragment = reverse("home"), reverse("dashboard:tree")
    drawn: dict[str, DrawnNode] = {}
    for node in tree.nodes:
        place = placements[node.id]
        toggled: list[str] | None = None
        if node.hidden_children:
            toggled = [*tree.expanded, node.id]
        elif node.expanded:
            toggled = [n for n in tree.expanded if n != node.id]
        label = node.name
        if len(label) > LABEL_CHARACTERS:
            label = label[: LABEL_CHARACTERS - 1] + "…"
        drawn[node.id] = DrawnNode(
            node=node,
            x=MARGIN + place.column * COLUMN_WIDTH,
            y=MARGIN + BOX_HEIGHT / 2 + place.row * ROW_HEIGHT,
            label=label,
            href=reverse("dashboard:node", args=[node.id]),
            toggle_href=None if toggled is None else home + _query(toggled),
            toggle_fragment=None if toggled is None else fragment + _query(toggled),
        )
    edges = []
    for child in drawn.values():
        if child.node.parent_id is None:
            continue
        parent = drawn[child.node.parent_id]
        start_x, end_x = parent.right, child.x
        middle = (start_x + end_x) / 2
        edges.append(
            Edge(
                path=f"M{start_x:.1f},{parent.y:.1f} C{middle:.1f},{parent.y:.1f} "
                f"{middle:.1f},{child.y:.1f} {end_x:.1f},{child.y:.1f}",
                paused=child.node.paused,
            )
        )
    columns = max((p.column for p in placements.values()), default=0) + 1
    rows = max((p.row for p in placements.values()), default=0) + 1
    return Drawing(
        nodes=list(drawn.values()),
        edges=edges,
        width=int(MARGIN * 2 + (columns - 1) * COLUMN_WIDTH + BOX_WIDTH + 60),
        height=int(MARGIN * 2 + rows * ROW_HEIGHT),
        tree=tree,
    )
