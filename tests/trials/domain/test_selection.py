"""Objectives, the Pareto frontier, the selection score and environment pressure
(docs/rules/trials.md): every number of the rules, and the reference's scenarios."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from organization.genome import (
    AddChannel,
    AddChild,
    AddPromptComponent,
    AddTool,
    Batch,
    ChannelConfig,
    ChannelDirection,
    LeafOperationSpec,
    NodeLifecycleStatus,
    Patch,
    PromoteLeafToMetasystem,
    PromptComponent,
    PromptSection,
    RemoveChannel,
    RemovePromptComponent,
    RemoveSubtree,
    RemoveTool,
    SetNodeStatus,
    ToolSpec,
    ViableNode,
    VsmChannelType,
)
from trials.domain.selection import (
    ArchiveStatus,
    Candidate,
    CandidateEvaluation,
    CandidateLimits,
    CompletedTrial,
    History,
    Objectives,
    Pressure,
    ReplaySummary,
    choose,
    complexity_cost,
    dominates,
    evaluate_candidate,
    exposure_cost,
    history_adjustments,
    node_cost,
    pareto_frontier,
    safety,
)

ROOT = "root-codebase-system"
NO_REPLAY = ReplaySummary()
BOUNDED_CANARY = CandidateLimits(
    max_tasks=10, max_token_budget=100_000, traffic_share_basis_points=1000
)


def reviewer_patch() -> AddChild:
    return AddChild(
        parent_id=ROOT, child=ViableNode.leaf("rev", LeafOperationSpec.reviewer(), id="rev")
    )


def candidate(
    trial_id: str = "c",
    *,
    source: str = "System3StarAudit",
    mode: str = "canary",
    evidence: int = 1,
    limits: CandidateLimits = BOUNDED_CANARY,
    priority: float = 0.0,
    penalty: float = 0.0,
) -> Candidate:
    return Candidate(
        trial_id=trial_id,
        source=source,
        mode=mode,
        evidence_count=evidence,
        limits=limits,
        patch=reviewer_patch(),
        patch_kind="add_child",
        selection_priority=priority,
        selection_penalty=penalty,
    )


def evaluate(
    c: Candidate, history: History | None = None, pressure: Pressure | None = None
) -> CandidateEvaluation:
    return evaluate_candidate(
        c, history=history or History(), replay=NO_REPLAY, pressure=pressure or Pressure()
    )


def objectives(**values: float) -> Objectives:
    base = dict.fromkeys(("expected_value", "safety", "historical_fit", "replay_fit"), 0.0)
    base |= {"complexity_cost": 0.0, "exposure_cost": 0.0}
    return Objectives(**(base | values))


# -- building blocks and objectives ---------------------------------------------------------


def test_an_algedonic_bounded_canary_scores_by_the_rules():
    evaluation = evaluate(candidate(source="AlgedonicSignal", evidence=3))
    # 30 source + 6 evidence; 20 mode + 10 (≤ 10 tasks) + 4 budget + (10000 - 1000) / 500
    assert evaluation.objectives.expected_value == 36
    assert evaluation.objectives.safety == 52
    # add_child: 10 + node cost 1
    assert evaluation.objectives.complexity_cost == 11
    # 1000 / 100 + 10 (no approval)
    assert evaluation.objectives.exposure_cost == 20
    assert evaluation.score == 30 + 20 + 6 + 8 + 4 + 10
    assert evaluation.reasons == (
        "source=algedonic_signal:+30.0",
        "mode=canary:+20.0",
        "evidence_count=3:+6.0",
        "max_tasks=10:+8.0",
        "max_token_budget=100000:+4.0",
        "traffic_share_basis_points=1000:+10.0",
    )


def test_evidence_counts_to_ten():
    assert evaluate(candidate(evidence=25)).objectives.expected_value == 24 + 20


def test_an_unbounded_direct_candidate_is_penalised_twice():
    manual = candidate(source="Operator", mode="direct", limits=CandidateLimits())
    evaluation = evaluate(manual)
    assert safety(manual) == 5 - 30
    assert exposure_cost(manual) == 100 + 20 + 10 + 10
    assert evaluation.objectives.expected_value == 5 + 2
    assert evaluation.score == 5 + 5 + 2 - 20
    assert evaluation.reasons[0] == "source=other:Operator:+5.0"
    assert evaluation.reasons[-1] == "unbounded_direct_penalty:-20.0"


def test_safety_and_exposure_of_every_limit():
    everything = CandidateLimits(
        requires_approval=True,
        max_tasks=50,
        max_token_budget=1,
        max_files_touched=3,
        traffic_share_basis_points=2500,
        allowed_task_classes=("code", "docs"),
    )
    probation = candidate(mode="probation", limits=everything)
    assert safety(probation) == 15 + 10 + 6 + 5 + 4 + 4 + 15
    assert exposure_cost(probation) == 25
    assert safety(candidate(limits=CandidateLimits(max_tasks=51))) == 20 + 1
    assert exposure_cost(candidate(mode="probation", limits=CandidateLimits())) == 140
    shadow = candidate(mode="shadow", limits=CandidateLimits())
    assert exposure_cost(shadow) == 0 + 20 + 10  # no approval term for Shadow
    score = evaluate(probation).score
    # 24 + 15 + 2 + 5 approval + 5 classes + 4 (≤ 50 tasks) + 4 + 4 + 6 (≤ 2500)
    assert score == 24 + 15 + 2 + 5 + 5 + 4 + 4 + 4 + 6
    share_over = candidate(limits=CandidateLimits(traffic_share_basis_points=20_000))
    assert "traffic_share_basis_points=20000" not in " ".join(evaluate(share_over).reasons)
    assert exposure_cost(share_over) == 100 + 20 + 10 + 10


def test_complexity_cost_of_every_patch_kind():
    node = ViableNode.leaf("big", LeafOperationSpec.coding(), id="big")
    node.tools = [ToolSpec(name="git", permissions=["read"]), ToolSpec(name="sh")]
    node.prompt.behavior_rules = [PromptComponent(text="be careful")]
    node.prompt.output_contract = PromptComponent(text="json")
    node.permissions.allowed_paths = ["src/"]
    node.permissions.denied_tools = ["rm"]
    assert node_cost(node) == 1 + 4 + 2 + 1
    channel = ChannelConfig(
        channel_type=VsmChannelType.AUDIT, direction=ChannelDirection.PARENT_TO_CHILD
    )
    component = PromptComponent(text="x" * 1000)
    status = SetNodeStatus(node_id="n", status=NodeLifecycleStatus.RETIRED)
    costs: list[tuple[Patch, float]] = [
        (AddChild(parent_id=ROOT, child=node), 18),
        (PromoteLeafToMetasystem(node_id="n", extracted_child_name="e"), 15),
        (RemoveSubtree(node_id="n"), 4),
        (AddChannel(channel=channel), 6),
        (RemoveChannel(channel_id="c"), 2),
        (
            AddPromptComponent(
                node_id="n", section=PromptSection.BEHAVIOR_RULES, component=component
            ),
            4,
        ),
        (RemovePromptComponent(node_id="n", component_id="p"), 1),
        (AddTool(node_id="n", tool=ToolSpec(name="t", permissions=["a", "b"])), 6),
        (RemoveTool(node_id="n", tool_name="t"), 1),
        (status, 1),
        (Batch(patches=[status, RemoveSubtree(node_id="m")]), 1 + 4 + 2),
    ]
    for patch, cost in costs:
        assert complexity_cost(patch) == cost, patch


# -- history ---------------------------------------------------------------------------------


def ended(
    trial_id: str,
    score: float | None,
    *,
    source: str = "System3StarAudit",
    outcome: str = "pruned",
    mode: str = "canary",
    kind: str = "add_child",
) -> CompletedTrial:
    return CompletedTrial(
        trial_id=trial_id,
        source=source,
        mode=mode,
        patch_kind=kind,
        outcome=outcome,
        realised_score=score,
    )


def test_history_adjustments_weigh_same_source_mode_and_patch():
    history = History(
        trials=(
            ended("a", -6.0),
            ended("b", -10.0),
            ended("c", 10.0, source="System2CoordinationSignal", outcome="promoted"),
            ended("d", 50.0, mode="direct", kind="remove_tool", source="Other"),
            # Neither a rejection nor a trial without traces is a realised result.
            ended("e", -99.0, outcome="rejected"),
            ended("f", None, outcome="pruned"),
        )
    )
    audit = {a.name: a for a in history_adjustments(candidate(), history)}
    assert audit["same_source"].value == pytest.approx(-8.0)
    assert audit["same_mode"].value == pytest.approx(-2.0 * 0.75)
    assert audit["same_patch"].value == pytest.approx(-2.0 * 1.25)
    assert audit["same_source"].label == "history_same_source_avg=-8.000_n=2"
    # A mean of 50 is clamped to 20 before its weight.
    direct = history_adjustments(replace(candidate(), mode="direct", source="X"), history)
    assert [a.value for a in direct if a.name == "same_mode"] == [20 * 0.75]
    assert [a.name for a in direct] == ["same_mode", "same_patch"]  # no source matched


def test_completed_trial_history_turns_the_choice():
    """Without history the audit dominates the coordination signal; after its pruned trials
    (realised -6 and -10) and the coordination signal's promoted one (+10) the order flips."""
    audit = candidate("audit")
    coordination = candidate("coordination", source="System2CoordinationSignal")
    fresh = choose([evaluate(audit), evaluate(coordination)])
    assert fresh.picked is not None and fresh.picked.candidate.trial_id == "audit"
    assert fresh.statuses == (ArchiveStatus.SELECTED_FOR_TRIAL, ArchiveStatus.DOMINATED)

    history = History(
        trials=(
            ended("a", -6.0),
            ended("b", -10.0),
            ended("c", 10.0, source="System2CoordinationSignal", outcome="promoted"),
        )
    )
    evaluations = [evaluate(audit, history), evaluate(coordination, history)]
    # historical fit: -8 - 1.5 - 2.5 = -12 against 10 - 1.5 - 2.5 = 6
    assert [e.objectives.historical_fit for e in evaluations] == [-12.0, 6.0]
    assert [e.objectives.expected_value for e in evaluations] == [26 - 12, 12 + 6]
    taught = choose(evaluations)
    assert taught.picked is not None and taught.picked.candidate.trial_id == "coordination"
    assert "history_same_source_avg=10.000_n=1:+10.0" in taught.picked.reasons


