"""Historical replay route_counterfactual_v2 (docs/rules/trials.md): each number of the rules."""

from __future__ import annotations

import pytest

from ledger.fitness import TraceFacts, trace_score
from organization.genome import (
    AddChannel,
    AddChild,
    Batch,
    ChannelConfig,
    ChannelDirection,
    LeafOperationSpec,
    NodeLifecycleStatus,
    Patch,
    SetNodeStatus,
    ViableNode,
    VsmChannelType,
    apply_patch,
    single_coder,
)
from trials.domain.selection import (
    CandidateLimits,
    ReplayInput,
    ReplayStatus,
    ReplaySummary,
    ReplayTrace,
    estimated_delta,
    patch_affected_nodes,
    replay_candidate,
    replay_task,
    unroutable_delta,
)
from workers.domain.messages import RiskClass

ROOT = "root-codebase-system"
CODER = "primary-code-service"
REVIEWER = "review-leaf"
BASE = "genome-base"


def add_reviewer() -> AddChild:
    return AddChild(
        parent_id=ROOT, child=ViableNode.leaf(REVIEWER, LeafOperationSpec.reviewer(), id=REVIEWER)
    )


def make_trace(
    trace_id: str = "t1",
    *,
    genome_id: str = BASE,
    files: tuple[str, ...] = (),
    tests: tuple[str, ...] = (),
    metadata: dict[str, str] | None = None,
    **facts: object,
) -> ReplayTrace:
    return ReplayTrace(
        id=trace_id,
        task_id=f"task-{trace_id}",
        genome_id=genome_id,
        facts=TraceFacts(
            assigned_node_id=CODER,
            files_touched_count=len(files),
            metadata=metadata or {},
            **facts,  # type: ignore[arg-type]
        ),
        files_touched=files,
        tests_run=tests,
    )


def replay_input(
    patch: Patch | None = None,
    *,
    mode: str = "direct",
    limits: CandidateLimits | None = None,
    approved: bool = False,
) -> ReplayInput:
    patch = patch or add_reviewer()
    champion = single_coder()
    return ReplayInput(
        trial_id="trial-1",
        controller_id=ROOT,
        base_genome_id=BASE,
        champion=champion,
        candidate=apply_patch(champion, patch),
        patch=patch,
        mode=mode,
        limits=limits or CandidateLimits(),
        approved=approved,
    )


def failed_trace(trace_id: str = "t1", **extra: object) -> ReplayTrace:
    """The rules page's test vector: outcome -1, merged false, one file, nothing else."""
    fields: dict[str, object] = {"outcome_score": -1.0, "merged": False, "files": ("a.py",)}
    fields.update(extra)
    return make_trace(trace_id, **fields)  # type: ignore[arg-type]


def to_reviewer(trace_id: str = "t1", **extra: object) -> ReplayTrace:
    """A failed trace whose task names the new reviewer: the candidate routes it there."""
    return failed_trace(trace_id, metadata={"task_metadata.target_child": REVIEWER}, **extra)


# -- the test vector -------------------------------------------------------------------------


def test_the_rules_test_vector_scores_minus_six_and_its_delta_is_eight_point_six():
    trace = failed_trace()
    score = trace_score(trace.facts)
    assert score == pytest.approx(-6.0)
    assert estimated_delta(trace, score) == pytest.approx(3 + 0.35 * 6 + 3 + 0.5)
    assert estimated_delta(trace, score) == pytest.approx(8.6)


def test_a_failed_trace_the_candidate_routes_to_its_new_child_adds_eight_point_six():
    summary = replay_candidate(replay_input(), [to_reviewer()])

    assert summary.eligible == 1 and summary.baseline_score == pytest.approx(-6.0)
    assert summary.candidate_route_count == 1
    assert summary.changed_route_count == 1 and summary.affected_route_count == 1
    assert summary.estimated_delta == pytest.approx(8.6)
    [evaluation] = summary.evaluations
    assert evaluation.status is ReplayStatus.AFFECTED_ROUTE
    assert (evaluation.champion_child, evaluation.candidate_child) == (CODER, REVIEWER)
    assert summary.reasons == ["trace=t1 route=review-leaf changed=true affected=true delta=8.600"]
    assert summary.as_json()["replay_score"] == 8.6


def test_an_unchanged_route_to_an_untouched_node_counts_nothing():
    summary = replay_candidate(replay_input(), [failed_trace()])

    [evaluation] = summary.evaluations
    assert evaluation.status is ReplayStatus.UNCHANGED_ROUTE
    assert evaluation.candidate_child == CODER and not evaluation.route_impacted
    assert summary.estimated_delta == 0 and not summary.informative
    assert summary.candidate_route_count == 1 and summary.affected_route_count == 0


