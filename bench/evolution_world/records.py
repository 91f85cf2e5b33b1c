"""What one run of the loop leaves behind: one record per trial, one per (seed, policy)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

POLICIES = (
    "sequential_confidence_v1",
    "reference_absolute_v1",
    "naive_fixed_sample_v1",
    "random_choice_v1",
)
SHORT = {
    "sequential_confidence_v1": "this rule",
    "reference_absolute_v1": "reference",
    "naive_fixed_sample_v1": "naive",
    "random_choice_v1": "random",
}


@dataclass(frozen=True)
class Settings:
    """The trial bounds every suggestion is queued with (the same in both engines)."""

    share_basis_points: int = 5000
    max_tasks: int = 200  # also the candidate's maximum traces
    min_traces: int = 20
    watch_tasks: int = 20
    baseline: int = 10  # directives on the founding champion before generation 1
    generations: int = 10
    # Where candidates come from: "scripted" (source.py) or "generations" (the project's
    # evolution generation first, the scripted source when it has no offspring; services only).
    source: str = "scripted"

    @property
    def directive_budget(self) -> int:
        """Directives one trial may use before the bench ends it (inconclusive)."""
        return int(self.max_tasks * 10000 / self.share_basis_points * 1.5) + 40


@dataclass
class TrialRecord:
    seed: int
    policy: str
    generation: int
    gene: str
    kind: str
    gain: float  # the candidate's true success minus the champion's
    token_ratio: float  # the candidate's true tokens ÷ the champion's
    should_promote: bool
    state: str  # promoted, pruned, inconclusive, rolled_back, frozen, ...
    candidate_traces: int
    champion_traces: int
    directives: int
    tokens: int  # every token spent on the trial's directives, both arms
    source: str = "scripted"  # or "generation": an offspring of the evolution generation
    operator: str = ""  # the generation operator that made it (the trial's metadata)

    @property
    def promoted(self) -> bool:
        """The candidate became the champion (a rollback undid it, but it was promoted)."""
        return self.state in ("promoted", "rolled_back")

    @property
    def correct(self) -> bool:
        return self.promoted == self.should_promote

    @property
    def false_promotion(self) -> bool:
        return self.promoted and not self.should_promote


@dataclass
class SeedRun:
    seed: int
    policy: str
    engine: str
    trials: list[TrialRecord] = field(default_factory=list)
    champion_rate: list[float] = field(default_factory=list)  # [founding, after gen 1, ...]
    generations_to_best: int | None = None
    tasks: int = 0
    regret_tasks: int = 0  # tasks served by a structure worse than the best champion so far
    ledger_hash: str = ""
    # --source generations: offspring each operator queued, and those rejected at activation
    # (their base superseded by a champion promoted meanwhile).
    offspring: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    ledger_events: int = 0
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)  # the run's Settings, as a dict
