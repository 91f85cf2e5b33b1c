"""Trial routing's pure rules: exposure buckets, the six checks, tags and shadow results."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from organization.genome import templates
from workers.domain.messages import RiskClass, TaskPacket
from workers.domain.trial_routing import (
    RouteRole,
    TrialMode,
    TrialPolicy,
    candidate_controller_refusal,
    control_refusal,
    exposure_bucket,
    is_shadow_result,
    related_suggestion,
    shadow_refusal,
    task_approved,
    trial_tags,
    without_trial_tags,
)

TRIAL = "s-1"


def policy(mode: TrialMode = TrialMode.CANARY, **limits: object) -> TrialPolicy:
    return TrialPolicy(
        trial_id=TRIAL,
        controller_node_id="root",
        candidate_genome_id="candidate",
        base_genome_id="base",
        mode=mode,
        **limits,  # type: ignore[arg-type]
    )


def task(risk: RiskClass = RiskClass.MEDIUM, **metadata: str) -> TaskPacket:
    return TaskPacket(id="task-1", title="t", risk=risk, metadata=metadata)


@pytest.mark.parametrize(
    ("task_id", "suggestion_id", "bucket"),
    [
        ("task-1", "suggestion-1", 5314),
        ("a", "b", 7904),
        (
            "00000000-0000-0000-0000-000000000001",
            "00000000-0000-0000-0000-000000000002",
            7822,
        ),
        ("", "", 8189),
    ],
)
def test_exposure_buckets_match_the_reference_vectors(
    task_id: str, suggestion_id: str, bucket: int
) -> None:
    assert exposure_bucket(task_id, suggestion_id) == bucket


@given(st.text(), st.text())
def test_every_bucket_is_below_ten_thousand(task_id: str, suggestion_id: str) -> None:
    assert 0 <= exposure_bucket(task_id, suggestion_id) < 10_000


@given(st.text(min_size=1), st.sampled_from([TrialMode.CANARY, TrialMode.PROBATION]))
def test_a_share_of_zero_never_passes_and_ten_thousand_always_does(
    task_id: str, mode: TrialMode
) -> None:
    packet = TaskPacket(id=task_id, title="t")
    assert control_refusal(policy(mode, traffic_share_basis_points=0), packet) is not None
    assert control_refusal(policy(mode, traffic_share_basis_points=10_000), packet) is None
    assert control_refusal(policy(mode, traffic_share_basis_points=50_000), packet) is None


def test_the_share_is_compared_with_the_bucket() -> None:
    # task-1 with s-1 falls in one fixed bucket; a share just above it passes, at it fails.
    bucket = exposure_bucket("task-1", TRIAL)
    assert control_refusal(policy(traffic_share_basis_points=bucket + 1), task()) is None
    refusal = control_refusal(policy(traffic_share_basis_points=bucket), task())
    assert refusal == (
        f"exposure bucket {bucket} is outside the traffic share of {bucket} basis points"
    )


def test_probation_without_a_share_needs_approval() -> None:
    probation = policy(TrialMode.PROBATION)
    assert control_refusal(probation, task()) == (
        "probation trial without a traffic share needs approval"
    )
    assert control_refusal(probation, task(trial_approved="true")) is None
    assert control_refusal(probation, task(trial_approved=TRIAL)) is None
    assert control_refusal(probation, task(trial_approved="another-suggestion")) is not None
    # An operator's approval of the trial opens its gate, not its exposure.
    assert control_refusal(dataclasses.replace(probation, approved=True), task()) == (
        "probation trial without a traffic share needs approval"
    )


def test_a_task_is_approved_by_true_or_the_suggestion_id() -> None:
    assert task_approved({"trial_approved": "true"}, policy())
    assert task_approved({"trial_approved": TRIAL}, policy())
    assert not task_approved({"trial_approved": "yes"}, policy())
    assert not task_approved({}, policy())
    assert not task_approved({}, policy(approved=True))


def test_a_trial_that_requires_approval_refuses_unapproved_tasks_even_in_direct_mode() -> None:
    direct = policy(TrialMode.DIRECT, requires_approval=True)
    assert control_refusal(direct, task()) == (
        "the trial requires approval: neither the task nor an operator gave it"
    )
    assert control_refusal(direct, task(trial_approved="true")) is None
    assert control_refusal(dataclasses.replace(direct, approved=True), task()) is None


def test_an_operator_approved_canary_still_routes_only_its_share() -> None:
    canary = policy(
        TrialMode.CANARY, requires_approval=True, traffic_share_basis_points=0, approved=True
    )
    assert control_refusal(canary, task()) is not None
    full = dataclasses.replace(canary, traffic_share_basis_points=10_000)
    assert control_refusal(full, task()) is None
    assert control_refusal(full, task(RiskClass.HIGH)) == "High risk needs approval"


def test_direct_passes_without_a_share() -> None:
    assert control_refusal(policy(TrialMode.DIRECT), task()) is None


@pytest.mark.parametrize("risk", [RiskClass.HIGH, RiskClass.CRITICAL])
def test_high_and_critical_risk_need_approval_whatever_the_share(risk: RiskClass) -> None:
    canary = policy(traffic_share_basis_points=10_000)
    assert control_refusal(canary, task(risk)) == f"{risk.value} risk needs approval"
    assert control_refusal(policy(TrialMode.DIRECT), task(risk)) is not None
    assert control_refusal(canary, task(risk, trial_approved="true")) is None
    shadow = policy(TrialMode.SHADOW, traffic_share_basis_points=10_000)
    assert shadow_refusal(shadow, task(risk)) == f"{risk.value} risk needs approval"


def test_max_tasks_and_the_token_budget_stop_the_trial() -> None:
    open_canary = policy(traffic_share_basis_points=10_000)
    full = dataclasses.replace(open_canary, max_tasks=2, routed_tasks=2)
    assert control_refusal(full, task()) == "max tasks reached (2 of 2 routed)"
    assert control_refusal(dataclasses.replace(full, routed_tasks=1), task()) is None
    spent = dataclasses.replace(open_canary, max_token_budget=100, consumed_tokens=100)
    assert control_refusal(spent, task()) == "token budget consumed (100 of 100 tokens)"
    assert control_refusal(dataclasses.replace(spent, consumed_tokens=99), task()) is None


def test_estimated_files_touched_above_the_limit_refuses_and_absent_is_fine() -> None:
    limited = policy(TrialMode.DIRECT, max_files_touched=3)
    assert control_refusal(limited, task()) is None
    assert control_refusal(limited, task(estimated_files_touched="3")) is None
    assert control_refusal(limited, task(estimated_files_touched="4")) == (
        "estimated 4 files touched, more than 3"
    )
    assert control_refusal(limited, task(estimated_files_touched="many")) is not None


def test_allowed_task_classes_need_a_listed_class() -> None:
    classes = policy(TrialMode.DIRECT, allowed_task_classes=("bugfix", "docs"))
    assert control_refusal(classes, task(task_class="docs")) is None
    assert control_refusal(classes, task()) == (
        "the trial allows only some task classes and the task names none"
    )
    assert control_refusal(classes, task(task_class="feature")) == (
        "task class 'feature' is not among the trial's (bugfix, docs)"
    )


def test_shadow_never_controls_and_only_shadow_sends_copies() -> None:
    shadow = policy(TrialMode.SHADOW, traffic_share_basis_points=10_000)
    assert control_refusal(shadow, task(trial_approved="true")) == (
        "a shadow trial never handles a task itself"
    )
    assert shadow_refusal(shadow, task()) is None
    assert shadow_refusal(policy(TrialMode.SHADOW), task()) is not None  # no share
    assert shadow_refusal(policy(TrialMode.SHADOW), task(trial_approved="true")) is None
    assert shadow_refusal(policy(traffic_share_basis_points=10_000), task()) == (
        "a canary trial sends no shadow copies"
    )
    assert shadow_refusal(dataclasses.replace(shadow, max_tasks=0), task()) is not None


def test_the_candidate_controller_must_keep_children() -> None:
    genome = templates.single_coder()
    assert candidate_controller_refusal(genome, templates.ROOT_NODE_ID) is None
    assert candidate_controller_refusal(genome, "primary-code-service") == (
        "'primary-code-service' has no children in the candidate genome"
    )
    assert candidate_controller_refusal(genome, "ghost") is not None


def test_tags_name_the_trial_its_candidate_and_the_route() -> None:
    canary = policy(traffic_share_basis_points=1000)
    assert trial_tags(canary, RouteRole.CONTROL, 42) == {
        "trial_id": TRIAL,
        "related_suggestion_id": TRIAL,
        "candidate_genome_id": "candidate",
        "trial_mode": "canary",
        "trial_route_role": "control",
        "trial_exposure_basis_points": "1000",
        "trial_exposure_bucket": "42",
        "trial_controller_node_id": "root",
    }
    shadow = trial_tags(policy(TrialMode.SHADOW), RouteRole.SHADOW, 7)
    assert (shadow["trial_shadow"], shadow["trial_route_role"]) == ("true", "shadow")
    assert shadow["trial_exposure_basis_points"] == ""


def test_a_shadow_result_is_known_by_its_flag_or_its_role() -> None:
    assert is_shadow_result({"trial_shadow": "true"})
    assert is_shadow_result({"trial_route_role": "shadow"})
    assert not is_shadow_result({"trial_route_role": "control", "trial_id": TRIAL})
    assert not is_shadow_result({})


def test_stripping_tags_keeps_the_approval() -> None:
    tagged = {**trial_tags(policy(), RouteRole.CONTROL, 1), "trial_approved": "true", "x": "y"}
    assert without_trial_tags(tagged) == {"trial_approved": "true", "x": "y"}


def test_the_related_suggestion_falls_back_to_the_trial_id() -> None:
    assert related_suggestion({"related_suggestion_id": "a", "trial_id": "b"}) == "a"
    assert related_suggestion({"trial_id": "b"}) == "b"
    assert related_suggestion({}) is None
