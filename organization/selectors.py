"""Reads of the organization: the champion genome and the materialised tree."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from django.db.models import Count, Q, QuerySet

from ledger.compiled import READINGS
from organization.genome import (
    ChannelConfig,
    EncodedGenome,
    OrganizationalGenome,
    ViableNode,
    channels_at,
    encode_genome,
    genome_freeze,
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
    # A cached genome is a value from now on: its channel lookups may use an index.
    genome_freeze(entry.genome)
    with _version_cache_lock:
        _version_cache[version_id] = entry
        while len(_version_cache) > VERSION_CACHE_SIZE:
            _version_cache.popitem(last=False)
    return entry


def champion_version_id(*, controller_node_id: str | None = None) -> str | None:
    """The id of the live version: one indexed read, no genome decoded."""

    def pointer() -> QuerySet[ChampionPointer, tuple[str]]:
        pointers = ChampionPointer.objects.all()
        if controller_node_id is not None:
            pointers = pointers.filter(controller_node_id=controller_node_id)
        return pointers.order_by("controller_node_id").values_list("version_id")[:1]

    rows = READINGS.rows(("champion version", controller_node_id), pointer)
    return rows[0][0] if rows else None


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
        found = READINGS.instances(
            ("pauses on", tuple(chain)), lambda: SubtreePause.objects.filter(node_id__in=chain)
        )
        pauses = {pause.node_id: pause for pause in found}
    return next((pauses[n] for n in chain if n in pauses), None)


def live_trial(*, controller_node_id: str) -> LiveTrial | None:
    """The trial a controller is running now, or None: one primary-key read."""
    return READINGS.first(
        ("live trial at", controller_node_id),
        lambda: LiveTrial.objects.filter(controller_node_id=controller_node_id),
    )


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


# -- the champion tree as the dashboard draws it ----------------------------------------------

# Levels drawn before a subtree is collapsed (the root is level 1), and how many subtrees an
# operator may open past them in one picture: a 10,000-node organization stays a picture.
TREE_LEVELS = 3
TREE_EXPANDED_LIMIT = 50


@dataclass(frozen=True)
class TreeNode:
    """One drawn node with what the operator must see at a glance."""

    id: str
    name: str
    kind: str
    status: str
    depth: int
    parent_id: str | None
    paused: bool  # it or an ancestor is paused
    pause_target: bool  # the pause is on this very node
    trial_here: bool  # its controller runs a live trial now
    under_trial: bool  # an ancestor runs a live trial
    hidden_children: int  # children not drawn: the subtree is collapsed here
    hidden_paused: bool  # a paused node lies inside the collapsed part
    expanded: bool  # opened by the operator past the default depth

    @property
    def is_leaf(self) -> bool:
        return self.kind == Node.Kind.LEAF


class _TreeRow(NamedTuple):
    id: str
    name: str
    kind: str
    status: str
    depth: int
    parent_id: str | None
    ancestor_ids: list[str]


@dataclass(frozen=True)
class ChampionTree:
    """The nodes to draw, in pre-order (the root first), and what was left out."""

    nodes: list[TreeNode]
    expanded: tuple[str, ...]
    levels: int
    total_nodes: int


def champion_tree(*, expanded: tuple[str, ...] = (), levels: int = TREE_LEVELS) -> ChampionTree:
    """The champion tree down to ``levels`` levels, plus the children of the ``expanded`` nodes
    (at most ``TREE_EXPANDED_LIMIT``; unknown ids and ids under a collapsed node are ignored),
    each node marked with its pause and trial state. A bounded number of queries whatever the
    size: the nodes drawn, the child counts of the collapsed ones, the pauses and live trials.
    """
    wanted = tuple(dict.fromkeys(expanded))[:TREE_EXPANDED_LIMIT]
    rows = [
        _TreeRow(*values)
        for values in Node.objects.filter(Q(depth__lt=levels) | Q(parent_id__in=wanted))
        .order_by("position")
        .values_list("id", "name", "kind", "status", "depth", "parent_id", "ancestor_ids")
    ]
    opened = set(wanted)

    def shows_children(row: _TreeRow) -> bool:
        return row.depth < levels - 1 or row.id in opened

    drawn: dict[str, _TreeRow] = {}
    for row in rows:
        # Pre-order: a parent is decided before its children; a node is drawn when its
        # parent is drawn and shows its children (above the depth, or opened).
        parent = drawn.get(row.parent_id or "")
        if row.parent_id is None or (parent is not None and shows_children(parent)):
            drawn[row.id] = row
    opened &= set(drawn)
    collapsed = [
        row.id
        for row in drawn.values()
        if row.kind == Node.Kind.METASYSTEM and not shows_children(row)
    ]
    hidden: dict[str, int] = {
        parent_id: count
        for parent_id, count in Node.objects.filter(parent_id__in=collapsed)
        .values("parent_id")
        .annotate(child_count=Count("id"))
        .values_list("parent_id", "child_count")
    }
    pauses = subtree_pauses()
    hidden_paused: set[str] = set()
    for target, ancestors in Node.objects.filter(id__in=list(pauses)).values_list(
        "id", "ancestor_ids"
    ):
        if target not in drawn:
            hidden_paused.update(a for a in ancestors if a in hidden)
    trial_controllers = set(LiveTrial.objects.values_list("controller_node_id", flat=True))
    nodes = [
        TreeNode(
            id=row.id,
            name=row.name,
            kind=row.kind,
            status=row.status,
            depth=row.depth,
            parent_id=row.parent_id,
            paused=pause_covering(node_id=row.id, ancestor_ids=row.ancestor_ids, pauses=pauses)
            is not None,
            pause_target=row.id in pauses,
            trial_here=row.id in trial_controllers,
            under_trial=any(a in trial_controllers for a in row.ancestor_ids),
            hidden_children=hidden.get(row.id, 0),
            hidden_paused=row.id in hidden_paused,
            expanded=row.id in opened and row.depth >= levels - 1,
        )
        for row in drawn.values()
    ]
    return ChampionTree(
        nodes=nodes,
        expanded=tuple(n for n in wanted if n in opened),
        levels=levels,
        total_nodes=Node.objects.count(),
    )


# -- one node's page ---------------------------------------------------------------------------

CHILDREN_SHOWN = 100


@dataclass(frozen=True)
class NodePlace:
    """Where a node sits: its ancestors from the root down, its children, the pause on it."""

    node: Node
    ancestors: list[Node]
    children: list[Node]
    children_total: int
    pause: SubtreePause | None  # the pause that holds it (its own or an ancestor's)
    live_trial: LiveTrial | None  # the trial its controller runs, if it is one


def node_place(*, node_id: str) -> NodePlace | None:
    """The node and its surroundings, or None for an unknown id."""
    node = Node.objects.filter(id=node_id).first()
    if node is None:
        return None
    ancestor_ids = list(node.ancestor_ids)
    ancestors = {a.id: a for a in Node.objects.filter(id__in=ancestor_ids)}
    children = Node.objects.filter(parent_id=node.id).order_by("position")
    return NodePlace(
        node=node,
        ancestors=[ancestors[a] for a in reversed(ancestor_ids) if a in ancestors],
        children=list(children[:CHILDREN_SHOWN]),
        children_total=children.count(),
        pause=pause_covering(node_id=node.id, ancestor_ids=ancestor_ids),
        live_trial=live_trial(controller_node_id=node.id),
    )


def champion_node(*, node_id: str) -> ViableNode | None:
    """The node's genes in the champion genome (from the version cache), or None."""
    genome = champion_genome()
    return None if genome is None else genome.nodes.get(node_id)


NODE_CHANNELS_LIMIT = 100


def node_channels(
    *, node_id: str, limit: int = NODE_CHANNELS_LIMIT
) -> tuple[list[ChannelConfig], int]:
    """The champion's channels that start or end at ``node_id`` (at most ``limit``), and how
    many there are in all. From the cached genome's channel index (a 10,000-node genome has
    about 50,000 channels)."""
    genome = champion_genome()
    if genome is None:
        return [], 0
    mine = channels_at(genome, node_id)
    return list(mine[:limit]), len(mine)
