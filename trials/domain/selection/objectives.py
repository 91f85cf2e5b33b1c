"""The six objectives of a candidate (docs/rules/trials.md, "Objectives and Pareto frontier").
Pure.

Benefits (maximised): expected value, safety, historical fit, replay fit. Costs (minimised):
complexity and exposure. Each is built from the candidate's source, mode, evidence and limits,
the controller's history and the candidate's replay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from organization.genome import (
    AddChannel,
    AddChild,
    AddPromptComponent,
    AddTool,
    Batch,
    Patch,
    PromoteLeafToMetasystem,
    RemoveChannel,
    RemovePromptComponent,
    RemoveSubtree,
    RemoveTool,
    SetNodeStatus,
    ViableNode,
)
from trials.domain.selection.candidate import (
    ALGEDONIC,
    BASIS_POINTS,
    CANARY,
    DIRECT,
    PROBATION,
    SHADOW,
    SYSTEM1,
    SYSTEM2,
    SYSTEM3_STAR,
    SYSTEM4,
    Candidate,
    CompletedTrial,
    History,
    HistoryAdjustment,
)
from trials.domain.selection.replay import ReplaySummary

SOURCE_SCORES = {
    ALGEDONIC: 30.0,
    SYSTEM3_STAR: 24.0,
    SYSTEM4: 18.0,
    SYSTEM1: 14.0,
    SYSTEM2: 10.0,
}
OTHER_SOURCE_SCORE = 5.0
MODE_SCORES = {SHADOW: 25.0, CANARY: 20.0, PROBATION: 15.0, DIRECT: 5.0}
EVIDENCE_POINTS, EVIDENCE_CAP = 2.0, 10
HISTORY_BOUND = 20.0
HISTORY_WEIGHTS = {"same_source": 1.0, "same_mode": 0.75, "same_patch": 1.25}
REPLAY_FIT_BOUNDS = (-40.0, 60.0)
UNBOUNDED_DIRECT_SAFETY_PENALTY = 30.0


def clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def source_score(source: str) -> float:
    return SOURCE_SCORES.get(source, OTHER_SOURCE_SCORE)


def mode_score(mode: str) -> float:
    return MODE_SCORES.get(mode, 0.0)


def evidence_score(evidence_count: int) -> float:
    return EVIDENCE_POINTS * min(evidence_count, EVIDENCE_CAP)


# -- history ---------------------------------------------------------------------------------


def history_adjustments(candidate: Candidate, history: History) -> list[HistoryAdjustment]:
    """Same source (weight 1.0), same mode (0.75), same patch kind (1.25): the clamped mean realised
    score of the matching ended trials, weighted; none without a match."""
    realised = history.realised()
    predicates: dict[str, Callable[[CompletedTrial], bool]] = {
        "same_source": lambda trial: trial.source == candidate.source,
        "same_mode": lambda trial: trial.mode == candidate.mode,
        "same_patch": lambda trial: trial.patch_kind == candidate.patch_kind,
    }
    adjustments = []
    for name, matches in predicates.items():
        scores = [trial.realised_score for trial in realised if matches(trial)]
        if not scores:
            continue
        average = sum(score for score in scores if score is not None) / len(scores)
        value = clamp(average, -HISTORY_BOUND, HISTORY_BOUND) * HISTORY_WEIGHTS[name]
        adjustments.append(
            HistoryAdjustment(name=name, matches=len(scores), average=average, value=value)
        )
    return adjustments


# -- complexity ------------------------------------------------------------------------------


def node_cost(node: ViableNode) -> float:
    """1 + 2 per tool + 1 per prompt component (output contract included) + 0.5 per permission
    entries + node channels + children."""
    prompt = node.prompt
    components = (
        len(prompt.behavior_rules)
        + len(prompt.domain_hints)
        + len(prompt.codebase_conventions)
        + len(prompt.negative_constraints)
        + (prompt.output_contract is not None)
    )
    permissions = node.permissions
    entries = (
        len(permissions.allowed_paths)
        + len(permissions.denied_paths)
        + len(permissions.allowed_tools)
        + len(permissions.denied_tools)
    )
    return (
        1.0
        + 2.0 * len(node.tools)
        + components
        + 0.5 * entries
        + len(node.channels)
        + len(node.children)
    )


def complexity_cost(patch: Patch) -> float:
    if isinstance(patch, Batch):
        return sum(complexity_cost(inner) for inner in patch.patches) + 2.0
    if isinstance(patch, AddChild):
        return 10.0 + node_cost(patch.child)
    if isinstance(patch, AddPromptComponent):
        return 2.0 + len(patch.component.text) / 500
    if isinstance(patch, AddTool):
        return 4.0 + len(patch.tool.permissions)
    fixed: dict[type, float] = {
        PromoteLeafToMetasystem: 15.0,
        RemoveSubtree: 4.0,
        AddChannel: 6.0,
        RemoveChannel: 2.0,
        RemovePromptComponent: 1.0,
        RemoveTool: 1.0,
        SetNodeStatus: 1.0,
    }
    return fixed[type(patch)]


# -- the objectives --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Objectives:
    expected_value: float
    safety: float
    historical_fit: float
    replay_fit: float
    complexity_cost: float
    exposure_cost: float

    BENEFITS = ("expected_value", "safety", "historical_fit", "replay_fit")
    COSTS = ("complexity_cost", "exposure_cost")

    def as_json(self) -> dict[str, float]:
        return {name: round(getattr(self, name), 3) for name in (*self.BENEFITS, *self.COSTS)}

    def as_text(self) -> str:
        """``expected_value=…;safety=…;…`` with 3 decimals, for the trial's metadata."""
        return ";".join(f"{name}={value:.3f}" for name, value in self.as_json().items())

    def plus(self, **bonuses: float) -> Objectives:
        return replace(
            self, **{name: getattr(self, name) + bonus for name, bonus in bonuses.items()}
        )