def test_a_route_to_a_node_the_patch_touches_is_affected_even_unchanged():
    patch = SetNodeStatus(node_id=CODER, status=NodeLifecycleStatus.PROBATION)
    summary = replay_candidate(replay_input(patch), [failed_trace()])

    [evaluation] = summary.evaluations
    assert evaluation.status is ReplayStatus.AFFECTED_ROUTE and not evaluation.route_changed
    assert summary.estimated_delta == pytest.approx(8.6)


def test_a_trace_of_another_base_genome_is_skipped():
    summary = replay_candidate(replay_input(), [to_reviewer(genome_id="genome-older")])

    assert summary.base_genome_mismatch == 1 and summary.eligible == 0
    assert summary.evaluations[0].status is ReplayStatus.BASE_GENOME_MISMATCH
    assert summary.baseline_score == 0


# -- deltas ----------------------------------------------------------------------------------


def test_a_succeeded_impacted_trace_costs_the_candidate():
    trace = make_trace(outcome_score=1.0, merged=True, files=("a.py",), tests=("t",))
    score = trace_score(trace.facts)  # 1 + 10 = 11
    assert estimated_delta(trace, score) == pytest.approx(-(1.5 + 0.15 * 11) - 0.5 - 0.25)


def test_a_neither_trace_gets_a_small_delta_and_every_delta_is_clamped():
    unknown = make_trace(outcome_score=-4.0)
    assert estimated_delta(unknown, -4.0) == pytest.approx(0.8)
    assert estimated_delta(make_trace(outcome_score=2.0), 2.0) == pytest.approx(0.25)
    disaster = make_trace(
        outcome_score=-100.0, reverted=True, post_merge_regression=True, tests_passed=False
    )
    # 3 + 0.35 * 30 + 3 + 3 + 1.5 = 21 → 20
    assert estimated_delta(disaster, trace_score(disaster.facts)) == 20.0
    # succeeded at s = 100: -(1.5 + 4.5) - 0.5 - 0.25 = -6.75 (within -12)
    winner = make_trace(outcome_score=90.0, merged=True, review_passed=True, files=("a",))
    assert estimated_delta(winner, 100.0) == pytest.approx(-6.75)


def test_unroutable_deltas():
    succeeded = make_trace(outcome_score=1.0, merged=True)
    assert unroutable_delta(succeeded, 11.0, champion_routed=True) == pytest.approx(-4.2)
    assert unroutable_delta(failed_trace(), -6.0, champion_routed=True) == -1.0
    assert unroutable_delta(make_trace(), 0.0, champion_routed=True) == -0.5
    assert unroutable_delta(succeeded, 11.0, champion_routed=False) == 0.0


def test_a_candidate_that_cannot_route_loses_where_the_champion_could():
    retire = SetNodeStatus(node_id=CODER, status=NodeLifecycleStatus.RETIRED)
    succeeded = make_trace(outcome_score=1.0, merged=True)
    summary = replay_candidate(replay_input(retire), [succeeded])

    assert summary.candidate_no_route == 1 and summary.candidate_route_count == 0
    assert summary.evaluations[0].status is ReplayStatus.CANDIDATE_UNROUTABLE
    assert summary.estimated_delta == pytest.approx(-(2 + 0.2 * 11))
    assert summary.informative


# -- safety limits ---------------------------------------------------------------------------


def statuses(summary: ReplaySummary) -> list[ReplayStatus]:
    return [evaluation.status for evaluation in summary.evaluations]


def test_max_tasks_stops_the_replay_like_live_routing():
    summary = replay_candidate(
        replay_input(limits=CandidateLimits(max_tasks=1)), [to_reviewer("a"), to_reviewer("b")]
    )
    assert statuses(summary) == [ReplayStatus.AFFECTED_ROUTE, ReplayStatus.SAFETY_REJECTED]
    assert summary.evaluations[1].reason == "max tasks reached"
    assert summary.estimated_delta == pytest.approx(8.6)


def test_the_token_budget_counts_the_tokens_already_routed():
    limits = CandidateLimits(max_token_budget=150)
    traces = [to_reviewer("a", input_tokens=100), to_reviewer("b", input_tokens=100)]
    summary = replay_candidate(replay_input(limits=limits), traces)
    assert statuses(summary) == [ReplayStatus.AFFECTED_ROUTE, ReplayStatus.SAFETY_REJECTED]
    assert summary.consumed_tokens == 100


