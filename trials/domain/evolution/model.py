"""The evolution generation's policy, inputs and outputs: plain dataclasses (no Django)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from organization.genome import OrganizationalGenome
from workers.domain.homeostat import GeneSuggestionDraft
from workers.domain.messages import JsonObject

POLICY_NAME = "system3_deterministic_ga_v1"
# The reference ranked elites by their own empirical score; ours by the gain over the
# champion their trial measured (docs/rules/trials.md, "Evolution generation"), hence a name
# of its own.
SELECTION_POLICY = "elite_decided_gain_plus_trace_pressure_v1"
SUGGESTION_SOURCE = "system3_evolution_generation"

PARSIMONY = "add_prompt_parsimony_guardrail"
RETIRE = "retire_low_fitness_child"
RECOMBINE = "recombine_elite_parent_patches"
OPERATORS = (PARSIMONY, RETIRE, RECOMBINE)

# Trial states as ``trials.models.Trial.State`` spells them.
PROMOTED = "promoted"
PRUNED = "pruned"
PENDING_STATES = frozenset({"queued", "active", "inconclusive"})


@dataclass(frozen=True, kw_only=True)
class EvolutionPolicy:
    """The generation's parameters; the defaults are docs/rules/trials.md's."""

    name: str = POLICY_NAME
    population_size: int = 6
    elite_count: int = 4
    max_offspring_per_generation: int = 4
    recent_trace_limit: int = 200
    min_pressure_traces: int = 5
    high_average_token_threshold: int = 120_000
    probation_max_tasks: int = 10
    probation_token_budget: int = 100_000
    canary_traffic_share_basis_points: int = 1000
    measurement_window_tasks: int = 10
    retirement_min_tasks: int = 5
    retirement_average_score_below: float = -5.0
    # An elite measured against a genome the champion no longer descends from counts only
    # while its trial ended this recently (and its patch still applies).
    elite_evidence_max_age_days: int = 30


@dataclass(frozen=True, kw_only=True)
class RecentTrace:
    """One recent trace of the controller's subtree, as the generation reads it.

    ``score`` is the per-trace score with the default weights (docs/rules/fitness.md);
    ``task_shape`` the task keys routing reads (:func:`task_shape`).
    """

    trace_id: str
    assigned_node_id: str
    responsible_ancestor_ids: tuple[str, ...] = ()
    token_total: int = 0
    score: float = 0.0
    task_shape: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class TrialRecord:
    """One of the controller's trials: what it tried, on which base, and how it ended.

    ``evaluation`` is the trial's latest recorded decision (``Decision.to_json()`` and the
    arms' trace ids); ``base_in_champion_lineage`` says whether the current champion
    descends from the trial's base (rollbacks followed to the version they restored).
    """

    trial_id: str
    state: str
    base_genome_id: str
    patch: JsonObject
    evaluation: Mapping[str, Any] = field(default_factory=dict)
    min_traces_per_arm: int = 20
    ended_at: datetime | None = None
    updated_at: datetime | None = None
    base_in_champion_lineage: bool = True


@dataclass(frozen=True, kw_only=True)
class GenerationInputs:
    controller_node_id: str
    generation: int
    champion: OrganizationalGenome
    champion_genome_id: str
    queued_count: int
    now: datetime
    trials: Sequence[TrialRecord] = ()
    traces: Sequence[RecentTrace] = ()


@dataclass(frozen=True, kw_only=True)
class Elite:
    """A parent: an ended trial decided against the champion, ranked by its measured gain."""

    trial_id: str
    state: str
    gain_lower: float
    gain_estimate: float
    patch: JsonObject
    reason: str


@dataclass(frozen=True, kw_only=True)
class OperatorReport:
    """What one operator did: ``produced``, ``skipped`` or ``dropped`` (could not be routed
    work), and why, in words an operator reads."""

    operator: str
    outcome: str
    reason: str
    parent_trial_ids: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "operator": self.operator,
            "outcome": self.outcome,
            "reason": self.reason,
            "parent_trial_ids": list(self.parent_trial_ids),
        }


@dataclass(frozen=True, kw_only=True)
class Offspring:
    operator: str
    parent_trial_ids: tuple[str, ...]
    draft: GeneSuggestionDraft


@dataclass(kw_only=True)
class GenerationPlan:
    """A generation as computed: its parents, each operator's report, and the offspring."""

    controller_node_id: str
    generation: int
    policy: str
    champion_genome_id: str
    capacity: int
    queued_count: int
    recent_trace_count: int
    elites: list[Elite] = field(default_factory=list)
    excluded_elites: list[tuple[str, str]] = field(default_factory=list)
    reports: list[OperatorReport] = field(default_factory=list)
    offspring: list[Offspring] = field(default_factory=list)
    reason: str = ""  # why nothing was tried at all, if so

    @property
    def operator_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for child in self.offspring:
            counts[child.operator] = counts.get(child.operator, 0) + 1
        return counts

    def evidence(self) -> dict[str, Any]:
        """The generation record's evidence: everything it was computed from, JSON-ready."""
        return {
            "selection_policy": SELECTION_POLICY,
            "capacity": self.capacity,
            "queued_candidate_count": self.queued_count,
            "recent_trace_count": self.recent_trace_count,
            "mutation_operator_counts": self.operator_counts,
            "elites": [
                {
                    "trial_id": elite.trial_id,
                    "state": elite.state,
                    "gain_lower": elite.gain_lower,
                    "gain_estimate": elite.gain_estimate,
                }
                for elite in self.elites
            ],
            "excluded_elites": [
                {"trial_id": trial_id, "reason": reason}
                for trial_id, reason in self.excluded_elites
            ],
            "operators": [report.to_json() for report in self.reports],
            "reason": self.reason,
        }