# -- dominance and the frontier -------------------------------------------------------------


def test_dominance_needs_no_worse_everywhere_and_better_somewhere():
    a = objectives(expected_value=2, complexity_cost=1)
    assert dominates(a, objectives(expected_value=1, complexity_cost=1))
    assert dominates(a, objectives(expected_value=2, complexity_cost=2))  # a cost is minimised
    assert not dominates(a, a)
    assert not dominates(a, objectives(expected_value=1, complexity_cost=0))
    assert pareto_frontier([a, objectives(expected_value=1, complexity_cost=0), a]) == [0, 1, 2]
    assert pareto_frontier([objectives(safety=1), objectives()]) == [0]


finite = st.floats(min_value=-100, max_value=100, allow_nan=False)
points = st.builds(
    Objectives,
    expected_value=finite,
    safety=finite,
    historical_fit=finite,
    replay_fit=finite,
    complexity_cost=finite,
    exposure_cost=finite,
)


@given(st.lists(points, min_size=1, max_size=8))
def test_the_frontier_is_never_empty_and_no_member_is_dominated(population):
    frontier = pareto_frontier(population)
    assert frontier
    for index, point in enumerate(population):
        dominated = any(dominates(other, point) for other in population)
        assert (index in frontier) is not dominated


# -- the reference's scenarios ---------------------------------------------------------------


