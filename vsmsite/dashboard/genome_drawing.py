"""A genome diff drawn on the tree: the overview's picture (igraph's tidy tree, the same
geometry as ``drawing.py``) with each added, removed and changed node marked.

Marked three ways, so that colour is never the only sign: a colour, a letter beside the
node (``+`` added, a minus sign removed, ``~`` changed) and a pattern (removed nodes are hatched
with a dashed outline and a struck-through name, added ones have a double outline, changed
ones a dotted one); and each node's accessible name says it. Each marked node links to its
entry in the list of changes below the picture.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from organization.genome.diff import ADDED, CHANGED, REMOVED, DiffTreeNode
from organization.tree_layout import tidy_tree
from vsmsite.dashboard.drawing import (
    BOX_HEIGHT,
    BOX_WIDTH,
    COLUMN_WIDTH,
    LABEL_CHARACTERS,
    LEAF_RADIUS,
    MARGIN,
    ROW_HEIGHT,
)


def _number(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


MARK_SIGNS = {ADDED: "+", REMOVED: "\N{MINUS SIGN}", CHANGED: "~"}
MARK_WORDS = {
    ADDED: "added in the newer version",
    REMOVED: "removed: only in the older version",
    CHANGED: "changed",
}


@dataclass(frozen=True)
class DiffDrawing:
    svg: SafeString
    width: int
    height: int
    drawn: int


def diff_drawing(
    tree: list[DiffTreeNode], anchors: dict[str, str], *, label: str
) -> DiffDrawing | None:
    """The SVG of the overlaid tree; ``anchors`` maps a marked node's id to the fragment of
    its entry in the page's list of changes. None for an empty tree."""
    if not tree:
        return None
    placements = tidy_tree([n.id for n in tree], {n.id: n.parent_id for n in tree})
    place = {
        n.id: (
            MARGIN + placements[n.id].column * COLUMN_WIDTH + 16,
            MARGIN + BOX_HEIGHT / 2 + placements[n.id].row * ROW_HEIGHT,
        )
        for n in tree
    }
    by_id = {n.id: n for n in tree}
    edges = []
    for node in tree:
        if node.parent_id is None or node.parent_id not in by_id:
            continue
        (px, py), (cx, cy) = place[node.parent_id], place[node.id]
        start_x = px + _width(by_id[node.parent_id])
        middle = (start_x + cx) / 2
        removed = ' class="removed"' if node.mark == REMOVED else ""
        edges.append(
            f'<path{removed} d="M{start_x:.1f},{py:.1f} C{middle:.1f},{py:.1f} '
            f'{middle:.1f},{cy:.1f} {cx:.1f},{cy:.1f}"/>'
        )
    columns = max(p.column for p in placements.values()) + 1
    rows = max(p.row for p in placements.values()) + 1
    width = int(MARGIN * 2 + 16 + (columns - 1) * COLUMN_WIDTH + BOX_WIDTH + 60)
    height = int(MARGIN * 2 + rows * ROW_HEIGHT)
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="group" aria-label="{escape(label)}">'
        "<defs>"
        '<pattern id="diff-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" class="hatch-bg"/>'
        '<line x1="0" y1="0" x2="0" y2="6" class="hatch-line"/></pattern>'
        "</defs>"
        f'<g class="edges" aria-hidden="true">{"".join(edges)}</g>'
        + "\n".join(_node(node, *place[node.id], anchors.get(node.id)) for node in tree)
        + "</svg>"
    )
    # Safe: built from escaped values and numbers only.
    return DiffDrawing(svg=mark_safe(svg), width=width, height=height, drawn=len(tree))


def _width(node: DiffTreeNode) -> float:
    return 2 * LEAF_RADIUS if node.is_leaf else BOX_WIDTH


def _description(node: DiffTreeNode) -> str:
    parts = [node.name, "metasystem" if not node.is_leaf else "System 1 leaf", node.status]
    if node.mark:
        parts.append(MARK_WORDS[node.mark])
    else:
        parts.append("unchanged")
    if node.hidden_children:
        parts.append(f"{node.hidden_children} unchanged children not drawn")
    return ", ".join(parts)


def _node(node: DiffTreeNode, x: float, y: float, anchor: str | None) -> str:
    classes = ["tree-node", node.kind, f"status-{node.status.lower()}"]
    if node.mark:
        classes.append(f"diff-{node.mark}")
    label = (
        node.name if len(node.name) <= LABEL_CHARACTERS else node.name[: LABEL_CHARACTERS - 1] + "…"
    )
    description = escape(_description(node))
    ys = _number(y)
    if node.is_leaf:
        shape = (
            f'<circle class="shape" cx="{_number(x + LEAF_RADIUS)}" cy="{ys}" r="{LEAF_RADIUS}"/>'
        )
        label_x = x + 2 * LEAF_RADIUS + 6
    else:
        shape = (
            f'<rect class="shape" x="{_number(x)}" y="{_number(y - BOX_HEIGHT / 2)}" '
            f'width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="4"/>'
        )
        label_x = x + 8
    body = [f"<title>{description}</title>", shape]
    body.append(f'<text x="{_number(label_x)}" y="{ys}" dy="0.35em">{escape(label)}</text>')
    if node.mark:
        # The sign left of the node, in a small badge: readable without colour.
        body.append(
            f'<g class="diff-sign" aria-hidden="true"><rect x="{_number(x - 16)}" '
            f'y="{_number(y - 7)}" width="14" height="14" rx="3"/>'
            f'<text x="{_number(x - 9)}" y="{ys}" dy="0.35em" text-anchor="middle">'
            f"{MARK_SIGNS[node.mark]}</text></g>"
        )
    if node.hidden_children:
        body.append(
            f'<text class="hidden-count" x="{_number(x + _width(node) + 6)}" y="{ys}" '
            f'dy="0.35em" aria-hidden="true">+{node.hidden_children}</text>'
        )
    inner = "".join(body)
    if anchor is not None:
        inner = (
            f'<a href="#{escape(anchor)}" class="node-link" aria-label="{description}">{inner}</a>'
        )
    else:
        inner = f'<g role="img" aria-label="{description}">{inner}</g>'
    return (
        f'<g class="{" ".join(classes)}" data-node-id="{escape(node.id)}" '
        f'data-diff="{node.mark or "unchanged"}">{inner}</g>'
    )
