"""A gene suggestion in, a queued trial out (docs/rules/trials.md, "Candidate queue").

Queueing builds the candidate genome version (the champion with the patch applied) and
never touches the champion itself. Every suggestion is queued, whoever made it: an audit,
an audit report, a Three-Four homeostat, an operator.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from ledger import kinds
from ledger.services import EventDraft, ledger_batch, ledger_record
from organization.genome import (
    AdminOnlySettings,
    GenomeError,
    OrganizationalGenome,
    ancestor_ids,
    apply_patch_encoded,
    parse_patch,
)
from organization.genome.privileges import privilege_escalations
from organization.selectors import champion_version, genome_of, genome_version_encoded
from organization.services import genome_candidate_create
from trials.errors import SuggestionRefused
from trials.models import AuditRun, GeneSuggestion, Trial, TrialMode
from workers.domain.homeostat import GeneSuggestionDraft
from workers.domain.messages import to_json
from workers.errors import NoOrganization

logger = logging.getLogger(__name__)

DEFAULT_MIN_TRACES_PER_ARM = 20
DEFAULT_MAX_TRACES_PER_ARM = 200


def trial_controller(genome: OrganizationalGenome, target_node_id: str) -> str:
    """Whose trial a suggestion is: its target if a metasystem, else the target's parent."""
    node = genome.nodes[target_node_id]
    if node.children or node.parent_id is None:
        return target_node_id
    return node.parent_id


def suggestion_queue(
    *,
    draft: GeneSuggestionDraft,
    actor: str,
    controller_node_id: str | None = None,
    audit_run: AuditRun | None = None,
    event_context: EventDraft | None = None,
    record_created: bool = True,
) -> Trial:
    """Store the suggestion, build its candidate genome version from the current champion,
    and queue its trial: ``gene_suggestion_created`` and ``trial_queued``, one transaction.

    ``controller_node_id`` defaults to the draft's target when it is a metasystem, else the
    target's parent. Never touches the champion. Raises SuggestionRefused (nothing stored,
    nothing recorded) when the target or controller is unknown, the controller is not a
    metasystem, the id is taken or the patch does not apply; NoOrganization before
    bootstrap. ``record_created=False`` when the caller recorded ``gene_suggestion_created``.
    """
    champion = champion_version()
    if champion is None:
        raise NoOrganization()
    genome = genome_of(champion)
    if draft.target_node_id not in genome.nodes:
        raise SuggestionRefused(
            {"target_node_id": [f"No node is called {draft.target_node_id!r}."]}
        )
    controller = controller_node_id or trial_controller(genome, draft.target_node_id)
    if controller not in genome.nodes or not genome.nodes[controller].children:
        raise SuggestionRefused(
            {"controller_node_id": [f"{controller!r} is not a metasystem: it runs no trials."]}
        )
    if GeneSuggestion.objects.filter(id=draft.id).exists():
        raise SuggestionRefused({"id": [f"A suggestion called {draft.id!r} exists already."]})
    # Refuse before the transaction opens: inside a hop's batch an error would doom the hop.
    try:
        base = genome_version_encoded(version_id=champion.id)
        escalations = privilege_escalations(
            base.genome, apply_patch_encoded(base, parse_patch(draft.patch)).genome
        )
        if escalations:
            raise AdminOnlySettings(escalations)
    except GenomeError as error:
        raise SuggestionRefused({"patch": [str(error)]}) from error
    limits = draft.safety_limits
    with ledger_batch():
        candidate = genome_candidate_create(
            base_version_id=champion.id,
            patch=draft.patch,
            suggestion_id=draft.id,
            actor=actor,
            reason=f"candidate of suggestion {draft.id}",
        )
        suggestion = GeneSuggestion.objects.create(
            id=draft.id,
            suggested_by_node_id=draft.suggested_by_node_id,
            target_node_id=draft.target_node_id,
            source=draft.other_source or draft.source.value,
            patch=draft.patch,
            evidence=list(draft.evidence),
            hypothesis=draft.hypothesis,
            trial_mode=draft.trial_mode.value.lower(),
            safety_limits=to_json(limits),
            measurement_plan=to_json(draft.measurement_plan),
            rollback_plan=to_json(draft.rollback_plan),
            audit_run=audit_run,
        )
        max_traces = limits.max_tasks or DEFAULT_MAX_TRACES_PER_ARM
        trial = Trial.objects.create(
            suggestion=suggestion,
            controller_node_id=controller,
            mode=TrialMode(draft.trial_mode.value.lower()),
            base_version=champion,
            candidate_version=candidate,
            requires_approval=limits.requires_approval,
            traffic_share_basis_points=limits.max_traffic_share_basis_points,
            max_tasks=limits.max_tasks,
            max_token_budget=limits.max_token_budget,
            max_files_touched=limits.max_files_touched,
            allowed_task_classes=list(limits.allowed_task_classes),
            # A trial bounded to fewer tasks than the usual minimum is judged on what it may
            # have; the test stays valid at any size, it just rarely decides on so little.
            min_traces_per_arm=min(DEFAULT_MIN_TRACES_PER_ARM, max_traces),
            max_traces_per_arm=max_traces,
        )
        context = _context(event_context, actor, genome, controller, trial, candidate.id)
        if record_created:
            ledger_record(
                dataclasses.replace(
                    context,
                    kind=kinds.GENE_SUGGESTION_CREATED,
                    payload={**to_json(draft), "controller_node_id": controller},
                )
            )
        ledger_record(
            dataclasses.replace(
                context,
                kind=kinds.TRIAL_QUEUED,
                payload={
                    "trial_id": trial.id,
                    "suggestion_id": suggestion.id,
                    "controller_node_id": controller,
                    "base_genome_id": champion.id,
                    "candidate_genome_id": candidate.id,
                    "candidate_content_hash": candidate.content_hash,
                    "trial_mode": trial.mode,
                    "source": suggestion.source,
                    "limits": to_json(limits),
                    "audit_run_id": audit_run.id if audit_run else None,
                },
            )
        )
    return trial


