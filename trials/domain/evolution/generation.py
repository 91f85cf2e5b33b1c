"""One deterministic generation: capacity, elites, the operators in order, the offspring."""

from __future__ import annotations

from collections.abc import Callable

from organization.genome import (
    GenomeError,
    OrganizationalGenome,
    Patch,
    parse_patch,
    patch_to_json,
)
from trials.domain.evolution.checks import (
    Shape,
    distinct_shapes,
    signature,
    unroutable,
)
from trials.domain.evolution.elites import elite_parents
from trials.domain.evolution.model import (
    OPERATORS,
    PARSIMONY,
    PENDING_STATES,
    RETIRE,
    SUGGESTION_SOURCE,
    Elite,
    EvolutionPolicy,
    GenerationInputs,
    GenerationPlan,
    Offspring,
    OperatorReport,
)
from trials.domain.evolution.operators import (
    Proposal,
    parsimony_guardrail,
    recombine_elite_parents,
    retire_low_fitness_child,
)
from workers.domain.homeostat import (
    DEFAULT_FAILURE_METRICS,
    DEFAULT_SUCCESS_METRICS,
    GeneSuggestionDraft,
    MeasurementPlan,
    SafetyLimits,
    SuggestionSource,
    TrialMode,
)

UNROUTABLE = "no trial traffic could ever reach it"


def capacity(policy: EvolutionPolicy, queued_count: int) -> int:
    """min(population - queued, floored at 0; the most offspring per generation)."""
    return min(max(policy.population_size - queued_count, 0), policy.max_offspring_per_generation)


def plan_generation(
    inputs: GenerationInputs, policy: EvolutionPolicy | None = None
) -> GenerationPlan:
    """The generation ``inputs.generation`` of the controller: what each operator proposes,
    in order, while capacity remains. Deterministic: the same inputs give the same plan."""
    policy = policy or EvolutionPolicy()
    plan = GenerationPlan(
        controller_node_id=inputs.controller_node_id,
        generation=inputs.generation,
        policy=policy.name,
        champion_genome_id=inputs.champion_genome_id,
        capacity=capacity(policy, inputs.queued_count),
        queued_count=inputs.queued_count,
        recent_trace_count=len(inputs.traces),
    )
    controller = inputs.champion.nodes.get(inputs.controller_node_id)
    if controller is None or not controller.children:
        plan.reason = f"{inputs.controller_node_id} is not a metasystem of the champion"
        return plan
    if not controller.system_3_star.gene_suggestion_enabled:
        plan.reason = f"gene suggestions are disabled at {inputs.controller_node_id}"
        return plan
    if plan.capacity == 0:
        plan.reason = (
            f"no capacity: {inputs.queued_count} trials queued for a population of "
            f"{policy.population_size}"
        )
        return plan
    plan.elites, plan.excluded_elites = elite_parents(inputs, policy)
    shapes = distinct_shapes(trace.task_shape for trace in inputs.traces)
    known = _known(inputs)
    screen = _screen(inputs, shapes, known)
    for operator in OPERATORS:
        if len(plan.offspring) >= plan.capacity:
            plan.reports.append(
                OperatorReport(operator=operator, outcome="skipped", reason="no capacity left")
            )
            continue
        result = _run(operator, inputs, policy, plan.elites, shapes, screen)
        if isinstance(result, str):
            outcome = "dropped" if UNROUTABLE in result else "skipped"
            plan.reports.append(OperatorReport(operator=operator, outcome=outcome, reason=result))
            continue
        plan.offspring.append(_offspring(result, inputs, policy))
        known.append((signature(result.patch), f"of generation {inputs.generation}", "queued"))
        plan.reports.append(
            OperatorReport(
                operator=operator,
                outcome="produced",
                reason="; ".join(
                    [*result.evidence, *(f"passed over {note}" for note in result.passed_over)]
                ),
                parent_trial_ids=result.parent_trial_ids,
            )
        )
    return plan


def _run(
    operator: str,
    inputs: GenerationInputs,
    policy: EvolutionPolicy,
    elites: list[Elite],
    shapes: list[Shape],
    screen: Callable[[Patch, OrganizationalGenome], str | None],
) -> Proposal | str:
    if operator == PARSIMONY:
        return parsimony_guardrail(inputs, policy, screen)
    if operator == RETIRE:
        return retire_low_fitness_child(inputs, policy, shapes, screen)
    return recombine_elite_parents(inputs, elites, screen)


Known = list[tuple[frozenset[str], str, str]]


def _known(inputs: GenerationInputs) -> Known:
    """(signature, trial id, state) of each pending trial and each tried on this champion."""
    known: Known = []
    for record in inputs.trials:
        pending = record.state in PENDING_STATES
        if pending or record.base_genome_id == inputs.champion_genome_id:
            try:
                marks = signature(parse_patch(record.patch))
            except GenomeError:  # a stored patch that no longer parses compares with nothing
                continue
            known.append((marks, record.trial_id, record.state))
    return known


def _screen(
    inputs: GenerationInputs, shapes: list[Shape], known: Known
) -> Callable[[Patch, OrganizationalGenome], str | None]:
    """Refuse a proposal a pending trial already tries (this generation's offspring
    included), one a trial already tried on this champion, or one no trial traffic could
    reach."""

    def screen(patch: Patch, candidate: OrganizationalGenome) -> str | None:
        marks = signature(patch)
        for other, trial_id, state in known:
            if other == marks:
                if state in PENDING_STATES:
                    return f"trial {trial_id} ({state}) tries it already"
                return f"trial {trial_id} tried it on this champion ({state})"
        refusal = unroutable(candidate, inputs.controller_node_id, shapes)
        return None if refusal is None else f"{UNROUTABLE}: {refusal}"

    return screen


def _offspring(proposal: Proposal, inputs: GenerationInputs, policy: EvolutionPolicy) -> Offspring:
    controller = inputs.controller_node_id
    parents = ",".join(proposal.parent_trial_ids)
    draft = GeneSuggestionDraft(
        suggested_by_node_id=controller,
        target_node_id=controller,
        source=SuggestionSource.OTHER,
        other_source=SUGGESTION_SOURCE,
        patch=patch_to_json(proposal.patch),
        evidence=[
            f"evolution_generation={inputs.generation}",
            f"evolution_operator={proposal.operator}",
            f"evolution_parent_trial_ids={parents}",
            *proposal.evidence,
        ],
        hypothesis=proposal.hypothesis,
        trial_mode=TrialMode.CANARY,
        safety_limits=SafetyLimits(
            max_token_budget=policy.probation_token_budget,
            max_tasks=policy.probation_max_tasks,
            max_traffic_share_basis_points=policy.canary_traffic_share_basis_points,
        ),
        measurement_plan=MeasurementPlan(
            window_tasks=policy.measurement_window_tasks,
            success_metrics=[*DEFAULT_SUCCESS_METRICS, "marginal_subtree_fitness"],
            failure_metrics=[*DEFAULT_FAILURE_METRICS, "coordination_overhead"],
        ),
    )
    return Offspring(
        operator=proposal.operator, parent_trial_ids=proposal.parent_trial_ids, draft=draft
    )
