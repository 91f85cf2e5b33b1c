"""Selection among queued candidates (docs/rules/trials.md, "Replay route_counterfactual_v2",
"Objectives and Pareto frontier", "Selection score", "Activation"). Pure: no Django.

* :mod:`.replay`: the historical replay of a candidate over past traces;
* :mod:`.objectives`: the six objectives and their building blocks;
* :mod:`.frontier`: dominance and the Pareto frontier;
* :mod:`.score`: the empirical tie-break score with its reasons;
* :mod:`.pressure`: environment pressure on both;
* :mod:`.choice`: evaluate every candidate, then pick.
"""

from trials.domain.selection.candidate import (
    Candidate,
    CandidateLimits,
    CompletedTrial,
    History,
    HistoryAdjustment,
)
from trials.domain.selection.choice import (
    POLICY,
    ArchiveStatus,
    CandidateEvaluation,
    Selection,
    choose,
    evaluate_candidate,
)
from trials.domain.selection.frontier import dominates, pareto_frontier
from trials.domain.selection.objectives import (
    Objectives,
    candidate_objectives,
    complexity_cost,
    exposure_cost,
    history_adjustments,
    node_cost,
    safety,
)
from trials.domain.selection.pressure import NO_PRESSURE, Pressure, apply_pressure
from trials.domain.selection.replay import (
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
from trials.domain.selection.score import Score, selection_score

__all__ = [
    "NO_PRESSURE",
    "POLICY",
    "ArchiveStatus",
    "Candidate",
    "CandidateEvaluation",
    "CandidateLimits",
    "CompletedTrial",
    "History",
    "HistoryAdjustment",
    "Objectives",
    "Pressure",
    "ReplayInput",
    "ReplayStatus",
    "ReplaySummary",
    "ReplayTrace",
    "Score",
    "Selection",
    "apply_pressure",
    "candidate_objectives",
    "choose",
    "complexity_cost",
    "dominates",
    "estimated_delta",
    "evaluate_candidate",
    "exposure_cost",
    "history_adjustments",
    "node_cost",
    "pareto_frontier",
    "patch_affected_nodes",
    "replay_candidate",
    "replay_task",
    "safety",
    "selection_score",
    "unroutable_delta",
]