def _context(
    context: EventDraft | None,
    actor: str,
    genome: OrganizationalGenome,
    controller: str,
    trial: Trial,
    candidate_id: str,
) -> EventDraft:
    """The events' tags: the caller's (a hop's correlation), filed under the trial."""
    base = context or EventDraft(
        kind=kinds.TRIAL_QUEUED,
        actor=actor,
        node_id=controller,
        responsible_ancestor_ids=ancestor_ids(genome, controller),
    )
    return dataclasses.replace(
        base, trial_id=trial.id, suggestion_id=trial.id, genome_id=candidate_id
    )


def on_gene_suggested(
    sender: str,
    *,
    draft: GeneSuggestionDraft,
    controller_node_id: str | None = None,
    event_context: EventDraft | None = None,
    **kwargs: Any,
) -> str:
    """``workers.signals.gene_suggested``: queue the homeostat's suggestion in the hop.

    The hop recorded ``gene_suggestion_created`` already. A suggestion that cannot be
    queued is recorded as a rejected trial with the reason; the hop still commits.
    """
    actor = event_context.actor if event_context else f"node:{sender}"
    try:
        trial = suggestion_queue(
            draft=draft,
            actor=actor,
            event_context=event_context,
            record_created=False,
        )
    except SuggestionRefused as refused:
        ledger_record(
            dataclasses.replace(
                event_context or EventDraft(kind=kinds.TRIAL_REJECTED, actor=actor),
                kind=kinds.TRIAL_REJECTED,
                trial_id=draft.id,
                suggestion_id=draft.id,
                payload={
                    "trial_id": draft.id,
                    "reason": f"suggestion could not be queued: {refused}",
                    "errors": refused.errors,
                },
            )
        )
        return f"suggestion_refused={draft.id}"
    return f"trial_queued={trial.id}"
