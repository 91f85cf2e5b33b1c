"""The deterministic evolution generation, pure: each operator's scenario with its numbers, the
three fixes over the reference kernel, and elites re-evaluated against the champion."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from organization.genome import (
    AddChild,
    AddPromptComponent,
    AddTool,
    Batch,
    LeafOperationSpec,
    ModelSpec,
    NodeLifecycleStatus,
    OrganizationalGenome,
    Patch,
    PromptComponent,
    PromptSection,
    SetNodeStatus,
    ToolSpec,
    ViableNode,
    apply_patch,
    parse_patch,
    patch_to_json,
    single_coder,
)
from trials.domain.decision import DecisionSettings, decide
from trials.domain.decision.arms import ArmSummary
from trials.domain.evolution import (
    PARSIMONY,
    PARSIMONY_TAG,
    RECOMBINE,
    RETIRE,
    UNROUTABLE,
    EvolutionPolicy,
    GenerationInputs,
    GenerationPlan,
    RecentTrace,
    TrialRecord,
    capacity,
    elite_parents,
    novel_steps,
    plan_generation,
    step_in_genome,
    task_shape,
)
from workers.domain.homeostat import SuggestionSource, TrialMode

ROOT = "root-codebase-system"
CODER = "primary-code-service"
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
CODE_TASK = {"requires_code_write": "true"}
REVIEW_TASK = {"required_capability": "review"}
_ids = itertools.count()


def leaf(name: str, spec: LeafOperationSpec) -> ViableNode:
    node = ViableNode.leaf(name, spec, id=name)
    node.model = ModelSpec(provider="echo", model="local-echo")
    return node


def with_children(*children: ViableNode) -> OrganizationalGenome:
    """The single-coder genome with more children under the root."""
    genome = single_coder()
    for child in children:
        genome = apply_patch(genome, AddChild(parent_id=ROOT, child=child))
    return genome


def two_coders() -> OrganizationalGenome:
    return with_children(leaf("second-coder", LeafOperationSpec.coding()))


def coder_and_reviewer() -> OrganizationalGenome:
    return with_children(leaf("reviewer", LeafOperationSpec.reviewer()))


def traces(
    node: str,
    count: int,
    *,
    score: float = 1.0,
    tokens: int = 100,
    shape: dict[str, str] | None = None,
) -> list[RecentTrace]:
    return [
        RecentTrace(
            trace_id=f"trace-{next(_ids)}",
            assigned_node_id=node,
            responsible_ancestor_ids=(ROOT,),
            token_total=tokens,
            score=score,
            task_shape=dict(CODE_TASK if shape is None else shape),
        )
        for _ in range(count)
    ]


def decided(
    candidate: tuple[int, int], champion: tuple[int, int], *, minimum: int = 20, breaches: int = 0
) -> dict[str, Any]:
    """The evaluation the trials service records, from the real decision rule:
    (successes, failures) per arm."""
    settings = DecisionSettings(min_traces_per_arm=minimum)
    decision = decide(
        ArmSummary(n=sum(candidate), successes=candidate[0], safety_breaches=breaches),
        ArmSummary(n=sum(champion), successes=champion[0]),
        settings,
    )
    return decision.to_json()


def tool_patch(name: str, node: str = CODER) -> dict[str, Any]:
    return patch_to_json(AddTool(node_id=node, tool=ToolSpec(name=name)))


def record(
    trial_id: str,
    patch: dict[str, Any],
    evaluation: dict[str, Any],
    *,
    state: str | None = None,
    base: str = "champion-1",
    in_lineage: bool = True,
    ended: datetime = NOW - timedelta(days=1),
    minimum: int = 20,
) -> TrialRecord:
    verdict = evaluation.get("verdict")
    return TrialRecord(
        trial_id=trial_id,
        state=state or {"promote": "promoted", "prune": "pruned"}.get(str(verdict), "pruned"),
        base_genome_id=base,
        patch=patch,
        evaluation=evaluation,
        min_traces_per_arm=minimum,
        ended_at=ended,
        updated_at=ended,
        base_in_champion_lineage=in_lineage,
    )


def inputs(
    champion: OrganizationalGenome | None = None,
    *,
    traces: list[RecentTrace] | None = None,
    trials: list[TrialRecord] | None = None,
    queued: int = 0,
    generation: int = 1,
    controller: str = ROOT,
) -> GenerationInputs:
    return GenerationInputs(
        controller_node_id=controller,
        generation=generation,
        champion=champion or single_coder(),
        champion_genome_id="champion-1",
        queued_count=queued,
        now=NOW,
        trials=trials or [],
        traces=traces or [],
    )


def report(plan: GenerationPlan, operator: str) -> tuple[str, str]:
    [found] = [r for r in plan.reports if r.operator == operator]
    return found.outcome, found.reason


def patches(plan: GenerationPlan) -> dict[str, Patch]:
    return {child.operator: parse_patch(child.draft.patch) for child in plan.offspring}


# -- policy and capacity -------------------------------------------------------------------------


def test_the_policy_defaults_are_the_rules() -> None:
    policy = EvolutionPolicy()
    assert (policy.name, policy.population_size, policy.elite_count) == (
        "system3_deterministic_ga_v1",
        6,
        4,
    )
    assert (policy.max_offspring_per_generation, policy.recent_trace_limit) == (4, 200)
    assert (policy.min_pressure_traces, policy.high_average_token_threshold) == (5, 120_000)
    assert (policy.probation_max_tasks, policy.probation_token_budget) == (10, 100_000)
    assert policy.canary_traffic_share_basis_points == 1000
    assert (policy.retirement_min_tasks, policy.retirement_average_score_below) == (5, -5.0)


@pytest.mark.parametrize(("queued", "expected"), [(0, 4), (2, 4), (3, 3), (6, 0), (9, 0)])
def test_capacity_is_the_population_left_at_most_four(queued: int, expected: int) -> None:
    assert capacity(EvolutionPolicy(), queued) == expected


def test_a_full_population_tries_no_operator() -> None:
    plan = plan_generation(inputs(traces=traces(CODER, 5, tokens=200_000), queued=6))
    assert plan.offspring == [] and plan.reports == []
    assert plan.reason == "no capacity: 6 trials queued for a population of 6"


# -- add_prompt_parsimony_guardrail --------------------------------------------------------------


def test_token_pressure_adds_a_parsimony_guardrail_to_the_controller() -> None:
    # Integer mean of 4 x 120 000 and 120 004 is 120 000: at the threshold.
    recent = traces(CODER, 4, tokens=120_000) + traces(CODER, 1, tokens=120_004)

    plan = plan_generation(inputs(traces=recent, generation=3))

    patch = patches(plan)[PARSIMONY]
    assert isinstance(patch, AddPromptComponent)
    assert (patch.node_id, patch.section) == (ROOT, PromptSection.BEHAVIOR_RULES)
    assert patch.component.id == "evolution-parsimony-3"
    assert patch.component.tags == ["evolution", PARSIMONY_TAG]
    assert (patch.component.origin.value, patch.component.active) == ("Mutation", True)
    assert "smallest task, context and authority bundle" in patch.component.text
    [child] = plan.offspring
    assert child.draft.evidence[:4] == [
        "evolution_generation=3",
        f"evolution_operator={PARSIMONY}",
        "evolution_parent_trial_ids=",
        "average_tokens=120000",
    ]


@pytest.mark.parametrize(
    ("recent", "why"),
    [
        (traces(CODER, 4, tokens=500_000), "4 recent traces, fewer than the 5 needed"),
        # 4 x 120 000 + 119 999 = 599 999; its integer mean 119 999 is below 120 000.
        (
            traces(CODER, 4, tokens=120_000) + traces(CODER, 1, tokens=119_999),
            "average tokens 119999 is below the threshold 120000",
        ),
    ],
)
def test_without_token_pressure_there_is_no_guardrail(recent: list[RecentTrace], why: str) -> None:
    plan = plan_generation(inputs(traces=recent))
    assert report(plan, PARSIMONY) == ("skipped", why)


def test_a_controller_with_an_active_guardrail_gets_no_second() -> None:
    guarded = apply_patch(
        single_coder(),
        AddPromptComponent(
            node_id=ROOT,
            section=PromptSection.NEGATIVE_CONSTRAINTS,
            component=PromptComponent(id="g", text="be brief", tags=[PARSIMONY_TAG]),
        ),
    )
    plan = plan_generation(inputs(guarded, traces=traces(CODER, 5, tokens=200_000)))
    assert report(plan, PARSIMONY) == (
        "skipped",
        f"{ROOT} already has an active parsimony guardrail",
    )


# -- retire_low_fitness_child --------------------------------------------------------------------


def test_the_worst_child_at_or_below_minus_five_over_five_tasks_is_retired() -> None:
    recent = traces(CODER, 5, score=-6.0) + traces("second-coder", 5, score=-5.5)

    plan = plan_generation(inputs(two_coders(), traces=recent))

    assert patches(plan)[RETIRE] == SetNodeStatus(node_id=CODER, status=NodeLifecycleStatus.RETIRED)
    [child] = plan.offspring
    assert child.draft.evidence[3:] == [
        f"candidate_child={CODER}",
        "child_task_count=5",
        "child_average_score=-6.000",
    ]


@pytest.mark.parametrize(
    ("genome", "recent", "why"),
    [
        (
            single_coder(),
            traces(CODER, 5, score=-9.0),
            f"{ROOT} has 1 live child(ren); retiring needs more than one",
        ),
        (two_coders(), traces(CODER, 4, score=-9.0), "no child has 5 recent traces"),
        (
            two_coders(),
            traces(CODER, 5, score=-4.9),
            f"the worst child, {CODER}, averages -4.900, above -5.0",
        ),
    ],
)
def test_no_child_is_retired_without_enough_bad_evidence(
    genome: OrganizationalGenome, recent: list[RecentTrace], why: str
) -> None:
    plan = plan_generation(inputs(genome, traces=recent))
    assert report(plan, RETIRE) == ("skipped", why)


def test_a_child_is_credited_with_the_work_of_its_whole_subtree() -> None:
    genome = two_coders()
    deep = [
        RecentTrace(
            trace_id=f"deep-{i}",
            assigned_node_id="grandchild",
            responsible_ancestor_ids=(CODER, ROOT),
            score=-7.0,
            task_shape=CODE_TASK,
        )
        for i in range(5)
    ]
    plan = plan_generation(inputs(genome, traces=deep))
    assert f"candidate_child={CODER}" in plan.offspring[0].draft.evidence


def test_the_last_child_that_can_take_a_routed_task_class_is_never_retired() -> None:
    # The coder is the worst, but the only child that can write code, and code tasks are
    # still being routed: the reference kernel would have retired it.
    recent = traces(CODER, 5, score=-8.0, shape=CODE_TASK) + traces(
        "reviewer", 5, score=1.0, shape=REVIEW_TASK
    )

    plan = plan_generation(inputs(coder_and_reviewer(), traces=recent))

    assert RETIRE not in patches(plan)
    outcome, why = report(plan, RETIRE)
    assert outcome == "skipped"
    assert (
        f"{CODER} (average -8.000): it is the last child that can take requires_code_write=true"
        in why
    )


def test_when_the_worst_child_is_needed_the_next_worst_is_retired() -> None:
    genome = with_children(
        leaf("reviewer", LeafOperationSpec.reviewer()),
        leaf("second-coder", LeafOperationSpec.coding()),
    )
    # Review tasks need the reviewer (-9); the two coders share code tasks (-6 and 0).
    recent = (
        traces("reviewer", 5, score=-9.0, shape=REVIEW_TASK)
        + traces(CODER, 5, score=-6.0)
        + traces("second-coder", 5, score=0.0)
    )

    plan = plan_generation(inputs(genome, traces=recent))

    assert patches(plan)[RETIRE] == SetNodeStatus(node_id=CODER, status=NodeLifecycleStatus.RETIRED)


# -- recombine_elite_parent_patches --------------------------------------------------------------


def test_the_first_elite_pair_whose_patches_apply_together_is_recombined() -> None:
    # Gains 0.4 (lower bound 0.118) and 0.25 (lower bound 0.110): "best" leads.
    second = record("second", tool_patch("lint"), decided((150, 50), (100, 100)))
    best = record("best", tool_patch("format"), decided((40, 10), (20, 30)))

    plan = plan_generation(inputs(trials=[second, best]))

    patch = patches(plan)[RECOMBINE]
    assert patch == Batch(
        patches=[parse_patch(tool_patch("format")), parse_patch(tool_patch("lint"))]
    )
    [child] = plan.offspring
    assert child.parent_trial_ids == ("best", "second")
    assert child.draft.evidence[2:] == [
        "evolution_parent_trial_ids=best,second",
        "left_parent=best",
        "right_parent=second",
    ]


def test_recombination_skips_patches_the_champion_already_has() -> None:
    reviewer = leaf("review-probation-leaf", LeafOperationSpec.reviewer())
    promoted_patch = patch_to_json(AddChild(parent_id=ROOT, child=reviewer))
    champion = apply_patch(single_coder(), parse_patch(promoted_patch))
    promoted = record("promoted", promoted_patch, decided((55, 5), (20, 40)))
    lint = record("lint", tool_patch("lint"), decided((40, 10), (20, 30)))
    fmt = record("fmt", tool_patch("format"), decided((150, 50), (100, 100)))

    plan = plan_generation(inputs(champion, trials=[promoted, lint, fmt]))

    # The reference tried Batch[promoted, lint] first, which fails: the node exists.
    [child] = plan.offspring
    assert child.parent_trial_ids == ("lint", "fmt")
    assert [e.trial_id for e in plan.elites] == ["promoted", "lint", "fmt"]
    outcome, why = report(plan, RECOMBINE)
    assert outcome == "produced"
    assert "passed over promoted+lint: promoted's patch is already in the champion" in why
    assert "passed over promoted+fmt: promoted's patch is already in the champion" in why


def test_a_node_with_the_same_name_under_the_same_parent_counts_as_present() -> None:
    champion = with_children(leaf("helper", LeafOperationSpec.tester()))
    again = ViableNode.leaf("helper", LeafOperationSpec.tester(), id="another-id")
    assert step_in_genome(champion, AddChild(parent_id=ROOT, child=again))
    assert not step_in_genome(champion, AddChild(parent_id=CODER, child=again))


def test_a_batch_keeps_only_the_steps_the_champion_lacks() -> None:
    champion = with_children(leaf("helper", LeafOperationSpec.tester()))
    batch = Batch(
        patches=[
            AddChild(parent_id=ROOT, child=leaf("helper", LeafOperationSpec.tester())),
            SetNodeStatus(node_id=CODER, status=NodeLifecycleStatus.ACTIVE),  # no change
            AddTool(node_id=CODER, tool=ToolSpec(name="lint")),
        ]
    )
    kept, after = novel_steps(champion, batch)
    assert kept == [AddTool(node_id=CODER, tool=ToolSpec(name="lint"))]
    assert [tool.name for tool in after.nodes[CODER].tools] == ["lint"]


def test_an_offspring_no_trial_traffic_could_reach_is_dropped() -> None:
    # Each elite retires one of the two coders; together they would leave the root with no
    # live child, so the router could never send the trial a task.
    retire_one = patch_to_json(SetNodeStatus(node_id=CODER, status=NodeLifecycleStatus.RETIRED))
    retire_two = patch_to_json(
        SetNodeStatus(node_id="second-coder", status=NodeLifecycleStatus.RETIRED)
    )
    elites = [
        record("one", retire_one, decided((40, 10), (20, 30))),
        record("two", retire_two, decided((150, 50), (100, 100))),
    ]

    plan = plan_generation(inputs(two_coders(), trials=elites, traces=traces(CODER, 3)))

    assert plan.offspring == []
    outcome, why = report(plan, RECOMBINE)
    assert outcome == "dropped"
    assert f"one+two: {UNROUTABLE}: the candidate's router finds no child of {ROOT}" in why
    assert plan.evidence()["operators"][2]["outcome"] == "dropped"


# -- elites, re-evaluated against the champion ---------------------------------------------------


def test_one_lucky_trace_does_not_make_an_elite() -> None:
    # Promoted by an operator's override after one trace (the reference ranked it on its
    # own total score); and a "promoted" record whose decision never reached the minimum.
    override = decided((1, 0), (0, 1))
    override["verdict"] = "inconclusive"
    lucky = record("lucky", tool_patch("lucky"), override, state="promoted")
    early = record("early", tool_patch("early"), decided((1, 0), (0, 1)), state="promoted")
    solid = record("solid", tool_patch("solid"), decided((40, 10), (20, 30)))

    elites, excluded = elite_parents(inputs(trials=[lucky, early, solid]), EvolutionPolicy())

    assert [elite.trial_id for elite in elites] == ["solid"]
    reasons = dict(excluded)
    assert "not decided against the champion" in reasons["lucky"]
    assert "not decided against the champion" in reasons["early"]


def test_elites_rank_by_the_lower_bound_of_their_gain_not_its_estimate() -> None:
    # 17/20 against 6/20 estimates +0.55 but its bound is +0.068; 150/200 against 100/200
    # estimates +0.25 with a bound of +0.110: the better-measured gain leads.
    streak = record("streak", tool_patch("a"), decided((17, 3), (6, 14)))
    steady = record("steady", tool_patch("b"), decided((150, 50), (100, 100)))

    elites, _ = elite_parents(inputs(trials=[streak, steady]), EvolutionPolicy())

    assert [(e.trial_id, e.gain_lower, e.gain_estimate) for e in elites] == [
        ("steady", 0.110271, 0.25),
        ("streak", 0.068402, 0.55),
    ]


def test_a_trial_pruned_for_a_safety_breach_is_never_a_parent() -> None:
    breach = record("breach", tool_patch("x"), decided((20, 0), (10, 10), breaches=1))
    elites, excluded = elite_parents(inputs(trials=[breach]), EvolutionPolicy())
    assert elites == [] and excluded == [("breach", "pruned for 1 safety breach(es)")]


def test_an_elite_off_the_champions_lineage_needs_fresh_evidence_and_a_patch_that_applies() -> None:
    evaluation = decided((40, 10), (20, 30))
    fresh = record(
        "fresh", tool_patch("a"), evaluation, in_lineage=False, ended=NOW - timedelta(days=29)
    )
    old = record(
        "old", tool_patch("b"), evaluation, in_lineage=False, ended=NOW - timedelta(days=31)
    )
    broken = record("broken", tool_patch("c", node="gone"), evaluation, in_lineage=False, ended=NOW)
    kin = record("kin", tool_patch("d"), evaluation, ended=NOW - timedelta(days=400))

    elites, excluded = elite_parents(inputs(trials=[fresh, old, broken, kin]), EvolutionPolicy())

    assert sorted(e.trial_id for e in elites) == ["fresh", "kin"]
    reasons = dict(excluded)
    assert reasons["old"].endswith("its evidence is older than 30 days")
    assert reasons["broken"].endswith("its patch no longer applies")


def test_at_most_four_elites() -> None:
    trials = [
        record(f"t{i}", tool_patch(f"tool-{i}"), decided((40, 10), (20, 30))) for i in range(5)
    ]
    elites, excluded = elite_parents(inputs(trials=trials), EvolutionPolicy())
    assert len(elites) == 4
    assert excluded == [("t4", "ranked below the best 4")]


# -- offspring, order, duplicates ----------------------------------------------------------------


def test_every_offspring_is_a_bounded_canary_of_the_controller() -> None:
    recent = traces(CODER, 5, score=-6.0, tokens=130_000) + traces(
        "second-coder", 5, tokens=130_000
    )
    plan = plan_generation(inputs(two_coders(), traces=recent))

    assert [child.operator for child in plan.offspring] == [PARSIMONY, RETIRE]
    for child in plan.offspring:
        draft = child.draft
        assert (draft.suggested_by_node_id, draft.target_node_id) == (ROOT, ROOT)
        assert (draft.source, draft.other_source) == (
            SuggestionSource.OTHER,
            "system3_evolution_generation",
        )
        assert draft.trial_mode is TrialMode.CANARY
        limits = draft.safety_limits
        assert (limits.max_tasks, limits.max_token_budget) == (10, 100_000)
        assert (limits.max_traffic_share_basis_points, limits.requires_approval) == (1000, False)
        assert draft.measurement_plan.window_tasks == 10
        assert "marginal_subtree_fitness" in draft.measurement_plan.success_metrics
        assert "coordination_overhead" in draft.measurement_plan.failure_metrics
        # No operator grows a new role.
        assert '"add_child"' not in str(draft.patch)
    assert plan.operator_counts == {PARSIMONY: 1, RETIRE: 1}


def test_operators_run_in_order_while_capacity_remains() -> None:
    recent = traces(CODER, 5, score=-6.0, tokens=130_000) + traces(
        "second-coder", 5, tokens=130_000
    )
    plan = plan_generation(inputs(two_coders(), traces=recent, queued=5))
    assert plan.capacity == 1
    assert [child.operator for child in plan.offspring] == [PARSIMONY]
    assert report(plan, RETIRE) == ("skipped", "no capacity left")


def test_a_pending_or_already_tried_offspring_is_not_proposed_again() -> None:
    recent = traces(CODER, 5, score=-6.0, tokens=130_000) + traces(
        "second-coder", 5, tokens=130_000
    )
    first = plan_generation(inputs(two_coders(), traces=recent))
    queued = [
        record(f"q{i}", child.draft.patch, {}, state="queued")
        for i, child in enumerate(first.offspring)
    ]
    queued[1] = record("q1", first.offspring[1].draft.patch, {}, state="pruned")

    second = plan_generation(inputs(two_coders(), traces=recent, trials=queued, generation=2))

    assert second.offspring == []
    assert report(second, PARSIMONY) == ("skipped", "trial q0 (queued) tries it already")
    assert "trial q1 tried it on this champion (pruned)" in report(second, RETIRE)[1]


def test_a_controller_with_gene_suggestions_disabled_gets_none() -> None:
    genome = single_coder()
    genome.nodes[ROOT].system_3_star.gene_suggestion_enabled = False
    plan = plan_generation(inputs(genome, traces=traces(CODER, 5, tokens=200_000)))
    assert plan.offspring == [] and plan.reason == f"gene suggestions are disabled at {ROOT}"


def test_the_same_inputs_give_the_same_generation() -> None:
    recent = traces(CODER, 5, score=-6.0, tokens=130_000) + traces(
        "second-coder", 5, tokens=130_000
    )
    trials = [
        record("a", tool_patch("a"), decided((40, 10), (20, 30))),
        record("b", tool_patch("b"), decided((150, 50), (100, 100))),
    ]
    one = plan_generation(inputs(two_coders(), traces=recent, trials=trials))
    two = plan_generation(inputs(two_coders(), traces=recent, trials=trials))
    assert [c.draft.patch for c in one.offspring] == [c.draft.patch for c in two.offspring]
    assert one.evidence() == two.evidence()
    assert len(one.offspring) == 3


def test_the_task_shape_is_read_from_the_trace_or_its_copy_of_the_task() -> None:
    metadata = {
        "task_metadata.requires_code_write": "true",
        "task_class": "code",
        "task_metadata.task_class": "ignored",
        "provider": "echo",
    }
    assert task_shape(metadata) == {"requires_code_write": "true", "task_class": "code"}
