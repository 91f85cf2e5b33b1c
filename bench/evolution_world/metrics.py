"""The figures per policy, and the aims (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from .records import SeedRun, TrialRecord

ALPHA = 0.05
DELTA = 0.05  # the trials' indifference margin
GENERATION_AIM = 10
Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    rate, z2 = successes / n, z * z
    centre = (rate + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(rate * (1 - rate) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Rate:
    hits: int
    n: int

    @property
    def value(self) -> float:
        return self.hits / self.n if self.n else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.hits, self.n)

    def show(self, interval: bool = True) -> str:
        if not self.n:
            return "n/a"
        text = f"{self.value * 100:5.1f}% ({self.hits}/{self.n})"
        if interval:
            low, high = self.interval
            text += f" [{low * 100:.1f}, {high * 100:.1f}]"
        return text


def rate(trials: Sequence[TrialRecord], hit: str) -> Rate:
    return Rate(sum(bool(getattr(t, hit)) for t in trials), len(trials))


@dataclass
class Figures:
    policy: str
    seeds: int
    trials: int
    correct: Rate
    false_promotions: Rate
    aa_false_promotions: Rate
    decisive_correct: Rate  # trials whose true difference is at least δ
    power: Rate  # promoted, among trials that should promote
    power_by_gain: dict[str, Rate]
    inconclusive: Rate
    rolled_back: int
    mean_traces: float
    regret_tasks: int
    tasks: int
    champion_rate: list[float]  # mean over seeds, by generation
    reached_best: Rate  # seeds reaching the best reachable structure within the aim
    mean_generations_to_best: float
    tokens_per_correct: float
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)


def gain_bucket(gain: float) -> str:
    if gain < 0.15:
        return "< 0.15"
    if gain < 0.25:
        return "0.15-0.25"
    return ">= 0.25"


def figures(policy: str, runs: Sequence[SeedRun]) -> Figures:
    trials = [t for run in runs for t in run.trials]
    decisive = [t for t in trials if abs(t.gain) >= DELTA or t.kind == "costly"]
    should = [t for t in trials if t.should_promote]
    buckets: dict[str, list[TrialRecord]] = {}
    for t in should:
        buckets.setdefault(gain_bucket(t.gain), []).append(t)
    length = max((len(run.champion_rate) for run in runs), default=0)
    champion_rate = [
        sum(run.champion_rate[min(g, len(run.champion_rate) - 1)] for run in runs) / len(runs)
        for g in range(length)
    ]
    reached = [
        run.generations_to_best
        for run in runs
        if run.generations_to_best is not None and run.generations_to_best <= GENERATION_AIM
    ]
    correct = sum(t.correct for t in trials)
    by_kind: dict[str, dict[str, int]] = {}
    for t in trials:
        row = by_kind.setdefault(t.kind, {})
        row[t.state] = row.get(t.state, 0) + 1
        row["n"] = row.get("n", 0) + 1
    return Figures(
        policy=policy,
        seeds=len(runs),
        trials=len(trials),
        correct=Rate(correct, len(trials)),
        false_promotions=rate(trials, "false_promotion"),
        aa_false_promotions=rate([t for t in trials if t.kind == "aa"], "false_promotion"),
        decisive_correct=rate(decisive, "correct"),
        power=rate(should, "promoted"),
        power_by_gain={k: rate(v, "promoted") for k, v in sorted(buckets.items())},
        inconclusive=Rate(sum(t.state == "inconclusive" for t in trials), len(trials)),
        rolled_back=sum(t.state == "rolled_back" for t in trials),
        mean_traces=sum(t.candidate_traces + t.champion_traces for t in trials) / len(trials)
        if trials
        else math.nan,
        regret_tasks=sum(run.regret_tasks for run in runs),
        tasks=sum(run.tasks for run in runs),
        champion_rate=champion_rate,
        reached_best=Rate(len(reached), len(runs)),
        mean_generations_to_best=sum(reached) / len(reached) if reached else math.nan,
        tokens_per_correct=sum(t.tokens for t in trials) / correct if correct else math.inf,
        by_kind=by_kind,
    )


@dataclass(frozen=True)
class Aim:
    text: str
    met: bool
    value: str


def aims(by_policy: dict[str, Figures], rule: str) -> list[Aim]:
    ours = by_policy[rule]
    others = [
        f
        for name, f in by_policy.items()
        if name in ("reference_absolute_v1", "naive_fixed_sample_v1")
    ]
    upper = ours.false_promotions.interval[1]
    result = [
        Aim(
            "at least 300 trials across at least 100 seeds",
            ours.trials >= 300 and ours.seeds >= 100,
            f"{ours.trials} trials, {ours.seeds} seeds",
        ),
        Aim("upper 95% bound on false promotions <= 5%", upper <= 0.05, f"{upper * 100:.2f}%"),
        Aim(
            f"A/A false promotions <= alpha ({ALPHA})",
            ours.aa_false_promotions.n > 0 and ours.aa_false_promotions.value <= ALPHA,
            ours.aa_false_promotions.show(),
        ),
        Aim(
            "correct decisions >= 95% where the true difference is at least delta",
            ours.decisive_correct.value >= 0.95,
            ours.decisive_correct.show(),
        ),
        Aim(
            f"best reachable structure within {GENERATION_AIM} generations in >= 90% of seeds",
            ours.reached_best.value >= 0.90,
            ours.reached_best.show(),
        ),
    ]
    for other in others:
        beats = (
            ours.false_promotions.value < other.false_promotions.value
            and ours.power.value >= other.power.value - 0.02
        )
        result.append(
            Aim(
                f"fewer false promotions than {other.policy}, at no worse power (2-point slack)",
                beats,
                f"{ours.false_promotions.value * 100:.1f}% vs "
                f"{other.false_promotions.value * 100:.1f}%; "
                f"power {ours.power.value * 100:.1f}% vs {other.power.value * 100:.1f}%",
            )
        )
    return result