def test_a_later_bounded_algedonic_canary_beats_an_earlier_manual_direct():
    manual = candidate("manual", source="Operator", mode="direct", limits=CandidateLimits())
    algedonic = candidate("algedonic", source="AlgedonicSignal")
    selection = choose([evaluate(manual), evaluate(algedonic)])

    assert selection.picked is not None and selection.picked.candidate.trial_id == "algedonic"
    assert selection.picked.score == 74
    assert selection.frontier_size == 1
    assert selection.status_of("manual") is ArchiveStatus.DOMINATED


def test_a_dominated_candidate_loses_even_with_selection_priority_1000():
    favourite = candidate(
        "favourite", source="Operator", mode="direct", limits=CandidateLimits(), priority=1000
    )
    algedonic = candidate("algedonic", source="AlgedonicSignal")
    evaluations = [evaluate(favourite), evaluate(algedonic)]
    assert evaluations[0].score == pytest.approx(-8 + 1000)
    assert "selection_priority:+1000.0" in evaluations[0].reasons

    selection = choose(evaluations)

    assert selection.picked is not None and selection.picked.candidate.trial_id == "algedonic"
    assert selection.statuses == (ArchiveStatus.DOMINATED, ArchiveStatus.SELECTED_FOR_TRIAL)


def test_within_the_frontier_the_score_breaks_ties_then_the_queue_order():
    # Equal candidates: both on the frontier, the oldest wins.
    tie = choose([evaluate(candidate("old")), evaluate(candidate("new"))])
    assert tie.picked is not None and tie.picked.candidate.trial_id == "old"
    assert tie.frontier_size == 2
    assert tie.statuses == (ArchiveStatus.SELECTED_FOR_TRIAL, ArchiveStatus.PARETO_FRONTIER)
    # A priority moves a frontier member ahead; a penalty moves it back.
    pushed = choose([evaluate(candidate("old")), evaluate(candidate("new", priority=0.5))])
    assert pushed.picked is not None and pushed.picked.candidate.trial_id == "new"
    held = choose([evaluate(candidate("old", penalty=1)), evaluate(candidate("new"))])
    assert held.picked is not None and held.picked.candidate.trial_id == "new"
    assert "selection_penalty:-1.0" in held.evaluations[0].reasons


