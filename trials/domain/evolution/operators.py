"""The generation's three operators, in the order they are tried (pure, no Django).

Each returns one :class:`Proposal` (a patch, its parents, its evidence) or the reason it
proposes nothing. None proposes a new semantic role (no reviewer or tester growth).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations

from organization.genome import (
    AddPromptComponent,
    Batch,
    GenomeError,
    NodeLifecycleStatus,
    OrganizationalGenome,
    Patch,
    PromptComponent,
    PromptOrigin,
    PromptSection,
    SetNodeStatus,
    apply_patch,
    parse_patch,
)
from trials.domain.evolution.checks import (
    PARSIMONY_TAG,
    Shape,
    describe_shape,
    has_parsimony_guardrail,
    joined,
    novel_steps,
    stranded_shapes,
)
from trials.domain.evolution.model import (
    PARSIMONY,
    PROMOTED,
    RECOMBINE,
    RETIRE,
    Elite,
    EvolutionPolicy,
    GenerationInputs,
    RecentTrace,
)

PARSIMONY_TEXT = (
    "Prefer the smallest task, context and authority bundle that can succeed; split a task or "
    "retrieve more context only when the expected reliability gain exceeds the added "
    "coordination and token cost."
)


@dataclass(frozen=True, kw_only=True)
class Proposal:
    operator: str
    patch: Patch
    candidate: OrganizationalGenome  # the champion with the patch applied
    evidence: tuple[str, ...]
    hypothesis: str
    parent_trial_ids: tuple[str, ...] = ()
    passed_over: tuple[str, ...] = ()  # what the operator considered before this, and why not


# The checks every proposal passes before it is an offspring (not a duplicate of a pending or
# tried trial, reachable by trial traffic): None, or why it fails. The generation supplies it.
Screen = Callable[[Patch, OrganizationalGenome], str | None]


def parsimony_guardrail(
    inputs: GenerationInputs, policy: EvolutionPolicy, screen: Screen
) -> Proposal | str:
    """Token pressure: enough recent traces whose integer mean token total reaches the
    threshold, and no active guardrail on the controller → add one as a behaviour rule."""
    traces = inputs.traces
    if len(traces) < policy.min_pressure_traces:
        return f"{len(traces)} recent traces, fewer than the {policy.min_pressure_traces} needed"
    average = sum(trace.token_total for trace in traces) // len(traces)
    if average < policy.high_average_token_threshold:
        return (
            f"average tokens {average} is below the threshold {policy.high_average_token_threshold}"
        )
    controller = inputs.controller_node_id
    if has_parsimony_guardrail(inputs.champion.node(controller)):
        return f"{controller} already has an active parsimony guardrail"
    patch = AddPromptComponent(
        node_id=controller,
        section=PromptSection.BEHAVIOR_RULES,
        component=PromptComponent(
            id=f"evolution-parsimony-{inputs.generation}",
            text=PARSIMONY_TEXT,
            tags=["evolution", PARSIMONY_TAG],
            origin=PromptOrigin.MUTATION,
            active=True,
        ),
    )
    candidate = apply_patch(inputs.champion, patch)
    refusal = screen(patch, candidate)
    if refusal is not None:
        return refusal
    return Proposal(
        operator=PARSIMONY,
        patch=patch,
        candidate=candidate,
        evidence=(f"average_tokens={average}", f"trace_count={len(traces)}"),
        hypothesis=(
            f"Recent work under {controller} averages {average} tokens per task; a parsimony "
            "guardrail should cut token cost without losing accepted work."
        ),
    )


def child_of(trace: RecentTrace, children: Sequence[str]) -> str | None:
    """The controller's direct child whose subtree did the trace's work, if any."""
    wanted = set(children)
    for node_id in (trace.assigned_node_id, *trace.responsible_ancestor_ids):
        if node_id in wanted:
            return node_id
    return None


def child_scores(inputs: GenerationInputs, live: Sequence[str]) -> dict[str, tuple[int, float]]:
    """(trace count, mean score) per live child, over the recent traces of its subtree."""
    totals: dict[str, list[float]] = {child: [] for child in live}
    for trace in inputs.traces:
        child = child_of(trace, live)
        if child is not None:
            totals[child].append(trace.score)
    return {child: (len(s), sum(s) / len(s)) for child, s in totals.items() if s}


def retire_low_fitness_child(
    inputs: GenerationInputs, policy: EvolutionPolicy, shapes: Sequence[Shape], screen: Screen
) -> Proposal | str:
    """The worst child by mean score over at least ``retirement_min_tasks`` recent traces,
    at or below the threshold, set Retired; never the last child that can take a task shape
    the controller still routes (then the next worst is considered)."""
    champion, controller = inputs.champion, inputs.controller_node_id
    live = [
        child
        for child in champion.node(controller).children
        if champion.nodes[child].status is not NodeLifecycleStatus.RETIRED
    ]
    if len(live) < 2:
        return f"{controller} has {len(live)} live child(ren); retiring needs more than one"
    scores = child_scores(inputs, live)
    counted = {c: s for c, s in scores.items() if s[0] >= policy.retirement_min_tasks}
    low = sorted(
        (mean, live.index(child), child, count)
        for child, (count, mean) in counted.items()
        if mean <= policy.retirement_average_score_below
    )
    if not low:
        if not counted:
            return f"no child has {policy.retirement_min_tasks} recent traces"
        worst_mean, worst = min((mean, child) for child, (_, mean) in counted.items())
        return (
            f"the worst child, {worst}, averages {worst_mean:.3f}, above "
            f"{policy.retirement_average_score_below}"
        )
    refusals = []
    for mean, _, child, count in low:
        patch = SetNodeStatus(node_id=child, status=NodeLifecycleStatus.RETIRED)
        candidate = apply_patch(champion, patch)
        stranded = stranded_shapes(champion, candidate, controller, shapes)
        refusal = (
            f"it is the last child that can take {describe_shape(stranded[0])}"
            if stranded
            else screen(patch, candidate)
        )
        if refusal is not None:
            refusals.append(f"{child} (average {mean:.3f}): {refusal}")
            continue
        return Proposal(
            passed_over=tuple(refusals),
            operator=RETIRE,
            patch=patch,
            candidate=candidate,
            evidence=(
                f"candidate_child={child}",
                f"child_task_count={count}",
                f"child_average_score={mean:.3f}",
            ),
            hypothesis=(
                f"{child} averages {mean:.3f} over its last {count} tasks; retiring it should "
                f"raise the fitness of {controller}'s subtree."
            ),
        )
    return "no low-fitness child can be retired: " + "; ".join(refusals)


def recombine_elite_parents(
    inputs: GenerationInputs, elites: Sequence[Elite], screen: Screen
) -> Proposal | str:
    """For elite pairs (i < j) in rank order, the first batch of both parents' patches that
    applies cleanly to the champion, leaving out steps the champion already has; a pair
    where either parent would add nothing new is not a recombination.

    Only promoted elites are parents: a pruned trial measured a loss (or broke a guardrail),
    and a batch carrying its patch brings the loss back (the reference recombined pruned
    trials above all, since the promoted ones were already in the champion)."""
    pruned = [elite.trial_id[:8] for elite in elites if elite.state != PROMOTED]
    parents = [elite for elite in elites if elite.state == PROMOTED]
    if len(parents) < 2:
        left_out = f" ({', '.join(pruned)} pruned: a loss is not a parent)" if pruned else ""
        return f"{len(parents)} promoted elite parent(s){left_out}; recombination needs two"
    skipped = []
    for left, right in combinations(parents, 2):
        pair = f"{left.trial_id[:8]}+{right.trial_id[:8]}"
        try:
            left_steps, after_left = novel_steps(inputs.champion, parse_patch(left.patch))
            right_steps, _ = novel_steps(after_left, parse_patch(right.patch))
        except GenomeError as error:
            skipped.append(f"{pair}: does not apply ({error})")
            continue
        if not left_steps or not right_steps:
            which = left if not left_steps else right
            skipped.append(f"{pair}: {which.trial_id[:8]}'s patch is already in the champion")
            continue
        patch = Batch(patches=[joined(left_steps), joined(right_steps)])
        try:
            candidate = apply_patch(inputs.champion, patch)
        except GenomeError as error:
            skipped.append(f"{pair}: does not apply ({error})")
            continue
        refusal = screen(patch, candidate)
        if refusal is not None:
            skipped.append(f"{pair}: {refusal}")
            continue
        return Proposal(
            operator=RECOMBINE,
            patch=patch,
            candidate=candidate,
            evidence=(f"left_parent={left.trial_id}", f"right_parent={right.trial_id}"),
            hypothesis=(
                f"Trials {left.trial_id} and {right.trial_id} each measured a gain over the "
                "champion; together their patches may keep both."
            ),
            parent_trial_ids=(left.trial_id, right.trial_id),
            passed_over=tuple(skipped),
        )
    return "no pair recombines: " + "; ".join(skipped)
