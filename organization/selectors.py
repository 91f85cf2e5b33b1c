"""Reads of the organization: the champion genome and the materialised tree."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping

from django.db.models import QuerySet

from organization.genome import OrganizationalGenome, genome_from_json
from organization.models import ChampionPointer, GenomeVersion, Node, SubtreePause


def genome_of(version: GenomeVersion) -> OrganizationalGenome:
    """Decode a stored version (validated on the way in, so no re-validation)."""
    return genome_from_json(version.genome, check=False)


class VersionNotFound(LookupError):
    """No stored genome version has this id."""


# Versions are immutable, so a decoded genome never goes stale: each process keeps the
# ones it used last. A handler names its version by id and pays one decode per process.
VERSION_CACHE_SIZE = 16
_version_cache: OrderedDict[str, OrganizationalGenome] = OrderedDict()
_version_cache_lock = threading.Lock()


def genome_version(*, version_id: str) -> OrganizationalGenome:
    """The genome of the stored version ``version_id``, decoded once per process.

    The returned genome is shared by every caller in the process: read it, never
    change it (``apply_patch`` works on a copy). Raises VersionNotFound.
    """
    with _version_cache_lock:
        genome = _version_cache.get(version_id)
        if genome is not None:
            _version_cache.move_to_end(version_id)
            return genome
    data = GenomeVersion.objects.filter(id=version_id).values_list("genome", flat=True).first()
    if data is None:
        raise VersionNotFound(f"there is no genome version {version_id!r}")
    genome = genome_from_json(data, check=False)
    with _version_cache_lock:
        _version_cache[version_id] = genome
        while len(_version_cache) > VERSION_CACHE_SIZE:
            _version_cache.popitem(last=False)
    return genome


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
    pointers = ChampionPointer.objects.select_related("version")
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
