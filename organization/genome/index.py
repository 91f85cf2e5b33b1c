"""Lookups over a genome that stays as it is: its channels by the nodes at their ends.

A genome is a plain (mutable) dataclass, but a stored version never changes: the version
cache hands one object to every caller, who reads it and never changes it. The holder of
such a genome *freezes* it here (``genome_freeze``); the index over a frozen genome is built
on its first lookup and kept while the genome lives, so a lookup costs the same at 10 nodes
and at 10,000 (about 50,000 channels). A genome nobody froze (one being built, patched or
put together by a test) is walked on every lookup, as if there were no index: it can never
be read through a stale one.

Either way a lookup returns the channels the walk over ``genome.channels`` finds, in the
genome's order.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from organization.genome.model import ChannelConfig, OrganizationalGenome

# An edge's key: the set of its two ends, so a channel either way round is found.
EdgeKey = frozenset[str | None]


@dataclass(frozen=True)
class ChannelIndex:
    """A genome's channels by edge (either direction) and by node (either end)."""

    by_edge: dict[EdgeKey, tuple[ChannelConfig, ...]]
    by_node: dict[str, tuple[ChannelConfig, ...]]

    @classmethod
    def of(cls, genome: OrganizationalGenome) -> ChannelIndex:
        by_edge: dict[EdgeKey, list[ChannelConfig]] = {}
        by_node: dict[str, list[ChannelConfig]] = {}
        for channel in genome.channels:
            ends = {channel.from_node_id, channel.to_node_id}
            by_edge.setdefault(frozenset(ends), []).append(channel)
            for end in ends - {None}:
                by_node.setdefault(str(end), []).append(channel)
        return cls(
            by_edge={key: tuple(found) for key, found in by_edge.items()},
            by_node={key: tuple(found) for key, found in by_node.items()},
        )


@dataclass
class _Frozen:
    genome: weakref.ref[OrganizationalGenome]
    channels: ChannelIndex | None = None


# By the genome object's id; each entry leaves when its genome is collected. Plain dict
# operations only (atomic in CPython), so no lock: two threads racing to build an index
# build the same one.
_frozen: dict[int, _Frozen] = {}


def genome_freeze(genome: OrganizationalGenome) -> None:
    """Promise that ``genome`` will never change again, so its lookups may use an index.

    For genomes that are values from now on (a stored version, as the version cache holds
    it). Changing a frozen genome afterwards is a bug its lookups would not notice."""
    key = id(genome)
    entry = _frozen.get(key)
    if entry is not None and entry.genome() is genome:
        return

    def forget(reference: weakref.ref[OrganizationalGenome]) -> None:
        current = _frozen.get(key)
        if current is not None and current.genome is reference:
            _frozen.pop(key, None)

    _frozen[key] = _Frozen(weakref.ref(genome, forget))


def genome_is_frozen(genome: OrganizationalGenome) -> bool:
    return _entry(genome) is not None


def channels_between(
    genome: OrganizationalGenome, one: str | None, other: str | None
) -> Sequence[ChannelConfig]:
    """The channels joining ``one`` and ``other``, either way round, in the genome's order."""
    index = _channel_index(genome)
    if index is not None:
        return index.by_edge.get(frozenset((one, other)), ())
    ends = {(one, other), (other, one)}
    return [
        channel for channel in genome.channels if (channel.from_node_id, channel.to_node_id) in ends
    ]


def channels_at(genome: OrganizationalGenome, node_id: str) -> Sequence[ChannelConfig]:
    """The channels that start or end at ``node_id``, in the genome's order."""
    index = _channel_index(genome)
    if index is not None:
        return index.by_node.get(node_id, ())
    return [
        channel
        for channel in genome.channels
        if node_id in (channel.from_node_id, channel.to_node_id)
    ]


def _entry(genome: OrganizationalGenome) -> _Frozen | None:
    entry = _frozen.get(id(genome))
    return entry if entry is not None and entry.genome() is genome else None


def _channel_index(genome: OrganizationalGenome) -> ChannelIndex | None:
    entry = _entry(genome)
    if entry is None:
        return None
    if entry.channels is None:
        entry.channels = ChannelIndex.of(genome)
    return entry.channels
