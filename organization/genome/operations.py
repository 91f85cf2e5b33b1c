"""Structural building blocks on a genome (docs/rules/genome.md, "Structure operations").

``add_child`` and ``remove_subtree`` change the genome *in place* and check only their own
preconditions; :func:`organization.genome.patches.apply_patch` is the safe entry point that works
on a copy and validates the result.
"""

from __future__ import annotations

from organization.genome.enums import ChannelDirection, VsmChannelType
from organization.genome.errors import (
    CannotRemoveRoot,
    GenomeInvalid,
    NodeAlreadyExists,
    NodeIsNotLeaf,
    NodeNotFound,
)
from organization.genome.model import ChannelConfig, OrganizationalGenome, ViableNode

# The standard bundle of one parent→child edge, in the order it is appended (docs/rules/genome.md).
STANDARD_BUNDLE: tuple[tuple[VsmChannelType, ChannelDirection], ...] = (
    (VsmChannelType.RESOURCE_BARGAINING, ChannelDirection.BIDIRECTIONAL),
    (VsmChannelType.COMMAND, ChannelDirection.PARENT_TO_CHILD),
    (VsmChannelType.SYSTEM2_COORDINATION, ChannelDirection.PARENT_TO_CHILD),
    (VsmChannelType.AUDIT, ChannelDirection.BIDIRECTIONAL),
    (VsmChannelType.ALGEDONIC, ChannelDirection.CHILD_TO_PARENT),
)


def bundle_channel_id(parent_id: str, child_id: str, channel_type: VsmChannelType) -> str:
    """Deterministic id of a bundle channel, so equal structures have equal channel lists."""
    return f"{parent_id}->{child_id}:{channel_type.value}"


def standard_channel_bundle(parent_id: str, child_id: str) -> list[ChannelConfig]:
    """The five channels of a parent→child edge; Algedonic runs from child up to parent."""
    bundle = []
    for channel_type, direction in STANDARD_BUNDLE:
        upward = direction is ChannelDirection.CHILD_TO_PARENT
        bundle.append(
            ChannelConfig(
                id=bundle_channel_id(parent_id, child_id, channel_type),
                channel_type=channel_type,
                from_node_id=child_id if upward else parent_id,
                to_node_id=parent_id if upward else child_id,
                direction=direction,
            )
        )
    return bundle


def add_child(genome: OrganizationalGenome, parent_id: str, child: ViableNode) -> None:
    """Attach a single new node under ``parent_id`` and append its standard channel bundle.

    The child must arrive without children of its own: a subtree is grown one add_child at a
    time so every edge gets its bundle and every id is checked for collisions.
    """
    parent = genome.nodes.get(parent_id)
    if parent is None:
        raise NodeNotFound(parent_id, role="parent node")
    if child.id in genome.nodes:
        raise NodeAlreadyExists(child.id)
    if child.children:
        raise NodeIsNotLeaf(
            child.id,
            child.children,
            reason="a child must be added as a single node; attach its children with further "
            "add_child patches",
        )
    child.parent_id = parent_id
    genome.nodes[child.id] = child
    parent.children.append(child.id)
    genome.channels.extend(standard_channel_bundle(parent_id, child.id))


def subtree_ids(genome: OrganizationalGenome, node_id: str) -> list[str]:
    """The node and all its descendants, depth-first pre-order in child order."""
    genome.node(node_id)
    ordered: list[str] = []
    seen: set[str] = set()
    stack = [node_id]
    while stack:
        current = stack.pop()
        if current in seen:
            raise GenomeInvalid([f"node {current!r} is reachable twice below {node_id!r}"])
        seen.add(current)
        ordered.append(current)
        node = genome.nodes.get(current)
        if node is not None:
            stack.extend(reversed(node.children))
    return ordered


def ancestor_ids(genome: OrganizationalGenome, node_id: str) -> list[str]:
    """Parent, grandparent, … up to the root (immediate parent first)."""
    ancestors: list[str] = []
    current = genome.node(node_id).parent_id
    while current is not None:
        if current in ancestors or current == node_id:
            raise GenomeInvalid([f"parent links of node {node_id!r} form a cycle"])
        ancestors.append(current)
        current = genome.node(current).parent_id
    return ancestors


def depth(genome: OrganizationalGenome, node_id: str) -> int:
    """0 for the root, 1 for its children, and so on."""
    return len(ancestor_ids(genome, node_id))


def is_leaf(genome: OrganizationalGenome, node_id: str) -> bool:
    return genome.node(node_id).is_leaf


def is_metasystem(genome: OrganizationalGenome, node_id: str) -> bool:
    return genome.node(node_id).is_metasystem


def remove_subtree(genome: OrganizationalGenome, node_id: str) -> list[str]:
    """Delete a node, its descendants and every genome channel touching them.

    Returns the removed ids in pre-order.
    """
    if node_id == genome.root_node_id:
        raise CannotRemoveRoot(node_id)
    removed = subtree_ids(genome, node_id)
    parent_id = genome.nodes[node_id].parent_id
    parent = genome.nodes.get(parent_id) if parent_id is not None else None
    if parent is not None:
        parent.children = [child for child in parent.children if child != node_id]
    gone = set(removed)
    for removed_id in removed:
        genome.nodes.pop(removed_id, None)
    genome.channels = [
        channel
        for channel in genome.channels
        if channel.from_node_id not in gone and channel.to_node_id not in gone
    ]
    return removed
