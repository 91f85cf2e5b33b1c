"""Reads of the organization: the champion genome and the materialised tree."""

from __future__ import annotations

from collections.abc import Mapping

from django.db.models import QuerySet

from organization.genome import OrganizationalGenome, genome_from_json
from organization.models import ChampionPointer, GenomeVersion, Node, SubtreePause


def genome_of(version: GenomeVersion) -> OrganizationalGenome:
    """Decode a stored version (validated on the way in, so no re-validation)."""
    return genome_from_json(version.genome, check=False)


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
