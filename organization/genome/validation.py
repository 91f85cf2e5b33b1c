"""Structural validation of a genome: one tree, consistently linked, channels on real nodes."""

from __future__ import annotations

from collections import Counter

from organization.genome.codec import to_json_value
from organization.genome.errors import GenomeFormatError, GenomeInvalid
from organization.genome.model import OrganizationalGenome


def genome_problems(genome: OrganizationalGenome) -> list[str]:
    """Every structural problem of the genome, as readable sentences (empty when valid)."""
    try:
        to_json_value(genome)
    except GenomeFormatError as error:
        # Wrongly typed fields make the checks below unreliable (ids may not even be strings).
        return [f"field {error}"]
    return structure_problems(genome)


def structure_problems(genome: OrganizationalGenome) -> list[str]:
    """The structural problems of a genome whose fields are known to be well typed."""
    problems: list[str] = []
    problems += _key_problems(genome)
    problems += _root_problems(genome)
    problems += _link_problems(genome)
    problems += _cycle_problems(genome)
    problems += _reachability_problems(genome)
    problems += _channel_problems(genome)
    return problems


def validate(genome: OrganizationalGenome) -> None:
    """Raise GenomeInvalid listing every problem, or return quietly."""
    problems = genome_problems(genome)
    if problems:
        raise GenomeInvalid(problems)


def _key_problems(genome: OrganizationalGenome) -> list[str]:
    return [
        f"node stored under key {key!r} has id {node.id!r}"
        for key, node in genome.nodes.items()
        if key != node.id
    ]


def _root_problems(genome: OrganizationalGenome) -> list[str]:
    problems = []
    root = genome.nodes.get(genome.root_node_id)
    if root is None:
        problems.append(f"root node {genome.root_node_id!r} is missing from nodes")
    elif root.parent_id is not None:
        problems.append(f"root node {root.id!r} has parent {root.parent_id!r}")
    for node_id, node in genome.nodes.items():
        if node_id != genome.root_node_id and node.parent_id is None:
            problems.append(f"node {node_id!r} has no parent: a second root")
    return problems


def _link_problems(genome: OrganizationalGenome) -> list[str]:
    problems = []
    listed_under: dict[str, list[str]] = {}
    for node_id, node in genome.nodes.items():
        unique_children = set(node.children)
        if len(unique_children) != len(node.children):
            for child_id, count in Counter(node.children).items():
                if count > 1:
                    problems.append(f"node {node_id!r} lists child {child_id!r} {count} times")
        for child_id in dict.fromkeys(node.children):
            listed_under.setdefault(child_id, []).append(node_id)
            child = genome.nodes.get(child_id)
            if child is None:
                problems.append(f"node {node_id!r} lists missing child {child_id!r}")
            elif child.parent_id != node_id:
                problems.append(
                    f"node {node_id!r} lists child {child_id!r}, "
                    f"whose parent is {child.parent_id!r}"
                )
    for child_id, parents in listed_under.items():
        if len(parents) > 1:
            problems.append(f"node {child_id!r} is listed as a child of {sorted(parents)!r}")
    for node_id, node in genome.nodes.items():
        if node.parent_id is None:
            continue
        parent = genome.nodes.get(node.parent_id)
        if parent is None:
            problems.append(f"node {node_id!r} names missing parent {node.parent_id!r}")
        elif node_id not in parent.children:
            problems.append(
                f"node {node_id!r} names parent {node.parent_id!r}, "
                "which does not list it as a child"
            )
    return problems


def _cycle_problems(genome: OrganizationalGenome) -> list[str]:
    problems = []
    settled: set[str] = set()  # nodes known to lead to a root, a dangling parent or a cycle
    for start in genome.nodes:
        walk: list[str] = []
        on_walk: set[str] = set()
        current: str | None = start
        while current is not None and current in genome.nodes and current not in settled:
            if current in on_walk:
                cycle = walk[walk.index(current) :]
                first = cycle.index(min(cycle))
                cycle = cycle[first:] + cycle[:first]
                problems.append("parent links form a cycle: " + " -> ".join(cycle + cycle[:1]))
                break
            walk.append(current)
            on_walk.add(current)
            current = genome.nodes[current].parent_id
        settled.update(walk)
    return problems


def _reachability_problems(genome: OrganizationalGenome) -> list[str]:
    if genome.root_node_id not in genome.nodes:
        return []
    reached = {genome.root_node_id}
    frontier = [genome.root_node_id]
    while frontier:
        node = genome.nodes[frontier.pop()]
        for child_id in node.children:
            if child_id in genome.nodes and child_id not in reached:
                reached.add(child_id)
                frontier.append(child_id)
    return [
        f"node {node_id!r} is not reachable from the root {genome.root_node_id!r}"
        for node_id in genome.nodes
        if node_id not in reached
    ]


def _channel_problems(genome: OrganizationalGenome) -> list[str]:
    problems = []
    nodes = genome.nodes
    for index, channel in enumerate(genome.channels):
        from_id, to_id = channel.from_node_id, channel.to_node_id
        if (from_id is None or from_id in nodes) and (to_id is None or to_id in nodes):
            continue
        for end, node_id in (("from", from_id), ("to", to_id)):
            if node_id is not None and node_id not in nodes:
                problems.append(
                    f"channel {channel.id!r} (channels[{index}]) {end} missing node {node_id!r}"
                )
    channel_ids = [channel.id for channel in genome.channels]
    if len(set(channel_ids)) != len(channel_ids):
        for channel_id, count in Counter(channel_ids).items():
            if count > 1:
                problems.append(f"channel id {channel_id!r} is used by {count} channels")
    return problems
