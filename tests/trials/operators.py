"""Trials as an operator meets them, built straight with the ORM (the services that queue
and activate trials are not the edges' business), and the personas who decide on them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import Permission, User
from django.utils import timezone

from ledger.models import TaskTrace
from ledger.services import task_trace_record
from organization.models import GenomeVersion
from organization.selectors import champion_version
from organization.services import genome_bootstrap, genome_candidate_create, live_trial_open
from tests import factories
from tests.ledger.factories import TaskTraceFactory
from trials.domain.decision import ArmSummary, DecisionSettings, Observation, decide
from trials.models import GeneSuggestion, Trial

ROOT = "root-codebase-system"
BACKEND = "backend-system"
HYPOTHESIS = "A probationary reviewer leaf catches the failures the coder lets through."
EVIDENCE = ["3 failed/reverted traces across 8 observed traces"]


def _observations(successes: int, n: int, latency_ms: int) -> list[Observation]:
    return [
        Observation(success=i < successes, tokens=1000, latency_ms=latency_ms, safety_breach=False)
        for i in range(n)
    ]


# The evaluator's numbers as it stores them (``Decision.to_json()`` in Trial.evaluation):
# 20 of 24 candidate traces succeeded against 18 of 30 of the champion's, and the candidate
# is slow (its latency guardrail fails).
EVALUATION = decide(
    ArmSummary.of(_observations(20, 24, latency_ms=900)),
    ArmSummary.of(_observations(18, 30, latency_ms=500)),
    DecisionSettings(),
).to_json()
CANDIDATE_NUMBERS = EVALUATION["numbers"]["arms"]["candidate"]
DIFFERENCE = EVALUATION["numbers"]["difference"]


def reviewer_patch(
    parent_id: str = ROOT, child_id: str = "review-probation-leaf"
) -> dict[str, Any]:
    return {
        "kind": "add_child",
        "parent_id": parent_id,
        "child": {
            "id": child_id,
            "name": child_id,
            "status": "Probation",
            "leaf_operation": {"kind": "Reviewing", "allows_review": True},
            "model": {"provider": "echo", "model": "local-echo"},
        },
    }


def organization() -> GenomeVersion:
    version, _ = genome_bootstrap(template="nested", actor="operator:test")
    return version


def trial_operator() -> User:
    """Staff who may look at everything and decide on trials, but is no superuser."""
    user = factories.UserFactory.create(username="trial-operator", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__startswith="view_")
        | Permission.objects.filter(codename="approve_trial")
    )
    return user


def make_trial(
    *,
    state: str = Trial.State.ACTIVE,
    mode: str = "probation",
    controller_node_id: str = ROOT,
    requires_approval: bool = True,
    approved: bool = False,
    evaluation: dict[str, Any] | None = None,
    verdict: str = "",
    reason: str = "",
    queued_minutes_ago: int = 60,
) -> Trial:
    """A trial of a reviewer leaf under ``controller_node_id``; an active one is live there."""
    base = champion_version()
    assert base is not None, "bootstrap the organization first"
    suggestion = GeneSuggestion.objects.create(
        suggested_by_node_id=controller_node_id,
        target_node_id=controller_node_id,
        source=GeneSuggestion.Source.SYSTEM3_STAR_AUDIT,
        patch=reviewer_patch(controller_node_id),
        evidence=EVIDENCE,
        hypothesis=HYPOTHESIS,
        trial_mode=mode,
        safety_limits={"max_tasks": 10, "requires_approval": requires_approval},
    )
    candidate = genome_candidate_create(
        base_version_id=base.id,
        patch=suggestion.patch,
        suggestion_id=suggestion.id,
        actor="system:trials",
    )
    now = timezone.now()
    started = state != Trial.State.QUEUED
    trial = Trial.objects.create(
        suggestion=suggestion,
        controller_node_id=controller_node_id,
        state=state,
        mode=mode,
        base_version=base,
        candidate_version=candidate,
        requires_approval=requires_approval,
        approved_at=now if approved else None,
        max_tasks=10,
        queued_at=now - timedelta(minutes=queued_minutes_ago),
        started_at=now - timedelta(minutes=queued_minutes_ago - 1) if started else None,
        ended_at=None if state in (Trial.State.ACTIVE, Trial.State.QUEUED) else now,
        evaluation=evaluation or {},
        verdict=verdict,
        reason=reason,
    )
    if state == Trial.State.ACTIVE:
        live_trial_open(
            controller_node_id=controller_node_id,
            trial_id=trial.id,
            candidate_version_id=candidate.id,
            base_version_id=base.id,
            mode=mode,
            traffic_share_basis_points=None,
            requires_approval=requires_approval,
            max_tasks=10,
            max_token_budget=None,
            max_files_touched=None,
            allowed_task_classes=[],
        )
    return trial


def record_traces(trial: Trial, *, candidate: list[float], champion: list[float]) -> None:
    """Traces after the trial started: the candidate's tagged with it, the champion's not."""
    assert trial.started_at is not None
    moment = trial.started_at
    for arm, scores in (("candidate", candidate), ("champion", champion)):
        for score in scores:
            moment += timedelta(seconds=30)
            tagged = arm == "candidate"
            trace: TaskTrace = TaskTraceFactory.build(
                started_at=moment,
                genome_id=trial.candidate_version_id if tagged else trial.base_version_id,
                outcome_score=score,
                assigned_node_id="review-probation-leaf" if tagged else "backend-coder",
                responsible_ancestor_ids=[ROOT] if tagged else [BACKEND, ROOT],
                related_suggestion_ids=[trial.id] if tagged else [],
                # The trial tags a leaf copies from its task (docs/rules/trials.md).
                metadata={"trial_id": trial.id, "trial_route_role": "control"} if tagged else {},
            )
            task_trace_record(trace=trace)
