"""Writes to the organization: the only way the champion genome changes.

Each service runs in one transaction that validates, stores the new immutable
version, moves the champion pointer, rebuilds the materialised ``Node`` rows
and appends the ledger event: all of it happens or none of it does.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any
from urllib.parse import quote

from django.db import IntegrityError, transaction
from django.utils import timezone

from ledger import kinds
from ledger.services import EventDraft, ledger_append, ledger_record
from organization.genome import (
    TEMPLATES,
    AdminOnlySettings,
    Batch,
    Delta,
    EncodedGenome,
    GenomeError,
    OrganizationalGenome,
    Patch,
    ViableNode,
    apply_patch_encoded,
    capability_names,
    derive_capabilities,
    encode_genome,
    parse_patch,
    patch_to_json,
    subtree_ids,
    validate,
)
from organization.genome.privileges import privilege_escalations
from organization.models import (
    ChampionPointer,
    EncodedJson,
    GenomeVersion,
    LiveTrial,
    Node,
    SubtreePause,
)
from organization.selectors import (
    genome_version_encoded,
    genome_version_remember,
    live_trials_forget,
)


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
    encoded: EncodedGenome,
    parent: GenomeVersion | None,
    patch: dict[str, Any] | None,
    actor: str,
    reason: str,
) -> GenomeVersion:
    """Store the genome (its text assembled from ``encoded``'s pieces) as a new version.

    The version is cached for this process once the transaction commits, so the next
    patch starts from it without decoding it. The returned row's ``genome`` is that JSON
    text (an ``EncodedJson``, which ``genome_from_json`` reads); a fresh read gives a dict.
    """
    genome = encoded.genome
    version = GenomeVersion(parent=parent, patch=patch, actor=actor, reason=reason)
    genome.id = version.id
    if parent is not None:
        genome.lineage.parent_genome_ids.append(parent.id)
    genome.lineage.created_at_unix_ms = int(time.time() * 1000)
    version.genome = EncodedJson(encoded.json_text())
    version.content_hash = encoded.content_hash()
    encoded.release_text()
    version.save(force_insert=True)
    transaction.on_commit(
        functools.partial(genome_version_remember, version_id=version.id, encoded=encoded)
    )
    return version


# The Node columns derived from the genome; ``version`` names the version that last changed
# the row, so an unchanged node keeps its row untouched by a patch elsewhere.
MIRRORED_FIELDS = (
    "name",
    "parent_id",
    "depth",
    "position",
    "path",
    "ancestor_ids",
    "kind",
    "status",
    "leaf_kind",
    "capabilities",
    "model_provider",
    "model_name",
)
DELETE_BATCH = 500


# The columns that follow from the node alone; the others follow from the tree's shape.
NODE_OWN_FIELDS = (
    "name",
    "kind",
    "status",
    "leaf_kind",
    "capabilities",
    "model_provider",
    "model_name",
)


def _own_fields(node: ViableNode) -> dict[str, Any]:
    leaf_kind = node.leaf_operation.kind
    return {
        "name": node.name,
        "kind": Node.Kind.METASYSTEM if node.children else Node.Kind.LEAF,
        "status": node.status.value,
        "leaf_kind": "" if node.children or leaf_kind is None else str(leaf_kind),
        "capabilities": capability_names(derive_capabilities(node)),
        "model_provider": node.model.provider,
        "model_name": node.model.model,
    }


def _mirrored_rows(genome: OrganizationalGenome) -> dict[str, dict[str, Any]]:
    """Each node's derived columns, in pre-order (parents before children)."""
    rows: dict[str, dict[str, Any]] = {}
    for position, node_id in enumerate(subtree_ids(genome, genome.root_node_id)):
        node = genome.nodes[node_id]
        parent_id = node.parent_id
        ancestors = [] if parent_id is None else [parent_id, *rows[parent_id]["ancestor_ids"]]
        rows[node_id] = {
            "parent_id": parent_id,
            "depth": len(ancestors),
            "position": position,
            "path": node_path(ancestors, node_id),
            "ancestor_ids": ancestors,
            **_own_fields(node),
        }
    return rows


def _materialise_nodes(
    *, genome: OrganizationalGenome, version: GenomeVersion, delta: Delta | None = None
) -> None:
    """Make the Node rows mirror ``genome`` exactly, writing only the rows that differ.

    One query reads the existing rows' derived columns; then the rows of removed nodes
    are deleted, the changed ones updated (only the columns that changed, plus
    ``version``) and the new ones inserted, parents before children. When ``delta``
    says the patch kept the tree's shape, only the changed nodes' rows are read and
    compared, on the columns that follow from the node alone.
    """
    if delta is not None and not delta.structural:
        wanted = {node_id: _own_fields(genome.nodes[node_id]) for node_id in delta.changed_node_ids}
        rows = Node.objects.filter(id__in=wanted).values("id", *NODE_OWN_FIELDS)
        existing = {row.pop("id"): row for row in rows}
        if len(existing) == len(wanted):  # else the rows had drifted: rebuild the full way
            _write_differences(wanted, existing, version, removed=[])
            return
    wanted = _mirrored_rows(genome)
    existing = {row.pop("id"): row for row in Node.objects.values("id", *MIRRORED_FIELDS)}
    gone = [node_id for node_id in existing if node_id not in wanted]
    _write_differences(wanted, existing, version, removed=gone)


def _write_differences(
    wanted: dict[str, dict[str, Any]],
    existing: dict[str, dict[str, Any]],
    version: GenomeVersion,
    *,
    removed: list[str],
) -> None:
    for start in range(0, len(removed), DELETE_BATCH):
        Node.objects.filter(id__in=removed[start : start + DELETE_BATCH]).delete()
    changed: list[Node] = []
    changed_fields: set[str] = set()
    created: list[Node] = []
    for node_id, fields in wanted.items():
        before = existing.get(node_id)
        if before is None:
            created.append(Node(id=node_id, version=version, **fields))
            continue
        differing = {name for name, value in fields.items() if before[name] != value}
        if differing:
            changed.append(Node(id=node_id, version=version, **fields))
            changed_fields |= differing
    if changed:
        Node.objects.bulk_update(changed, [*sorted(changed_fields), "version"], batch_size=200)
    if created:
        Node.objects.bulk_create(created, batch_size=500)


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
    return genome_bootstrap_from(
        genome=TEMPLATES[template](), actor=actor, label=f"template {template}", template=template
    )


def genome_bootstrap_from(
    *, genome: OrganizationalGenome, actor: str, label: str, template: str = ""
) -> tuple[GenomeVersion, bool]:
    """Make ``genome`` the first champion (benches and tests build large ones); idempotent.

    Same contract as ``genome_bootstrap``: an existing champion is returned unchanged with
    ``created=False``. Raises GenomeInvalid for a genome that breaks an invariant.
    """
    existing = ChampionPointer.objects.select_related("version").first()
    if existing is not None:
        return existing.version, False
    validate(genome)
    encoded = encode_genome(genome, structure_checked=True)
    try:
        with transaction.atomic():
            version = _store_version(
                encoded=encoded, parent=None, patch=None, actor=actor, reason=label
            )
            ChampionPointer.objects.create(controller_node_id=genome.root_node_id, version=version)
            _materialise_nodes(genome=genome, version=version)
            ledger_append(
                kind=kinds.GENOME_BOOTSTRAPPED,
                actor=actor,
                node_id=genome.root_node_id,
                genome_id=version.id,
                payload={
                    "template": template or label,
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
    # The previous genome comes from the version cache: never load its (large) column here.
    pointers = (
        ChampionPointer.objects.select_for_update()
        .select_related("version")
        .defer("version__genome")
    )
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
    trial_id: str | None = None,
) -> GenomeVersion:
    """Apply one patch to the champion and make the result the new champion.

    ``trial_id`` names the trial whose promotion this is (recorded on the event).

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
        encoded = apply_patch_encoded(genome_version_encoded(version_id=previous.id), parsed)
        patch_json = patch_to_json(parsed)
        version = _store_version(
            encoded=encoded, parent=previous, patch=patch_json, actor=actor, reason=reason
        )
        pointer.version = version
        pointer.save(update_fields=["version", "updated_at"])
        _materialise_nodes(genome=encoded.genome, version=version, delta=encoded.delta)
        ledger_append(
            kind=kinds.GENOME_PATCH_APPLIED,
            actor=actor,
            node_id=pointer.controller_node_id,
            genome_id=version.id,
            trial_id=trial_id,
            payload={
                "previous_version_id": previous.id,
                "previous_content_hash": previous.content_hash,
                "version_id": version.id,
                "content_hash": version.content_hash,
                "patch": patch_json,
                "reason": reason,
                "trial_id": trial_id,
            },
        )
    return version


CANDIDATE_BASE_KEY = "candidate_base_genome_id"
CANDIDATE_SUGGESTION_KEY = "candidate_suggestion_id"


def genome_candidate_create(
    *,
    base_version_id: str,
    patch: Patch | dict[str, Any],
    suggestion_id: str,
    actor: str,
    reason: str = "",
) -> GenomeVersion:
    """Store ``patch`` applied to a base version as a *candidate* version.

    The candidate is an immutable, validated, content-hashed version like any other, but the
    champion pointer and the Node rows do not move: trying it is the trials' business. Its
    metadata names its base and suggestion, its lineage the suggestion. Runs in the caller's
    transaction and records no event (the trial records ``trial_queued``).

    Raises GenomeFormatError / the structural errors / GenomeInvalid like
    ``genome_apply_patch``, AdminOnlySettings for a patch that would give a node the command
    provider or change its provider.command.* / sandbox.* settings (an admin's decision,
    never a candidate's: ``organization.genome.privileges``), and GenomeVersion.DoesNotExist
    for an unknown base.
    """
    parsed = parse_patch(patch) if isinstance(patch, dict) else patch
    base = GenomeVersion.objects.defer("genome").get(id=base_version_id)
    base_encoded = genome_version_encoded(version_id=base.id)
    encoded = apply_patch_encoded(base_encoded, parsed)
    escalations = privilege_escalations(base_encoded.genome, encoded.genome)
    if escalations:
        raise AdminOnlySettings(escalations)
    genome = encoded.genome
    genome.metadata = {
        **genome.metadata,
        CANDIDATE_BASE_KEY: base.id,
        CANDIDATE_SUGGESTION_KEY: suggestion_id,
    }
    genome.lineage.mutation_ids.append(suggestion_id)
    return _store_version(
        encoded=encoded, parent=base, patch=patch_to_json(parsed), actor=actor, reason=reason
    )


def genome_rollback(
    *,
    to_version_id: str,
    actor: str,
    reason: str,
    trial_id: str | None = None,
    controller_node_id: str | None = None,
) -> GenomeVersion:
    """Make a copy of an earlier version the champion: a new version (patch
    ``{"kind": "rollback", "to_version_id": …}``), the pointer moved, the Node rows
    rebuilt and one ``genome_rolled_back`` event, in one transaction.

    Raises GenomeVersion.DoesNotExist for an unknown version and GenomeError for a
    candidate version (a version that was never champion cannot be rolled back to).
    """
    with transaction.atomic():
        pointer = _lock_champion(controller_node_id)
        previous = pointer.version
        target = GenomeVersion.objects.defer("genome").get(id=to_version_id)
        target_encoded = genome_version_encoded(version_id=target.id)
        if CANDIDATE_BASE_KEY in target_encoded.genome.metadata:
            raise GenomeError(
                f"version {target.id} is a trial's candidate, never a champion; promote its "
                "trial instead"
            )
        copied = apply_patch_encoded(target_encoded, Batch(patches=[]))
        copied.genome.lineage.parent_genome_ids = []
        patch_json = {"kind": "rollback", "to_version_id": target.id}
        version = _store_version(
            encoded=copied, parent=previous, patch=patch_json, actor=actor, reason=reason
        )
        pointer.version = version
        pointer.save(update_fields=["version", "updated_at"])
        _materialise_nodes(genome=copied.genome, version=version)
        ledger_append(
            kind=kinds.GENOME_ROLLED_BACK,
            actor=actor,
            node_id=pointer.controller_node_id,
            genome_id=version.id,
            trial_id=trial_id,
            payload={
                "previous_version_id": previous.id,
                "previous_content_hash": previous.content_hash,
                "to_version_id": target.id,
                "version_id": version.id,
                "content_hash": version.content_hash,
                "reason": reason,
                "trial_id": trial_id,
            },
        )
    return version


def live_trial_open(
    *,
    controller_node_id: str,
    trial_id: str,
    candidate_version_id: str,
    base_version_id: str,
    mode: str,
    traffic_share_basis_points: int | None,
    requires_approval: bool,
    max_tasks: int | None,
    max_token_budget: int | None,
    max_files_touched: int | None,
    allowed_task_classes: list[str],
) -> LiveTrial:
    """Open a controller's live trial, in the caller's transaction.

    Raises IntegrityError when the controller already has one: the primary key is the
    controller, so two live trials at one controller cannot both commit.
    """
    transaction.on_commit(live_trials_forget)
    live_trials_forget()
    return LiveTrial.objects.create(
        controller_node_id=controller_node_id,
        trial_id=trial_id,
        candidate_version_id=candidate_version_id,
        base_version_id=base_version_id,
        mode=mode,
        traffic_share_basis_points=traffic_share_basis_points,
        requires_approval=requires_approval,
        max_tasks=max_tasks,
        max_token_budget=max_token_budget,
        max_files_touched=max_files_touched,
        allowed_task_classes=list(allowed_task_classes),
    )


def live_trial_approve(*, trial_id: str, traffic_share_basis_points: int | None = None) -> bool:
    """Open the live trial's approval gate (and set its share, when given); False if not
    live. Exposure still follows the share and the risk rule per task."""
    changes: dict[str, Any] = {"approved": True}
    if traffic_share_basis_points is not None:
        changes["traffic_share_basis_points"] = traffic_share_basis_points
    return LiveTrial.objects.filter(trial_id=trial_id).update(**changes) == 1


def live_trial_close(*, trial_id: str) -> LiveTrial | None:
    """End a live trial's routing, in the caller's transaction; returns the closed row (its
    counters as they were) or None if it was not live."""
    row = LiveTrial.objects.select_for_update().filter(trial_id=trial_id).first()
    if row is None:
        return None
    LiveTrial.objects.filter(trial_id=trial_id).delete()
    transaction.on_commit(live_trials_forget)
    return row


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