def safety(candidate: Candidate) -> float:
    limits = candidate.limits
    value = mode_score(candidate.mode)
    if limits.requires_approval:
        value += 10.0
    if limits.allowed_task_classes:
        value += 6.0
    if limits.max_tasks is not None:
        value += 10.0 if limits.max_tasks <= 10 else 5.0 if limits.max_tasks <= 50 else 1.0
    if limits.max_token_budget is not None:
        value += 4.0
    if limits.max_files_touched is not None:
        value += 4.0
    share = limits.traffic_share_basis_points
    if share is not None:
        value += (BASIS_POINTS - min(share, BASIS_POINTS)) / 500
    if candidate.unbounded_direct:
        value -= UNBOUNDED_DIRECT_SAFETY_PENALTY
    return value


def exposure_cost(candidate: Candidate) -> float:
    limits = candidate.limits
    share = limits.traffic_share_basis_points
    if candidate.mode == SHADOW:
        value = 0.0
    elif candidate.mode in (CANARY, PROBATION):
        value = 100.0 if share is None else min(share, BASIS_POINTS) / 100
    else:
        value = 100.0
    if limits.max_tasks is None:
        value += 20.0
    if limits.max_token_budget is None:
        value += 10.0
    if not limits.requires_approval and candidate.mode != SHADOW:
        value += 10.0
    return value


def replay_fit(replay: ReplaySummary) -> float:
    if not replay.informative:
        return 0.0
    return clamp(replay.estimated_delta, *REPLAY_FIT_BOUNDS) + replay.affected_route_count


def candidate_objectives(
    candidate: Candidate, adjustments: list[HistoryAdjustment], replay: ReplaySummary
) -> Objectives:
    historical = sum(adjustment.value for adjustment in adjustments)
    replayed = replay_fit(replay)
    return Objectives(
        expected_value=source_score(candidate.source)
        + evidence_score(candidate.evidence_count)
        + historical
        + replayed,
        safety=safety(candidate),
        historical_fit=historical,
        replay_fit=replayed,
        complexity_cost=complexity_cost(candidate.patch),
        exposure_cost=exposure_cost(candidate),
    )
