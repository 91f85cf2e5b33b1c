"""Writes to the organization: the only way the champion genome changes.

Each service runs in one transaction that validates, stores the new immutable
version, moves the champion pointer, rebuilds the materialised ``Node`` rows
and appends the ledger event: all of it happens or none of it does.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any
from urllib.parse import quote

from django.db import IntegrityError, transaction
from django.utils import timezone

from ledger import kinds
from ledger.services import EventDraft, ledger_append, ledger_record
from organization.genome import (
    TEMPLATES,
    GenomeError,
    OrganizationalGenome,
    Patch,
    apply_patch,
    capability_names,
    content_hash,
    derive_capabilities,
    genome_to_json,
    parse_patch,
    patch_to_json,
    subtree_ids,
    validate,
)
from organization.models import ChampionPointer, GenomeVersion, Node, SubtreePause
from organization.selectors import genome_of


class ChampionMissing(GenomeError):
    """There is no champion genome yet (run ``org_bootstrap``)."""


class UnknownTemplate(GenomeError):
    pass


def node_path(ancestor_ids: list[str], node_id: str) -> str:
    """``/root/…/node/`` with each id escaped, so a subtree is a path prefix."""
    segments = [*reversed(ancestor_ids), node_id]
    return "/" + "/".join(quote(segment, safe="") for segment in segments) + "/"


def _store_version(
    *,
    genome: OrganizationalGenome,
    parent: GenomeVersion | None,
    patch: dict[str, Any] | None,
    actor: str,
    reason: str,
) -> GenomeVersion:
    version = GenomeVersion(parent=parent, patch=patch, actor=actor, reason=reason)
    genome.id = version.id
    if parent is not None:
        genome.lineage.parent_genome_ids.append(parent.id)
    genome.lineage.created_at_unix_ms = int(time.time() * 1000)
    version.genome = genome_to_json(genome)
    version.content_hash = content_hash(genome)
    version.save(force_insert=True)
    return version


def _materialise_nodes(*, genome: OrganizationalGenome, version: GenomeVersion) -> None:
    """Make the Node rows mirror ``genome`` exactly (parents before children)."""
    order = subtree_ids(genome, genome.root_node_id)
    Node.objects.exclude(id__in=order).delete()
    existing = set(Node.objects.values_list("id", flat=True))
    ancestors: dict[str, list[str]] = {}
    for position, node_id in enumerate(order):
        node = genome.nodes[node_id]
        parent_id = node.parent_id
        ancestors[node_id] = [] if parent_id is None else [parent_id, *ancestors[parent_id]]
        capabilities = derive_capabilities(genome, node_id)
        leaf_kind = node.leaf_operation.kind
        fields = {
            "name": node.name,
            "parent_id": parent_id,
            "depth": len(ancestors[node_id]),
            "position": position,
            "path": node_path(ancestors[node_id], node_id),
            "ancestor_ids": ancestors[node_id],
            "kind": Node.Kind.METASYSTEM if node.children else Node.Kind.LEAF,
            "status": node.status.value,
            "leaf_kind": "" if node.children or leaf_kind is None else str(leaf_kind),
            "capabilities": capability_names(capabilities),
            "model_provider": node.model.provider,
            "model_name": node.model.model,
            "version": version,
        }
        if node_id in existing:
            Node.objects.filter(id=node_id).update(**fields)
        else:
            Node.objects.create(id=node_id, **fields)


def genome_bootstrap(*, template: str, actor: str) -> tuple[GenomeVersion, bool]:
    """Create the first champion from a stock template; idempotent.

    Returns ``(champion version, created)``. When a champion already exists it
    is returned unchanged with ``created=False``, whatever the template.
    Raises UnknownTemplate for a template name that does not exist.
    """
    if template not in TEMPLATES:
        raise UnknownTemplate(
            f"unknown template {template!r}; choose one of: {', '.join(sorted(TEMPLATES))}"
        )
    existing = ChampionPointer.objects.select_related("version").first()
    if existing is not None:
        return existing.version, False
    genome = TEMPLATES[template]()
    validate(genome)
    try:
        with transaction.atomic():
            version = _store_version(
                genome=genome, parent=None, patch=None, actor=actor, reason=f"template {template}"
            )
            ChampionPointer.objects.create(controller_node_id=genome.root_node_id, version=version)
            _materialise_nodes(genome=genome, version=version)
            ledger_append(
                kind=kinds.GENOME_BOOTSTRAPPED,
                actor=actor,
                node_id=genome.root_node_id,
                genome_id=version.id,
                payload={
                    "template": template,
                    "version_id": version.id,
                    "content_hash": version.content_hash,
                    "node_ids": list(genome.nodes),
                },
            )
    except IntegrityError:
        # Another process bootstrapped at the same moment: theirs stands.
        pointer = ChampionPointer.objects.select_related("version").first()
        if pointer is None:
            raise
        return pointer.version, False
    return version, True


def _lock_champion(controller_node_id: str | None) -> ChampionPointer:
    pointers = ChampionPointer.objects.select_for_update().select_related("version")
    if controller_node_id is not None:
        pointers = pointers.filter(controller_node_id=controller_node_id)
    found = list(pointers[:2])
    if not found:
        target = f" for controller {controller_node_id!r}" if controller_node_id else ""
        raise ChampionMissing(
            f"there is no champion genome{target}; run `python manage.py org_bootstrap` first"
        )
    if len(found) > 1:
        raise ChampionMissing(
            "several controllers have champions; name one with controller_node_id"
        )
    return found[0]


def genome_apply_patch(
    *,
    patch: Patch | dict[str, Any],
    actor: str,
    reason: str = "",
    controller_node_id: str | None = None,
) -> GenomeVersion:
    """Apply one patch to the champion and make the result the new champion.

    Invariant: either a new immutable version exists, the pointer names it,
    the Node rows mirror it and a ``genome_patch_applied`` event records it,
    or (on any error) nothing changed at all.

    Raises GenomeFormatError for a malformed patch, the genome's structural
    errors (NodeNotFound, CannotRemoveRoot, …) or GenomeInvalid when the
    result would break an invariant, and ChampionMissing before bootstrap.
    """
    parsed = parse_patch(patch) if isinstance(patch, dict) else patch
    with transaction.atomic():
        pointer = _lock_champion(controller_node_id)
        previous = pointer.version
        genome = apply_patch(genome_of(previous), parsed)
        patch_json = patch_to_json(parsed)
        version = _store_version(
            genome=genome, parent=previous, patch=patch_json, actor=actor, reason=reason
        )
        pointer.version = version
        pointer.save(update_fields=["version", "updated_at"])
        _materialise_nodes(genome=genome, version=version)
        ledger_append(
            kind=kinds.GENOME_PATCH_APPLIED,
            actor=actor,
            node_id=pointer.controller_node_id,
            genome_id=version.id,
            payload={
                "previous_version_id": previous.id,
                "previous_content_hash": previous.content_hash,
                "version_id": version.id,
                "content_hash": version.content_hash,
                "patch": patch_json,
                "reason": reason,
            },
        )
    return version


def subtree_pause(
    *,
    node_id: str,
    signal_id: str,
    paused_by: str,
    reason: str,
    severity: int,
    require_human_confirmation: bool,
    valence: str = "Pain",
    source: str = "Other",
    event_context: EventDraft | None = None,
) -> SubtreePause:
    """Pause ``node_id``'s subtree and record ``algedonic_subtree_paused``, together.

    Idempotent: a later signal refreshes the record. ``event_context`` carries the
    pausing controller's tags for the event (actor, ancestors, correlation, genome).
    """
    pause, _ = SubtreePause.objects.update_or_create(
        node_id=node_id,
        defaults={
            "signal_id": signal_id,
            "paused_at": timezone.now(),
            "paused_by": paused_by,
            "reason": reason,
            "severity": severity,
            "require_human_confirmation": require_human_confirmation,
        },
    )
    payload = {
        "target_node_id": node_id,
        "signal_id": signal_id,
        "valence": valence,
        "severity": severity,
        "message": reason,
        "source": source,
        "require_human_confirmation": require_human_confirmation,
    }
    ledger_record(_pause_event(kinds.ALGEDONIC_SUBTREE_PAUSED, payload, event_context, paused_by))
    return pause


def subtree_resume(
    *,
    node_id: str,
    descendant_ids: list[str],
    signal_id: str = "",
    resumed_by: str = "",
    event_context: EventDraft | None = None,
) -> list[str]:
    """Lift the pauses on ``node_id`` and inside its subtree, and record
    ``algedonic_subtree_resumed``; returns the ids resumed.

    A pause on an ancestor is not lifted: resuming a child of a paused subtree
    leaves it paused (by the ancestor) until the ancestor is resumed.
    """
    covered = [node_id, *descendant_ids]
    resumed = list(
        SubtreePause.objects.filter(node_id__in=covered).values_list("node_id", flat=True)
    )
    SubtreePause.objects.filter(node_id__in=covered).delete()
    payload = {"target_node_id": node_id, "signal_id": signal_id, "resumed_node_ids": resumed}
    ledger_record(_pause_event(kinds.ALGEDONIC_SUBTREE_RESUMED, payload, event_context, resumed_by))
    return resumed


def _pause_event(
    kind: str, payload: dict[str, Any], context: EventDraft | None, actor: str
) -> EventDraft:
    if context is None:
        return EventDraft(kind=kind, actor=actor or "system", payload=payload)
    return dataclasses.replace(context, kind=kind, payload=payload)
