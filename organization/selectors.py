"""Reads of the organization: the champion genome and the materialised tree."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from django.db.models import QuerySet

from organization.genome import (
    EncodedGenome,
    OrganizationalGenome,
    encode_genome,
    genome_from_json,
)
from organization.models import ChampionPointer, GenomeVersion, LiveTrial, Node, SubtreePause


def genome_of(version: GenomeVersion) -> OrganizationalGenome:
    """The genome of a stored version, from the version cache (decoded once per process).

    Shared like ``genome_version``'s: read it, never change it. A version loaded with its
    genome column is decoded from that; one loaded without it costs a query on a miss.
    """
    loaded = "genome" in version.__dict__
    return _cached(version.id, version.genome if loaded else None).genome


class VersionNotFound(LookupError):
    """No stored genome version has this id."""


# Versions are immutable, so a decoded genome never goes stale: each process keeps the
# ones it used last. A handler names its version by id and pays one decode per process.
# Beside the genome the entry keeps its encoding once a patch needed it, so the next patch
# re-encodes only what it changes.
@dataclass
class _Entry:
    genome: OrganizationalGenome
    encoded: EncodedGenome | None = None


VERSION_CACHE_SIZE = 16
_version_cache: OrderedDict[str, _Entry] = OrderedDict()
_version_cache_lock = threading.Lock()


def genome_version(*, version_id: str) -> OrganizationalGenome:
    """The genome of the stored version ``version_id``, decoded once per process.

    The returned genome is shared by every caller in the process: read it, never
    change it (``apply_patch`` works on a copy). Raises VersionNotFound.
    """
    return _cached(version_id, None).genome


def genome_version_encoded(*, version_id: str) -> EncodedGenome:
    """The cached genome of ``version_id`` with its canonical pieces (encoded on first use)."""
    entry = _cached(version_id, None)
    if entry.encoded is None:
        # Stored versions were validated on the way in.
        entry.encoded = encode_genome(entry.genome, structure_checked=True)
    return entry.encoded


def genome_version_remember(*, version_id: str, encoded: EncodedGenome) -> None:
    """Cache a version just stored (its genome is the one it was encoded from)."""
    _remember(version_id, _Entry(genome=encoded.genome, encoded=encoded))


def _cached(version_id: str, data: object | None) -> _Entry:
    with _version_cache_lock:
        entry = _version_cache.get(version_id)
        if entry is not None:
            _version_cache.move_to_end(version_id)
            return entry
    if data is None:
        data = GenomeVersion.objects.filter(id=version_id).values_list("genome", flat=True).first()
    if data is None:
        raise VersionNotFound(f"there is no genome version {version_id!r}")
    return _remember(version_id, _Entry(genome=genome_from_json(data, check=False)))


def _remember(version_id: str, entry: _Entry) -> _Entry:
    with _version_cache_lock:
        _version_cache[version_id] = entry
        while len(_version_cache) > VERSION_CACHE_SIZE:
            _version_cache.popitem(last=False)
    return entry


def champion_version_id(*, controller_node_id: str | None = None) -> str | None:
    """The id of the live version: one indexed read, no genome decoded."""
    pointers = ChampionPointer.objects.all()
    if controller_node_id is not None:
        pointers = pointers.filter(controller_node_id=controller_node_id)
    return pointers.order_by("controller_node_id").values_list("version_id", flat=True).first()


def champion_genome(*, controller_node_id: str | None = None) -> OrganizationalGenome | None:
    """The live genome (from the version cache), or None before bootstrap."""
    version_id = champion_version_id(controller_node_id=controller_node_id)
    return None if version_id is None else genome_version(version_id=version_id)


def champion_version(*, controller_node_id: str | None = None) -> GenomeVersion | None:
    """The live version: of the named controller, or of the only one there is."""
    # The genome column (megabytes at scale) is read only if a caller asks for it;
    # genome_of() finds the genome in the version cache.
    pointers = ChampionPointer.objects.select_related("version").defer("version__genome")
    if controller_node_id is not None:
        pointers = pointers.filter(controller_node_id=controller_node_id)
    pointer = pointers.order_by("controller_node_id").first()
    return pointer.version if pointer is not None else None


def node_tree() -> QuerySet[Node]:
    """Every node of the champion in pre-order (parents before children)."""
    return Node.objects.order_by("position")


def node_subtree(*, node_id: str) -> QuerySet[Node]:
    """The node and all its descendants, in pre-order; empty if unknown."""
    node = Node.objects.filter(id=node_id).only("path").first()
    if node is None:
        return Node.objects.none()
    return Node.objects.filter(path__startswith=node.path).order_by("position")


def subtree_pauses() -> dict[str, SubtreePause]:
    """Every current pause by target node, newest first: one query for a whole page."""
    return {pause.node_id: pause for pause in SubtreePause.objects.order_by("-paused_at")}


def pause_covering(
    *,
    node_id: str,
    ancestor_ids: list[str],
    pauses: Mapping[str, SubtreePause] | None = None,
) -> SubtreePause | None:
    """The pause that holds ``node_id``: on the node itself or the nearest paused ancestor.

    Reads the pauses of the node's chain, unless ``pauses`` (from
    ``subtree_pauses``) is given.
    """
    chain = [node_id, *ancestor_ids]
    if pauses is None:
        pauses = {pause.node_id: pause for pause in SubtreePause.objects.filter(node_id__in=chain)}
    return next((pauses[n] for n in chain if n in pauses), None)


def live_trial(*, controller_node_id: str) -> LiveTrial | None:
    """The trial a controller is running now, or None: one primary-key read."""
    return LiveTrial.objects.filter(controller_node_id=controller_node_id).first()


# How long a process trusts its list of controllers with a live trial. Only "none here" is
# ever taken from it: a controller on the list has its row read fresh (and locked) before
# anything is routed by it, so a trial that just ended is never routed to; a trial that just
# started elsewhere reaches this process's routing within this long.
LIVE_TRIALS_TTL_SECONDS = 1.0
_live_trials: tuple[float, frozenset[str]] | None = None


def live_trial_possible(*, controller_node_id: str) -> bool:
    """Whether ``controller_node_id`` may have a live trial: False means it has none (as of at
    most ``LIVE_TRIALS_TTL_SECONDS`` ago), so a hop skips reading its row. One query a second
    per process, instead of one per routing hop."""
    global _live_trials
    now = time.monotonic()
    if _live_trials is None or now - _live_trials[0] > LIVE_TRIALS_TTL_SECONDS:
        controllers = frozenset(LiveTrial.objects.values_list("controller_node_id", flat=True))
        _live_trials = (now, controllers)
    return controller_node_id in _live_trials[1]


def live_trials_forget() -> None:
    """This process opened or closed a live trial: read the list afresh next time."""
    global _live_trials
    _live_trials = None


def genome_versions_diff(*, base_version_id: str, other_version_id: str) -> dict[str, object]:
    """What ``other`` changes against ``base``, node by node: the ids of the nodes it adds
    and removes, and for each node in both whose stored form differs, the top-level fields
    that differ with their values before and after; genome-level channels by id likewise.

    Reads the two stored genomes (JSON, as written); raises VersionNotFound.
    """
    base, other = (_stored_genome(version_id) for version_id in (base_version_id, other_version_id))
    base_nodes, other_nodes = base.get("nodes", {}), other.get("nodes", {})
    changed = []
    for node_id in sorted(set(base_nodes) & set(other_nodes)):
        before, after = base_nodes[node_id], other_nodes[node_id]
        fields = sorted(
            name for name in set(before) | set(after) if before.get(name) != after.get(name)
        )
        if fields:
            changed.append(
                {
                    "node_id": node_id,
                    "fields": fields,
                    "changes": {
                        name: {"before": before.get(name), "after": after.get(name)}
                        for name in fields
                    },
                }
            )
    base_channels = {channel.get("id"): channel for channel in base.get("channels", [])}
    other_channels = {channel.get("id"): channel for channel in other.get("channels", [])}
    return {
        "base_version_id": base_version_id,
        "other_version_id": other_version_id,
        "nodes_added": sorted(set(other_nodes) - set(base_nodes)),
        "nodes_removed": sorted(set(base_nodes) - set(other_nodes)),
        "nodes_changed": changed,
        "channels_added": sorted(str(c) for c in set(other_channels) - set(base_channels)),
        "channels_removed": sorted(str(c) for c in set(base_channels) - set(other_channels)),
        "channels_changed": sorted(
            str(c)
            for c in set(base_channels) & set(other_channels)
            if base_channels[c] != other_channels[c]
        ),
    }


def _stored_genome(version_id: str) -> dict[str, Any]:
    data = GenomeVersion.objects.filter(id=version_id).values_list("genome", flat=True).first()
    if data is None:
        raise VersionNotFound(f"there is no genome version {version_id!r}")
    if isinstance(data, str):  # an EncodedJson text not yet decoded by the database layer
        data = json.loads(data)
    return cast(dict[str, Any], data)
