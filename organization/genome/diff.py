"""What changed between two genomes, node by node, and the tree that shows it.

Pure (no Django): the genome history page (``/genome/diff/``) reads two versions from the
version cache and hands them here. ``genome_diff(before, after)`` names the nodes added,
removed and changed (with each changed field's path and its values before and after), the
channels added, removed and changed, and the genome's own metadata and root changes; it
compares values, not identities, so it works on genomes decoded apart (``delta_between``
in ``encoded.py`` compares object identity, which only a patch applied in this process
shares, and says nothing about which fields moved).

``diff_tree`` lays the two trees over each other for drawing: the newer tree, with each
removed node put back under its parent from the older one.

Invariants (tests/organization/test_genome_diff.py): ``genome_diff(a, a)`` is empty, and
swapping the arguments swaps added and removed and swaps every change's before and after.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from organization.genome.model import ChannelConfig, OrganizationalGenome

ADDED, REMOVED, CHANGED = "added", "removed", "changed"
# Below this many nodes the whole tree is drawn; above it the levels near the root, and
# every node that changed with its ancestors.
FULL_TREE_NODES = 200
TREE_LEVELS = 3


@dataclass(frozen=True)
class FieldChange:
    """One value that differs: ``path`` like ``model.model`` or ``children``."""

    path: str
    before: Any  # plain JSON-like values (enums by value, dataclasses as dicts)
    after: Any

    @property
    def before_text(self) -> str:
        return _text(self.before)

    @property
    def after_text(self) -> str:
        return _text(self.after)

    @property
    def items_added(self) -> list[Any]:
        """For two lists (children, tools, rules …): the items only the newer one has."""
        if not (isinstance(self.before, list) and isinstance(self.after, list)):
            return []
        return [item for item in self.after if item not in self.before]

    @property
    def items_removed(self) -> list[Any]:
        if not (isinstance(self.before, list) and isinstance(self.after, list)):
            return []
        return [item for item in self.before if item not in self.after]


@dataclass(frozen=True)
class NodeChange:
    node_id: str
    name: str
    changes: tuple[FieldChange, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        """The top-level node fields that differ, in the node's field order."""
        return tuple(dict.fromkeys(change.path.split(".")[0] for change in self.changes))


@dataclass(frozen=True)
class NodeRef:
    node_id: str
    name: str


@dataclass(frozen=True)
class GenomeDiff:
    added: tuple[NodeRef, ...]  # in the newer tree's pre-order
    removed: tuple[NodeRef, ...]  # in the older tree's pre-order
    changed: tuple[NodeChange, ...]  # in the newer tree's pre-order
    channels_added: tuple[str, ...]
    channels_removed: tuple[str, ...]
    channels_changed: tuple[str, ...]
    genome_changes: tuple[FieldChange, ...]  # root_node_id and metadata.<key>

    @property
    def is_empty(self) -> bool:
        return not (
            self.added
            or self.removed
            or self.changed
            or self.channels_added
            or self.channels_removed
            or self.channels_changed
            or self.genome_changes
        )

    def mark_of(self) -> dict[str, str]:
        """Each node id that differs with its mark (added, removed or changed)."""
        marks = {ref.node_id: ADDED for ref in self.added}
        marks.update((ref.node_id, REMOVED) for ref in self.removed)
        marks.update((change.node_id, CHANGED) for change in self.changed)
        return marks


def genome_diff(before: OrganizationalGenome, after: OrganizationalGenome) -> GenomeDiff:
    """How ``after`` differs from ``before`` (the version ids and lineage, which always
    differ, are not compared)."""
    changed = []
    after_order = pre_order(after)
    for node_id in after_order:
        node = after.nodes[node_id]
        old = before.nodes.get(node_id)
        if old is None or old is node or old == node:
            continue
        changed.append(
            NodeChange(node_id=node_id, name=node.name, changes=tuple(_changes(old, node, "")))
        )
    old_channels, new_channels = _channels(before), _channels(after)
    genome_changes = []
    if before.root_node_id != after.root_node_id:
        genome_changes.append(FieldChange("root_node_id", before.root_node_id, after.root_node_id))
    for key in sorted(set(before.metadata) | set(after.metadata)):
        if before.metadata.get(key) != after.metadata.get(key):
            genome_changes.append(
                FieldChange(f"metadata.{key}", before.metadata.get(key), after.metadata.get(key))
            )
    return GenomeDiff(
        added=tuple(NodeRef(n, after.nodes[n].name) for n in after_order if n not in before.nodes),
        removed=tuple(
            NodeRef(n, before.nodes[n].name) for n in pre_order(before) if n not in after.nodes
        ),
        changed=tuple(changed),
        channels_added=tuple(c for c in new_channels if c not in old_channels),
        channels_removed=tuple(c for c in old_channels if c not in new_channels),
        channels_changed=tuple(
            c
            for c, channel in new_channels.items()
            # Field by field in C (vars), not through the dataclass's __eq__: a
            # 10,000-node genome has 50,000 channels.
            if c in old_channels and vars(old_channels[c]) != vars(channel)
        ),
        genome_changes=tuple(genome_changes),
    )


