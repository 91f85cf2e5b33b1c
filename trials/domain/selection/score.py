"""The empirical selection score, the tie-break among the frontier (docs/rules/trials.md,
"Selection score"). Pure.

Every non-zero addition leaves a reason ``<label>:<+x.x>``, so a reader sees why a candidate
won.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trials.domain.selection.candidate import (
    ALGEDONIC,
    SYSTEM1,
    SYSTEM2,
    SYSTEM3_STAR,
    SYSTEM4,
    Candidate,
    HistoryAdjustment,
)
from trials.domain.selection.objectives import clamp, evidence_score, mode_score, source_score
from trials.domain.selection.replay import ReplaySummary

SOURCE_KEYS = {
    SYSTEM3_STAR: "system3_star_audit",
    SYSTEM4: "system4_future_probe",
    SYSTEM1: "system1_resource_bargain",
    SYSTEM2: "system2_coordination_signal",
    ALGEDONIC: "algedonic_signal",
}
REPLAY_SCORE_BOUNDS = (-20.0, 40.0)
UNBOUNDED_DIRECT_PENALTY = 20.0


@dataclass
class Score:
    """A running total with one reason per non-zero addition."""

    value: float = 0.0
    reasons: list[str] = field(default_factory=list)

    def add(self, label: str, amount: float) -> None:
        if amount == 0:
            return
        self.value += amount
        self.reasons.append(f"{label}:{amount:+.1f}")


def source_key(source: str) -> str:
    return SOURCE_KEYS.get(source, f"other:{source}")


def selection_score(
    candidate: Candidate, adjustments: list[HistoryAdjustment], replay: ReplaySummary
) -> Score:
    """The score before environment pressure (see :mod:`.pressure`)."""
    limits = candidate.limits
    score = Score()
    score.add(f"source={source_key(candidate.source)}", source_score(candidate.source))
    score.add(f"mode={candidate.mode}", mode_score(candidate.mode))
    score.add(
        f"evidence_count={candidate.evidence_count}", evidence_score(candidate.evidence_count)
    )
    if limits.requires_approval:
        score.add("requires_approval", 5.0)
    if limits.allowed_task_classes:
        score.add(f"allowed_task_classes={len(limits.allowed_task_classes)}", 5.0)
    if limits.max_tasks is not None:
        bonus = 8.0 if limits.max_tasks <= 10 else 4.0 if limits.max_tasks <= 50 else 1.0
        score.add(f"max_tasks={limits.max_tasks}", bonus)
    if limits.max_token_budget is not None:
        score.add(f"max_token_budget={limits.max_token_budget}", 4.0)
    if limits.max_files_touched is not None:
        score.add(f"max_files_touched={limits.max_files_touched}", 4.0)
    share = limits.traffic_share_basis_points
    if share is not None:
        bonus = 10.0 if share <= 1000 else 6.0 if share <= 2500 else 2.0 if share <= 10_000 else 0.0
        score.add(f"traffic_share_basis_points={share}", bonus)
    if candidate.unbounded_direct:
        score.add("unbounded_direct_penalty", -UNBOUNDED_DIRECT_PENALTY)
    score.add("selection_priority", candidate.selection_priority)
    score.add("selection_penalty", -candidate.selection_penalty)
    for adjustment in adjustments:
        score.add(adjustment.label, adjustment.value)
    if replay.informative:
        score.add(
            f"historical_replay_score={replay.estimated_delta:.3f}"
            f"_affected_routes={replay.affected_route_count}"
            f"_candidate_no_route={replay.candidate_no_route}",
            clamp(replay.estimated_delta, *REPLAY_SCORE_BOUNDS),
        )
    return score
