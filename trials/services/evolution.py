"""Evolution generations (docs/rules/trials.md, "Evolution generation"): on beat or on demand.

A generation reads the controller's ledger data (its latest generation number, queued
trials, trial history, recent subtree traces), plans with the pure
``trials.domain.evolution``, and queues each offspring as a trial through
``suggestion_queue`` (``gene_suggestion_created`` and ``trial_queued``), then writes the
EvolutionGeneration row and ``evolution_generation_created``, in one transaction. A
generation only queues: activation stays the separate, single-trial step.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from ledger import kinds
from ledger.chain import new_id
from ledger.fitness import trace_score
from ledger.fitness_queries import trace_facts
from ledger.models import TaskTrace
from ledger.selectors import subtree_task_traces
from ledger.services import EventDraft, ledger_batch, ledger_record
from organization.genome import OrganizationalGenome, ancestor_ids
from organization.models import GenomeVersion
from organization.selectors import champion_version, genome_of
from trials.domain.evolution import (
    SELECTION_POLICY,
    EvolutionPolicy,
    GenerationInputs,
    GenerationPlan,
    Offspring,
    RecentTrace,
    TrialRecord,
    plan_generation,
    task_shape,
)
from trials.errors import GenerationConflict, GenerationRefused, SuggestionRefused
from trials.models import EvolutionGeneration, Trial
from trials.services.candidates import suggestion_queue
from workers.domain.trial_routing import TRIAL_ID
from workers.errors import NoOrganization

logger = logging.getLogger(__name__)

TRIAL_HISTORY_LIMIT = 500
# Enough for any real lineage; a longer walk stops there (older trials count as off-lineage).
LINEAGE_WALK_LIMIT = 10_000


@dataclass
class GenerationRun:
    """What one attempt did: the plan (every operator's report), and, if anything was
    queued, the generation row and its trials."""

    plan: GenerationPlan
    generation: EvolutionGeneration | None = None
    trials: list[Trial] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)


def evolution_controller_ids(genome: OrganizationalGenome) -> list[str]:
    """The metasystems of ``genome``, in tree order: each evolves its own children."""
    return [node_id for node_id, node in genome.nodes.items() if node.is_metasystem]


def evolution_generation_run(
    *, controller_node_id: str, actor: str, policy: EvolutionPolicy | None = None
) -> EvolutionGeneration | None:
    """Run the controller's next generation; None when it has no offspring (no row, no
    number used). See :func:`evolution_generation_attempt`."""
    return evolution_generation_attempt(
        controller_node_id=controller_node_id, actor=actor, policy=policy
    ).generation


def evolution_generation_attempt(
    *, controller_node_id: str, actor: str, policy: EvolutionPolicy | None = None
) -> GenerationRun:
    """Plan the controller's next generation and, if it has offspring, queue them and record
    it, all in one transaction.

    Generation numbers are the controller's latest + 1 and unique per controller: a
    concurrent generation of the same controller, or a champion that changed while the
    offspring were queued, raises GenerationConflict and keeps nothing. Raises
    NoOrganization before bootstrap and GenerationRefused (nothing written) for a node that
    is not a metasystem of the champion. An offspring the queue refuses is reported in
    ``refused`` (and the generation's evidence), not raised.
    """
    policy = policy or EvolutionPolicy()
    version = champion_version()
    if version is None:
        raise NoOrganization()
    genome = genome_of(version)
    _check_controller(genome, controller_node_id)
    with ledger_batch():
        plan = plan_generation(_inputs(controller_node_id, version, genome, policy), policy)
        if not plan.offspring:
            return GenerationRun(plan=plan)
        run = GenerationRun(plan=plan)
        generation_id = new_id()
        context = EventDraft(
            kind="",
            actor=actor,
            node_id=controller_node_id,
            responsible_ancestor_ids=tuple(ancestor_ids(genome, controller_node_id)),
            genome_id=version.id,
            correlation_id=generation_id,
        )
        for offspring in plan.offspring:
            _queue(run, offspring, version, policy, actor, context)
        if not run.trials:
            return run
        run.generation = _record(run, generation_id, version, context)
    return run


def evolution_generation_all(
    *, actor: str, policy: EvolutionPolicy | None = None
) -> dict[str, str]:
    """A generation for every metasystem of the champion, each its own transaction: per
    controller the generation's id, ``none: <why>``, or ``failed`` (logged)."""
    version = champion_version()
    if version is None:
        return {}
    outcomes: dict[str, str] = {}
    for controller_node_id in evolution_controller_ids(genome_of(version)):
        try:
            run = evolution_generation_attempt(
                controller_node_id=controller_node_id, actor=actor, policy=policy
            )
        except (GenerationConflict, GenerationRefused) as refusal:
            outcomes[controller_node_id] = f"skipped: {refusal}"
            continue
        except Exception:
            logger.exception("evolution generation of %s failed", controller_node_id)
            outcomes[controller_node_id] = "failed"
            continue
        outcomes[controller_node_id] = (
            run.generation.id if run.generation else f"none: {_why_none(run.plan)}"
        )
    return outcomes


def _why_none(plan: GenerationPlan) -> str:
    return plan.reason or "; ".join(f"{r.operator} {r.outcome}" for r in plan.reports)


def _check_controller(genome: OrganizationalGenome, controller_node_id: str) -> None:
    node = genome.nodes.get(controller_node_id)
    if node is None:
        raise GenerationRefused(
            controller_node_id, f"{controller_node_id!r} is not a node of the champion genome"
        )
    if not node.is_metasystem:
        raise GenerationRefused(
            controller_node_id,
            f"{controller_node_id!r} is a System 1 leaf, not a metasystem: only a metasystem "
            "evolves its children",
        )


# -- reading the inputs --------------------------------------------------------------------------


def _inputs(
    controller_node_id: str,
    version: GenomeVersion,
    genome: OrganizationalGenome,
    policy: EvolutionPolicy,
) -> GenerationInputs:
    generations = EvolutionGeneration.objects.filter(controller_node_id=controller_node_id)
    latest = generations.aggregate(latest=Max("generation"))["latest"] or 0
    trials = Trial.objects.filter(controller_node_id=controller_node_id)
    return GenerationInputs(
        controller_node_id=controller_node_id,
        generation=latest + 1,
        champion=genome,
        champion_genome_id=version.id,
        queued_count=trials.filter(state=Trial.State.QUEUED).count(),
        now=timezone.now(),
        trials=_history(trials, version.id),
        traces=[
            _recent(trace)
            for trace in subtree_task_traces(
                node_id=controller_node_id, limit=policy.recent_trace_limit
            )
            # A trial's candidate did this work under its own genome: not the champion's.
            if not trace.metadata.get(TRIAL_ID)
        ],
    )


def _recent(trace: TaskTrace) -> RecentTrace:
    return RecentTrace(
        trace_id=trace.id,
        assigned_node_id=trace.assigned_node_id,
        responsible_ancestor_ids=tuple(trace.responsible_ancestor_ids),
        token_total=trace.token_total,
        score=trace_score(trace_facts(trace)),
        task_shape=task_shape({str(k): str(v) for k, v in trace.metadata.items()}),
    )


def _history(trials: QuerySet[Trial], champion_id: str) -> list[TrialRecord]:
    """The controller's latest trials, newest first, each placed against the champion's
    lineage."""
    rows = list(trials.select_related("suggestion").order_by("-queued_at")[:TRIAL_HISTORY_LIMIT])
    lineage = champion_lineage(champion_id) if rows else set()
    return [
        TrialRecord(
            trial_id=trial.id,
            state=trial.state,
            base_genome_id=trial.base_version_id,
            patch=trial.suggestion.patch if isinstance(trial.suggestion.patch, dict) else {},
            evaluation=trial.evaluation or {},
            min_traces_per_arm=trial.min_traces_per_arm,
            ended_at=trial.ended_at,
            updated_at=trial.updated_at,
            base_in_champion_lineage=trial.base_version_id in lineage,
        )
        for trial in rows
    ]


def champion_lineage(version_id: str) -> set[str]:
    """The version and every version its content descends from: parents, except that a
    rollback descends from the version it restored, not from the one it undid."""
    lineage: set[str] = set()
    current: str | None = version_id
    while current is not None and current not in lineage and len(lineage) < LINEAGE_WALK_LIMIT:
        lineage.add(current)
        row = GenomeVersion.objects.filter(id=current).values_list("parent_id", "patch").first()
        if row is None:
            break
        parent_id, patch = row
        if isinstance(patch, dict) and patch.get("kind") == "rollback":
            current = patch.get("to_version_id")
        else:
            current = parent_id
    return lineage


# -- queueing and recording ----------------------------------------------------------------------


def _queue(
    run: GenerationRun,
    offspring: Offspring,
    version: GenomeVersion,
    policy: EvolutionPolicy,
    actor: str,
    context: EventDraft,
) -> None:
    plan = run.plan
    draft = offspring.draft
    try:
        with transaction.atomic():
            trial = suggestion_queue(
                draft=draft,
                actor=actor,
                controller_node_id=plan.controller_node_id,
                event_context=context,
            )
    except SuggestionRefused as refusal:
        run.refused.append(
            {"suggestion_id": draft.id, "operator": offspring.operator, "reason": str(refusal)}
        )
        return
    if trial.base_version_id != version.id:
        # The champion moved while this generation was planned on it: start again later.
        raise GenerationConflict(
            {"champion": [f"the champion changed from {version.id} during the generation"]}
        )
    stamp = {
        "evolution_generation": plan.generation,
        "evolution_policy": policy.name,
        "evolution_operator": offspring.operator,
        "evolution_parent_trial_ids": list(offspring.parent_trial_ids),
    }
    trial.metadata = {**trial.metadata, **stamp}
    trial.save(update_fields=["metadata", "updated_at"])
    suggestion = trial.suggestion
    suggestion.metadata = {**suggestion.metadata, **stamp}
    suggestion.save(update_fields=["metadata"])
    run.trials.append(trial)


def _record(
    run: GenerationRun, generation_id: str, version: GenomeVersion, context: EventDraft
) -> EvolutionGeneration:
    plan = run.plan
    operator_of = {o.draft.id: o.operator for o in plan.offspring}
    counts: dict[str, int] = {}
    for trial in run.trials:
        counts[operator_of[trial.id]] = counts.get(operator_of[trial.id], 0) + 1
    evidence = {**plan.evidence(), "mutation_operator_counts": counts, "refused": run.refused}
    try:
        with transaction.atomic():
            generation = EvolutionGeneration.objects.create(
                id=generation_id,
                controller_node_id=plan.controller_node_id,
                generation=plan.generation,
                policy=plan.policy,
                selection_policy=SELECTION_POLICY,
                parent_trial_ids=[elite.trial_id for elite in plan.elites],
                offspring_trial_ids=[trial.id for trial in run.trials],
                operators=[report.to_json() for report in plan.reports],
                evidence=evidence,
                genome_id=version.id,
            )
    except IntegrityError as error:
        raise GenerationConflict(
            {
                "generation": [
                    f"generation {plan.generation} of {plan.controller_node_id} was recorded "
                    "by another run meanwhile"
                ]
            }
        ) from error
    ledger_record(
        dataclasses.replace(
            context,
            kind=kinds.EVOLUTION_GENERATION_CREATED,
            payload={
                "generation_id": generation.id,
                "controller_node_id": generation.controller_node_id,
                "generation": generation.generation,
                "champion_genome_id": version.id,
                "policy": generation.policy,
                "selection_policy": generation.selection_policy,
                "parent_trial_ids": generation.parent_trial_ids,
                "offspring_trial_ids": generation.offspring_trial_ids,
                "mutation_operator_counts": counts,
            },
        )
    )
    return generation
