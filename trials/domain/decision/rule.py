"""One evaluation of ``sequential_confidence_v1``, explained: its verdict, a sentence, its numbers.

The verdict comes from the same code the simulations run (``.sequential``); this module only
reads the assessment back as plain numbers for the ledger and as a reason for an operator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from .arms import ArmArrays, ArmSummary, Observation, PairedArrays, PairedSummary
from .sequential import (
    VERDICTS,
    Assessment,
    DecisionSettings,
    Verdict,
    assess_paired,
    assess_two_sample,
)

RULE = "sequential_confidence_v1"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str  # one sentence an operator can read
    rule: str  # the policy's name
    numbers: dict[str, Any]  # JSON-ready: everything the verdict used

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": str(self.verdict),
            "reason": self.reason,
            "rule": self.rule,
            "numbers": self.numbers,
        }


def wilson_interval(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson's score interval for a rate, two-sided at ``confidence``; (0, 1) with no data."""
    if n <= 0:
        return 0.0, 1.0
    z = _two_sided_z(confidence)
    rate, z2 = successes / n, z * z
    centre = (rate + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(rate * (1 - rate) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@lru_cache(maxsize=16)
def _two_sided_z(confidence: float) -> float:
    from scipy import stats  # type: ignore[import-untyped]  # 0.7 s to import: only when deciding

    return float(stats.norm.ppf(0.5 + confidence / 2))


def decide(
    candidate: ArmSummary,
    champion: ArmSummary,
    settings: DecisionSettings,
    *,
    deadline_passed: bool = False,
) -> Decision:
    """The candidate's arm against the champion's (same controller, task classes, window).

    Never promotes while either arm is below the minimum; any candidate breach prunes; the
    verdict is exactly ``verdict_codes`` on the same statistics.
    """
    assessment = assess_two_sample(
        ArmArrays.of(candidate), ArmArrays.of(champion), settings, deadline_passed
    )
    return _explain(assessment, candidate, champion, settings, deadline_passed, None)


def decide_paired(
    pairs: Sequence[tuple[Observation, Observation]],
    settings: DecisionSettings,
    *,
    deadline_passed: bool = False,
) -> Decision:
    """Shadow mode: (candidate, champion) traces of the same task, compared pair by pair."""
    summary = PairedSummary.of(pairs)
    assessment = assess_paired(PairedArrays.of(summary), settings, deadline_passed)
    pair_counts = {
        "n": summary.candidate.n,
        "candidate_only_successes": summary.candidate_only_successes,
        "champion_only_successes": summary.champion_only_successes,
    }
    return _explain(
        assessment, summary.candidate, summary.champion, settings, deadline_passed, pair_counts
    )


def _explain(
    assessment: Assessment,
    candidate: ArmSummary,
    champion: ArmSummary,
    settings: DecisionSettings,
    deadline_passed: bool,
    pair_counts: dict[str, int] | None,
) -> Decision:
    verdict = VERDICTS[int(assessment.codes)]
    lower, upper = (float(b) for b in assessment.success_bounds)
    guardrails = [
        _guardrail_numbers(name, bound[1], candidate, champion, settings)
        for name, (_, bound) in assessment.guardrails.items()
    ]
    confidence = 1 - 2 * settings.alpha
    numbers = {
        "design": "two_sample" if pair_counts is None else "paired",
        "verdict": str(verdict),
        "arms": {
            "candidate": _arm_numbers(candidate, confidence),
            "champion": _arm_numbers(champion, confidence),
        },
        "difference": {
            "estimate": _number(_rate(candidate) - _rate(champion))
            if candidate.n and champion.n
            else None,
            "smoothed_estimate": _number(float(assessment.success.estimate)),
            "lower": _number(lower),
            "upper": _number(upper),
            "one_sided_alpha": settings.alpha,
            "anytime_valid": True,
        },
        "guardrails": guardrails,
        "safety_breaches": {
            "candidate": candidate.safety_breaches,
            "champion": champion.safety_breaches,
        },
        "traces_needed": {
            "candidate": max(0, settings.min_traces_per_arm - candidate.n),
            "champion": max(0, settings.min_traces_per_arm - champion.n),
        },
        "deadline_passed": deadline_passed,
        "settings": asdict(settings),
    }
    if pair_counts is not None:
        numbers["pairs"] = pair_counts
    reason = _reason(verdict, numbers, settings)
    return Decision(verdict=verdict, reason=reason, rule=RULE, numbers=numbers)


def _reason(verdict: Verdict, numbers: dict[str, Any], settings: DecisionSettings) -> str:
    """One sentence, checked in the order the rule decides."""
    difference = numbers["difference"]
    interval = f"[{_fmt(difference['lower'])}, {_fmt(difference['upper'])}]"
    breaches = numbers["safety_breaches"]["candidate"]
    if verdict == Verdict.PRUNE and breaches:
        return (
            f"Pruned: the candidate caused {breaches} safety breach(es) (a capability "
            "violation or a pain signal); a breach is never outweighed by success."
        )
    if verdict == Verdict.PROMOTE:
        return (
            f"Promoted: the candidate succeeds more often than the champion (gain {interval}, "
            f"anytime-valid at one-sided alpha {settings.alpha}) and stays within the token "
            "and latency guardrails."
        )
    if verdict == Verdict.PRUNE:
        if difference["upper"] is not None and difference["upper"] < 0:
            return f"Pruned: the candidate succeeds significantly less often (gain {interval})."
        return (
            f"Pruned as futile: the gain {interval} cannot reach the indifference margin "
            f"{settings.indifference_margin}."
        )
    state = _pending(numbers, settings, interval)
    if verdict == Verdict.INCONCLUSIVE:
        why = "the deadline passed" if numbers["deadline_passed"] else "the maximum was reached"
        return f"Inconclusive, waiting for an operator: {why}, and {state}."
    return f"Continue: {state}."


def _pending(numbers: dict[str, Any], settings: DecisionSettings, interval: str) -> str:
    """Why no verdict yet: too few traces, a guardrail, or an undecided gain."""
    needed = numbers["traces_needed"]
    if needed["candidate"] or needed["champion"]:
        return (
            f"it needs {needed['candidate']} more candidate and {needed['champion']} more "
            f"champion traces (at least {settings.min_traces_per_arm} per arm)"
        )
    lower = numbers["difference"]["lower"]
    failed = [g["name"] for g in numbers["guardrails"] if not g["passed"]]
    if lower is not None and lower > 0 and failed:
        return (
            f"the candidate succeeds significantly more often, but the {' and '.join(failed)} "
            "guardrail has not passed (not shown within its margin of the champion)"
        )
    return f"the gain {interval} still spans both 0 and the indifference margin"


def _guardrail_numbers(
    name: str, bound: Any, candidate: ArmSummary, champion: ArmSummary, settings: DecisionSettings
) -> dict[str, Any]:
    """``bound``: the upper bound of candidate mean - (1 + margin) * champion mean."""
    margin = _margin(settings, name)
    return {
        "name": name,
        "passed": bool(bound <= 0),
        "candidate_mean": _number(_mean(candidate, name)),
        "champion_mean": _number(_mean(champion, name)),
        "margin": margin,
        "limit": _number((1 + margin) * _mean(champion, name)),
        "bound": _number(float(bound)),
    }


def _arm_numbers(arm: ArmSummary, confidence: float) -> dict[str, Any]:
    low, high = wilson_interval(arm.successes, arm.n, confidence)
    return {
        "n": arm.n,
        "successes": arm.successes,
        "rate": _number(_rate(arm)) if arm.n else None,
        "wilson": [_number(low), _number(high)],
        "wilson_confidence": confidence,
        "tokens_mean": _number(_mean(arm, "tokens")),
        "latency_mean": _number(_mean(arm, "latency")),
    }


def _rate(arm: ArmSummary) -> float:
    return arm.successes / arm.n if arm.n else 0.0


def _mean(arm: ArmSummary, name: str) -> float:
    total = arm.tokens_sum if name == "tokens" else arm.latency_sum
    return total / arm.n if arm.n else 0.0


def _margin(settings: DecisionSettings, name: str) -> float:
    return settings.token_margin if name == "tokens" else settings.latency_margin


def _number(value: float) -> float | None:
    """JSON has no infinity: an unbounded bound is None."""
    return round(value, 6) if math.isfinite(value) else None


def _fmt(value: float | None) -> str:
    return "unbounded" if value is None else f"{value:+.3f}"


def significantly_worse(decision: Decision) -> bool:
    """The candidate arm is worse beyond doubt: the anytime-valid upper bound of the gain in
    success rate is below zero, or the candidate had a safety breach. What a promotion's
    watch window rolls back on."""
    numbers = decision.numbers
    upper = numbers["difference"]["upper"]
    breached = numbers["safety_breaches"]["candidate"] > 0
    return breached or (upper is not None and upper < 0)