def test_files_and_task_classes_limit_the_replay():
    too_many = to_reviewer("a", files=("a", "b"))
    no_class = to_reviewer("b")
    limits = CandidateLimits(max_files_touched=1, allowed_task_classes=("code",))
    summary = replay_candidate(replay_input(limits=limits), [too_many, no_class])
    assert [e.reason for e in summary.evaluations] == [
        "too many files touched",
        "task class not allowed",
    ]


def test_requires_approval_is_checked_the_reference_skipped_it():
    limits = CandidateLimits(requires_approval=True)
    unapproved = replay_candidate(replay_input(limits=limits), [to_reviewer()])
    assert statuses(unapproved) == [ReplayStatus.SAFETY_REJECTED]
    assert unapproved.evaluations[0].reason == "approval required"

    task_approved = failed_trace(
        metadata={"task_metadata.target_child": REVIEWER, "trial_approved": "true"}
    )
    assert statuses(replay_candidate(replay_input(limits=limits), [task_approved])) == [
        ReplayStatus.AFFECTED_ROUTE
    ]
    operator_approved = replay_candidate(
        replay_input(limits=limits, approved=True), [to_reviewer()]
    )
    assert statuses(operator_approved) == [ReplayStatus.AFFECTED_ROUTE]


def test_high_risk_needs_approval_even_in_direct_mode():
    risky = failed_trace(metadata={"task_metadata.target_child": REVIEWER, "task_risk": "high"})
    summary = replay_candidate(replay_input(), [risky])
    assert summary.evaluations[0].reason == "High risk without approval"


def test_probation_needs_a_share_and_a_canary_its_bucket():
    without_share = replay_candidate(replay_input(mode="probation"), [to_reviewer()])
    assert without_share.evaluations[0].reason == "probation without a traffic share"
    full_share = CandidateLimits(traffic_share_basis_points=10_000)
    summary = replay_candidate(replay_input(mode="canary", limits=full_share), [to_reviewer()])
    assert statuses(summary) == [ReplayStatus.AFFECTED_ROUTE]
    no_share = CandidateLimits(traffic_share_basis_points=0)
    summary = replay_candidate(replay_input(mode="canary", limits=no_share), [to_reviewer()])
    assert summary.evaluations[0].reason == "exposure bucket outside the traffic share"


# -- the rebuilt task and the patch's reach -------------------------------------------------


def test_the_task_is_rebuilt_from_the_trace():
    trace = make_trace(
        files=("app/models.py",),
        tests=("tests/test_models.py",),
        metadata={
            "task_title": "Fix the model",
            "risk_class": "CRITICAL",
            "task_metadata.task_class": "code",
            "task_class": "bugfix",
            "target_child": CODER,
        },
    )
    task = replay_task(trace)
    assert (task.id, task.title, task.risk) == ("task-t1", "Fix the model", RiskClass.CRITICAL)
    assert task.goal == "Replay historical trace t1"
    assert task.scope == ["app/models.py"]
    assert task.static_predicates.likely_files == ["app/models.py"]
    assert task.static_predicates.test_targets == ["tests/test_models.py"]
    # Raw keys win over the task's copy; files touched make it a code-writing task.
    assert task.metadata == {
        "task_class": "bugfix",
        "target_child": CODER,
        "requires_code_write": "true",
    }
    bare = replay_task(make_trace("t2", metadata={"required_capability": "review"}, lines_added=3))
    assert bare.title == "replay trace t2" and bare.risk is RiskClass.MEDIUM
    assert "requires_code_write" not in bare.metadata


def test_the_nodes_a_patch_affects():
    channel = ChannelConfig(
        channel_type=VsmChannelType.AUDIT,
        from_node_id=ROOT,
        to_node_id=CODER,
        direction=ChannelDirection.PARENT_TO_CHILD,
    )
    status = SetNodeStatus(node_id=CODER, status=NodeLifecycleStatus.PROBATION)
    assert patch_affected_nodes(add_reviewer()) == {REVIEWER}
    assert patch_affected_nodes(AddChannel(channel=channel)) == {ROOT, CODER}
    assert patch_affected_nodes(Batch(patches=[add_reviewer(), status])) == {REVIEWER, CODER}


def test_at_most_sixteen_evaluations_and_eight_reasons_are_kept():
    traces = [to_reviewer(f"t{i}") for i in range(20)]
    summary = replay_candidate(replay_input(), traces)
    assert summary.trace_count == 20 and summary.affected_route_count == 20
    assert len(summary.evaluations) == 16 and len(summary.reasons) == 8
    assert summary.estimated_delta == pytest.approx(20 * 8.6)
