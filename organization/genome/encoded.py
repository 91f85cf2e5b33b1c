"""A genome's canonical JSON text and content hash, re-encoding only what a patch changed.

``canonical_json(genome_to_json(genome))`` encodes every node and channel: at 10,000 nodes
that is 28 MB of text and most of a second. A patch changes a few nodes and shares every
other node and channel object with its input (see ``apply_patch``), so the text of an
unchanged object can be reused: :func:`encode_genome` keeps each node's and channel's
canonical text beside the object it came from and, given the encoding of the genome a patch
started from, encodes only the objects that are not the very same ones.

The text assembled from the pieces is byte for byte ``canonical_json`` of the whole genome
(keys sorted, no spaces, UTF-8 kept), so the stored JSON and the content hash are exactly
those of the plain path; the tests compare the two on random genomes and patch sequences.
Each new piece goes through the strict encoder, so wrongly typed values are still refused
(GenomeFormatError naming the path).
"""

from __future__ import annotations

import functools
import hashlib
import json
import operator
from dataclasses import dataclass
from typing import Any

from organization.genome.codec import canonical_json, to_json_value
from organization.genome.errors import GenomeFormatError
from organization.genome.model import (
    ChannelConfig,
    GenomeLineage,
    OrganizationalGenome,
    ViableNode,
)


@dataclass(frozen=True)
class EncodedGenome:
    """``genome`` with the canonical text of each of its nodes and channels.

    The pieces are keyed by the objects themselves (held here, so an ``id()`` is never
    reused while the entry lives): treat the genome as immutable from now on.
    """

    genome: OrganizationalGenome
    node_texts: dict[str, tuple[ViableNode, str]]
    channel_texts: dict[int, tuple[ChannelConfig, str]]
    # True once the structure is known to be valid (checked, or stored after a check).
    structure_checked: bool = False
    # How this genome differs from the one a patch started from (None: not from a patch).
    delta: Delta | None = None

    def content_text(self) -> str:
        """Canonical JSON of the genome without its volatile id and lineage."""
        return self._text(with_identity=False)

    def json_text(self) -> str:
        """Canonical JSON of the whole genome: what ``genome_to_json`` stores, as text."""
        return self._text(with_identity=True)

    def content_hash(self) -> str:
        digest = hashlib.sha256(self.content_text().encode("utf-8")).hexdigest()
        return f"sha256:{digest}"

    def release_text(self) -> None:
        """Drop the joined node text (megabytes at scale) once stored; the pieces stay.

        The joined channel text stays: the next version with the same channels shares it.
        """
        self.__dict__.pop("_nodes", None)

    @functools.cached_property
    def _channels(self) -> str:
        return ",".join(self.channel_texts[id(channel)][1] for channel in self.genome.channels)

    @functools.cached_property
    def _nodes(self) -> str:
        return ",".join(
            f"{_string(node_id)}:{self.node_texts[node_id][1]}"
            for node_id in sorted(self.genome.nodes)
        )

    def _text(self, *, with_identity: bool) -> str:
        # id and lineage are read each time: a service sets them just before storing.
        genome, channels, nodes = self.genome, self._channels, self._nodes
        identity = ""
        if with_identity:
            lineage = canonical_json(_encoded(genome.lineage, GenomeLineage, "lineage"))
            identity = f'"id":{_string(genome.id)},"lineage":{lineage},'
        metadata = canonical_json(_encoded(genome.metadata, dict[str, str], "metadata"))
        return (
            f'{{"channels":[{channels}],{identity}"metadata":{metadata},'
            f'"nodes":{{{nodes}}},"root_node_id":{_string(genome.root_node_id)}}}'
        )


@dataclass(frozen=True)
class Delta:
    """What a patch changed: the nodes that are new objects, and whether the shape moved."""

    changed_node_ids: list[str]
    structural: bool  # node ids, parent/child links or channels differ


