"""The champion tree as an SVG picture: pixel geometry around the igraph layout.

The layout (where each node goes) is ``organization.tree_layout.tidy_tree``; this module
scales it to pixels, names the links (a node's page, expand and collapse) and writes the SVG
markup (``tree_svg``), every id, name and URL escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from organization.selectors import ChampionTree, TreeNode
from organization.tree_layout import tidy_tree

COLUMN_WIDTH = 250
ROW_HEIGHT = 34
BOX_WIDTH = 190
BOX_HEIGHT = 24
LEAF_RADIUS = 9
MARGIN = 12
LABEL_CHARACTERS = 24
# What reverse() leaves unquoted in a path argument (django.urls.resolvers).
URL_SAFE = "/~:@!$&'()*+,;="


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

    @property
    def svg(self) -> SafeString:
        return tree_svg(self)


def _query(expanded: list[str]) -> str:
    return f"?{urlencode([('expand', node_id) for node_id in expanded])}" if expanded else ""


def tree_drawing(tree: ChampionTree) -> Drawing:
    placements = tidy_tree(
        [node.id for node in tree.nodes], {node.id: node.parent_id for node in tree.nodes}
    )
    home, fragment = reverse("home"), reverse("dashboard:tree")
    # One reverse() for every node's link (a reverse per node cost more than the drawing).
    node_href = reverse("dashboard:node", args=["~id~"])
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
            href=node_href.replace("~id~", quote(node.id, safe=URL_SAFE)),
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


# -- the SVG markup ------------------------------------------------------------------------------
# Written here rather than in a template: the template language spent about a millisecond per
# node (some 130 ms for the 111 nodes of a 1,000-node organization's first three levels); these
# f-strings, every value escaped, spend a few microseconds.


def _number(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _node_markup(drawn: DrawnNode) -> str:
    node, y = drawn.node, _number(drawn.y)
    classes = ["tree-node", node.kind, f"status-{node.status.lower()}"]
    classes += [name for name, on in _MARKS if getattr(node, on)]
    trial = "here" if node.trial_here else "inside" if node.under_trial else "none"
    description = escape(drawn.description)
    label = escape(drawn.label)
    if node.is_leaf:
        shape = (
            f'<circle class="shape" cx="{_number(drawn.leaf_centre)}" cy="{y}" r="{LEAF_RADIUS}"/>'
        )
    else:
        shape = (
            f'<rect class="shape" x="{_number(drawn.x)}" y="{_number(drawn.box_top)}" '
            f'width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="4"/>'
        )
    parts = [
        f'<g class="{" ".join(classes)}" data-node-id="{escape(node.id)}" '
        f'data-paused="{"true" if node.paused else "false"}" data-trial="{trial}">',
        f'<a href="{escape(drawn.href)}" class="node-link" aria-label="{description}">',
        f"<title>{description}</title>",
        shape,
        f'<text x="{_number(drawn.label_x)}" y="{y}" dy="0.35em">{label}</text>',
    ]
    # Drawn, not glyphs: a headless or minimal system may lack a font with ⏸.
    if node.pause_target:
        x, top = drawn.pause_marker_x, drawn.y - 5
        parts.append(
            f'<g class="marker pause-marker" aria-hidden="true">'
            f'<rect x="{_number(x)}" y="{_number(top)}" width="3" height="10"/>'
            f'<rect x="{_number(x + 5)}" y="{_number(top)}" width="3" height="10"/></g>'
        )
    if node.trial_here:
        x, y_mid = drawn.trial_marker_x + 4, drawn.y
        parts.append(
            f'<path class="marker trial-marker" aria-hidden="true" d="M{_number(x)},'
            f'{_number(y_mid - 6)} l6,6 l-6,6 l-6,-6 z"/>'
        )
    parts.append("</a>")
    if drawn.toggle_href and drawn.toggle_fragment:
        name = escape(node.name)
        if node.hidden_children:
            action = f"Expand {name}: {node.hidden_children} more"
            tip, sign = f"Expand: {node.hidden_children} more", f"+{node.hidden_children}"
        else:
            action, tip, sign = f"Collapse {name}", "Collapse", "\N{MINUS SIGN}"
        href = escape(drawn.toggle_href)
        hides = ' class="hides-paused"' if node.hidden_paused else ""
        parts += [
            f'<a class="toggle" href="{href}" hx-get="{escape(drawn.toggle_fragment)}" '
            f'hx-target="#org-tree" hx-swap="outerHTML" hx-push-url="{href}" '
            f'aria-label="{action}">',
            f"<title>{tip}</title>",
            f'<rect x="{_number(drawn.toggle_x)}" y="{_number(drawn.toggle_top)}" '
            f'width="{drawn.toggle_width}" height="20" rx="10"{hides}/>',
            f'<text x="{_number(drawn.toggle_label_x)}" y="{y}" dy="0.35em">{sign}</text>',
            "</a>",
        ]
    parts.append("</g>")
    return "".join(parts)


_MARKS = (
    ("paused", "paused"),
    ("pause-target", "pause_target"),
    ("trial-here", "trial_here"),
    ("under-trial", "under_trial"),
)


def tree_svg(drawing: Drawing) -> SafeString:
    """The whole picture as SVG markup (every node id, name and URL escaped)."""
    paused = ' class="paused"'
    edges = "".join(
        f'<path d="{edge.path}"{paused if edge.paused else ""}/>' for edge in drawing.edges
    )
    # Safe: built above from escaped values and numbers only.
    return mark_safe(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{drawing.width}" '
        f'height="{drawing.height}" viewBox="0 0 {drawing.width} {drawing.height}" '
        'role="group" aria-label="The champion tree">'
        f'<g class="edges" aria-hidden="true">{edges}</g>'
        + "\n".join(_node_markup(drawn) for drawn in drawing.nodes)
        + "</svg>"
    )
