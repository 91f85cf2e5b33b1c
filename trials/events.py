"""The trials' ledger events: filed under the trial's controller, trial and candidate."""

from __future__ import annotations

import dataclasses
from typing import Any

from ledger.services import EventDraft, ledger_record
from organization.genome import ancestor_ids
from organization.selectors import genome_version
from trials.models import Trial


def trial_record(
    trial: Trial,
    kind: str,
    payload: dict[str, Any],
    *,
    actor: str,
    context: EventDraft | None = None,
) -> None:
    """Record ``kind`` about ``trial`` (into the open batch): the hop's tags when a hop
    caused it (``context``), else the trial's controller and its ancestors."""
    if context is None:
        genome = genome_version(version_id=trial.base_version_id)
        node = trial.controller_node_id
        ancestors = ancestor_ids(genome, node) if node in genome.nodes else []
        context = EventDraft(
            kind=kind, actor=actor, node_id=node, responsible_ancestor_ids=ancestors
        )
    ledger_record(
        dataclasses.replace(
            context,
            kind=kind,
            actor=actor or context.actor,
            payload={"trial_id": trial.id, **payload},
            trial_id=trial.id,
            suggestion_id=trial.id,
            genome_id=trial.candidate_version_id,
        )
    )