def delta_between(base: OrganizationalGenome, result: OrganizationalGenome) -> Delta:
    """Compare by identity: a node or channel object that is the base's is unchanged."""
    changed = [
        node_id for node_id, node in result.nodes.items() if base.nodes.get(node_id) is not node
    ]
    same_ids = len(base.nodes) == len(result.nodes) and all(
        node_id in base.nodes for node_id in changed
    )
    links_kept = same_ids and all(
        (result.nodes[node_id].parent_id, result.nodes[node_id].children)
        == (base.nodes[node_id].parent_id, base.nodes[node_id].children)
        for node_id in changed
    )
    return Delta(
        changed_node_ids=changed,
        structural=not (links_kept and _same_objects(base.channels, result.channels)),
    )


def _same_objects(first: list[Any], second: list[Any]) -> bool:
    return len(first) == len(second) and all(map(operator.is_, first, second))


def encode_genome(
    genome: OrganizationalGenome,
    previous: EncodedGenome | None = None,
    *,
    structure_checked: bool = False,
    delta: Delta | None = None,
) -> EncodedGenome:
    """Encode ``genome``, reusing the pieces of ``previous`` for the objects they share.

    Raises GenomeFormatError for a wrongly typed value in any newly encoded piece.
    """
    if previous is not None and _same_objects(previous.genome.channels, genome.channels):
        node_texts = _node_texts(genome, previous.node_texts)
        encoded = EncodedGenome(
            genome=genome,
            node_texts=node_texts,
            channel_texts=previous.channel_texts,
            structure_checked=structure_checked,
            delta=delta,
        )
        if "_channels" in previous.__dict__:  # the joined text of the very same channels
            encoded.__dict__["_channels"] = previous.__dict__["_channels"]
        _string(genome.id, "id")
        _string(genome.root_node_id, "root_node_id")
        return encoded
    return _encode_all(genome, previous, structure_checked=structure_checked, delta=delta)


def _node_texts(
    genome: OrganizationalGenome, old_nodes: dict[str, tuple[ViableNode, str]]
) -> dict[str, tuple[ViableNode, str]]:
    node_texts: dict[str, tuple[ViableNode, str]] = {}
    for node_id, node in genome.nodes.items():
        if not isinstance(node_id, str):
            raise GenomeFormatError("nodes", f"expected string keys, got {node_id!r}")
        known = old_nodes.get(node_id)
        if known is not None and known[0] is node:
            node_texts[node_id] = known
        else:
            node_texts[node_id] = (node, _text(node, ViableNode, f"nodes.{node_id}"))
    return node_texts


def _encode_all(
    genome: OrganizationalGenome,
    previous: EncodedGenome | None,
    *,
    structure_checked: bool,
    delta: Delta | None,
) -> EncodedGenome:
    node_texts = _node_texts(genome, previous.node_texts if previous is not None else {})
    old_channels = previous.channel_texts if previous is not None else {}
    channel_texts: dict[int, tuple[ChannelConfig, str]] = {}
    for index, channel in enumerate(genome.channels):
        known_channel = old_channels.get(id(channel))
        if known_channel is not None and known_channel[0] is channel:
            channel_texts[id(channel)] = known_channel
        else:
            text = _text(channel, ChannelConfig, f"channels[{index}]")
            channel_texts[id(channel)] = (channel, text)
    _string(genome.id, "id")
    _string(genome.root_node_id, "root_node_id")
    return EncodedGenome(
        genome=genome,
        node_texts=node_texts,
        channel_texts=channel_texts,
        structure_checked=structure_checked,
        delta=delta,
    )


def _encoded(value: object, annotation: Any, path: str) -> Any:
    try:
        return to_json_value(value, annotation)
    except GenomeFormatError as error:
        raise GenomeFormatError(_joined(path, error.path), error.problem) from None


def _joined(path: str, inner: str) -> str:
    if not inner:
        return path
    return f"{path}{inner}" if inner.startswith("[") else f"{path}.{inner}"


def _text(value: object, annotation: Any, path: str) -> str:
    return canonical_json(_encoded(value, annotation, path))


def _string(value: object, path: str = "") -> str:
    if not isinstance(value, str):
        raise GenomeFormatError(path, f"expected a string, got {value!r}")
    return json.dumps(value, ensure_ascii=False)