def _channels(genome: OrganizationalGenome) -> dict[str, ChannelConfig]:
    return {channel.id: channel for channel in genome.channels}


def _changes(old: Any, new: Any, prefix: str) -> Iterator[FieldChange]:
    """The differing fields of two dataclasses of one type, one level of nesting deep
    (``model.model``), whole values below that (a list of tools is one value)."""
    for field in dataclasses.fields(old):
        before, after = getattr(old, field.name), getattr(new, field.name)
        if before == after:
            continue
        path = f"{prefix}{field.name}"
        if not prefix and dataclasses.is_dataclass(before) and type(before) is type(after):
            yield from _changes(before, after, f"{path}.")
        else:
            yield FieldChange(path, plain(before), plain(after))


def pre_order(genome: OrganizationalGenome) -> list[str]:
    """Node ids from the root down, each node's children in their order; nodes the root does
    not reach (never in a valid genome) last."""
    seen: dict[str, None] = {}
    stack = [genome.root_node_id] if genome.root_node_id in genome.nodes else []
    while stack:
        node_id = stack.pop()
        if node_id in seen or node_id not in genome.nodes:
            continue
        seen[node_id] = None
        stack.extend(reversed(genome.nodes[node_id].children))
    return [*seen, *(n for n in genome.nodes if n not in seen)]


def plain(value: Any) -> Any:
    """A genome value as plain JSON-like data (enums by value, dataclasses as dicts)."""
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)
        }
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    return value


def _text(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# -- the two trees drawn as one -----------------------------------------------------------------


@dataclass(frozen=True)
class DiffTreeNode:
    """One node of the overlaid tree: from the newer genome, or (removed) from the older."""

    id: str
    name: str
    kind: str  # "metasystem" or "leaf", in the genome it is drawn from
    status: str
    parent_id: str | None
    depth: int
    mark: str  # ADDED, REMOVED, CHANGED or ""
    hidden_children: int = 0  # children left out of the picture (unchanged subtrees)

    @property
    def is_leaf(self) -> bool:
        return self.kind == "leaf"


def diff_tree(
    before: OrganizationalGenome,
    after: OrganizationalGenome,
    diff: GenomeDiff,
    *,
    full_tree_nodes: int = FULL_TREE_NODES,
    levels: int = TREE_LEVELS,
) -> list[DiffTreeNode]:
    """The newer tree with each removed node under its old parent, in pre-order (a parent
    before its children, a node's kept children before its removed ones).

    A tree of more than ``full_tree_nodes`` is pruned: the first ``levels`` levels stay, and
    every marked node with its ancestors; a drawn node counts the children left out. A
    removed node whose old parent is gone too hangs under that parent; one whose whole
    chain is gone (the old root replaced) is left out of the picture, not out of the diff.
    """
    marks = diff.mark_of()
    removed = {ref.node_id for ref in diff.removed}
    # Pruned, a walk descends only into the first levels and the chains down to a marked
    # node, so a big tree costs what it draws, not its size.
    pruned = len(after.nodes) + len(removed) > full_tree_nodes
    on_chain = _chains_to(marks, before, after) if pruned else set()

    def children_of(node_id: str, from_after: bool) -> list[tuple[str, bool]]:
        children = [(child, True) for child in after.nodes[node_id].children] if from_after else []
        old = before.nodes.get(node_id)
        if old is not None:
            children += [(child, False) for child in old.children if child in removed]
        return children

    drawn: list[DiffTreeNode] = []
    stack: list[tuple[str, bool, str | None, int]] = []
    if after.root_node_id in after.nodes:
        stack.append((after.root_node_id, True, None, 0))
    while stack:
        node_id, from_after, parent_id, depth = stack.pop()
        node = (after if from_after else before).nodes[node_id]
        children = children_of(node_id, from_after)
        shown = [
            (child, fa)
            for child, fa in children
            if not pruned or depth + 1 < levels or child in on_chain
        ]
        drawn.append(
            DiffTreeNode(
                id=node.id,
                name=node.name,
                kind="metasystem" if node.children else "leaf",
                status=node.status.value,
                parent_id=parent_id,
                depth=depth,
                mark=marks.get(node.id, ""),
                hidden_children=len(children) - len(shown),
            )
        )
        stack.extend((child, fa, node_id, depth + 1) for child, fa in reversed(shown))
    return drawn


def _chains_to(
    marks: dict[str, str], before: OrganizationalGenome, after: OrganizationalGenome
) -> set[str]:
    """Every marked node and its ancestors (a removed node's in the older tree)."""
    chain: set[str] = set()
    for marked in marks:
        node_id: str | None = marked
        while node_id is not None and node_id not in chain:
            chain.add(node_id)
            node = after.nodes.get(node_id) or before.nodes.get(node_id)
            node_id = node.parent_id if node is not None else None
    return chain
