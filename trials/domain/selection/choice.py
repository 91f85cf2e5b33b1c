"""Choosing the candidate to try (docs/rules/trials.md, "Activation"). Pure.

Each queued candidate is evaluated (its objectives and its score, both under environment
pressure); the dominated ones are dropped; the frontier is ordered by score, highest first,
then by queue order (oldest first), and the first is picked. A score, however large, never
rescues a dominated candidate: it only breaks ties among the frontier.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from trials.domain.selection.candidate import Candidate, History, HistoryAdjustment
from trials.domain.selection.frontier import pareto_frontier
from trials.domain.selection.objectives import (
    Objectives,
    candidate_objectives,
    history_adjustments,
)
from trials.domain.selection.pressure import NO_PRESSURE, Pressure, apply_pressure
from trials.domain.selection.replay import ReplaySummary
from trials.domain.selection.score import selection_score

POLICY = "pareto_empirical_candidate_score_v1"


class ArchiveStatus(enum.StrEnum):
    """The values of ``trials.models.ArchiveRecord.Status``."""

    SELECTED_FOR_TRIAL = "selected_for_trial"
    PARETO_FRONTIER = "pareto_frontier"
    DOMINATED = "dominated"


@dataclass(frozen=True, kw_only=True)
class CandidateEvaluation:
    candidate: Candidate
    objectives: Objectives
    score: float
    reasons: tuple[str, ...]
    history: tuple[HistoryAdjustment, ...]
    replay: ReplaySummary


def evaluate_candidate(
    candidate: Candidate,
    *,
    history: History,
    replay: ReplaySummary,
    pressure: Pressure = NO_PRESSURE,
) -> CandidateEvaluation:
    adjustments = history_adjustments(candidate, history)
    objectives = candidate_objectives(candidate, adjustments, replay)
    score = selection_score(candidate, adjustments, replay)
    objectives = apply_pressure(candidate, objectives, score, pressure)
    return CandidateEvaluation(
        candidate=candidate,
        objectives=objectives,
        score=score.value,
        reasons=tuple(score.reasons),
        history=tuple(adjustments),
        replay=replay,
    )


@dataclass(frozen=True, kw_only=True)
class Selection:
    """The evaluations in queue order, each one's archive status, and the pick (None when
    there was nothing to choose from)."""

    evaluations: tuple[CandidateEvaluation, ...]
    statuses: tuple[ArchiveStatus, ...]
    frontier_size: int
    picked: CandidateEvaluation | None

    def status_of(self, trial_id: str) -> ArchiveStatus:
        for evaluation, status in zip(self.evaluations, self.statuses, strict=True):
            if evaluation.candidate.trial_id == trial_id:
                return status
        raise KeyError(trial_id)


def choose(
    evaluations: Sequence[CandidateEvaluation], *, named_trial_id: str | None = None
) -> Selection:
    """The frontier, then the best score on it, then the oldest. ``evaluations`` come in queue
    order (oldest first). ``named_trial_id``: an operator's choice, picked whatever its
    place (the others are still classified)."""
    frontier = set(pareto_frontier([evaluation.objectives for evaluation in evaluations]))
    ranked = sorted(frontier, key=lambda index: (-evaluations[index].score, index))
    if named_trial_id is not None:
        picks = [i for i, e in enumerate(evaluations) if e.candidate.trial_id == named_trial_id]
        pick = picks[0] if picks else None
    else:
        pick = ranked[0] if ranked else None
    statuses = tuple(
        ArchiveStatus.SELECTED_FOR_TRIAL
        if index == pick
        else ArchiveStatus.PARETO_FRONTIER
        if index in frontier
        else ArchiveStatus.DOMINATED
        for index in range(len(evaluations))
    )
    return Selection(
        evaluations=tuple(evaluations),
        statuses=statuses,
        frontier_size=len(frontier),
        picked=None if pick is None else evaluations[pick],
    )