def test_an_operator_named_candidate_is_picked_and_the_rest_still_classified():
    manual = candidate("manual", source="Operator", mode="direct", limits=CandidateLimits())
    algedonic = candidate("algedonic", source="AlgedonicSignal")
    selection = choose([evaluate(manual), evaluate(algedonic)], named_trial_id="manual")
    assert selection.picked is not None and selection.picked.candidate.trial_id == "manual"
    assert selection.statuses == (ArchiveStatus.SELECTED_FOR_TRIAL, ArchiveStatus.PARETO_FRONTIER)


def test_future_probe_opportunity_pressure_favours_the_probe():
    audit = candidate("audit")
    probe = candidate("probe", source="System4FutureProbe")
    calm = choose([evaluate(audit), evaluate(probe)])
    assert calm.picked is not None and calm.picked.candidate.trial_id == "audit"

    pressure = Pressure(opportunity=20.0)
    evaluations = [evaluate(audit, pressure=pressure), evaluate(probe, pressure=pressure)]
    # Bonuses: audit 20 * 0.9 * 0.35 = 6.3; probe min(20 * 0.9 * 1.0, 16) = 16.
    assert [e.score for e in evaluations] == [pytest.approx(68 + 6.3), pytest.approx(62 + 16)]
    assert [e.objectives.expected_value for e in evaluations] == [
        pytest.approx(26 + 6.3),
        pytest.approx(20 + 16),
    ]
    assert "environment_opportunity_pressure=20.000:+16.0" in evaluations[1].reasons
    pressed = choose(evaluations)
    assert pressed.picked is not None and pressed.picked.candidate.trial_id == "probe"
    assert pressed.status_of("audit") is ArchiveStatus.DOMINATED


def test_risk_pressure_favours_the_algedonic_candidate_and_bounded_safety():
    algedonic = candidate("algedonic", source="AlgedonicSignal", evidence=0)
    probe = candidate("probe", source="System4FutureProbe", evidence=10)
    calm = choose([evaluate(algedonic), evaluate(probe)])
    assert calm.picked is not None and calm.picked.candidate.trial_id == "probe"

    pressure = Pressure(risk=20.0)
    evaluations = [evaluate(algedonic, pressure=pressure), evaluate(probe, pressure=pressure)]
    # Risk bonus: min(20 * 0.8 * 1.0, 18) = 16 against 20 * 0.8 * 0.25 = 4; both bounded,
    # so both gain min(0.3 * 20, 8) = 6 safety.
    assert [e.objectives.expected_value for e in evaluations] == [30 + 16, 38 + 4]
    assert [e.objectives.safety for e in evaluations] == [52 + 6, 52 + 6]
    assert [e.score for e in evaluations] == [72 + 16 + 6, 80 + 4 + 6]
    assert "environment_bounded_safety_bonus=6.000:+6.0" in evaluations[0].reasons
    pressed = choose(evaluations)
    assert pressed.picked is not None and pressed.picked.candidate.trial_id == "algedonic"


def test_pressure_bonuses_are_capped_and_safety_rewards_only_the_bounded():
    unbounded = candidate(source="Other", mode="direct", limits=CandidateLimits())
    evaluation = evaluate(
        unbounded, pressure=Pressure(risk=100.0, opportunity=100.0, feedback=100.0)
    )
    plain = evaluate(unbounded)
    # Other: risk min(100 * 0.8 * 0.2, 18) = 16; opportunity capped at 16; feedback at 8.
    assert evaluation.objectives.expected_value - plain.objectives.expected_value == 16 + 16 + 8
    assert evaluation.objectives.safety == plain.objectives.safety
    assert not any("bounded_safety" in reason for reason in evaluation.reasons)
    bargain = candidate(source="System1ResourceBargain")
    feedback = evaluate(bargain, pressure=Pressure(feedback=10.0))
    assert feedback.score - evaluate(bargain).score == pytest.approx(10 * 0.4 * 0.75)


def test_replay_evidence_enters_the_objectives_and_the_score():
    replay = ReplaySummary(affected_route_count=2, estimated_delta=50.0)
    evaluation = evaluate_candidate(candidate(), history=History(), replay=replay)
    assert evaluation.objectives.replay_fit == 50 + 2
    assert evaluation.objectives.expected_value == 24 + 2 + 52
    assert evaluation.reasons[-1] == (
        "historical_replay_score=50.000_affected_routes=2_candidate_no_route=0:+40.0"
    )
    huge = ReplaySummary(affected_route_count=1, estimated_delta=500.0)
    assert (
        evaluate_candidate(candidate(), history=History(), replay=huge).objectives.replay_fit == 61
    )
    loss = ReplaySummary(candidate_no_route=3, estimated_delta=-90.0)
    evaluation = evaluate_candidate(candidate(), history=History(), replay=loss)
    assert evaluation.objectives.replay_fit == -40
    assert evaluation.score == 68 - 20
