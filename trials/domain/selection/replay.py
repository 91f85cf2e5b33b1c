"""Historical replay ``route_counterfactual_v2`` (docs/rules/trials.md, "Replay
route_counterfactual_v2"): what the candidate would have changed over past traces. Pure.

Each trace is rebuilt as a task, checked against the candidate's safety limits as if it were
routed live, routed on the champion and on the candidate, and, where the candidate's route
differs or lands on a node the patch touches, given an estimated score delta from how the
trace really went. Positive means the candidate is expected to help.

Better than the reference kernel: ``requires_approval`` without an approval rejects the trace
(the reference skipped that check).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ledger.fitness import DEFAULT_WEIGHTS, FitnessWeights, TraceFacts, trace_score
from organization.genome import (
    AddChannel,
    AddChild,
    Batch,
    GenomeError,
    OrganizationalGenome,
    Patch,
    RemoveChannel,
)
from trials.domain.selection.candidate import BASIS_POINTS, DIRECT, CandidateLimits
from workers.domain.messages import RiskClass, StaticTaskPredicates, TaskPacket
from workers.domain.routing import RoutingError, route
from workers.domain.trial_routing import APPROVAL_KEY, APPROVED, RISKY, exposure_bucket

POLICY = "route_counterfactual_v2"
MAX_REASONS = 8
MAX_EVALUATIONS = 16
TASK_METADATA_PREFIX = "task_metadata."
RAW_KEYS = ("required_capability", "requires_code_write", "target_child", "task_class")
RISK_BY_NAME = {
    risk.value.lower(): risk for risk in (RiskClass.LOW, RiskClass.HIGH, RiskClass.CRITICAL)
}
DELTA_BOUNDS = (-12.0, 20.0)


class ReplayStatus(enum.StrEnum):
    BASE_GENOME_MISMATCH = "BaseGenomeMismatch"
    SAFETY_REJECTED = "SafetyRejected"
    CANDIDATE_UNROUTABLE = "CandidateUnroutable"
    AFFECTED_ROUTE = "AffectedRoute"
    CHANGED_UNAFFECTED_ROUTE = "ChangedUnaffectedRoute"
    UNCHANGED_ROUTE = "UnchangedRoute"


@dataclass(frozen=True, kw_only=True)
class ReplayTrace:
    """One historical trace, as plain values: its score facts, the files it touched and the
    tests it ran (the scope and test targets of the rebuilt task)."""

    id: str
    task_id: str
    genome_id: str
    facts: TraceFacts
    files_touched: tuple[str, ...] = ()
    tests_run: tuple[str, ...] = ()

    @property
    def metadata(self) -> Mapping[str, str]:
        return self.facts.metadata


@dataclass(frozen=True, kw_only=True)
class TraceEvaluation:
    trace_id: str
    task_id: str
    status: ReplayStatus
    champion_child: str | None = None
    candidate_child: str | None = None
    route_changed: bool = False
    candidate_node_affected: bool = False
    route_impacted: bool = False
    baseline_score: float = 0.0
    estimated_delta_score: float = 0.0
    reason: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "task_id": self.task_id,
            "status": self.status.value,
            "champion_child": self.champion_child,
            "candidate_child": self.candidate_child,
            "route_changed": self.route_changed,
            "candidate_node_affected": self.candidate_node_affected,
            "route_impacted": self.route_impacted,
            "baseline_score": round(self.baseline_score, 3),
            "estimated_delta_score": round(self.estimated_delta_score, 3),
            "reason": self.reason,
        }


@dataclass(kw_only=True)
class ReplaySummary:
    policy: str = POLICY
    trace_count: int = 0
    base_genome_mismatch: int = 0
    safety_rejected: int = 0
    eligible: int = 0
    baseline_score: float = 0.0
    candidate_route_count: int = 0
    changed_route_count: int = 0
    affected_route_count: int = 0
    candidate_no_route: int = 0
    estimated_delta: float = 0.0
    consumed_tokens: int = 0
    reasons: list[str] = field(default_factory=list)
    evaluations: list[TraceEvaluation] = field(default_factory=list)

    @property
    def replay_score(self) -> float:
        return self.estimated_delta

    @property
    def informative(self) -> bool:
        """Some replay says something about the candidate: an impacted or unroutable route."""
        return self.affected_route_count > 0 or self.candidate_no_route > 0

    def as_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "trace_count": self.trace_count,
            "base_genome_mismatch": self.base_genome_mismatch,
            "safety_rejected": self.safety_rejected,
            "eligible": self.eligible,
            "baseline_score": round(self.baseline_score, 3),
            "candidate_route_count": self.candidate_route_count,
            "changed_route_count": self.changed_route_count,
            "affected_route_count": self.affected_route_count,
            "candidate_no_route": self.candidate_no_route,
            "estimated_delta": round(self.estimated_delta, 3),
            "replay_score": round(self.replay_score, 3),
            "consumed_tokens": self.consumed_tokens,
            "reasons": list(self.reasons),
            "evaluations": [evaluation.as_json() for evaluation in self.evaluations],
        }


# -- outcomes and deltas --------------------------------------------------------------------


def trace_failed(facts: TraceFacts) -> bool:
    return (
        facts.merged is False
        or facts.reverted is True
        or facts.post_merge_regression is True
        or facts.human_override is True
        or facts.tests_passed is False
        or facts.review_passed is False
    )


def trace_succeeded(facts: TraceFacts) -> bool:
    return facts.merged is True and not trace_failed(facts)


def estimated_delta(trace: ReplayTrace, score: float) -> float:
    """The score the candidate is expected to add on an impacted route, clamped to [-12, 20]."""
    facts = trace.facts
    if trace_failed(facts):
        delta = 3.0 + 0.35 * min(max(-score, 0.0), 30.0)
        if facts.merged is False or facts.reverted is True:
            delta += 3.0
        if facts.post_merge_regression is True or facts.human_override is True:
            delta += 3.0
        if facts.tests_passed is False or facts.review_passed is False:
            delta += 1.5
        if trace.files_touched:
            delta += 0.5
    elif trace_succeeded(facts):
        delta = -(1.5 + 0.15 * min(max(score, 0.0), 30.0))
        if trace.tests_run or facts.review_passed is True:
            delta -= 0.5
        if trace.files_touched:
            delta -= 0.25
    else:
        delta = 0.2 * min(-score, 15.0) if score < 0 else 0.25
    low, high = DELTA_BOUNDS
    return min(max(delta, low), high)


def unroutable_delta(trace: ReplayTrace, score: float, *, champion_routed: bool) -> float:
    """The candidate cannot route a task: a loss where the champion could."""
    if not champion_routed:
        return 0.0
    if trace_succeeded(trace.facts):
        return -(2.0 + 0.2 * min(max(score, 0.0), 30.0))
    if trace_failed(trace.facts):
        return -1.0
    return -0.5


# -- the task, the patch's reach, the limits --------------------------------------------------


def replay_task(trace: ReplayTrace) -> TaskPacket:
    """The task rebuilt from the trace (rule 2)."""
    metadata = trace.metadata
    task_metadata = {
        key.removeprefix(TASK_METADATA_PREFIX): value
        for key, value in metadata.items()
        if key.startswith(TASK_METADATA_PREFIX)
    }
    for key in (*RAW_KEYS, APPROVAL_KEY):
        if key in metadata:
            task_metadata[key] = metadata[key]
    changed_lines = trace.facts.lines_added or trace.facts.lines_deleted
    if "required_capability" not in task_metadata and (trace.files_touched or changed_lines):
        task_metadata.setdefault("requires_code_write", "true")
    risk_name = metadata.get("task_risk") or metadata.get("risk_class") or ""
    return TaskPacket(
        id=trace.task_id,
        title=metadata.get("task_title") or f"replay trace {trace.id}",
        goal=metadata.get("task_goal") or f"Replay historical trace {trace.id}",
        risk=RISK_BY_NAME.get(risk_name.lower(), RiskClass.MEDIUM),
        scope=list(trace.files_touched),
        static_predicates=StaticTaskPredicates(
            likely_files=list(trace.files_touched), test_targets=list(trace.tests_run)
        ),
        metadata=task_metadata,
    )


def patch_affected_nodes(patch: Patch) -> set[str]:
    """The nodes a patch touches: add_child → the child; node patches → that node;
    add_channel → its endpoints; remove_channel → none; batch → the union."""
    if isinstance(patch, Batch):
        return set().union(*(patch_affected_nodes(inner) for inner in patch.patches))
    if isinstance(patch, AddChild):
        return {patch.child.id}
    if isinstance(patch, AddChannel):
        ends = (patch.channel.from_node_id, patch.channel.to_node_id)
        return {node for node in ends if node is not None}
    if isinstance(patch, RemoveChannel):
        return set()
    return {patch.node_id}


def _approved(task: TaskPacket, trial_id: str, approved: bool) -> bool:
    return approved or task.metadata.get(APPROVAL_KEY) in (APPROVED, trial_id)


def safety_refusal(
    *,
    trace: ReplayTrace,
    task: TaskPacket,
    trial_id: str,
    mode: str,
    limits: CandidateLimits,
    approved: bool,
    routed: int,
    consumed: int,
) -> str | None:
    """Why the candidate could not have had this task live (rule 4), or None."""
    tokens = trace.facts.token_total
    is_approved = _approved(task, trial_id, approved)
    if limits.max_tasks is not None and routed >= limits.max_tasks:
        return "max tasks reached"
    if limits.max_token_budget is not None and consumed + tokens > limits.max_token_budget:
        return "token budget exceeded"
    if limits.max_files_touched is not None and len(trace.files_touched) > limits.max_files_touched:
        return "too many files touched"
    if limits.allowed_task_classes:
        task_class = task.metadata.get("task_class")
        if not task_class or task_class not in limits.allowed_task_classes:
            return "task class not allowed"
    if task.risk in RISKY and not is_approved:
        return f"{task.risk.value} risk without approval"
    if limits.requires_approval and not is_approved:
        return "approval required"
    if is_approved or mode == DIRECT:
        return None
    share = limits.traffic_share_basis_points
    if share is None:
        return f"{mode} without a traffic share"
    if exposure_bucket(task.id, trial_id) >= min(share, BASIS_POINTS):
        return "exposure bucket outside the traffic share"
    return None


def _route_child(genome: OrganizationalGenome, controller_id: str, task: TaskPacket) -> str:
    return route(genome, controller_id, task).child_id


# -- the replay ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ReplayInput:
    trial_id: str
    controller_id: str
    base_genome_id: str
    champion: OrganizationalGenome
    candidate: OrganizationalGenome
    patch: Patch
    mode: str
    limits: CandidateLimits
    approved: bool = False
    weights: FitnessWeights = DEFAULT_WEIGHTS


def replay_candidate(replay: ReplayInput, traces: Iterable[ReplayTrace]) -> ReplaySummary:
    """Replay ``traces`` in order (oldest first) against the candidate (rules 1 to 8)."""
    summary = ReplaySummary()
    affected_nodes = patch_affected_nodes(replay.patch)
    for trace in traces:
        summary.trace_count += 1
        evaluation = _replay_one(replay, trace, summary, affected_nodes)
        if len(summary.evaluations) < MAX_EVALUATIONS:
            summary.evaluations.append(evaluation)
    return summary


def _replay_one(
    replay: ReplayInput, trace: ReplayTrace, summary: ReplaySummary, affected_nodes: set[str]
) -> TraceEvaluation:
    evaluation = partial(TraceEvaluation, trace_id=trace.id, task_id=trace.task_id)
    if trace.genome_id != replay.base_genome_id:
        summary.base_genome_mismatch += 1
        return evaluation(status=ReplayStatus.BASE_GENOME_MISMATCH)
    task = replay_task(trace)
    baseline = trace_score(trace.facts, replay.weights)
    refusal = safety_refusal(
        trace=trace,
        task=task,
        trial_id=replay.trial_id,
        mode=replay.mode,
        limits=replay.limits,
        approved=replay.approved,
        routed=summary.candidate_route_count,
        consumed=summary.consumed_tokens,
    )
    if refusal is not None:
        summary.safety_rejected += 1
        return evaluation(
            status=ReplayStatus.SAFETY_REJECTED, baseline_score=baseline, reason=refusal
        )
    summary.eligible += 1
    summary.baseline_score += baseline
    try:
        champion_child: str | None = _route_child(replay.champion, replay.controller_id, task)
    except (RoutingError, GenomeError):
        champion_child = None
    try:
        candidate_child = _route_child(replay.candidate, replay.controller_id, task)
    except (RoutingError, GenomeError) as error:
        summary.candidate_no_route += 1
        delta = unroutable_delta(trace, baseline, champion_routed=champion_child is not None)
        summary.estimated_delta += delta
        return evaluation(
            status=ReplayStatus.CANDIDATE_UNROUTABLE,
            champion_child=champion_child,
            baseline_score=baseline,
            estimated_delta_score=delta,
            reason=str(error),
        )
    summary.candidate_route_count += 1
    summary.consumed_tokens += trace.facts.token_total
    changed = champion_child is None or champion_child != candidate_child
    affected = candidate_child in affected_nodes
    summary.changed_route_count += changed
    delta = 0.0
    reason = ""
    if changed or affected:
        summary.affected_route_count += 1
        delta = estimated_delta(trace, baseline)
        summary.estimated_delta += delta
        reason = (
            f"trace={trace.id} route={candidate_child} changed={str(changed).lower()} "
            f"affected={str(affected).lower()} delta={delta:.3f}"
        )
        if len(summary.reasons) < MAX_REASONS:
            summary.reasons.append(reason)
    if affected:
        status = ReplayStatus.AFFECTED_ROUTE
    elif changed:
        status = ReplayStatus.CHANGED_UNAFFECTED_ROUTE
    else:
        status = ReplayStatus.UNCHANGED_ROUTE
    return evaluation(
        status=status,
        champion_child=champion_child,
        candidate_child=candidate_child,
        route_changed=changed,
        candidate_node_affected=affected,
        route_impacted=changed or affected,
        baseline_score=baseline,
        estimated_delta_score=delta,
        reason=reason,
    )


__all__ = [
    "POLICY",
    "ReplayInput",
    "ReplayStatus",
    "ReplaySummary",
    "ReplayTrace",
    "TraceEvaluation",
    "estimated_delta",
    "patch_affected_nodes",
    "replay_candidate",
    "replay_task",
    "trace_failed",
    "trace_succeeded",
    "unroutable_delta",
]
